// ddpmkit — scalar reference kernels: the oracle the float kernels are tested against (on
// every architecture, the scalar one included), the path for double, and the code that
// handles the leftovers of the vector loops. Plain loops, written for clarity; kept forever.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/shape.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace kernels {

enum class BinaryOp { Add, Sub, Mul, Div };
enum class UnaryOp { Exp, Log, Sqrt, Tanh, Sigmoid, Silu, Relu };

namespace ref {

template <class T>
T apply(BinaryOp op, T a, T b) {
    switch (op) {
        case BinaryOp::Add: return a + b;
        case BinaryOp::Sub: return a - b;
        case BinaryOp::Mul: return a * b;
        case BinaryOp::Div: return a / b;
    }
    return T(0);
}

template <class T>
T apply(UnaryOp op, T x) {
    switch (op) {
        case UnaryOp::Exp: return std::exp(x);
        case UnaryOp::Log: return std::log(x);
        case UnaryOp::Sqrt: return std::sqrt(x);
        case UnaryOp::Tanh: return std::tanh(x);
        case UnaryOp::Sigmoid: return T(1) / (T(1) + std::exp(-x));
        case UnaryOp::Silu: return x / (T(1) + std::exp(-x));
        case UnaryOp::Relu: return x > T(0) ? x : T(0);  // NaN gives 0, as in PyTorch's relu
    }
    return T(0);
}

// f'(x), from the input x or the output y = f(x), whichever is cheaper.
template <class T>
T derivative(UnaryOp op, T x, T y) {
    switch (op) {
        case UnaryOp::Exp: return y;                  // (e^x)' = e^x
        case UnaryOp::Log: return T(1) / x;           // (log x)' = 1/x
        case UnaryOp::Sqrt: return T(0.5) / y;        // (sqrt x)' = 1 / (2 sqrt x)
        case UnaryOp::Tanh: return T(1) - y * y;      // tanh' = 1 - tanh^2
        case UnaryOp::Sigmoid: return y * (T(1) - y); // s' = s (1 - s)
        case UnaryOp::Silu: {                          // (x s)' = s (1 + x (1 - s))
            const T s = T(1) / (T(1) + std::exp(-x));
            return s * (T(1) + x * (T(1) - s));
        }
        case UnaryOp::Relu: return x > T(0) ? T(1) : T(0);
    }
    return T(0);
}

// out = a op b, numpy broadcasting of a (shape sa) and b (shape sb) to out (shape so).
template <class T>
void broadcast_binary(BinaryOp op, const T* a, const Shape& sa, const T* b, const Shape& sb, T* out, const Shape& so) {
    const int r = so.rank();
    for (int64_t i = 0; i < so.numel(); ++i) {
        int64_t rest = i, ia = 0, ib = 0, stride_a = 1, stride_b = 1;
        for (int d = r - 1; d >= 0; --d) {
            const int64_t idx = rest % so[d];
            rest /= so[d];
            const int da = d - (r - sa.rank()), db = d - (r - sb.rank());
            if (da >= 0) {
                if (sa[da] != 1) ia += idx * stride_a;
                stride_a *= sa[da];
            }
            if (db >= 0) {
                if (sb[db] != 1) ib += idx * stride_b;
                stride_b *= sb[db];
            }
        }
        out[i] = apply(op, a[ia], b[ib]);
    }
}

template <class T>
void unary(UnaryOp op, const T* x, T* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = apply(op, x[i]);
}

// dx += dy * f'(x), with y = f(x).
template <class T>
void unary_backward(UnaryOp op, const T* x, const T* y, const T* dy, T* dx, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * derivative(op, x[i], y[i]);
}

// y += alpha x
template <class T>
void axpy(int64_t n, T alpha, const T* x, T* y) {
    for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

// x viewed as [outer, n, inner]: out[o, i] = sum over k of x[o, k, i].
template <class T>
void sum_axis(const T* x, int64_t outer, int64_t n, int64_t inner, T* out) {
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
            T s = 0;
            for (int64_t k = 0; k < n; ++k) s += x[(o * n + k) * inner + i];
            out[o * inner + i] = s;
        }
}

// x viewed as [outer, n, inner]: out[o, i] = max over k of x[o, k, i] (n > 0).
template <class T>
void max_axis(const T* x, int64_t outer, int64_t n, int64_t inner, T* out) {
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
            T m = x[o * n * inner + i];
            for (int64_t k = 1; k < n; ++k) m = std::max(m, x[(o * n + k) * inner + i]);
            out[o * inner + i] = m;
        }
}

// Softmax of each row of x [rows, n]: y_j = e^(x_j - max) / sum_k e^(x_k - max).
template <class T>
void softmax(const T* x, int64_t rows, int64_t n, T* y) {
    for (int64_t r = 0; r < rows; ++r) {
        const T* xr = x + r * n;
        T* yr = y + r * n;
        const T m = *std::max_element(xr, xr + n);
        T s = 0;
        for (int64_t j = 0; j < n; ++j) s += (yr[j] = std::exp(xr[j] - m));
        for (int64_t j = 0; j < n; ++j) yr[j] /= s;
    }
}

// dx += y * (dy - sum_j dy_j y_j), row by row (the softmax Jacobian diag(y) - y y^T).
template <class T>
void softmax_backward(const T* y, const T* dy, int64_t rows, int64_t n, T* dx) {
    for (int64_t r = 0; r < rows; ++r) {
        const T *yr = y + r * n, *dyr = dy + r * n;
        T dot = 0;
        for (int64_t j = 0; j < n; ++j) dot += dyr[j] * yr[j];
        for (int64_t j = 0; j < n; ++j) dx[r * n + j] += yr[j] * (dyr[j] - dot);
    }
}

// y = x with its axes permuted: y's axis i is x's axis perm[i]; one element at a time.
template <class T>
void permute(const T* x, const Shape& shape, const int* perm, T* y) {
    const int r = shape.rank();
    const Shape strides = shape.strides();
    for (int64_t o = 0, n = shape.numel(); o < n; ++o) {
        int64_t rest = o, off = 0;
        for (int i = r - 1; i >= 0; --i) {  // o's index along y's axis i
            off += rest % shape[perm[i]] * strides[perm[i]];
            rest /= shape[perm[i]];
        }
        y[o] = x[off];
    }
}

// Nearest-neighbour upsampling by 2 of `planes` H x W planes: y[p, i, j] = x[p, i / 2, j / 2].
template <class T>
void upsample_nearest2x(const T* x, int64_t planes, int64_t H, int64_t W, T* y) {
    for (int64_t p = 0; p < planes; ++p)
        for (int64_t i = 0; i < 2 * H; ++i)
            for (int64_t j = 0; j < 2 * W; ++j) y[(p * 2 * H + i) * 2 * W + j] = x[(p * H + i / 2) * W + j / 2];
}
// dx[p, i, j] (+)= the sum of dy's 2 x 2 block at (2i, 2j); with add false, dx is overwritten.
template <class T>
void upsample_nearest2x_backward(const T* dy, int64_t planes, int64_t H, int64_t W, T* dx, bool add) {
    for (int64_t p = 0; p < planes; ++p)
        for (int64_t i = 0; i < H; ++i)
            for (int64_t j = 0; j < W; ++j) {
                const T* d = dy + (p * 2 * H + 2 * i) * 2 * W + 2 * j;
                T& out = dx[(p * H + i) * W + j];
                out = (add ? out : T(0)) + (d[0] + d[1] + d[2 * W] + d[2 * W + 1]);
            }
}

// C = alpha op(A) op(B) + beta C, row-major; op(A) is M x K, op(B) is K x N.
// op(X) = X^T when trans_x. With beta == 0, C is not read (it may hold NaN).
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
    for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
            T s = 0;
            for (int64_t k = 0; k < K; ++k)
                s += (trans_a ? A[k * lda + i] : A[i * lda + k]) * (trans_b ? B[j * ldb + k] : B[k * ldb + j]);
            C[i * ldc + j] = alpha * s + (beta == T(0) ? T(0) : beta * C[i * ldc + j]);
        }
}

}  // namespace ref
}  // namespace kernels
DDPMKIT_END_NAMESPACE
