// ddpmkit — an exact model, for checks and lessons: data from a mixture of isotropic Gaussians,
// whose ideal denoiser E[eps | x_t] is known in closed form. A sampler, a task or a lesson run
// on it shows the method itself, free of a network's error and of training time.
#pragma once

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "ddpmkit/config.hpp"
#include "ddpmkit/diffusion/samplers.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace diffusion {

// x_0 ~ (1/K) sum_k N(mu_k, s^2 I), the K centres mu_k of any shape [K, ...]; with labels, the
// component k belongs to class labels[k] and a label no component has means "no class".
template <class T>
struct GaussianMixture {
    Tensor<T> centres;       // [K, ...]
    double sd = 0.05;        // s
    Tensor<int64_t> labels;  // [K], or undefined: unlabelled

    // E[eps | x_t], or E[eps | x_t, y] over the components of class y, as a model predicting eps
    // (Parametrization{}). With a = sqrt(abar_t) and v = a^2 s^2 + 1 - abar_t, x_t | k ~
    // N(a mu_k, v I) (eq. 4), so the posterior weight of component k is r_k ~ exp(-|x_t - a mu_k|^2 / 2v)
    // and E[eps | x_t] = sqrt(1 - abar_t) sum_k r_k (x_t - a mu_k) / v.
    Denoiser<T> denoiser(const Schedule& s) const {
        if (!centres.defined() || centres.dim() < 2 || centres.size(0) < 1)
            throw std::invalid_argument("GaussianMixture: centres must be [K, ...] with K >= 1");
        if (!(sd > 0)) throw std::invalid_argument("GaussianMixture: the standard deviation must be > 0, not " + std::to_string(sd));
        if (labels.defined() && (labels.dim() != 1 || labels.size(0) != centres.size(0)))
            throw shape_error("GaussianMixture", labels.shape(), centres.shape(), "(labels, centres): one label per centre");
        return [m = *this, s](const Tensor<T>& x, const Tensor<int64_t>& t, const nn::Condition<T>& c) {
            const int64_t K = m.centres.size(0), D = m.centres.numel() / K;
            if (x.dim() < 1 || x.numel() != x.size(0) * D)
                throw shape_error("GaussianMixture", x.shape(), m.centres.shape(), "(x, centres): an image is not the size of a centre");
            if (c.image.defined() || (c.labels.defined() && !m.labels.defined()))
                throw std::invalid_argument("GaussianMixture: the model takes " + std::string(m.labels.defined() ? "labels only" : "no condition"));
            Tensor<T> eps(x.shape());
            std::vector<double> r(static_cast<size_t>(K));
            for (int64_t i = 0; i < x.size(0); ++i) {
                const double abar = s.alphas_cumprod[static_cast<size_t>(t(i))], a = std::sqrt(abar), v = abar * m.sd * m.sd + 1 - abar;
                const T* xi = x.data() + i * D;
                bool any = false;  // a component of the asked class (else: no class)
                for (int64_t k = 0; k < K && c.labels.defined(); ++k) any = any || m.labels(k) == c.labels(i);
                double top = -INFINITY;
                for (int64_t k = 0; k < K; ++k) {
                    r[size_t(k)] = -INFINITY;
                    if (any && m.labels(k) != c.labels(i)) continue;
                    double d2 = 0;
                    for (int64_t j = 0; j < D; ++j) d2 += std::pow(double(xi[j]) - a * double(m.centres.data()[k * D + j]), 2);
                    top = std::max(top, r[size_t(k)] = -0.5 * d2 / v);
                }
                double z = 0;
                for (double& w : r) z += (w = std::exp(w - top));
                const double gain = std::sqrt(1 - abar) / v;
                for (int64_t j = 0; j < D; ++j) {
                    double mean = 0;  // E[a mu_k | x_t]
                    for (int64_t k = 0; k < K; ++k) mean += r[size_t(k)] / z * a * double(m.centres.data()[k * D + j]);
                    eps.data()[i * D + j] = static_cast<T>(gain * (double(xi[j]) - mean));
                }
            }
            return eps;
        };
    }
};

}  // namespace diffusion
DDPMKIT_END_NAMESPACE
