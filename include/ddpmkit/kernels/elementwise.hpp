// ddpmkit — elementwise kernels: binary arithmetic with broadcasting, unary math and its
// derivative, axpy. Float runs on SIMD vectors with the leftovers on the reference;
// double runs the reference.
#pragma once

#include <cfloat>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/parallel.hpp"
#include "ddpmkit/core/shape.hpp"
#include "ddpmkit/kernels/reference.hpp"
#include "ddpmkit/kernels/simd.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace kernels {

// Elements per parallel task: below this, threads cost more than they save.
constexpr int64_t kElementwiseGrain = 1 << 14;

// Grows a scratch vector reused from call to call to at least n elements, and never shrinks
// it: growing fills the new elements with zeros, a serial memset that a buffer shared by
// layers of different sizes would otherwise pay on most calls.
template <class T>
void grow(std::vector<T>& v, int64_t n) {
    if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
}

// Float runs the kernels over the SIMD primitives (a vector of one float on the scalar
// architecture); double runs the reference.
template <class T>
constexpr bool use_simd() {
    return std::is_same<T, float>::value;
}

namespace detail {
template <class VOp>
void binary_run_simd(const float* a, bool a_vec, const float* b, bool b_vec, float* out, int64_t n, VOp vop) {
    constexpr int W = simd::kWidth;
    int64_t i = 0;
    if (a_vec && b_vec) {
        for (; i + W <= n; i += W) simd::store(out + i, vop(simd::load(a + i), simd::load(b + i)));
    } else if (a_vec) {
        const simd::vfloat vb = simd::set1(*b);
        for (; i + W <= n; i += W) simd::store(out + i, vop(simd::load(a + i), vb));
    } else if (b_vec) {
        const simd::vfloat va = simd::set1(*a);
        for (; i + W <= n; i += W) simd::store(out + i, vop(va, simd::load(b + i)));
    }
}

// out[i] = a[i * a_vec] op b[i * b_vec], i < n: a contiguous run of a broadcast.
template <class T>
void binary_run(BinaryOp op, const T* a, bool a_vec, const T* b, bool b_vec, T* out, int64_t n) {
    int64_t done = 0;
    if constexpr (use_simd<T>()) {
        switch (op) {
            case BinaryOp::Add: binary_run_simd(a, a_vec, b, b_vec, out, n, [](simd::vfloat u, simd::vfloat v) { return simd::add(u, v); }); break;
            case BinaryOp::Sub: binary_run_simd(a, a_vec, b, b_vec, out, n, [](simd::vfloat u, simd::vfloat v) { return simd::sub(u, v); }); break;
            case BinaryOp::Mul: binary_run_simd(a, a_vec, b, b_vec, out, n, [](simd::vfloat u, simd::vfloat v) { return simd::mul(u, v); }); break;
            case BinaryOp::Div: binary_run_simd(a, a_vec, b, b_vec, out, n, [](simd::vfloat u, simd::vfloat v) { return simd::div(u, v); }); break;
        }
        done = (a_vec || b_vec) ? n / simd::kWidth * simd::kWidth : 0;
    }
    for (int64_t i = done; i < n; ++i) out[i] = ref::apply(op, a[a_vec ? i : 0], b[b_vec ? i : 0]);  // leftovers
}
}  // namespace detail

// out = a op b with numpy broadcasting; so must be broadcast_shapes(sa, sb).
// The shapes are aligned on the right and adjacent axes merged while both operands are
// either contiguous or broadcast along them, so the inner loop is a long SIMD run.
template <class T>
void broadcast_binary(BinaryOp op, const T* a, const Shape& sa, const T* b, const Shape& sb, T* out, const Shape& so) {
    const int r = so.rank();
    int64_t size[Shape::kMaxRank], step_a[Shape::kMaxRank], step_b[Shape::kMaxRank];
    int dims = 0;
    int64_t stride_a = 1, stride_b = 1;
    for (int d = r - 1; d >= 0; --d) {  // right to left, merging into the innermost axis
        const int da = d - (r - sa.rank()), db = d - (r - sb.rank());
        const int64_t ea = da >= 0 ? sa[da] : 1, eb = db >= 0 ? sb[db] : 1;
        const int64_t ua = ea == 1 ? 0 : stride_a, ub = eb == 1 ? 0 : stride_b;
        if (so[d] == 1) continue;
        if (dims > 0 && ua == step_a[dims - 1] * size[dims - 1] && ub == step_b[dims - 1] * size[dims - 1]) {
            size[dims - 1] *= so[d];  // mergeable: same layout as the axis to its right
        } else {
            size[dims] = so[d];
            step_a[dims] = ua;
            step_b[dims] = ub;
            ++dims;
        }
        stride_a *= ea;
        stride_b *= eb;
    }
    if (dims == 0) {  // every extent is 1
        if (so.numel() == 1) out[0] = ref::apply(op, a[0], b[0]);
        return;
    }
    // size[0] is the innermost run; a run is contiguous (step 1) or broadcast (step 0).
    const int64_t run = size[0], rows = so.numel() / run;
    const int64_t chunk = std::min(run, kElementwiseGrain), chunks = (run + chunk - 1) / chunk;
    parallel_for(0, rows * chunks, std::max<int64_t>(1, kElementwiseGrain / chunk), [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
            const int64_t row = t / chunks, begin = (t % chunks) * chunk, len = std::min(chunk, run - begin);
            int64_t rest = row, off_a = 0, off_b = 0;
            for (int d = 1; d < dims; ++d) {
                const int64_t idx = rest % size[d];
                rest /= size[d];
                off_a += idx * step_a[d];
                off_b += idx * step_b[d];
            }
            off_a += begin * step_a[0];
            off_b += begin * step_b[0];
            detail::binary_run(op, a + off_a, step_a[0] != 0, b + off_b, step_b[0] != 0, out + row * run + begin, len);
        }
    });
}

namespace detail {
inline simd::vfloat apply(UnaryOp op, simd::vfloat x) {
    switch (op) {
        case UnaryOp::Exp: return simd::exp(x);
        case UnaryOp::Log: return simd::log(x);
        case UnaryOp::Sqrt: return simd::sqrt(x);
        case UnaryOp::Tanh: return simd::tanh(x);
        case UnaryOp::Sigmoid: return simd::sigmoid(x);
        case UnaryOp::Silu: return simd::silu(x);
        case UnaryOp::Relu: return simd::select_less(simd::zero(), x, x, simd::zero());  // NaN -> 0
    }
    return x;
}
// The vector log is valid for normal, finite, positive inputs only.
inline bool log_domain(simd::vfloat x) {
    const simd::vfloat outside = simd::max(simd::select_less(x, simd::set1(FLT_MIN), simd::set1(1.0f), simd::zero()),
                                           simd::select_less(x, simd::set1(FLT_MAX), simd::zero(), simd::set1(1.0f)));
    return simd::reduce_max(outside) == 0.0f;
}
}  // namespace detail

// y = f(x), elementwise; y may alias x.
template <class T>
void unary(UnaryOp op, const T* x, T* y, int64_t n) {
    parallel_for(0, n, kElementwiseGrain, [&](int64_t b, int64_t e) {
        int64_t i = b;
        if constexpr (use_simd<T>()) {
            constexpr int W = simd::kWidth;
            for (; i + W <= e; i += W) {
                const simd::vfloat v = simd::load(x + i);
                if (op == UnaryOp::Log && !detail::log_domain(v))
                    ref::unary(op, x + i, y + i, W);  // zeros, negatives, inf and NaN
                else
                    simd::store(y + i, detail::apply(op, v));
            }
        }
        ref::unary(op, x + i, y + i, e - i);  // leftovers
    });
}

// dx += dy * f'(x), with y = f(x) from the forward pass.
template <class T>
void unary_backward(UnaryOp op, const T* x, const T* y, const T* dy, T* dx, int64_t n) {
    parallel_for(0, n, kElementwiseGrain, [&](int64_t b, int64_t e) {
        int64_t i = b;
        if constexpr (use_simd<T>()) {
            using namespace simd;
            constexpr int W = kWidth;
            const vfloat one = set1(1.0f);
            for (; i + W <= e; i += W) {
                const vfloat xv = load(x + i), yv = load(y + i);
                vfloat d = zero();
                switch (op) {
                    case UnaryOp::Exp: d = yv; break;
                    case UnaryOp::Log: d = div(one, xv); break;
                    case UnaryOp::Sqrt: d = div(set1(0.5f), yv); break;
                    case UnaryOp::Tanh: d = sub(one, mul(yv, yv)); break;
                    case UnaryOp::Sigmoid: d = mul(yv, sub(one, yv)); break;
                    case UnaryOp::Silu: {
                        const vfloat s = sigmoid(xv);
                        d = mul(s, fmadd(xv, sub(one, s), one));
                        break;
                    }
                    case UnaryOp::Relu: d = select_less(zero(), xv, one, zero()); break;
                }
                store(dx + i, fmadd(load(dy + i), d, load(dx + i)));
            }
        }
        ref::unary_backward(op, x + i, y + i, dy + i, dx + i, e - i);  // leftovers
    });
}

// y += alpha x
template <class T>
void axpy(int64_t n, T alpha, const T* x, T* y) {
    parallel_for(0, n, kElementwiseGrain, [&](int64_t b, int64_t e) {
        int64_t i = b;
        if constexpr (use_simd<T>()) {
            const simd::vfloat va = simd::set1(alpha);
            for (; i + simd::kWidth <= e; i += simd::kWidth)
                simd::store(y + i, simd::fmadd(va, simd::load(x + i), simd::load(y + i)));
        }
        ref::axpy(e - i, alpha, x + i, y + i);  // leftovers
    });
}

}  // namespace kernels
DDPMKIT_END_NAMESPACE
