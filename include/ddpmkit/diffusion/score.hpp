// ddpmkit — score-based generative modelling (Song & Ermon 2019, 2020): a noise-conditional
// score network s(x, sigma_i) trained by denoising score matching over a geometric ladder
// of noise levels, and sampled by annealed Langevin dynamics.
#pragma once

#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ddpmkit/autograd/ops.hpp"
#include "ddpmkit/config.hpp"
#include "ddpmkit/diffusion/losses.hpp"
#include "ddpmkit/diffusion/samplers.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace diffusion {

// sigma_1 > ... > sigma_L, a geometric sequence from sigma_max to sigma_min.
inline std::vector<double> geometric_sigmas(double sigma_max, double sigma_min, int64_t L) {
    if (!(sigma_max > sigma_min && sigma_min > 0.0) || L < 2)
        throw std::invalid_argument("geometric_sigmas: need sigma_max > sigma_min > 0 and at least 2 levels");
    std::vector<double> s;
    for (int64_t i = 0; i < L; ++i) s.push_back(sigma_max * std::pow(sigma_min / sigma_max, double(i) / double(L - 1)));
    return s;
}

// The score network, or any function: x [B, ...] and each example's noise level index -> score.
template <class T>
using ScoreModel = std::function<Tensor<T>(const Tensor<T>& x, const Tensor<int64_t>& level)>;

// Denoising score matching with weight lambda(sigma) = sigma^2 (Song & Ermon 2019, eqs. 5-6):
// for x_tilde = x + sigma z the target score is -z / sigma, and
// sigma^2 / 2 |s + z / sigma|^2 = |sigma s + z|^2 / 2; averaged over dimensions, per example [B].
template <class T>
Var<T> dsm_loss(const Var<T>& score, const Var<T>& z, const std::vector<double>& sigmas, const Tensor<int64_t>& level) {
    if (score.shape() != z.shape()) throw shape_error("dsm_loss", score.shape(), z.shape(), "(score, noise) differ");
    const Var<T> d = extract<T>(sigmas, level, score.dim()) * score + z;
    return T(0.5) * mean_flat(d * d);
}

// x_tilde = x + sigma_level z: the input of the score network in training.
template <class T>
Var<T> perturb(const Var<T>& x, const Var<T>& z, const std::vector<double>& sigmas, const Tensor<int64_t>& level) {
    return x + extract<T>(sigmas, level, x.dim()) * z;
}

// Annealed Langevin dynamics in the convention of Song & Ermon 2020 (Algorithm 1): at each
// level i, `steps` updates x += a_i s(x, sigma_i) + sqrt(2 a_i) z with a_i = eps sigma_i^2 /
// sigma_L^2 (Song & Ermon 2019's Algorithm 1 writes x += alpha_i/2 s + sqrt(alpha_i) z: the
// same update with alpha_i = 2 a_i, so its eps is twice this one); then
// the final denoising step x += sigma_L^2 s(x, sigma_L) (Song & Ermon 2020, sec. 3.4,
// Tweedie's formula), which returns the mean without adding noise.
template <class T>
Tensor<T> annealed_langevin_sample(const std::vector<double>& sigmas, const NoDeduce<ScoreModel<T>>& model, Tensor<T> x, Rng& rng,
                                   int64_t steps, double eps, bool denoise = true,
                                   const NoDeduce<std::function<void(int64_t level, const Tensor<T>& x)>>& on_level = {}) {
    const double last = sigmas.back() * sigmas.back();
    const int64_t B = x.size(0);
    for (size_t i = 0; i < sigmas.size(); ++i) {
        const double a = eps * sigmas[i] * sigmas[i] / last;
        const Tensor<int64_t> level(Shape{B}, static_cast<int64_t>(i));
        for (int64_t k = 0; k < steps; ++k) {
            const Tensor<T> score = model(x, level);
            const Tensor<T> z = Tensor<T>::randn(x.shape(), rng);
            for (int64_t j = 0; j < x.numel(); ++j)
                x.data()[j] = static_cast<T>(x.data()[j] + a * score.data()[j] + std::sqrt(2.0 * a) * z.data()[j]);
        }
        if (on_level) on_level(static_cast<int64_t>(i), x);
    }
    if (denoise) {
        const Tensor<T> score = model(x, Tensor<int64_t>(Shape{B}, static_cast<int64_t>(sigmas.size()) - 1));
        for (int64_t j = 0; j < x.numel(); ++j) x.data()[j] = static_cast<T>(x.data()[j] + last * score.data()[j]);
    }
    return x;
}

}  // namespace diffusion
DDPMKIT_END_NAMESPACE
