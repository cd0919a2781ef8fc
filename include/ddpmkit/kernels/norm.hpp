// ddpmkit — group normalization (Wu & He 2018) over x [B, C, HW] with G groups:
// y = (x - mu_bg) rstd_bg gamma_c + beta_c, where mu and rstd = 1 / sqrt(var + eps) are
// the mean and biased variance over the C/G channels and HW positions of group g; and the
// same followed by SiLU, y = z sigmoid(z) (Elfwing et al. 2018), fused: the U-Net always
// applies SiLU after its GroupNorms, and the fused backward recomputes z from x rather
// than storing it. The SiLU variant can normalize x + shift[b, c] (a value per image and
// channel, added at every position) without forming the sum: the U-Net adds its time
// embedding right before a GroupNorm.
//
// Each (image, group) is one task, two passes (mean, then the centred variance). The float
// path sums SIMD vectors over one channel's HW positions in float and the channels in
// double; ref:: sums in T throughout (double in the tests: the oracle). Sums over images
// (dgamma, dbeta) are combined in image order: results do not depend on the thread count.
// Shape letters: B batch, C channels, HW positions, G groups, Cg = C / G, n = Cg HW.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/parallel.hpp"
#include "ddpmkit/kernels/elementwise.hpp"
#include "ddpmkit/kernels/simd.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace kernels {

// dbeta[c] += the sum over images, in image order, of sums[b, 0, c], dgamma[c] += that of
// sums[b, 1, c]: the per-image channel sums a GroupNorm backward leaves (either may be null).
template <class T>
void group_norm_param_grads(const double* sums, int64_t B, int64_t C, T* dgamma, T* dbeta) {
    for (int64_t c = 0; c < C; ++c) {
        double s = 0, sx = 0;
        for (int64_t b = 0; b < B; ++b) {
            s += sums[b * 2 * C + c];
            sx += sums[b * 2 * C + C + c];
        }
        if (dbeta) dbeta[c] += static_cast<T>(s);
        if (dgamma) dgamma[c] += static_cast<T>(sx);
    }
}

namespace ref {

// Also saves mean and rstd [B, G] for the backward pass; with known_stats, uses them instead.
template <class T>
void group_norm_forward(const T* x, int64_t B, int64_t C, int64_t HW, int64_t G, const T* gamma, const T* beta, double eps,
                        T* y, T* mean, T* rstd, bool known_stats = false) {
    const int64_t Cg = C / G, n = Cg * HW;
    for (int64_t t = 0; t < B * G; ++t) {
        const T* xg = x + t * n;
        if (!known_stats) {
            double s = 0;
            for (int64_t i = 0; i < n; ++i) s += xg[i];
            const double m = s / static_cast<double>(n);
            double ss = 0;
            for (int64_t i = 0; i < n; ++i) ss += (xg[i] - m) * (xg[i] - m);
            mean[t] = static_cast<T>(m);
            rstd[t] = static_cast<T>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
        }
        const double mu = mean[t], r = rstd[t];
        const int64_t c0 = (t % G) * Cg;
        T* yg = y + t * n;
        for (int64_t c = 0; c < Cg; ++c)
            for (int64_t p = c * HW; p < (c + 1) * HW; ++p) yg[p] = static_cast<T>((xg[p] - mu) * r * gamma[c0 + c] + beta[c0 + c]);
    }
}

// dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) with dxhat = dy gamma,
// dgamma_c += sum dy xhat, dbeta_c += sum dy. Any of dx, dgamma, dbeta may be null.
template <class T>
void group_norm_backward(const T* x, const T* dy, int64_t B, int64_t C, int64_t HW, int64_t G, const T* gamma, const T* mean,
                         const T* rstd, T* dx, T* dgamma, T* dbeta, bool add_dx = true) {
    const int64_t Cg = C / G, n = Cg * HW;
    if (dx && !add_dx) std::fill(dx, dx + B * C * HW, T(0));
    for (int64_t c = 0; c < C && (dgamma || dbeta); ++c)
        for (int64_t b = 0; b < B; ++b) {
            const int64_t t = b * G + c / Cg;
            double s = 0, sx = 0;
            for (int64_t p = 0; p < HW; ++p) {
                const T v = dy[(b * C + c) * HW + p];
                s += v;
                sx += v * (x[(b * C + c) * HW + p] - mean[t]) * rstd[t];
            }
            if (dbeta) dbeta[c] += static_cast<T>(s);
            if (dgamma) dgamma[c] += static_cast<T>(sx);
        }
    if (!dx) return;
    for (int64_t t = 0; t < B * G; ++t) {
        const T *xg = x + t * n, *dyg = dy + t * n;
        const double mu = mean[t], r = rstd[t];
        const int64_t c0 = (t % G) * Cg;
        double a1 = 0, a2 = 0;  // means of dxhat and dxhat xhat over the group
        for (int64_t i = 0; i < n; ++i) {
            const double g = gamma[c0 + i / HW];
            a1 += dyg[i] * g;
            a2 += dyg[i] * g * (xg[i] - mu) * r;
        }
        a1 /= static_cast<double>(n);
        a2 /= static_cast<double>(n);
        for (int64_t i = 0; i < n; ++i) {
            const double xhat = (xg[i] - mu) * r;
            dx[t * n + i] += static_cast<T>(r * (dyg[i] * gamma[c0 + i / HW] - a1 - xhat * a2));
        }
    }
}

// x + shift[b, c] at every position of x [B, C, HW].
template <class T>
std::vector<T> shifted(const T* x, const T* shift, int64_t BC, int64_t HW) {
    std::vector<T> xs(x, x + BC * HW);
    for (int64_t i = 0; i < BC * HW; ++i) xs[static_cast<size_t>(i)] += shift[i / HW];
    return xs;
}

// y = SiLU(GroupNorm(x + shift)) (shift [B, C] or null); saves mean and rstd [B, G] (with
// known_stats, uses them instead).
template <class T>
void group_norm_silu_forward(const T* x, int64_t B, int64_t C, int64_t HW, int64_t G, const T* gamma, const T* beta,
                             double eps, T* y, T* mean, T* rstd, const T* shift = nullptr, bool known_stats = false) {
    if (shift) {
        const std::vector<T> xs = shifted(x, shift, B * C, HW);
        return group_norm_silu_forward(xs.data(), B, C, HW, G, gamma, beta, eps, y, mean, rstd, static_cast<const T*>(nullptr), known_stats);
    }
    group_norm_forward(x, B, C, HW, G, gamma, beta, eps, y, mean, rstd, known_stats);
    for (int64_t i = 0; i < B * C * HW; ++i) y[i] = y[i] / (T(1) + std::exp(-y[i]));  // z sigma(z)
}

// The gradients of group_norm_silu_forward: dz = dy SiLU'(z) with z recomputed from x, then
// the GroupNorm backward of dz; dshift[b, c] += the sum of x's gradient over the positions.
// Any of dx, dgamma, dbeta, dshift may be null.
template <class T>
void group_norm_silu_backward(const T* x, const T* dy, int64_t B, int64_t C, int64_t HW, int64_t G, const T* gamma,
                              const T* beta, const T* mean, const T* rstd, T* dx, T* dgamma, T* dbeta, bool add_dx = true,
                              const T* shift = nullptr, T* dshift = nullptr) {
    if (shift) {
        const std::vector<T> xs = shifted(x, shift, B * C, HW);
        std::vector<T> dxs(xs.size(), T(0));
        group_norm_silu_backward(xs.data(), dy, B, C, HW, G, gamma, beta, mean, rstd, dxs.data(), dgamma, dbeta);
        for (int64_t i = 0; i < B * C * HW; ++i) {
            if (dx) dx[i] = (add_dx ? dx[i] : T(0)) + dxs[static_cast<size_t>(i)];
            if (dshift) dshift[i / HW] += dxs[static_cast<size_t>(i)];
        }
        return;
    }
    const int64_t Cg = C / G;
    std::vector<T> dz(static_cast<size_t>(B * C * HW));
    for (int64_t i = 0; i < B * C * HW; ++i) {
        const int64_t c = i / HW % C, t = i / HW / C * G + c / Cg;
        const T z = (x[i] - mean[t]) * rstd[t] * gamma[c] + beta[c];
        const T s = T(1) / (T(1) + std::exp(-z));
        dz[static_cast<size_t>(i)] = dy[i] * s * (T(1) + z * (T(1) - s));  // (z s)' = s (1 + z (1 - s))
    }
    group_norm_backward(x, dz.data(), B, C, HW, G, gamma, mean, rstd, dx, dgamma, dbeta, add_dx);
}

}  // namespace ref

namespace norm_detail {

// Sum of x[0..n) and of (x - mu)^2: float SIMD within the row, returned in double.
inline double row_sum(const float* x, int64_t n) {
    int64_t i = 0;
    double s = 0;
    constexpr int W = simd::kWidth;
    simd::vfloat a0 = simd::zero(), a1 = simd::zero();
    for (; i + 2 * W <= n; i += 2 * W) {
        a0 = simd::add(a0, simd::load(x + i));
        a1 = simd::add(a1, simd::load(x + i + W));
    }
    for (; i + W <= n; i += W) a0 = simd::add(a0, simd::load(x + i));
    s = simd::reduce_add(simd::add(a0, a1));
    float rest = 0;
    for (; i < n; ++i) rest += x[i];  // leftovers
    return s + rest;
}
inline double row_centred_squares(const float* x, int64_t n, float mu) {
    int64_t i = 0;
    double s = 0;
    constexpr int W = simd::kWidth;
    const simd::vfloat m = simd::set1(mu);
    simd::vfloat a0 = simd::zero(), a1 = simd::zero();
    for (; i + 2 * W <= n; i += 2 * W) {
        const simd::vfloat d0 = simd::sub(simd::load(x + i), m), d1 = simd::sub(simd::load(x + i + W), m);
        a0 = simd::fmadd(d0, d0, a0);
        a1 = simd::fmadd(d1, d1, a1);
    }
    for (; i + W <= n; i += W) {
        const simd::vfloat d = simd::sub(simd::load(x + i), m);
        a0 = simd::fmadd(d, d, a0);
    }
    s = simd::reduce_add(simd::add(a0, a1));
    float rest = 0;
    for (; i < n; ++i) rest += (x[i] - mu) * (x[i] - mu);  // leftovers
    return s + rest;
}
// Sums of dy and of dy (x - mu) over a row: float SIMD, returned in double.
inline void row_dot(const float* dy, const float* x, int64_t n, float mu, double& sum_dy, double& sum_dy_xc) {
    int64_t i = 0;
    double s = 0, sx = 0;
    constexpr int W = simd::kWidth;
    const simd::vfloat m = simd::set1(mu);
    simd::vfloat a0 = simd::zero(), a1 = simd::zero(), b0 = simd::zero(), b1 = simd::zero();
    for (; i + 2 * W <= n; i += 2 * W) {
        const simd::vfloat d0 = simd::load(dy + i), d1 = simd::load(dy + i + W);
        a0 = simd::add(a0, d0);
        a1 = simd::add(a1, d1);
        b0 = simd::fmadd(d0, simd::sub(simd::load(x + i), m), b0);
        b1 = simd::fmadd(d1, simd::sub(simd::load(x + i + W), m), b1);
    }
    for (; i + W <= n; i += W) {
        const simd::vfloat d = simd::load(dy + i);
        a0 = simd::add(a0, d);
        b0 = simd::fmadd(d, simd::sub(simd::load(x + i), m), b0);
    }
    s = simd::reduce_add(simd::add(a0, a1));
    sx = simd::reduce_add(simd::add(b0, b1));
    float rs = 0, rsx = 0;
    for (; i < n; ++i) {  // leftovers
        rs += dy[i];
        rsx += dy[i] * (x[i] - mu);
    }
    sum_dy = s + rs;
    sum_dy_xc = sx + rsx;
}

// y[i] = z = (x[i] - mu) a + b, or SiLU(z) when silu.
inline void row_affine(const float* x, int64_t n, float mu, float a, float b, bool silu, float* y) {
    int64_t i = 0;
    constexpr int W = simd::kWidth;
    const simd::vfloat m = simd::set1(mu), va = simd::set1(a), vb = simd::set1(b);
    if (silu)
        for (; i + W <= n; i += W) simd::store(y + i, simd::silu(simd::fmadd(simd::sub(simd::load(x + i), m), va, vb)));
    else
        for (; i + W <= n; i += W) simd::store(y + i, simd::fmadd(simd::sub(simd::load(x + i), m), va, vb));
    for (; i < n; ++i) {  // leftovers
        const float z = (x[i] - mu) * a + b;
        y[i] = silu ? z / (1.0f + std::exp(-z)) : z;
    }
}

// dz[i] = dy[i] SiLU'(z), z = (x[i] - mu) a + b; with act, also act[i] = SiLU(z) from the same
// sigmoid (the bits of row_affine's).
inline void row_silu_grad(const float* x, const float* dy, int64_t n, float mu, float a, float b, float* dz, float* act) {
    int64_t i = 0;
    using namespace simd;
    constexpr int W = kWidth;
    const vfloat m = set1(mu), va = set1(a), vb = set1(b), one = set1(1.0f);
    for (; i + W <= n; i += W) {
        const vfloat z = fmadd(simd::sub(load(x + i), m), va, vb), s = sigmoid(z);
        store(dz + i, mul(load(dy + i), mul(s, fmadd(z, simd::sub(one, s), one))));  // s (1 + z (1 - s))
        if (act) store(act + i, mul(z, s));
    }
    for (; i < n; ++i) {  // leftovers
        const float z = (x[i] - mu) * a + b, e = std::exp(-z), s = 1.0f / (1.0f + e);
        dz[i] = dy[i] * s * (1.0f + z * (1.0f - s));
        if (act) act[i] = z / (1.0f + e);
    }
}

// dx[i] (+)= dy[i] a + (x[i] - mu) b + c (added with `add`).
inline void row_backward(const float* dy, const float* x, int64_t n, float mu, float a, float b, float c, bool add, float* dx) {
    int64_t i = 0;
    constexpr int W = simd::kWidth;
    const simd::vfloat m = simd::set1(mu), va = simd::set1(a), vb = simd::set1(b), vc = simd::set1(c);
    for (; i + W <= n; i += W) {
        const simd::vfloat t = simd::fmadd(simd::load(dy + i), va, simd::fmadd(simd::sub(simd::load(x + i), m), vb, vc));
        simd::store(dx + i, add ? simd::add(simd::load(dx + i), t) : t);
    }
    for (; i < n; ++i) dx[i] = (add ? dx[i] : 0.0f) + (dy[i] * a + ((x[i] - mu) * b + c));  // leftovers
}

inline std::vector<float>& scratch() {
    thread_local std::vector<float> buffer;
    return buffer;
}
inline std::vector<double>& channel_sums() {
    thread_local std::vector<double> buffer;
    return buffer;
}

// The forward of GroupNorm(x + shift), shift [B, C] or null: a row (b, c) of x + shift,
// centred at mu, is the row of x centred at mu - shift[b, c]. The statistics are summed in
// double and applied as the floats saved (so that known_stats, which skips the sums, gives the
// same bits).
inline void forward(const float* x, int64_t B, int64_t C, int64_t HW, int64_t G, const float* gamma, const float* beta,
                    double eps, bool silu, float* y, float* mean, float* rstd, const float* shift, bool known_stats) {
    const int64_t Cg = C / G, n = Cg * HW;
    parallel_for(0, B * G, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(n, 1)), [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
            const float* xg = x + t * n;
            const float* shift_g = shift ? shift + t * Cg : nullptr;  // t = b G + g: the group's channels of image b
            if (!known_stats) {
                double s = 0;
                for (int64_t c = 0; c < Cg; ++c)
                    s += row_sum(xg + c * HW, HW) + (shift_g ? static_cast<double>(shift_g[c]) * static_cast<double>(HW) : 0.0);
                const double mu = s / static_cast<double>(n);
                double ss = 0;
                for (int64_t c = 0; c < Cg; ++c)
                    ss += row_centred_squares(xg + c * HW, HW, static_cast<float>(shift_g ? mu - shift_g[c] : mu));
                mean[t] = static_cast<float>(mu);
                rstd[t] = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
            }
            const float mu = mean[t], r = rstd[t];
            const int64_t c0 = (t % G) * Cg;
            for (int64_t c = 0; c < Cg; ++c)
                row_affine(xg + c * HW, HW, shift_g ? mu - shift_g[c] : mu, r * gamma[c0 + c], beta[c0 + c], silu,
                           y + t * n + c * HW);
        }
    });
}

// The GroupNorm backward of each (image, group), leaving dgamma and dbeta as per-image channel
// sums: sums [B, 2, C] gets, for image b, the C sums of dz, then the C sums of dz xhat. With
// silu, dy is first turned into dz = dy SiLU'(z) (beta needed), and, with act (null or
// [B, C, HW]), the activation SiLU(z) is written from the same sigmoid. With a shift (see
// forward), dshift[b, c] += the sum of the row's dx.
inline void backward_groups(const float* x, const float* dy, int64_t B, int64_t C, int64_t HW, int64_t G, const float* gamma,
                            const float* beta, bool silu, const float* mean, const float* rstd, float* act, float* dx,
                            bool add_dx, const float* shift, float* dshift, double* sums) {
    const int64_t Cg = C / G, n = Cg * HW;
    parallel_for(0, B * G, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(n, 1)), [&](int64_t t0, int64_t t1) {
        std::vector<float>& buf = scratch();
        if (silu) grow(buf, n);
        for (int64_t t = t0; t < t1; ++t) {
            const float *xg = x + t * n, *dzg = dy + t * n;
            const float mu = mean[t], r = rstd[t];
            const int64_t b = t / G, c0 = (t % G) * Cg;
            const float* shift_g = shift ? shift + t * Cg : nullptr;
            double* sum_dz = sums + b * 2 * C + c0;
            double* sum_dz_xhat = sum_dz + C;
            const auto centre = [&](int64_t c) { return shift_g ? mu - shift_g[c] : mu; };
            if (silu) {
                for (int64_t c = 0; c < Cg; ++c)
                    row_silu_grad(xg + c * HW, dy + t * n + c * HW, HW, centre(c), r * gamma[c0 + c], beta[c0 + c],
                                  buf.data() + c * HW, act ? act + t * n + c * HW : nullptr);
                dzg = buf.data();
            }
            double a1 = 0, a2 = 0;  // sums of dxhat = dz gamma and of dxhat xhat over the group
            for (int64_t c = 0; c < Cg; ++c) {
                double s = 0, sx = 0;
                row_dot(dzg + c * HW, xg + c * HW, HW, centre(c), s, sx);
                const double sxhat = sx * r;  // sum dz (x - mu) r
                sum_dz[c] = s;
                sum_dz_xhat[c] = sxhat;
                a1 += s * gamma[c0 + c];
                a2 += sxhat * gamma[c0 + c];
            }
            if (!dx && !dshift) continue;
            a1 /= static_cast<double>(n);
            a2 /= static_cast<double>(n);
            // dx = r (dz gamma - a1 - (x - mu) r a2) = dz (gamma r) + (x - mu) (-r^2 a2) - r a1
            const double rd = r, bx = -rd * rd * a2, cx = -rd * a1;
            for (int64_t c = 0; c < Cg; ++c) {
                if (dx)
                    row_backward(dzg + c * HW, xg + c * HW, HW, centre(c), gamma[c0 + c] * r, static_cast<float>(bx),
                                 static_cast<float>(cx), add_dx, dx + t * n + c * HW);
                if (dshift) {  // the row's sum of that dx: sum dz, and sum (x - centre) = sum x - HW centre
                    const double hw = static_cast<double>(HW), sum_xc = row_sum(xg + c * HW, HW) - hw * centre(c);
                    dshift[b * C + c0 + c] +=
                        static_cast<float>(static_cast<double>(gamma[c0 + c]) * rd * sum_dz[c] + bx * sum_xc + cx * hw);
                }
            }
        }
    });
}

inline void backward(const float* x, const float* dy, int64_t B, int64_t C, int64_t HW, int64_t G, const float* gamma,
                     const float* beta, bool silu, const float* mean, const float* rstd, float* dx, float* dgamma,
                     float* dbeta, bool add_dx, const float* shift, float* dshift) {
    std::vector<double>& sums = channel_sums();
    grow(sums, 2 * B * C);
    backward_groups(x, dy, B, C, HW, G, gamma, beta, silu, mean, rstd, nullptr, dx, add_dx, shift, dshift, sums.data());
    group_norm_param_grads(sums.data(), B, C, dgamma, dbeta);
}

}  // namespace norm_detail

// y = GroupNorm(x); also saves mean and rstd [B, G] for the backward pass, or, with
// known_stats, normalizes with the ones given (a value released and remade: the same bits).
template <class T>
void group_norm_forward(const T* x, int64_t B, int64_t C, int64_t HW, int64_t G, const T* gamma, const T* beta, double eps,
                        T* y, T* mean, T* rstd, bool known_stats = false) {
    if constexpr (use_simd<T>())
        norm_detail::forward(x, B, C, HW, G, gamma, beta, eps, false, y, mean, rstd, nullptr, known_stats);
    else
        ref::group_norm_forward(x, B, C, HW, G, gamma, beta, eps, y, mean, rstd, known_stats);
}

// Accumulates dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) with dxhat = dy gamma,
// dgamma_c += sum dy xhat, dbeta_c += sum dy (sums over images and positions).
// Any of dx, dgamma, dbeta may be null. With add_dx false, dx is overwritten.
template <class T>
void group_norm_backward(const T* x, const T* dy, int64_t B, int64_t C, int64_t HW, int64_t G, const T* gamma, const T* mean,
                         const T* rstd, T* dx, T* dgamma, T* dbeta, bool add_dx = true) {
    if constexpr (use_simd<T>())
        norm_detail::backward(x, dy, B, C, HW, G, gamma, nullptr, false, mean, rstd, dx, dgamma, dbeta, add_dx, nullptr,
                              nullptr);
    else
        ref::group_norm_backward(x, dy, B, C, HW, G, gamma, mean, rstd, dx, dgamma, dbeta, add_dx);
}

// y = SiLU(GroupNorm(x + shift)) in one pass over x, shift [B, C] (added at every position)
// or null; saves mean and rstd [B, G] (with known_stats, uses them).
template <class T>
void group_norm_silu_forward(const T* x, int64_t B, int64_t C, int64_t HW, int64_t G, const T* gamma, const T* beta,
                             double eps, T* y, T* mean, T* rstd, const T* shift = nullptr, bool known_stats = false) {
    if constexpr (use_simd<T>())
        norm_detail::forward(x, B, C, HW, G, gamma, beta, eps, true, y, mean, rstd, shift, known_stats);
    else
        ref::group_norm_silu_forward(x, B, C, HW, G, gamma, beta, eps, y, mean, rstd, shift, known_stats);
}

// Accumulates the gradients of group_norm_silu_forward (z = GroupNorm(x + shift) is
// recomputed), dshift [B, C] too (with shift); with add_dx false, dx is overwritten.
template <class T>
void group_norm_silu_backward(const T* x, const T* dy, int64_t B, int64_t C, int64_t HW, int64_t G, const T* gamma,
                              const T* beta, const T* mean, const T* rstd, T* dx, T* dgamma, T* dbeta, bool add_dx = true,
                              const T* shift = nullptr, T* dshift = nullptr) {
    if constexpr (use_simd<T>())
        norm_detail::backward(x, dy, B, C, HW, G, gamma, beta, true, mean, rstd, dx, dgamma, dbeta, add_dx, shift, dshift);
    else
        ref::group_norm_silu_backward(x, dy, B, C, HW, G, gamma, beta, mean, rstd, dx, dgamma, dbeta, add_dx, shift, dshift);
}

// group_norm_silu_backward of images [b0, b0 + n) alone (x, dy, dx [B, C, HW], mean and rstd
// [B, G], shift and dshift [B, C] are of the whole batch), also remaking their activation
// SiLU(GroupNorm(x + shift)) into act [n, C, HW] (or not, null) from the same sigmoid: for
// group_norm_silu_conv2d, whose weight gradient needs the activation anyway. dgamma and dbeta
// are left as sums [B, 2, C] (rows b0 to b0 + n written), for group_norm_param_grads.
template <class T>
void group_norm_silu_backward_images(const T* x, const T* dy, int64_t b0, int64_t n, int64_t C, int64_t HW, int64_t G,
                                     const T* gamma, const T* beta, const T* mean, const T* rstd, T* act, T* dx, bool add_dx,
                                     const T* shift, T* dshift, double* sums) {
    const int64_t at = b0 * C * HW;
    if constexpr (use_simd<T>()) {
        norm_detail::backward_groups(x + at, dy + at, n, C, HW, G, gamma, beta, true, mean + b0 * G, rstd + b0 * G, act,
                                     dx ? dx + at : nullptr, add_dx, shift ? shift + b0 * C : nullptr,
                                     dshift ? dshift + b0 * C : nullptr, sums + b0 * 2 * C);
    } else {
        std::vector<T> dgamma(static_cast<size_t>(C)), dbeta(static_cast<size_t>(C));
        for (int64_t b = b0; b < b0 + n; ++b) {  // one image at a time: its channel sums apart
            const int64_t ab = b * C * HW;
            const T* sb = shift ? shift + b * C : nullptr;
            if (act) {  // with the image's statistics given (copies: the forward's are writable)
                std::vector<T> mb(mean + b * G, mean + (b + 1) * G), rb(rstd + b * G, rstd + (b + 1) * G);
                ref::group_norm_silu_forward(x + ab, 1, C, HW, G, gamma, beta, 0.0, act + (b - b0) * C * HW, mb.data(),
                                             rb.data(), sb, true);
            }
            std::fill(dgamma.begin(), dgamma.end(), T(0));
            std::fill(dbeta.begin(), dbeta.end(), T(0));
            ref::group_norm_silu_backward(x + ab, dy + ab, 1, C, HW, G, gamma, beta, mean + b * G, rstd + b * G,
                                          dx ? dx + ab : nullptr, dgamma.data(), dbeta.data(), add_dx, sb,
                                          dshift ? dshift + b * C : nullptr);
            for (int64_t c = 0; c < C; ++c) {
                sums[b * 2 * C + c] = static_cast<double>(dbeta[static_cast<size_t>(c)]);
                sums[b * 2 * C + C + c] = static_cast<double>(dgamma[static_cast<size_t>(c)]);
            }
        }
    }
}

}  // namespace kernels
DDPMKIT_END_NAMESPACE
