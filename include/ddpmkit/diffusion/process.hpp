// ddpmkit — the forward process q and the reverse process p of DDPM (Ho et al. 2020),
// with the model output read as noise (eps), as x_0, or as v (Salimans & Ho 2022), and
// the variance fixed or learned (Nichol & Dhariwal 2021, eq. 15).
//
// Everything works on Var so that losses can differentiate through it; samplers call it
// under a NoGradGuard. t [B] holds one timestep index per example (0-based, see
// schedule.hpp); x has shape [B, ...] and coefficients broadcast as [B, 1, ..., 1].
#pragma once

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "ddpmkit/autograd/ops.hpp"
#include "ddpmkit/config.hpp"
#include "ddpmkit/diffusion/schedule.hpp"
#include "ddpmkit/kernels/arithmetic.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace diffusion {

// coef[t_b] for each example b, shaped [B, 1, ..., 1] (rank `rank`) to broadcast over x.
template <class T>
Var<T> extract(const std::vector<double>& coef, const Tensor<int64_t>& t, int rank) {
    Shape s{t.numel()};
    for (int i = 1; i < rank; ++i) s.push_back(1);
    Tensor<T> out(s);
    for (int64_t b = 0; b < t.numel(); ++b) {
        const int64_t i = t.data()[b];
        if (i < 0 || i >= static_cast<int64_t>(coef.size()))
            throw std::out_of_range("diffusion: timestep " + std::to_string(i) + " outside [0, " + std::to_string(coef.size()) + ")");
        out.data()[b] = static_cast<T>(coef[static_cast<size_t>(i)]);
    }
    return Var<T>(out);
}

template <class T>
struct Gaussian {
    Var<T> mean, variance, log_variance;
};

// q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)   (Ho et al. 2020, eq. 4)
template <class T>
Gaussian<T> q_mean_variance(const Schedule& s, const Var<T>& x0, const Tensor<int64_t>& t) {
    const int r = x0.dim();
    return {extract<T>(s.sqrt_alphas_cumprod, t, r) * x0, extract<T>(s.sqrt_one_minus_alphas_cumprod, t, r) *
                                                              extract<T>(s.sqrt_one_minus_alphas_cumprod, t, r),
            extract<T>(s.log_one_minus_alphas_cumprod, t, r)};
}

// x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, a draw from eq. 4 given the noise.
template <class T>
Var<T> q_sample(const Schedule& s, const Var<T>& x0, const Tensor<int64_t>& t, const Var<T>& noise) {
    if (x0.shape() != noise.shape()) throw shape_error("q_sample", x0.shape(), noise.shape(), "(x0, noise) differ");
    const int r = x0.dim();
    return extract<T>(s.sqrt_alphas_cumprod, t, r) * x0 + extract<T>(s.sqrt_one_minus_alphas_cumprod, t, r) * noise;
}

// x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps: one step of the forward chain
// q(x_t | x_{t-1}) (Ho et al. 2020, eq. 2), given the noise; RePaint's jump back up.
template <class T>
Var<T> q_step(const Schedule& s, const Var<T>& x_prev, const Tensor<int64_t>& t, const Var<T>& noise) {
    if (x_prev.shape() != noise.shape()) throw shape_error("q_step", x_prev.shape(), noise.shape(), "(x_prev, noise) differ");
    std::vector<double> keep, add;
    for (double b : s.betas) {
        keep.push_back(std::sqrt(1.0 - b));
        add.push_back(std::sqrt(b));
    }
    const int r = x_prev.dim();
    return extract<T>(keep, t, r) * x_prev + extract<T>(add, t, r) * noise;
}

// x_to = sqrt(abar_to / abar_from) x_from + sqrt(1 - abar_to / abar_from) eps: eq. 2 applied
// from timestep `from` up to `to` (> from) in one draw, for the same x_from; RePaint's jump
// back up a sampler's grid.
template <class T>
Tensor<T> q_jump(const Schedule& s, const Tensor<T>& x_from, int64_t from, int64_t to, const Tensor<T>& noise) {
    if (x_from.shape() != noise.shape()) throw shape_error("q_jump", x_from.shape(), noise.shape(), "(x_from, noise) differ");
    if (from < 0 || to <= from || to >= s.num_steps())
        throw std::out_of_range("q_jump: from t = " + std::to_string(from) + " up to t = " + std::to_string(to) + " in a schedule of " +
                                std::to_string(s.num_steps()));
    const double ratio = s.alphas_cumprod[static_cast<size_t>(to)] / s.alphas_cumprod[static_cast<size_t>(from)];
    return std::sqrt(ratio) * x_from + std::sqrt(1.0 - ratio) * noise;
}

// The same two draws on plain tensors, for code outside the graph (samplers, tasks).
template <class T>
Tensor<T> q_sample(const Schedule& s, const Tensor<T>& x0, const Tensor<int64_t>& t, const Tensor<T>& noise) {
    NoGradGuard no_grad;
    return q_sample(s, Var<T>(x0), t, Var<T>(noise)).value();
}
template <class T>
Tensor<T> q_step(const Schedule& s, const Tensor<T>& x_prev, const Tensor<int64_t>& t, const Tensor<T>& noise) {
    NoGradGuard no_grad;
    return q_step(s, Var<T>(x_prev), t, Var<T>(noise)).value();
}

// q(x_{t-1} | x_t, x_0) = N(mu tilde_t, beta tilde_t I)   (Ho et al. 2020, eqs. 6 and 7)
template <class T>
Gaussian<T> q_posterior_mean_variance(const Schedule& s, const Var<T>& x0, const Var<T>& xt, const Tensor<int64_t>& t) {
    if (x0.shape() != xt.shape()) throw shape_error("q_posterior_mean_variance", x0.shape(), xt.shape(), "(x0, xt) differ");
    const int r = x0.dim();
    return {extract<T>(s.posterior_mean_coef1, t, r) * x0 + extract<T>(s.posterior_mean_coef2, t, r) * xt,
            extract<T>(s.posterior_variance, t, r), extract<T>(s.posterior_log_variance_clipped, t, r)};
}

// ---- parametrizations of the model output, and the conversions between them ----

enum class ModelOutput { Eps, X0, V };
enum class ModelVariance {
    FixedSmall,  // beta tilde_t (the posterior's variance)
    FixedLarge,  // beta_t (beta tilde_1 at t = 0, whose beta is too small for a decoder)
    Learned      // log Sigma = v log beta_t + (1 - v) log beta tilde_t, v = (out + 1) / 2  (Nichol & Dhariwal eq. 15)
};

struct Parametrization {
    ModelOutput output = ModelOutput::Eps;
    ModelVariance variance = ModelVariance::FixedLarge;
    // Channels the model outputs per image channel: 2 with a learned variance.
    int64_t channel_factor() const { return variance == ModelVariance::Learned ? 2 : 1; }
};

// x_0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar)   (eq. 4 solved for x_0)
template <class T>
Var<T> x0_from_eps(const Schedule& s, const Var<T>& xt, const Tensor<int64_t>& t, const Var<T>& eps) {
    const int r = xt.dim();
    return extract<T>(s.sqrt_recip_alphas_cumprod, t, r) * xt - extract<T>(s.sqrt_recipm1_alphas_cumprod, t, r) * eps;
}
// eps = (x_t - sqrt(alpha_bar) x_0) / sqrt(1 - alpha_bar)
template <class T>
Var<T> eps_from_x0(const Schedule& s, const Var<T>& xt, const Tensor<int64_t>& t, const Var<T>& x0) {
    const int r = xt.dim();
    return (extract<T>(s.sqrt_recip_alphas_cumprod, t, r) * xt - x0) / extract<T>(s.sqrt_recipm1_alphas_cumprod, t, r);
}
// v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x_0   (Salimans & Ho 2022, sec. 4)
template <class T>
Var<T> v_from_x0_eps(const Schedule& s, const Var<T>& x0, const Tensor<int64_t>& t, const Var<T>& eps) {
    const int r = x0.dim();
    return extract<T>(s.sqrt_alphas_cumprod, t, r) * eps - extract<T>(s.sqrt_one_minus_alphas_cumprod, t, r) * x0;
}
// x_0 = sqrt(alpha_bar) x_t - sqrt(1 - alpha_bar) v
template <class T>
Var<T> x0_from_v(const Schedule& s, const Var<T>& xt, const Tensor<int64_t>& t, const Var<T>& v) {
    const int r = xt.dim();
    return extract<T>(s.sqrt_alphas_cumprod, t, r) * xt - extract<T>(s.sqrt_one_minus_alphas_cumprod, t, r) * v;
}
// eps = sqrt(1 - alpha_bar) x_t + sqrt(alpha_bar) v
template <class T>
Var<T> eps_from_v(const Schedule& s, const Var<T>& xt, const Tensor<int64_t>& t, const Var<T>& v) {
    const int r = xt.dim();
    return extract<T>(s.sqrt_one_minus_alphas_cumprod, t, r) * xt + extract<T>(s.sqrt_alphas_cumprod, t, r) * v;
}

// The model's output split into its mean part and, for a learned variance, its variance
// part (the second half of the channels, axis 1).
template <class T>
std::pair<Var<T>, Var<T>> split_model_output(const Parametrization& p, const Var<T>& out, const Shape& x_shape) {
    if (p.variance != ModelVariance::Learned) {
        if (out.shape() != x_shape) throw shape_error("p_mean_variance", out.shape(), x_shape, "(model output, x_t) differ");
        return {out, Var<T>()};
    }
    if (out.dim() < 2 || out.size(1) != 2 * x_shape[1])
        throw shape_error("p_mean_variance", out.shape(), x_shape, "(model output, x_t): a learned variance needs twice the channels");
    auto halves = split(out, {x_shape[1], x_shape[1]}, 1);
    return {halves[0], halves[1]};
}

template <class T>
struct PMeanVariance {
    Var<T> mean, variance, log_variance;  // of p(x_{t-1} | x_t)
    Var<T> pred_x0, pred_eps;             // the model's prediction, in both forms
};

// p(x_{t-1} | x_t) = N(mu tilde_t(x_t, x_0 hat), Sigma_t)   (Ho et al. 2020, eqs. 1, 7 and 11):
// the model's x_0 prediction plugged into the posterior mean. clip_x0 clamps x_0 hat to
// [-1, 1] (for sampling: the clamped value carries no gradient).
template <class T>
PMeanVariance<T> p_mean_variance(const Schedule& s, const Parametrization& p, const Var<T>& model_out, const Var<T>& xt,
                                 const Tensor<int64_t>& t, bool clip_x0 = false) {
    const auto [out, var_out] = split_model_output(p, model_out, xt.shape());
    PMeanVariance<T> r;
    switch (p.output) {
        case ModelOutput::Eps:
            r.pred_eps = out;
            r.pred_x0 = x0_from_eps(s, xt, t, out);
            break;
        case ModelOutput::X0:
            r.pred_x0 = out;
            r.pred_eps = eps_from_x0(s, xt, t, out);
            break;
        case ModelOutput::V:
            r.pred_x0 = x0_from_v(s, xt, t, out);
            r.pred_eps = eps_from_v(s, xt, t, out);
            break;
    }
    if (clip_x0) {
        Tensor<T> clipped = r.pred_x0.value().clone();
        for (int64_t i = 0; i < clipped.numel(); ++i) clipped.data()[i] = std::clamp(clipped.data()[i], T(-1), T(1));
        r.pred_x0 = Var<T>(clipped);
        r.pred_eps = eps_from_x0(s, xt, t, r.pred_x0);
    }
    r.mean = q_posterior_mean_variance(s, r.pred_x0, xt, t).mean;
    const int rank = xt.dim();
    switch (p.variance) {
        case ModelVariance::FixedSmall:
            r.log_variance = extract<T>(s.posterior_log_variance_clipped, t, rank);
            break;
        case ModelVariance::FixedLarge: {
            std::vector<double> large = s.betas;
            if (large.size() > 1) large[0] = s.posterior_variance[1];
            for (double& v : large) v = std::log(v);
            r.log_variance = extract<T>(large, t, rank);
            break;
        }
        case ModelVariance::Learned: {
            std::vector<double> log_betas = s.betas;
            for (double& v : log_betas) v = std::log(v);
            const Var<T> frac = (var_out + T(1)) * T(0.5);  // eq. 15: v in [0, 1] from an output in [-1, 1]
            const Var<T> max_log = extract<T>(log_betas, t, rank), min_log = extract<T>(s.posterior_log_variance_clipped, t, rank);
            r.log_variance = frac * max_log + (T(1) - frac) * min_log;
            break;
        }
    }
    r.variance = exp(r.log_variance);
    return r;
}

}  // namespace diffusion
DDPMKIT_END_NAMESPACE
