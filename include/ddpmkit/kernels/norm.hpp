// ddpmkit — group normalization (Wu & He 2018) over x [B, C, HW] with G groups:
// y = (x - mu_bg) rstd_bg gamma_c + beta_c, where mu and rstd = 1 / sqrt(var + eps) are
// the mean and biased variance over the C/G channels and HW positions of group g.
// Statistics are accumulated in double; each (image, group) is one task, so the result
// does not depend on the thread count.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/parallel.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace kernels {

// Also saves mean and rstd [B, G] for the backward pass.
template <class T>
void group_norm_forward(const T* x, int64_t B, int64_t C, int64_t HW, int64_t G, const T* gamma, const T* beta, double eps,
                        T* y, T* mean, T* rstd) {
    const int64_t Cg = C / G, n = Cg * HW;
    parallel_for(0, B * G, 1, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
            const T* xg = x + t * n;
            double s = 0;
            for (int64_t i = 0; i < n; ++i) s += xg[i];
            const double mu = s / static_cast<double>(n);
            double ss = 0;
            for (int64_t i = 0; i < n; ++i) ss += (xg[i] - mu) * (xg[i] - mu);
            const double r = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
            mean[t] = static_cast<T>(mu);
            rstd[t] = static_cast<T>(r);
            const int64_t c0 = (t % G) * Cg;
            T* yg = y + t * n;
            for (int64_t c = 0; c < Cg; ++c) {
                const T scale = static_cast<T>(r * gamma[c0 + c]);
                const T shift = static_cast<T>(beta[c0 + c] - mu * r * gamma[c0 + c]);
                for (int64_t p = c * HW; p < (c + 1) * HW; ++p) yg[p] = xg[p] * scale + shift;
            }
        }
    });
}

// Accumulates dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) with dxhat = dy gamma,
// dgamma_c += sum dy xhat, dbeta_c += sum dy (sums over images and positions).
// Any of dx, dgamma, dbeta may be null.
template <class T>
void group_norm_backward(const T* x, const T* dy, int64_t B, int64_t C, int64_t HW, int64_t G, const T* gamma, const T* mean,
                         const T* rstd, T* dx, T* dgamma, T* dbeta) {
    const int64_t Cg = C / G, n = Cg * HW;
    std::vector<double> sum_dy(static_cast<size_t>(B * C)), sum_dy_xhat(static_cast<size_t>(B * C));
    parallel_for(0, B * G, 1, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
            const T *xg = x + t * n, *dyg = dy + t * n;
            const double mu = mean[t], r = rstd[t];
            const int64_t b = t / G, c0 = (t % G) * Cg;
            double a1 = 0, a2 = 0;  // sums of dxhat and dxhat xhat over the group
            for (int64_t c = 0; c < Cg; ++c) {
                double s = 0, sx = 0;
                for (int64_t p = c * HW; p < (c + 1) * HW; ++p) {
                    s += dyg[p];
                    sx += dyg[p] * (xg[p] - mu) * r;
                }
                sum_dy[static_cast<size_t>(b * C + c0 + c)] = s;
                sum_dy_xhat[static_cast<size_t>(b * C + c0 + c)] = sx;
                a1 += s * gamma[c0 + c];
                a2 += sx * gamma[c0 + c];
            }
            if (!dx) continue;
            a1 /= static_cast<double>(n);
            a2 /= static_cast<double>(n);
            T* dxg = dx + t * n;
            for (int64_t c = 0; c < Cg; ++c) {
                const double gr = gamma[c0 + c] * r;
                for (int64_t p = c * HW; p < (c + 1) * HW; ++p) {
                    const double xhat = (xg[p] - mu) * r;
                    dxg[p] += static_cast<T>(gr * dyg[p] - r * (a1 + xhat * a2));
                }
            }
        }
    });
    for (int64_t c = 0; c < C; ++c) {  // images in order
        double s = 0, sx = 0;
        for (int64_t b = 0; b < B; ++b) {
            s += sum_dy[static_cast<size_t>(b * C + c)];
            sx += sum_dy_xhat[static_cast<size_t>(b * C + c)];
        }
        if (dbeta) dbeta[c] += static_cast<T>(s);
        if (dgamma) dgamma[c] += static_cast<T>(sx);
    }
}

}  // namespace kernels
DDPMKIT_END_NAMESPACE
