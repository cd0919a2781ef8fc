// ddpmkit — 2-D convolution (cross-correlation, as in PyTorch), NCHW, weight [O, C, kh, kw].
//
// Each image is lowered to columns (im2col: [C kh kw, Ho Wo]) and multiplied by the
// weight as a [O, C kh kw] matrix on the GEMM kernel; a 1x1 convolution with stride 1
// and no padding uses the image itself as its columns. Backward: dW += dY col^T and
// dcol = W^T dY, folded back into dX (col2im). Shape letters: B batch, C in channels,
// O out channels, H W in size, Ho Wo out size, K = C kh kw.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/parallel.hpp"
#include "ddpmkit/kernels/gemm.hpp"
#include "ddpmkit/kernels/reduce.hpp"

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

// col[(c kh + i) kw + j, oy Wo + ox] = x[c, oy s - p + i, ox s - p + j], 0 outside.
template <class T>
void im2col(const T* x, const ConvGeometry& g, T* col) {
    const int64_t Ho = g.Ho(), Wo = g.Wo();
    for (int64_t c = 0; c < g.C; ++c)
        for (int64_t i = 0; i < g.kh; ++i)
            for (int64_t j = 0; j < g.kw; ++j) {
                T* dst = col + ((c * g.kh + i) * g.kw + j) * Ho * Wo;
                for (int64_t oy = 0; oy < Ho; ++oy) {
                    const int64_t iy = oy * g.stride - g.pad + i;
                    T* row = dst + oy * Wo;
                    if (iy < 0 || iy >= g.H) {
                        std::fill(row, row + Wo, T(0));
                        continue;
                    }
                    const T* src = x + (c * g.H + iy) * g.W;
                    for (int64_t ox = 0; ox < Wo; ++ox) {
                        const int64_t ix = ox * g.stride - g.pad + j;
                        row[ox] = (ix >= 0 && ix < g.W) ? src[ix] : T(0);
                    }
                }
            }
}

// x += the columns folded back onto the image (the adjoint of im2col).
template <class T>
void col2im_add(const T* col, const ConvGeometry& g, T* x) {
    const int64_t Ho = g.Ho(), Wo = g.Wo();
    for (int64_t c = 0; c < g.C; ++c)
        for (int64_t i = 0; i < g.kh; ++i)
            for (int64_t j = 0; j < g.kw; ++j) {
                const T* src = col + ((c * g.kh + i) * g.kw + j) * Ho * Wo;
                for (int64_t oy = 0; oy < Ho; ++oy) {
                    const int64_t iy = oy * g.stride - g.pad + i;
                    if (iy < 0 || iy >= g.H) continue;
                    T* dst = x + (c * g.H + iy) * g.W;
                    for (int64_t ox = 0; ox < Wo; ++ox) {
                        const int64_t ix = ox * g.stride - g.pad + j;
                        if (ix >= 0 && ix < g.W) dst[ix] += src[oy * Wo + ox];
                    }
                }
            }
}

namespace conv_detail {
template <class T>
std::vector<T>& columns() {
    thread_local std::vector<T> buffer;
    return buffer;
}
// Runs fn(b) for every image: across threads when there are enough images, else in
// order on this thread (and the GEMMs inside use the threads). Either way each image's
// result is computed the same way, so the output does not depend on the thread count.
template <class Fn>
void for_each_image(int64_t B, const Fn& fn) {
    if (B >= num_threads())
        parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
            for (int64_t b = b0; b < b1; ++b) fn(b);
        });
    else
        for (int64_t b = 0; b < B; ++b) fn(b);
}
}  // namespace conv_detail

// y[b] = W * x[b] + bias; x [B, C, H, W], w [O, K], bias [O] or null, y [B, O, Ho, Wo].
template <class T>
void conv2d_forward(const T* x, int64_t B, const T* w, const T* bias, const ConvGeometry& g, T* y) {
    const int64_t P = g.Ho() * g.Wo(), K = g.K();
    conv_detail::for_each_image(B, [&](int64_t b) {
        const T* xb = x + b * g.C * g.H * g.W;
        T* yb = y + b * g.O * P;
        for (int64_t o = 0; o < g.O; ++o) std::fill(yb + o * P, yb + (o + 1) * P, bias ? bias[o] : T(0));
        const T* col = xb;
        if (!g.is_pointwise()) {
            std::vector<T>& buf = conv_detail::columns<T>();
            buf.resize(static_cast<size_t>(K * P));
            im2col(xb, g, buf.data());
            col = buf.data();
        }
        gemm<T>(false, false, g.O, P, K, T(1), w, K, col, P, T(1), yb, P);
    });
}

// Accumulates the gradients of conv2d_forward: dx += W^T dy (folded), dw += dy col^T,
// db += sum of dy over batch and positions. Any of dx, dw, db may be null.
template <class T>
void conv2d_backward(const T* x, int64_t B, const T* w, const ConvGeometry& g, const T* dy, T* dx, T* dw, T* db) {
    const int64_t P = g.Ho() * g.Wo(), K = g.K();
    if (db) {  // per image and channel sums, then over images in order
        std::vector<T> partial(static_cast<size_t>(B * g.O));
        sum_axis(dy, B * g.O, P, int64_t(1), partial.data());
        for (int64_t b = 0; b < B; ++b)
            for (int64_t o = 0; o < g.O; ++o) db[o] += partial[static_cast<size_t>(b * g.O + o)];
    }
    if (dw)  // images in order, each GEMM on all threads: the sum's order is fixed
        for (int64_t b = 0; b < B; ++b) {
            const T* xb = x + b * g.C * g.H * g.W;
            const T* col = xb;
            if (!g.is_pointwise()) {
                std::vector<T>& buf = conv_detail::columns<T>();
                buf.resize(static_cast<size_t>(K * P));
                im2col(xb, g, buf.data());
                col = buf.data();
            }
            gemm<T>(false, true, g.O, K, P, T(1), dy + b * g.O * P, P, col, P, T(1), dw, K);
        }
    if (dx)
        conv_detail::for_each_image(B, [&](int64_t b) {
            T* dxb = dx + b * g.C * g.H * g.W;
            const T* dyb = dy + b * g.O * P;
            if (g.is_pointwise()) {
                gemm<T>(true, false, K, P, g.O, T(1), w, K, dyb, P, T(1), dxb, P);
                return;
            }
            std::vector<T>& buf = conv_detail::columns<T>();
            buf.resize(static_cast<size_t>(K * P));
            gemm<T>(true, false, K, P, g.O, T(1), w, K, dyb, P, T(0), buf.data(), P);
            col2im_add(buf.data(), g, dxb);
        });
}

}  // namespace kernels
DDPMKIT_END_NAMESPACE
