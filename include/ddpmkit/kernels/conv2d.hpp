// ddpmkit — 2-D convolution (cross-correlation, as in PyTorch), NCHW, weight [O, C, kh, kw].
//
// Images are lowered to columns (im2col: [C kh kw, Ho Wo] each) and multiplied by the
// weight as a [O, C kh kw] matrix on the GEMM engine; a 1x1 convolution with stride 1 and
// no padding uses the images themselves as their columns. Backward: dW += dY col^T and
// dcol = W^T dY, folded back into dX (col2im).
//
// The float path (conv2d_forward / conv2d_backward) packs the weight once per
// call, then works on chunks of a few images: their columns side by side form one
// [K, n P] matrix, so a 7x7 layer multiplies 392 columns at a time rather than 49. The
// activations [B, C, P] of the chunk are read and written in place as a segmented
// [C, n P] matrix (gemm_detail::View). Chunks run on different threads, each with its own
// column buffer, reused from call to call. The weight gradient sums over images in fixed
// chunks (their number depends on the batch only) combined in index order: every result
// is bitwise the same for any thread count. ref:: keeps the plain version (one image at a
// time, reference GEMM): the oracle of the tests, and the path of double. Shape letters: B batch, C in channels, O out channels, H W in size,
// Ho Wo out size, P = Ho Wo, K = C kh kw.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/parallel.hpp"
#include "ddpmkit/kernels/elementwise.hpp"
#include "ddpmkit/kernels/gemm.hpp"
#include "ddpmkit/kernels/reduce.hpp"
#include "ddpmkit/kernels/reference.hpp"
#include "ddpmkit/kernels/winograd.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace kernels {

struct ConvGeometry {
    int64_t C, H, W;     // input channels and size
    int64_t O, kh, kw;   // output channels, kernel size
    int64_t stride, pad;
    int64_t Ho() const { return (H + 2 * pad - kh) / stride + 1; }
    int64_t Wo() const { return (W + 2 * pad - kw) / stride + 1; }
    int64_t K() const { return C * kh * kw; }
    bool is_pointwise() const { return kh == 1 && kw == 1 && stride == 1 && pad == 0; }
};

// col[(c kh + i) kw + j, oy Wo + ox] = x[c, oy s - p + i, ox s - p + j], 0 outside; the rows
// of col are `ld` apart (ld >= Ho Wo: several images' columns side by side).
template <class T>
void im2col(const T* x, const ConvGeometry& g, T* col, int64_t ld) {
    const int64_t Ho = g.Ho(), Wo = g.Wo();
    for (int64_t c = 0; c < g.C; ++c)
        for (int64_t i = 0; i < g.kh; ++i)
            for (int64_t j = 0; j < g.kw; ++j) {
                T* dst = col + ((c * g.kh + i) * g.kw + j) * ld;
                // ox with a source inside the row: ox s - p + j in [0, W)
                const int64_t ox0 = std::min(Wo, std::max<int64_t>(0, (g.pad - j + g.stride - 1) / g.stride));
                const int64_t ox1 = std::max(ox0, std::min(Wo, (g.W + g.pad - j + g.stride - 1) / g.stride));
                for (int64_t oy = 0; oy < Ho; ++oy) {
                    const int64_t iy = oy * g.stride - g.pad + i;
                    T* row = dst + oy * Wo;
                    if (iy < 0 || iy >= g.H) {
                        std::fill(row, row + Wo, T(0));
                        continue;
                    }
                    const T* src = x + (c * g.H + iy) * g.W;  // row[ox] = src[ox s - p + j]
                    std::fill(row, row + ox0, T(0));
                    if (g.stride == 1)
                        std::copy(src + ox0 - g.pad + j, src + ox1 - g.pad + j, row + ox0);
                    else
                        for (int64_t ox = ox0; ox < ox1; ++ox) row[ox] = src[ox * g.stride - g.pad + j];
                    std::fill(row + ox1, row + Wo, T(0));
                }
            }
}
template <class T>
void im2col(const T* x, const ConvGeometry& g, T* col) {
    im2col(x, g, col, g.Ho() * g.Wo());
}

// x += the columns folded back onto the image (the adjoint of im2col); rows `ld` apart.
template <class T>
void col2im_add(const T* col, const ConvGeometry& g, T* x, int64_t ld) {
    const int64_t Ho = g.Ho(), Wo = g.Wo();
    for (int64_t c = 0; c < g.C; ++c)
        for (int64_t i = 0; i < g.kh; ++i)
            for (int64_t j = 0; j < g.kw; ++j) {
                const T* src = col + ((c * g.kh + i) * g.kw + j) * ld;
                const int64_t ox0 = std::min(Wo, std::max<int64_t>(0, (g.pad - j + g.stride - 1) / g.stride));
                const int64_t ox1 = std::max(ox0, std::min(Wo, (g.W + g.pad - j + g.stride - 1) / g.stride));
                for (int64_t oy = 0; oy < Ho; ++oy) {
                    const int64_t iy = oy * g.stride - g.pad + i;
                    if (iy < 0 || iy >= g.H) continue;
                    T* dst = x + (c * g.H + iy) * g.W;  // dst[ox s - p + j] += s[ox]
                    const T* s = src + oy * Wo;
                    if (g.stride == 1)
                        for (int64_t ox = ox0; ox < ox1; ++ox) dst[ox - g.pad + j] += s[ox];
                    else
                        for (int64_t ox = ox0; ox < ox1; ++ox) dst[ox * g.stride - g.pad + j] += s[ox];
                }
            }
}
template <class T>
void col2im_add(const T* col, const ConvGeometry& g, T* x) {
    col2im_add(col, g, x, g.Ho() * g.Wo());
}

namespace conv_detail {
template <class T>
using NonDeduced = typename std::enable_if<true, T>::type;  // T, not deduced from an argument of this type

template <class T>
std::vector<T>& columns() {
    thread_local std::vector<T> buffer;
    return buffer;
}
}  // namespace conv_detail

namespace ref {
// y[b] = W col(x[b]) + bias + residual[b], one image at a time on the reference GEMM.
template <class T>
void conv2d_forward(const T* x, int64_t B, const T* w, const T* bias, const ConvGeometry& g, T* y,
                    const T* residual = nullptr) {
    const int64_t P = g.Ho() * g.Wo(), K = g.K();
    for_each_chunk(B, [&](int64_t b) {
        const T* xb = x + b * g.C * g.H * g.W;
        T* yb = y + b * g.O * P;
        const T* rb = residual ? residual + b * g.O * P : nullptr;
        for (int64_t o = 0; o < g.O; ++o)
            for (int64_t p = 0; p < P; ++p) yb[o * P + p] = (bias ? bias[o] : T(0)) + (rb ? rb[o * P + p] : T(0));
        std::vector<T> col(static_cast<size_t>(K * P));
        im2col(xb, g, col.data());
        ref::gemm<T>(false, false, g.O, P, K, T(1), w, K, col.data(), P, T(1), yb, P);
    });
}

// dx (+)= W^T dy (folded), dw += dy col^T (images in order), db += sum of dy.
template <class T>
void conv2d_backward(const T* x, int64_t B, const T* w, const ConvGeometry& g, const T* dy, T* dx, T* dw, T* db,
                     bool add_dx = true) {
    const int64_t P = g.Ho() * g.Wo(), K = g.K();
    if (dx && !add_dx) std::fill(dx, dx + B * g.C * g.H * g.W, T(0));
    if (db)
        for (int64_t b = 0; b < B; ++b)
            for (int64_t o = 0; o < g.O; ++o) {
                T s = 0;
                for (int64_t p = 0; p < P; ++p) s += dy[(b * g.O + o) * P + p];
                db[o] += s;
            }
    std::vector<T> col(static_cast<size_t>(K * P));
    if (dw)
        for (int64_t b = 0; b < B; ++b) {
            im2col(x + b * g.C * g.H * g.W, g, col.data());
            ref::gemm<T>(false, true, g.O, K, P, T(1), dy + b * g.O * P, P, col.data(), P, T(1), dw, K);
        }
    if (dx)  // images are independent: across threads
        for_each_chunk(B, [&](int64_t b) {
            std::vector<T> dcol(static_cast<size_t>(K * P));
            ref::gemm<T>(true, false, K, P, g.O, T(1), w, K, dy + b * g.O * P, P, T(0), dcol.data(), P);
            col2im_add(dcol.data(), g, dx + b * g.C * g.H * g.W);
        });
}
}  // namespace ref

namespace conv_detail {
using gemm_detail::Engine;
using gemm_detail::OutView;
using gemm_detail::View;

// Buffers of the calling thread: the packed weight, the weight-gradient partials.
inline std::vector<float>& packed_weight() {
    thread_local std::vector<float> buffer;
    return buffer;
}
inline std::vector<float>& partials() {
    thread_local std::vector<float> buffer;
    return buffer;
}

// Images per GEMM: enough columns to fill the register tiles (>= ~384), a column buffer
// of `rows` x n P floats under ~1 MB (it stays in L2), at most the batch.
inline int64_t images_per_gemm(int64_t P, int64_t rows, int64_t B) {
    const int64_t want = (384 + P - 1) / P, fit = std::max<int64_t>(1, (int64_t(1) << 18) / std::max<int64_t>(rows * P, 1));
    return std::max<int64_t>(1, std::min({want, fit, B}));
}

// Every row of the columns: fn(col, inside, x_off, ox0, ox1) for the row at offset col of the
// columns (rows `ld` apart), whose source image row is inside the image or not; positions ox
// in [ox0, ox1) read x at x_off + stride ox, the others are padding.
template <class Fn>
void for_each_column_row(const ConvGeometry& g, int64_t ld, const Fn& fn) {
    const int64_t Ho = g.Ho(), Wo = g.Wo(), s = g.stride;
    for (int64_t c = 0; c < g.C; ++c)
        for (int64_t i = 0; i < g.kh; ++i)
            for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t ox0 = std::min(Wo, std::max<int64_t>(0, (g.pad - j + s - 1) / s));
                const int64_t ox1 = std::max(ox0, std::min(Wo, (g.W + g.pad - j + s - 1) / s));
                for (int64_t oy = 0; oy < Ho; ++oy) {
                    const int64_t iy = oy * s - g.pad + i;
                    fn(((c * g.kh + i) * g.kw + j) * ld + oy * Wo, iy >= 0 && iy < g.H, (c * g.H + iy) * g.W - g.pad + j,
                       ox0, ox1);
                }
            }
}

// dst[k] = src[2 k] for k < m (reading no further than src[2 m - 2]): pairs of vectors split
// into their even and odd lanes.
inline void copy_even(const float* src, float* dst, int64_t m) {
    using namespace simd;
    const int64_t span = 2 * m - 1;
    for (int64_t k = 0; k < m; k += kWidth) {
        const int64_t at = 2 * k;
        const vfloat a = load_partial(src + at, static_cast<int>(std::min<int64_t>(span - at, kWidth)));
        const int64_t rest = span - at - kWidth;
        const vfloat b = rest > 0 ? load_partial(src + at + kWidth, static_cast<int>(std::min<int64_t>(rest, kWidth))) : zero();
        vfloat even, odd;
        unzip(a, b, even, odd);
        store_partial(dst + k, even, static_cast<int>(std::min<int64_t>(kWidth, m - k)));
    }
}
// Stride 2 through the four polyphase planes of a channel (its pixels of one row parity and
// one column parity), rows Wo floats apart inside a zero margin: x[2 u + pr][2 v + pc] at row
// margin + u, column v of plane 2 pr + pc. Column row (c, i, j), x[2 oy + i - pad][2 ox + j -
// pad], is then a plane shifted by whole rows and columns: one run of Ho Wo floats, of which
// the columns that wrapped around a row are not the plane's (zeroed in the column). im2col
// copies each run, col2im adds each run into the planes, then interleaves them into x. (Row
// by row, a 16 -> 16 stride-2 convolution at 28x28 spent 70 % of its forward time making its
// columns, rows of 14 floats.) For planes no wider than Wo, as with a 3x3 kernel and padding 1.
struct Polyphase {
    const ConvGeometry& g;
    int64_t Ho, Wo, margin, plane;
    // Zero rows above and below the pixels, for the runs shifted up or down by up to half the
    // padding (the kernel) in rows and as much again in columns (at least a row each with Wo >= 1).
    explicit Polyphase(const ConvGeometry& geometry)
        : g(geometry), Ho(g.Ho()), Wo(g.Wo()), margin(2 * ((g.pad + 1) / 2) + 1),
          plane((margin + std::max((g.H + 1) / 2, Ho + g.kh / 2) + g.kw / 2 + 2) * Wo) {}
    static bool fits(const ConvGeometry& g) { return g.stride == 2 && (g.W + 1) / 2 <= g.Wo(); }
    // The planes' floats, zeroed (thread-local: one channel's planes at a time).
    float* zeroed_planes() const {
        thread_local std::vector<float> planes;
        grow(planes, 4 * plane);
        simd::fill_zero(planes.data(), 4 * plane);
        return planes.data();
    }
    // Where column row (i, j)'s run starts in the planes: x[2 oy + a][2 ox + b] is at row
    // oy + floor(a / 2), column ox + floor(b / 2) of the plane of parities (a, b) mod 2.
    int64_t start(int64_t i, int64_t j) const {
        const int64_t a = i - g.pad, b = j - g.pad;
        return (2 * (a & 1) + (b & 1)) * plane + (margin + (a - (a & 1)) / 2) * Wo + column_shift(j);
    }
    // Zeroes the columns of column row (i, j)'s run that come from the row before or after.
    void zero_wrapped(int64_t j, float* run) const {
        const int64_t db = column_shift(j), n = std::min(db < 0 ? -db : db, Wo);
        if (n > 0)
            for (int64_t oy = 0; oy < Ho; ++oy) {
                float* row = run + oy * Wo;
                std::fill(row + (db < 0 ? 0 : Wo - n), row + (db < 0 ? n : Wo), 0.0f);
            }
    }
    int64_t column_shift(int64_t j) const {
        const int64_t b = j - g.pad;
        return (b - (b & 1)) / 2;
    }
    // Row r of x's plane pair (row parity r % 2) starts here in each plane.
    int64_t row(int64_t r) const { return (r % 2) * 2 * plane + (margin + r / 2) * Wo; }
};
inline void im2col_polyphase(const float* x, const ConvGeometry& g, float* col, int64_t ld) {
    const Polyphase pp(g);
    float* planes = pp.zeroed_planes();  // each channel overwrites the same pixels
    for (int64_t c = 0; c < g.C; ++c) {
        for (int64_t r = 0; r < g.H; ++r) {  // its even and odd pixels
            const float* src = x + (c * g.H + r) * g.W;
            copy_even(src, planes + pp.row(r), (g.W + 1) / 2);
            if (g.W > 1) copy_even(src + 1, planes + pp.row(r) + pp.plane, g.W / 2);
        }
        for (int64_t i = 0; i < g.kh; ++i)
            for (int64_t j = 0; j < g.kw; ++j) {
                float* run = col + ((c * g.kh + i) * g.kw + j) * ld;
                simd::copy(planes + pp.start(i, j), run, pp.Ho * pp.Wo);
                pp.zero_wrapped(j, run);
            }
    }
}
// x += col2im(col); col's wrapped columns are zeroed.
inline void col2im_polyphase_add(float* col, const ConvGeometry& g, float* x, int64_t ld) {
    using namespace simd;
    const Polyphase pp(g);
    for (int64_t c = 0; c < g.C; ++c) {
        float* planes = pp.zeroed_planes();
        for (int64_t i = 0; i < g.kh; ++i)
            for (int64_t j = 0; j < g.kw; ++j) {
                float* run = col + ((c * g.kh + i) * g.kw + j) * ld;
                pp.zero_wrapped(j, run);
                accumulate(run, planes + pp.start(i, j), pp.Ho * pp.Wo);
            }
        for (int64_t r = 0; r < g.H; ++r) {  // x[2 v] += even[v], x[2 v + 1] += odd[v]
            const float *even = planes + pp.row(r), *odd = even + pp.plane;
            float* dst = x + (c * g.H + r) * g.W;
            for (int64_t v = 0; 2 * v < g.W; v += kWidth) {
                const int lanes = static_cast<int>(std::min<int64_t>(kWidth, pp.Wo - v));
                vfloat lo, hi;
                zip(load_partial(even + v, lanes), load_partial(odd + v, lanes), lo, hi);
                const int64_t left = g.W - 2 * v;
                const int n_lo = static_cast<int>(std::min<int64_t>(kWidth, left));
                store_partial(dst + 2 * v, add(load_partial(dst + 2 * v, n_lo), lo), n_lo);
                if (left > kWidth) {
                    const int n_hi = static_cast<int>(std::min<int64_t>(kWidth, left - kWidth));
                    store_partial(dst + 2 * v + kWidth, add(load_partial(dst + 2 * v + kWidth, n_hi), hi), n_hi);
                }
            }
        }
    }
}

// im2col and col2im_add of the float path: stride 2 through polyphase planes where they fit,
// stride 1 row by row as SIMD runs (the rows of a 7x7 or 28x28 image are too short for a
// library call each), other strides as the template. (Row by row at stride 2, col2im's three
// kernel columns' runs added into the same image row one float apart, and as masked vector
// stores each waited on the one before; 1.14x slower than scalar at 32 -> 32, 14x14.)
inline void im2col_rows(const float* x, const ConvGeometry& g, float* col, int64_t ld) {
    if (Polyphase::fits(g)) {
        im2col_polyphase(x, g, col, ld);
        return;
    }
    if (g.stride > 2) {
        im2col(x, g, col, ld);
        return;
    }
    const int64_t Wo = g.Wo(), s = g.stride;
    for_each_column_row(g, ld, [&](int64_t off, bool inside, int64_t x_off, int64_t ox0, int64_t ox1) {
        float* row = col + off;
        if (!inside) {
            simd::fill_zero(row, Wo);
            return;
        }
        simd::fill_zero(row, ox0);
        if (s == 1)
            simd::copy(x + x_off + ox0, row + ox0, ox1 - ox0);
        else
            copy_even(x + x_off + 2 * ox0, row + ox0, ox1 - ox0);
        simd::fill_zero(row + ox1, Wo - ox1);
    });
}
// (col is scratch: its runs' wrapped columns are zeroed at stride 2.)
inline void col2im_rows_add(float* col, const ConvGeometry& g, float* x, int64_t ld) {
    if (Polyphase::fits(g)) {
        col2im_polyphase_add(col, g, x, ld);
        return;
    }
    if (g.stride != 1) {
        col2im_add(col, g, x, ld);
        return;
    }
    for_each_column_row(g, ld, [&](int64_t off, bool inside, int64_t x_off, int64_t ox0, int64_t ox1) {
        if (inside) simd::accumulate(col + off + ox0, x + x_off + ox0, ox1 - ox0);
    });
}

// The n images from b0 as a segmented [rows, n P] matrix: X(r, b P + p) = x[(b0 + b) rows P + r P + p].
inline View images(const float* x, int64_t b0, int64_t rows, int64_t P, bool trans = false) {
    return View{x + b0 * rows * P, P, trans, P, rows * P};
}

// y = W col(x) + bias + residual (residual [B, O, Ho, Wo] or null): the chunk's residual copied
// into y, then added to by the GEMM.
inline void forward(const float* x, int64_t B, const float* w, const float* bias, const ConvGeometry& g, float* y,
                    const float* residual) {
    const int64_t P = g.Ho() * g.Wo(), K = g.K(), HW = g.H * g.W;
    std::vector<float>& Wp = packed_weight();
    grow(Wp, Engine::packed_a_size(g.O, K));
    Engine::pack_a(View{w, K}, g.O, K, Wp.data());
    const int64_t nb = g.is_pointwise() ? images_per_gemm(P, 1, B) : images_per_gemm(P, K, B), chunks = (B + nb - 1) / nb;
    for_each_chunk(chunks, [&](int64_t c) {
        const int64_t b0 = c * nb, n = std::min(nb, B - b0);
        View cols = images(x, b0, g.C, P);
        if (!g.is_pointwise()) {
            std::vector<float>& buf = conv_detail::columns<float>();
            grow(buf, K * n * P);
            for (int64_t b = 0; b < n; ++b) im2col_rows(x + (b0 + b) * g.C * HW, g, buf.data() + b * P, n * P);
            cols = View{buf.data(), n * P};
        }
        const OutView out{y + b0 * g.O * P, P, P, g.O * P};
        if (residual) simd::copy(residual + b0 * g.O * P, out.data, n * g.O * P);
        Engine::run_packed(g.O, n * P, K, 1.0f, Wp.data(), cols, residual ? 1.0f : 0.0f, out, bias);
    });
}

// dx (+)= the input gradient (added with `add`, else overwritten).
inline void backward_data(int64_t B, const float* w, const ConvGeometry& g, const float* dy, float* dx, bool add) {
    const int64_t P = g.Ho() * g.Wo(), K = g.K(), HW = g.H * g.W;
    std::vector<float>& Wp = packed_weight();
    grow(Wp, Engine::packed_a_size(K, g.O));
    Engine::pack_a(View{w, K, true}, K, g.O, Wp.data());  // W^T [K, O]
    const int64_t nb = g.is_pointwise() ? images_per_gemm(P, 1, B) : images_per_gemm(P, K, B), chunks = (B + nb - 1) / nb;
    for_each_chunk(chunks, [&](int64_t c) {
        const int64_t b0 = c * nb, n = std::min(nb, B - b0);
        if (g.is_pointwise()) {  // dx (+)= W^T dy, in place
            Engine::run_packed(K, n * P, g.O, 1.0f, Wp.data(), images(dy, b0, g.O, P), add ? 1.0f : 0.0f,
                               OutView{dx + b0 * g.C * P, P, P, g.C * P}, nullptr);
            return;
        }
        std::vector<float>& buf = conv_detail::columns<float>();
        grow(buf, K * n * P);
        Engine::run_packed(K, n * P, g.O, 1.0f, Wp.data(), images(dy, b0, g.O, P), 0.0f, OutView{buf.data(), n * P},
                           nullptr);
        if (!add) simd::fill_zero(dx + b0 * g.C * HW, n * g.C * HW);
        for (int64_t b = 0; b < n; ++b) col2im_rows_add(buf.data() + b * P, g, dx + (b0 + b) * g.C * HW, n * P);
    });
}

// Chunks of the weight gradient's sum over images: a function of the batch only.
inline int64_t weight_chunks(int64_t B) { return std::min<int64_t>(B, 8); }

inline void backward_weight(const float* x, int64_t B, const ConvGeometry& g, const float* dy, float* dw) {
    const int64_t P = g.Ho() * g.Wo(), K = g.K(), HW = g.H * g.W, OK = g.O * K;
    const int64_t chunks = weight_chunks(B);
    const int64_t nb = g.is_pointwise() ? images_per_gemm(P, 1, B) : images_per_gemm(P, K, B);
    std::vector<float>& part = partials();
    grow(part, chunks * OK);
    for_each_chunk(chunks, [&](int64_t c) {
        const int64_t first = B * c / chunks, last = B * (c + 1) / chunks;
        float* pc = part.data() + c * OK;
        for (int64_t b0 = first; b0 < last; b0 += nb) {  // partial_c (+)= dy [O, n P] col^T
            const int64_t n = std::min(nb, last - b0);
            View cols = images(x, b0, g.C, P, true);
            if (!g.is_pointwise()) {
                std::vector<float>& buf = conv_detail::columns<float>();
                grow(buf, K * n * P);
                for (int64_t b = 0; b < n; ++b) im2col_rows(x + (b0 + b) * g.C * HW, g, buf.data() + b * P, n * P);
                cols = View{buf.data(), n * P, true};
            }
            Engine::run(g.O, K, n * P, 1.0f, images(dy, b0, g.O, P), cols, b0 == first ? 0.0f : 1.0f, OutView{pc, K});
        }
    });
    // dw += the partials, in chunk order
    parallel_for(0, OK, kElementwiseGrain, [&](int64_t i0, int64_t i1) {
        for (int64_t c = 0; c < chunks; ++c) axpy(i1 - i0, 1.0f, part.data() + c * OK + i0, dw + i0);
    });
}

// 3x3, stride 1, padding 1 with enough input channels for its GEMMs' sums: Winograd
// (winograd.hpp), whatever the output channels. The U-Net's last convolution, 16 -> 1 at
// 28x28, took 0.39 / 0.15 / 0.31 of im2col's forward / input-gradient / weight-gradient time
// there; its first, 1 -> 16, is faster on im2col (AMD EPYC).
inline bool use_winograd(const ConvGeometry& g) {
    return g.kh == 3 && g.kw == 3 && g.stride == 1 && g.pad == 1 && g.C >= 16;
}
}  // namespace conv_detail

// y[b] = W * x[b] + bias + residual[b]; x [B, C, H, W], w [O, K], bias [O] or null, y and
// residual [B, O, Ho, Wo] (a residual connection added as y is written; null: none).
// x: a pointer, or images made on demand (ConvInput; made whole where the path is not Winograd's).
template <class T>
void conv2d_forward(const ConvInput<conv_detail::NonDeduced<T>>& x, int64_t B, const T* w, const T* bias, const ConvGeometry& g,
                    T* y, const T* residual = nullptr) {
    std::vector<T> made;  // x made whole, if it is made and must be
    if constexpr (use_simd<T>()) {
        if (B <= 0 || g.O <= 0) return;
        if (conv_detail::use_winograd(g))
            winograd::forward(x, B, g.C, g.O, g.H, g.W, w, bias, residual, y);
        else
            conv_detail::forward(x.images(0, B, g.C * g.H * g.W, made), B, w, bias, g, y, residual);
        return;
    }
    ref::conv2d_forward(x.images(0, B, g.C * g.H * g.W, made), B, w, bias, g, y, residual);
}

// Accumulates the gradients of conv2d_forward: dx += W^T dy (folded), dw += dy col^T,
// db += sum of dy over batch and positions. Any of dx, dw, db may be null. With add_dx
// false, dx is overwritten (it may hold anything before). dx is complete before x is read:
// a made x (ConvInput) may use it.
template <class T>
void conv2d_backward(const ConvInput<conv_detail::NonDeduced<T>>& x, int64_t B, const T* w, const ConvGeometry& g, const T* dy,
                     T* dx, T* dw, T* db, bool add_dx = true) {
    std::vector<T> made;  // x (read for dw only) made whole, if it is made and must be
    const auto whole_x = [&] { return x.images(0, B, g.C * g.H * g.W, made); };
    if constexpr (use_simd<T>()) {
        if (B <= 0 || g.O <= 0) {  // no output: dx = 0
            if (dx && !add_dx) std::fill(dx, dx + std::max<int64_t>(B, 0) * g.C * g.H * g.W, T(0));
            return;
        }
        const int64_t P = g.Ho() * g.Wo();
        if (db) {  // per image and channel sums, then over images in order
            std::vector<T>& partial = conv_detail::partials();
            grow(partial, B * g.O);
            sum_axis(dy, B * g.O, P, int64_t(1), partial.data());
            for (int64_t b = 0; b < B; ++b)
                for (int64_t o = 0; o < g.O; ++o) db[o] += partial[static_cast<size_t>(b * g.O + o)];
        }
        if (conv_detail::use_winograd(g)) {
            if (dx) winograd::backward_data(B, g.C, g.O, g.H, g.W, w, dy, dx, add_dx);
            if (dw) winograd::backward_weight(x, B, g.C, g.O, g.H, g.W, dy, dw);
            return;
        }
        if (dx) conv_detail::backward_data(B, w, g, dy, dx, add_dx);
        if (dw) conv_detail::backward_weight(whole_x(), B, g, dy, dw);
        return;
    }
    ref::conv2d_backward<T>(nullptr, B, w, g, dy, dx, nullptr, db, add_dx);
    if (dw) ref::conv2d_backward<T>(whole_x(), B, w, g, dy, nullptr, dw, nullptr);
}

}  // namespace kernels
DDPMKIT_END_NAMESPACE
