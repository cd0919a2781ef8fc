// ddpmkit — 3x3 convolutions with stride 1 and padding 1 by Winograd's minimal filtering
// F(2x2, 3x3) (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks").
//
// The output is cut into 2x2 tiles; each reads a 4x4 input patch d. With the 4x4 weight
// transform U = G g G^T and the patch transform V = B^T d B, the tile is
//   Y = A^T (U . V) A                                       (. elementwise),
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1].
// Summed over input channels, each of the 16 positions xi of the 4x4 transform is a GEMM,
// M[xi] [O, tiles] = U[xi] [O, C] V[xi] [C, tiles]: 16 multiplies per 4 outputs instead of 36,
// and the 4x4 patches of V are 4 values per pixel where im2col copies 9.
// The gradients are the exact adjoints of that computation:
//   input:  dx = the same convolution of dy with the weights flipped and transposed;
//   weight: dU[xi] = (A dY A^T)[xi] V[xi]^T summed over tiles, then dg = G^T dU G.
// Images are processed in chunks (a few hundred tiles each, one chunk per task); the weight
// gradient sums fixed chunks in index order, so every result is bitwise the same for any
// thread count. Float with SIMD only; conv2d.hpp chooses it for 3x3, stride 1, padding 1.
// The arithmetic loops run along a row of tiles with unit stride, for the compiler to vectorize.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/parallel.hpp"
#include "ddpmkit/kernels/gemm.hpp"

#if !defined(DDPMKIT_ARCH_SCALAR)

DDPMKIT_BEGIN_NAMESPACE
namespace kernels {
namespace winograd {

using Engine = gemm_detail::DefaultEngine;
using NarrowEngine = gemm_detail::Engine<gemm_detail::kMR, 2>;
using gemm_detail::OutView;
using gemm_detail::View;

// The 2x2 output tiles of an H x W image.
struct Tiles {
    int64_t H, W, th, tw;
    Tiles(int64_t h, int64_t w) : H(h), W(w), th((h + 1) / 2), tw((w + 1) / 2) {}
    int64_t per_image() const { return th * tw; }
    // Images per chunk (at most B): the fewest columns of register tiles wasted on padding
    // (the GEMMs' N is a multiple of Engine::NR), with the transformed inputs and outputs
    // of `channels` channels in about 2 MB (one core's L2).
    int64_t images_per_chunk(int64_t B, int64_t channels) const {
        const int64_t budget = std::max<int64_t>(1, (int64_t(1) << 19) / (16 * channels * per_image()));
        int64_t best = 1;
        double best_waste = 2.0;
        for (int64_t n = 1; n <= std::min(B, budget); ++n) {
            const int64_t N = n * per_image(), padded = (N + Engine::NR - 1) / Engine::NR * Engine::NR;
            const double waste = static_cast<double>(padded) / static_cast<double>(N);
            if (waste < best_waste - 1e-9) best = n, best_waste = waste;
        }
        return best;
    }
};

// U[xi][o][c] = (G g G^T)[xi] for the 3x3 kernel g = w[o][c] (w [O, C, 3, 3]), or, with
// `adjoint`, for g = w[c][o] rotated by 180 degrees (the kernel of the input gradient):
// then U is [16][C][O].
inline void transform_weights(const float* w, int64_t O, int64_t C, bool adjoint, float* U) {
    const int64_t rows = adjoint ? C : O, cols = adjoint ? O : C;
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
            float g[3][3];
            for (int i = 0; i < 3; ++i)
                for (int j = 0; j < 3; ++j)
                    g[i][j] = adjoint ? w[((c * C + r) * 3 + 2 - i) * 3 + 2 - j] : w[((r * C + c) * 3 + i) * 3 + j];
            float gg[4][3];  // G g
            for (int j = 0; j < 3; ++j) {
                gg[0][j] = g[0][j];
                gg[1][j] = 0.5f * (g[0][j] + g[1][j] + g[2][j]);
                gg[2][j] = 0.5f * (g[0][j] - g[1][j] + g[2][j]);
                gg[3][j] = g[2][j];
            }
            for (int k = 0; k < 4; ++k) {  // (G g) G^T
                float* u = U + (k * 4) * rows * cols + r * cols + c;
                const int64_t step = rows * cols;
                u[0] = gg[k][0];
                u[step] = 0.5f * (gg[k][0] + gg[k][1] + gg[k][2]);
                u[2 * step] = 0.5f * (gg[k][0] - gg[k][1] + gg[k][2]);
                u[3 * step] = gg[k][2];
            }
        }
}

// V[xi][c][t] = (B^T d B)[xi] for the patches of n images x [n, C, H, W]; t = image tiles
// + ty tw + tx, the rows of V `ld` apart. d B is computed once per padded input row (rows
// -1 .. 2 th are shared by neighbouring tile rows), then B^T combines four such rows.
inline void transform_input(const float* x, int64_t n, int64_t C, const Tiles& tl, float* V, int64_t ld) {
    const int64_t tw = tl.tw, plane = C * ld, rows = 2 * tl.th + 2;
    std::vector<float> padded(static_cast<size_t>(2 * tw + 2), 0.0f);  // padded[k] = x[row][k - 1]
    std::vector<float> e(static_cast<size_t>(rows * 4 * tw));             // (d B)[row][l][t]
    for (int64_t b = 0; b < n; ++b)
        for (int64_t c = 0; c < C; ++c) {
            const float* xc = x + (b * C + c) * tl.H * tl.W;
            for (int64_t r = 0; r < rows; ++r) {
                const int64_t y = r - 1;
                float* er = e.data() + r * 4 * tw;
                if (y < 0 || y >= tl.H) {
                    std::fill(er, er + 4 * tw, 0.0f);
                    continue;
                }
                std::copy(xc + y * tl.W, xc + (y + 1) * tl.W, padded.begin() + 1);
                const float* p = padded.data();  // the patch row of tile t: p[2t .. 2t + 3]
                float *e0 = er, *e1 = e0 + tw, *e2 = e1 + tw, *e3 = e2 + tw;
                for (int64_t t = 0; t < tw; ++t) {
                    e0[t] = p[2 * t] - p[2 * t + 2];
                    e1[t] = p[2 * t + 1] + p[2 * t + 2];
                    e2[t] = p[2 * t + 2] - p[2 * t + 1];
                    e3[t] = p[2 * t + 1] - p[2 * t + 3];
                }
            }
            for (int64_t ty = 0; ty < tl.th; ++ty) {
                float* out = V + c * ld + (b * tl.th + ty) * tw;
                const float* e_top = e.data() + (2 * ty) * 4 * tw;  // padded rows 2 ty .. 2 ty + 3
                for (int l = 0; l < 4; ++l) {  // B^T (d B), column l of the 4x4 result
                    const float *r0 = e_top + l * tw, *r1 = r0 + 4 * tw, *r2 = r1 + 4 * tw, *r3 = r2 + 4 * tw;
                    float *v0 = out + l * plane, *v1 = v0 + 4 * plane, *v2 = v1 + 4 * plane, *v3 = v2 + 4 * plane;
                    for (int64_t t = 0; t < tw; ++t) {
                        v0[t] = r0[t] - r2[t];
                        v1[t] = r1[t] + r2[t];
                        v2[t] = r2[t] - r1[t];
                        v3[t] = r1[t] - r3[t];
                    }
                }
            }
        }
}

// y[n, O, H, W] (+)= A^T M A (+ bias[o]) from M[xi][o][t], rows `ld` apart; the parts of
// the last tiles outside the image are dropped.
inline void transform_output(const float* M, int64_t ld, int64_t n, int64_t O, const Tiles& tl, const float* bias,
                             bool accumulate, float* y) {
    const int64_t tw = tl.tw, plane = O * ld;
    std::vector<float> q(static_cast<size_t>(8 * tw));  // M A of the 4 rows: [k][s][t]
    for (int64_t b = 0; b < n; ++b)
        for (int64_t o = 0; o < O; ++o) {
            float* yo = y + (b * O + o) * tl.H * tl.W;
            const float add = bias ? bias[o] : 0.0f;
            for (int64_t ty = 0; ty < tl.th; ++ty) {
                const float* m = M + o * ld + (b * tl.th + ty) * tw;
                for (int k = 0; k < 4; ++k) {
                    const float *m0 = m + (4 * k) * plane, *m1 = m0 + plane, *m2 = m1 + plane, *m3 = m2 + plane;
                    float *q0 = q.data() + (2 * k) * tw, *q1 = q0 + tw;
                    for (int64_t t = 0; t < tw; ++t) {
                        q0[t] = m0[t] + m1[t] + m2[t];
                        q1[t] = m1[t] - m2[t] - m3[t];
                    }
                }
                for (int r = 0; r < 2 && 2 * ty + r < tl.H; ++r) {
                    float* row = yo + (2 * ty + r) * tl.W;
                    for (int s = 0; s < 2; ++s) {
                        const float *a0 = q.data() + s * tw, *a1 = a0 + 2 * tw, *a2 = a1 + 2 * tw, *a3 = a2 + 2 * tw;
                        const int64_t last = (tl.W - s + 1) / 2;  // tiles whose column 2 tx + s is inside
                        for (int64_t t = 0; t < last; ++t) {
                            const float v = (r == 0 ? a0[t] + a1[t] + a2[t] : a1[t] - a2[t] - a3[t]) + add;
                            row[2 * t + s] = accumulate ? row[2 * t + s] + v : v;
                        }
                    }
                }
            }
        }
}

// Mg[xi][o][t] = (A dY A^T)[xi] for the 2x2 tiles dY of dy [n, O, H, W] (0 outside).
inline void transform_output_grad(const float* dy, int64_t n, int64_t O, const Tiles& tl, float* Mg, int64_t ld) {
    const int64_t tw = tl.tw, plane = O * ld;
    std::vector<float> d(static_cast<size_t>(4 * tw));   // dY[r][s] along the tiles of a row: [r][s][t]
    std::vector<float> a(static_cast<size_t>(8 * tw));   // (A dY)[k][s][t]; the rows of A are [1 0] [1 1] [1 -1] [0 -1]
    for (int64_t b = 0; b < n; ++b)
        for (int64_t o = 0; o < O; ++o) {
            const float* dyo = dy + (b * O + o) * tl.H * tl.W;
            for (int64_t ty = 0; ty < tl.th; ++ty) {
                for (int r = 0; r < 2; ++r)
                    for (int s = 0; s < 2; ++s) {
                        float* dst = d.data() + (2 * r + s) * tw;
                        const int64_t y = 2 * ty + r, inside = y < tl.H ? (tl.W - s + 1) / 2 : 0;
                        for (int64_t t = 0; t < inside; ++t) dst[t] = dyo[y * tl.W + 2 * t + s];
                        std::fill(dst + inside, dst + tw, 0.0f);
                    }
                for (int s = 0; s < 2; ++s) {
                    const float *d0 = d.data() + s * tw, *d1 = d0 + 2 * tw;
                    float *a0 = a.data() + s * tw, *a1 = a0 + 2 * tw, *a2 = a1 + 2 * tw, *a3 = a2 + 2 * tw;
                    for (int64_t t = 0; t < tw; ++t) {
                        a0[t] = d0[t];
                        a1[t] = d0[t] + d1[t];
                        a2[t] = d0[t] - d1[t];
                        a3[t] = -d1[t];
                    }
                }
                float* out = Mg + o * ld + (b * tl.th + ty) * tw;
                for (int k = 0; k < 4; ++k) {  // (A dY) A^T along s
                    const float *p0 = a.data() + (2 * k) * tw, *p1 = p0 + tw;
                    float* v0 = out + (4 * k) * plane;
                    float *v1 = v0 + plane, *v2 = v1 + plane, *v3 = v2 + plane;
                    for (int64_t t = 0; t < tw; ++t) {
                        v0[t] = p0[t];
                        v1[t] = p0[t] + p1[t];
                        v2[t] = p0[t] - p1[t];
                        v3[t] = -p1[t];
                    }
                }
            }
        }
}

// dw[o][c] += G^T dU[o][c] G for dU [16][O][C].
inline void accumulate_weight_grad(const float* dU, int64_t O, int64_t C, float* dw) {
    const int64_t step = O * C;
    for (int64_t o = 0; o < O; ++o)
        for (int64_t c = 0; c < C; ++c) {
            float u[4][4];
            for (int k = 0; k < 16; ++k) u[k / 4][k % 4] = dU[k * step + o * C + c];
            float h[3][4];  // G^T dU; the columns of G are [1 1/2 1/2 0], [0 1/2 -1/2 0], [0 1/2 1/2 1]
            for (int l = 0; l < 4; ++l) {
                h[0][l] = u[0][l] + 0.5f * (u[1][l] + u[2][l]);
                h[1][l] = 0.5f * (u[1][l] - u[2][l]);
                h[2][l] = 0.5f * (u[1][l] + u[2][l]) + u[3][l];
            }
            float* g = dw + (o * C + c) * 9;
            for (int i = 0; i < 3; ++i) {
                g[i * 3 + 0] += h[i][0] + 0.5f * (h[i][1] + h[i][2]);
                g[i * 3 + 1] += 0.5f * (h[i][1] - h[i][2]);
                g[i * 3 + 2] += 0.5f * (h[i][1] + h[i][2]) + h[i][3];
            }
        }
}

// Buffers of the calling thread: 0 transformed inputs, 1 GEMM outputs or transformed
// output gradients, 2 packed weights.
inline std::vector<float>& buffer(int which) {
    thread_local std::vector<float> buffers[3];
    return buffers[which];
}

// y (+)= conv3x3(x) (+ bias) for x [B, C, H, W], y [B, O, H, W], with U from transform_weights.
inline void convolve(const float* x, int64_t B, int64_t C, int64_t O, int64_t H, int64_t W, const float* U,
                     const float* bias, bool accumulate, float* y) {
    const Tiles tl(H, W);
    const int64_t nb = tl.images_per_chunk(B, C + O), chunks = (B + nb - 1) / nb, ld = nb * tl.per_image();
    const int64_t packed = Engine::packed_a_size(O, C);
    std::vector<float>& Up = buffer(2);
    Up.resize(static_cast<size_t>(16 * packed));
    for (int xi = 0; xi < 16; ++xi) Engine::pack_a(View{U + xi * O * C, C}, O, C, Up.data() + xi * packed);
    const float* Upacked = Up.data();
    auto task = [&](int64_t chunk) {
        const int64_t b0 = chunk * nb, n = std::min(nb, B - b0), N = n * tl.per_image();
        std::vector<float>& V = buffer(0);
        std::vector<float>& M = buffer(1);
        V.resize(static_cast<size_t>(16 * C * ld));
        M.resize(static_cast<size_t>(16 * O * ld));
        transform_input(x + b0 * C * H * W, n, C, tl, V.data(), ld);
        for (int xi = 0; xi < 16; ++xi)
            Engine::run_packed(O, N, C, 1.0f, Upacked + xi * packed, View{V.data() + xi * C * ld, ld}, 0.0f,
                               OutView{M.data() + xi * O * ld, ld}, nullptr);
        transform_output(M.data(), ld, n, O, tl, bias, accumulate, y + b0 * O * H * W);
    };
    if (chunks >= num_threads())
        gemm_detail::parallel_tasks(chunks, task);
    else
        for (int64_t c = 0; c < chunks; ++c) task(c);
}

// y = conv3x3(x, w) + bias; w [O, C, 3, 3], bias [O] or null.
inline void forward(const float* x, int64_t B, int64_t C, int64_t O, int64_t H, int64_t W, const float* w,
                    const float* bias, float* y) {
    std::vector<float> U(static_cast<size_t>(16 * O * C));
    transform_weights(w, O, C, false, U.data());
    convolve(x, B, C, O, H, W, U.data(), bias, false, y);
}

// dx += the input gradient of y = conv3x3(x, w) for dy [B, O, H, W].
inline void backward_data(int64_t B, int64_t C, int64_t O, int64_t H, int64_t W, const float* w, const float* dy,
                          float* dx) {
    std::vector<float> U(static_cast<size_t>(16 * C * O));
    transform_weights(w, O, C, true, U.data());
    convolve(dy, B, O, C, H, W, U.data(), nullptr, true, dx);
}

// dw += the weight gradient of y = conv3x3(x, w) for dy [B, O, H, W], summed over images in
// min(B, 8) fixed chunks combined in order.
inline void backward_weight(const float* x, int64_t B, int64_t C, int64_t O, int64_t H, int64_t W, const float* dy,
                            float* dw) {
    const Tiles tl(H, W);
    const int64_t chunks = std::min<int64_t>(B, 8), nb = tl.images_per_chunk((B + chunks - 1) / chunks, C + O);
    const int64_t ld = nb * tl.per_image();
    const int64_t part = 16 * O * C;
    // The GEMMs' N is C: 32 or 64 channels fill register tiles of 32 columns, not of 48.
    const auto padded = [C](int64_t nr) { return (C + nr - 1) / nr * nr; };
    const bool narrow = padded(NarrowEngine::NR) < padded(Engine::NR);
    std::vector<float> partials(static_cast<size_t>(chunks * part));
    auto task = [&](int64_t chunk) {
        const int64_t first = B * chunk / chunks, last = B * (chunk + 1) / chunks;
        float* dU = partials.data() + chunk * part;
        std::vector<float>& V = buffer(0);
        std::vector<float>& Mg = buffer(1);
        V.resize(static_cast<size_t>(16 * C * ld));
        Mg.resize(static_cast<size_t>(16 * O * ld));
        for (int64_t b0 = first; b0 < last; b0 += nb) {
            const int64_t n = std::min(nb, last - b0), N = n * tl.per_image();
            transform_input(x + b0 * C * H * W, n, C, tl, V.data(), ld);
            transform_output_grad(dy + b0 * O * H * W, n, O, tl, Mg.data(), ld);
            auto gemms = [&](auto engine) {  // dU[xi] (+)= Mg[xi] [O, N] V[xi]^T [N, C]
                using E = decltype(engine);
                for (int xi = 0; xi < 16; ++xi)
                    E::run(O, C, N, 1.0f, View{Mg.data() + xi * O * ld, ld}, View{V.data() + xi * C * ld, ld, true},
                           b0 == first ? 0.0f : 1.0f, OutView{dU + xi * O * C, C});
            };
            if (narrow)
                gemms(NarrowEngine{});
            else
                gemms(Engine{});
        }
    };
    if (chunks >= num_threads())
        gemm_detail::parallel_tasks(chunks, task);
    else
        for (int64_t c = 0; c < chunks; ++c) task(c);
    for (int64_t c = 1; c < chunks; ++c)
        for (int64_t i = 0; i < part; ++i) partials[static_cast<size_t>(i)] += partials[static_cast<size_t>(c * part + i)];
    accumulate_weight_grad(partials.data(), O, C, dw);
}

}  // namespace winograd
}  // namespace kernels
DDPMKIT_END_NAMESPACE

#endif
