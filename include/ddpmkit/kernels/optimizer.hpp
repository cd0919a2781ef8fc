// ddpmkit — optimizer updates on raw arrays. Adam (Kingma & Ba 2015, Algorithm 1) in the
// order of operations of torch.optim.Adam, so one step matches PyTorch to float rounding.
#pragma once

#include <cmath>
#include <cstdint>

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/parallel.hpp"
#include "ddpmkit/kernels/elementwise.hpp"
#include "ddpmkit/kernels/simd.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace kernels {

struct AdamStep {
    double lr, beta1, beta2, eps;
    double weight_decay;  // L2 (added to the gradient), or decoupled (AdamW: p *= 1 - lr wd)
    bool decoupled;
    int64_t step;  // 1 for the first update
};

namespace ref {
// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p -= lr / (1 - b1^t) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
template <class T>
void adam_update(int64_t n, const AdamStep& s, T* p, const T* g, T* m, T* v) {
    const T b1 = static_cast<T>(s.beta1), b2 = static_cast<T>(s.beta2), eps = static_cast<T>(s.eps);
    const T step_size = static_cast<T>(s.lr / (1.0 - std::pow(s.beta1, double(s.step))));
    const T sqrt_bc2 = static_cast<T>(std::sqrt(1.0 - std::pow(s.beta2, double(s.step))));
    const T l2 = s.decoupled ? T(0) : static_cast<T>(s.weight_decay);
    const T shrink = static_cast<T>(1.0 - s.lr * s.weight_decay);
    for (int64_t i = 0; i < n; ++i) {
        if (s.decoupled) p[i] *= shrink;
        const T gi = g[i] + l2 * p[i];
        m[i] = m[i] * b1 + gi * (T(1) - b1);
        v[i] = v[i] * b2 + gi * gi * (T(1) - b2);
        p[i] -= step_size * (m[i] / (std::sqrt(v[i]) / sqrt_bc2 + eps));
    }
}
}  // namespace ref

template <class T>
void adam_update(int64_t n, const AdamStep& s, T* p, const T* g, T* m, T* v) {
    parallel_for(0, n, kElementwiseGrain, [&](int64_t b, int64_t e) {
        int64_t i = b;
        if constexpr (use_simd<T>()) {
            using namespace simd;
            const vfloat b1 = set1(float(s.beta1)), c1 = set1(1.0f - float(s.beta1));
            const vfloat b2 = set1(float(s.beta2)), c2 = set1(1.0f - float(s.beta2)), eps = set1(float(s.eps));
            const vfloat step_size = set1(float(s.lr / (1.0 - std::pow(s.beta1, double(s.step)))));
            const vfloat sqrt_bc2 = set1(float(std::sqrt(1.0 - std::pow(s.beta2, double(s.step)))));
            const vfloat l2 = set1(s.decoupled ? 0.0f : float(s.weight_decay));
            const vfloat shrink = set1(s.decoupled ? float(1.0 - s.lr * s.weight_decay) : 1.0f);
            for (; i + kWidth <= e; i += kWidth) {
                const vfloat pi = mul(load(p + i), shrink);
                const vfloat gi = fmadd(l2, pi, load(g + i));
                const vfloat mi = add(mul(load(m + i), b1), mul(gi, c1));
                const vfloat vi = add(mul(load(v + i), b2), mul(mul(gi, gi), c2));
                store(m + i, mi);
                store(v + i, vi);
                store(p + i, sub(pi, mul(step_size, div(mi, add(div(sqrt(vi), sqrt_bc2), eps)))));
            }
        }
        ref::adam_update(e - i, s, p + i, g + i, m + i, v + i);  // leftovers
    });
}

}  // namespace kernels
DDPMKIT_END_NAMESPACE
