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

// The score network is a Denoiser whose "timestep" is the noise level's index i (sigma_i).

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
// same update with alpha_i = 2 a_i, so its eps is twice this one); then, with `denoise`, the
// final step x += sigma_L^2 s(x, sigma_L) (Song & Ermon 2020, sec. 3.4, Tweedie's formula),
// which returns the mean without adding noise. A stepper whose timesteps are the levels:
// 0 (steps times), 1, ..., L-1 (steps times, and once more to denoise).
template <class T>
class AnnealedLangevinSampler : public Sampler<T> {
public:
    AnnealedLangevinSampler(std::vector<double> sigmas, int64_t steps, double eps, bool denoise = true, Rng rng = Rng(0))
        : sigmas_(std::move(sigmas)), eps_(eps), denoise_(denoise), rng_(rng) {
        if (sigmas_.empty() || steps < 1 || !(eps > 0.0))
            throw std::invalid_argument("annealed Langevin: needs noise levels, steps >= 1 and eps > 0");
        std::vector<int64_t> plan;
        for (size_t i = 0; i < sigmas_.size(); ++i) plan.insert(plan.end(), static_cast<size_t>(steps), static_cast<int64_t>(i));
        if (denoise) plan.push_back(static_cast<int64_t>(sigmas_.size()) - 1);
        this->set_plan(plan);
    }

protected:
    Tensor<T> update(const Tensor<T>& x, int64_t level, const Tensor<T>& score) override {
        const double last = sigmas_.back() * sigmas_.back();
        if (denoise_ && this->calls() + 1 == this->total_calls()) return this->pred_x0_ = x + last * score;
        const double a = eps_ * sigmas_[static_cast<size_t>(level)] * sigmas_[static_cast<size_t>(level)] / last;
        return x + a * score + std::sqrt(2.0 * a) * Tensor<T>::randn(x.shape(), rng_);
    }

private:
    std::vector<double> sigmas_;
    double eps_;
    bool denoise_;
    Rng rng_;
};

}  // namespace diffusion
DDPMKIT_END_NAMESPACE
