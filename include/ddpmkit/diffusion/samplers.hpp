// ddpmkit — samplers: from x_T ~ N(0, I) to x_0 with any denoiser (x_t, t) -> output, so
// analytic models can stand in for networks. Ancestral DDPM (Ho et al. 2020, Algorithm 2),
// DDIM (Song, Meng & Ermon 2021, eq. 12), DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2),
// Euler and Heun on the probability-flow ODE (Karras et al. 2022, Algorithm 1), and a
// predictor-corrector sampler (Song et al. 2021, Algorithm 3).
//
// A grid is the strictly decreasing list of timesteps at which the model is called, from
// T-1 down to 0 (or the one timestep T-1 of a one-step sampler). Every sampler ends with
// x_0 = the model's x_0 prediction at the grid's last timestep (the mean, no noise added). Model calls: DDIM, DPM-Solver++ and Euler one per grid entry,
// Heun 2 per entry but the last, predictor-corrector T + corrector_steps (T - 1).
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ddpmkit/autograd/ops.hpp"
#include "ddpmkit/config.hpp"
#include "ddpmkit/diffusion/process.hpp"
#include "ddpmkit/diffusion/schedule.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace diffusion {

// Keeps a parameter out of template argument deduction: T comes from the tensors, so a
// lambda converts to the std::function parameter.
template <class U>
struct NoDeduceImpl {
    using type = U;
};
template <class U>
using NoDeduce = typename NoDeduceImpl<U>::type;

// The network, or any function: x_t [B, ...] and the timestep of each example -> model output.
template <class T>
using Denoiser = std::function<Tensor<T>(const Tensor<T>& x, const Tensor<int64_t>& t)>;
// Called after each step with the step's index, its timestep and the current x.
template <class T>
using StepCallback = std::function<void(int64_t step, int64_t t, const Tensor<T>& x)>;

enum class Spacing {
    Uniform,    // evenly spaced timesteps
    Quadratic,  // dense near t = 0 (Song, Meng & Ermon 2021, appendix D.2)
    Karras      // noise levels sigma spaced by the rho = 7 rule (Karras et al. 2022, eq. 5)
};

// `steps` distinct timesteps from T-1 down to 0 (1 <= steps <= T).
inline std::vector<int64_t> timestep_grid(const Schedule& s, int64_t steps, Spacing spacing) {
    const int64_t T = s.num_steps();
    if (steps < 1 || steps > T)
        throw std::invalid_argument("timestep_grid: " + std::to_string(steps) + " steps for a schedule of " + std::to_string(T));
    if (steps == 1) return {T - 1};
    std::vector<double> target(static_cast<size_t>(steps));  // increasing, from 0 to T-1
    const double sigma_min = std::sqrt(1.0 / s.alphas_cumprod.front() - 1.0), sigma_max = std::sqrt(1.0 / s.alphas_cumprod.back() - 1.0);
    for (int64_t k = 0; k < steps; ++k) {
        const double u = double(k) / double(steps - 1);
        switch (spacing) {
            case Spacing::Uniform: target[static_cast<size_t>(k)] = u * double(T - 1); break;
            case Spacing::Quadratic: target[static_cast<size_t>(k)] = u * u * double(T - 1); break;
            case Spacing::Karras: {
                const double rho = 7.0;
                const double sigma = std::pow(std::pow(sigma_min, 1 / rho) + u * (std::pow(sigma_max, 1 / rho) - std::pow(sigma_min, 1 / rho)), rho);
                int64_t t = 0;  // the timestep whose sigma is nearest
                for (int64_t i = 1; i < T; ++i)
                    if (std::abs(std::sqrt(1.0 / s.alphas_cumprod[static_cast<size_t>(i)] - 1.0) - sigma) <
                        std::abs(std::sqrt(1.0 / s.alphas_cumprod[static_cast<size_t>(t)] - 1.0) - sigma))
                        t = i;
                target[static_cast<size_t>(k)] = double(t);
                break;
            }
        }
    }
    // Round, then push apart where rounding made neighbours equal: strictly increasing from 0 to T-1.
    std::vector<int64_t> grid(static_cast<size_t>(steps));
    for (int64_t k = 0; k < steps; ++k) {
        const int64_t lo = k == 0 ? 0 : grid[static_cast<size_t>(k - 1)] + 1, hi = T - steps + k;
        grid[static_cast<size_t>(k)] = std::clamp<int64_t>(std::llround(target[static_cast<size_t>(k)]), lo, hi);
    }
    grid.back() = T - 1;
    std::reverse(grid.begin(), grid.end());
    return grid;
}

namespace detail {
template <class T>
PMeanVariance<T> predict(const Schedule& s, const Parametrization& p, const NoDeduce<Denoiser<T>>& model, const Tensor<T>& x, int64_t t,
                         bool clip_x0) {
    NoGradGuard no_grad;
    const Tensor<int64_t> ts(Shape{x.size(0)}, t);
    return p_mean_variance(s, p, Var<T>(model(x, ts)), Var<T>(x), ts, clip_x0);
}
template <class T>
Tensor<T> standard_normal_like(const Tensor<T>& x, Rng& rng) {
    return Tensor<T>::randn(x.shape(), rng);
}
// a x
template <class T>
Tensor<T> scale(double a, const Tensor<T>& x) {
    Tensor<T> out(x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) out.data()[i] = static_cast<T>(a * x.data()[i]);
    return out;
}
// a x + b y, elementwise (same shapes).
template <class T>
Tensor<T> lincomb(double a, const Tensor<T>& x, double b, const Tensor<T>& y) {
    Tensor<T> out(x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) out.data()[i] = static_cast<T>(a * x.data()[i] + b * y.data()[i]);
    return out;
}
inline void check_grid(const std::vector<int64_t>& grid, int64_t T) {
    bool ok = !grid.empty() && grid.front() <= T - 1 && grid.back() >= 0;
    for (size_t i = 1; ok && i < grid.size(); ++i) ok = grid[i] < grid[i - 1];
    if (!ok) throw std::invalid_argument("sampler: the grid must decrease strictly from at most T-1 to at least 0");
}
}  // namespace detail

// One ancestral step (Ho et al. 2020, Algorithm 2, line 4):
// x_{t-1} = mu_theta(x_t, t) + sigma_t z, z ~ N(0, I); at t = 0 the mean alone.
template <class T>
Tensor<T> ddpm_step(const Schedule& s, const Parametrization& p, const NoDeduce<Denoiser<T>>& model, const Tensor<T>& x, int64_t t,
                    Rng& rng, bool clip_x0) {
    const PMeanVariance<T> pm = detail::predict(s, p, model, x, t, clip_x0);
    if (t == 0) return pm.mean.value().clone();
    NoGradGuard no_grad;
    return (pm.mean + exp(T(0.5) * pm.log_variance) * Var<T>(detail::standard_normal_like(x, rng))).value();
}

// Ancestral sampling over all T steps (Ho et al. 2020, Algorithm 2).
template <class T>
Tensor<T> ddpm_sample(const Schedule& s, const Parametrization& p, const NoDeduce<Denoiser<T>>& model, Tensor<T> x, Rng& rng,
                      bool clip_x0 = true, const NoDeduce<StepCallback<T>>& on_step = {}) {
    for (int64_t t = s.num_steps() - 1, step = 0; t >= 0; --t, ++step) {
        x = ddpm_step(s, p, model, x, t, rng, clip_x0);
        if (on_step) on_step(step, t, x);
    }
    return x;
}

// DDIM (Song, Meng & Ermon 2021, eq. 12) on a grid t_1 > ... > t_N = 0:
// x_prev = sqrt(a_prev) x0_hat + sqrt(1 - a_prev - sigma^2) eps_hat + sigma z, with
// sigma = eta sqrt((1 - a_prev) / (1 - a)) sqrt(1 - a / a_prev); eta = 0 is deterministic,
// eta = 1 is ancestral sampling on the grid. After t = 0: x_0 = x0_hat.
template <class T>
Tensor<T> ddim_sample(const Schedule& s, const Parametrization& p, const NoDeduce<Denoiser<T>>& model, Tensor<T> x,
                      const std::vector<int64_t>& grid, double eta, Rng& rng, bool clip_x0 = true,
                      const NoDeduce<StepCallback<T>>& on_step = {}) {
    detail::check_grid(grid, s.num_steps());
    for (size_t i = 0; i < grid.size(); ++i) {
        const int64_t t = grid[i];
        const PMeanVariance<T> pm = detail::predict(s, p, model, x, t, clip_x0);
        if (i + 1 == grid.size()) {
            x = pm.pred_x0.value().clone();
        } else {
            const double a = s.alphas_cumprod[static_cast<size_t>(t)], a_prev = s.alphas_cumprod[static_cast<size_t>(grid[i + 1])];
            const double sigma = eta * std::sqrt((1 - a_prev) / (1 - a)) * std::sqrt(1 - a / a_prev);
            x = detail::lincomb(std::sqrt(a_prev), pm.pred_x0.value(), std::sqrt(std::max(0.0, 1 - a_prev - sigma * sigma)),
                                pm.pred_eps.value());
            if (sigma > 0) x = detail::lincomb(1.0, x, sigma, detail::standard_normal_like(x, rng));
        }
        if (on_step) on_step(static_cast<int64_t>(i), t, x);
    }
    return x;
}

// DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2), multistep second order in the data
// prediction: with lambda = log(alpha / sigma), h = lambda_next - lambda,
// x_next = (sigma_next / sigma) x - alpha_next (e^-h - 1) D, D = x0_hat corrected by the
// previous step's x0_hat: D = (1 + 1/(2r)) x0_hat - x0_prev / (2r), r = h_prev / h.
// The step into t = 0 is first order (D = x0_hat): lambda jumps there (to 4.6 on the linear
// schedule), so r is small and 1/(2r) would weigh the extrapolation by more than 2 at 10 to
// 20 steps. The authors' code does so on grids under 15 steps (into any last timestep); on
// a Fashion-MNIST model it also measured better at 20 and 50 (README: Which sampler).
template <class T>
Tensor<T> dpm_solver_pp_2m_sample(const Schedule& s, const Parametrization& p, const NoDeduce<Denoiser<T>>& model, Tensor<T> x,
                                  const std::vector<int64_t>& grid, bool clip_x0 = true, const NoDeduce<StepCallback<T>>& on_step = {}) {
    detail::check_grid(grid, s.num_steps());
    auto alpha = [&](int64_t t) { return std::sqrt(s.alphas_cumprod[static_cast<size_t>(t)]); };
    auto sigma = [&](int64_t t) { return std::sqrt(1.0 - s.alphas_cumprod[static_cast<size_t>(t)]); };
    auto lambda = [&](int64_t t) { return std::log(alpha(t) / sigma(t)); };
    Tensor<T> x0_prev;
    double h_prev = 0.0;
    for (size_t i = 0; i < grid.size(); ++i) {
        const int64_t t = grid[i];
        const Tensor<T> x0 = detail::predict(s, p, model, x, t, clip_x0).pred_x0.value().clone();
        if (i + 1 == grid.size()) {
            x = x0;
        } else {
            const int64_t next = grid[i + 1];
            const double h = lambda(next) - lambda(t);
            Tensor<T> D = x0;
            const bool first_order_final = i + 2 == grid.size() && (next == 0 || grid.size() < 15);
            if (x0_prev.defined() && !first_order_final) {
                const double r = h_prev / h;
                D = detail::lincomb(1.0 + 0.5 / r, x0, -0.5 / r, x0_prev);
            }
            x = detail::lincomb(sigma(next) / sigma(t), x, -alpha(next) * std::expm1(-h), D);
            x0_prev = x0;
            h_prev = h;
        }
        if (on_step) on_step(static_cast<int64_t>(i), t, x);
    }
    return x;
}

namespace detail {
// Karras et al. 2022 in the variables of the VP process: sigma = sqrt(1/alpha_bar - 1),
// x_tilde = x / sqrt(alpha_bar); dx_tilde / dsigma = eps_hat (the probability-flow ODE).
// With clip_x0, eps_hat is the one of the clamped x_0 hat (as DDIM's): an undertrained
// model's eps_hat at high noise otherwise throws the path far outside the data's range.
template <class T>
Tensor<T> karras_ode(const Schedule& s, const Parametrization& p, const NoDeduce<Denoiser<T>>& model, Tensor<T> x,
                     const std::vector<int64_t>& grid, bool heun, bool clip_x0, const NoDeduce<StepCallback<T>>& on_step) {
    check_grid(grid, s.num_steps());
    auto sqrt_a = [&](int64_t t) { return std::sqrt(s.alphas_cumprod[static_cast<size_t>(t)]); };
    auto sigma = [&](int64_t t) { return std::sqrt(1.0 / s.alphas_cumprod[static_cast<size_t>(t)] - 1.0); };
    auto slope = [&](const Tensor<T>& xt, int64_t t) {  // eps_hat at x = x_tilde sqrt(alpha_bar)
        return predict(s, p, model, scale(sqrt_a(t), xt), t, clip_x0).pred_eps.value().clone();
    };
    Tensor<T> xt = scale(1.0 / sqrt_a(grid.front()), x);
    for (size_t i = 0; i < grid.size(); ++i) {
        const int64_t t = grid[i];
        const Tensor<T> d = slope(xt, t);
        if (i + 1 == grid.size()) {
            xt = lincomb(1.0, xt, -sigma(t), d);  // the last step reaches sigma = 0: x_0 = x0_hat
        } else {
            const int64_t next = grid[i + 1];
            const double dsigma = sigma(next) - sigma(t);
            Tensor<T> euler = lincomb(1.0, xt, dsigma, d);
            if (heun) {  // trapezoid: average the slopes at both ends
                const Tensor<T> d2 = slope(euler, next);
                euler = lincomb(1.0, xt, 0.5 * dsigma, lincomb(1.0, d, 1.0, d2));
            }
            xt = euler;
        }
        if (on_step) on_step(static_cast<int64_t>(i), t, i + 1 == grid.size() ? xt : scale(sqrt_a(grid[i + 1]), xt));
    }
    return xt;
}
}  // namespace detail

// Euler's method on the probability-flow ODE (Karras et al. 2022, Algorithm 1, first order).
template <class T>
Tensor<T> euler_sample(const Schedule& s, const Parametrization& p, const NoDeduce<Denoiser<T>>& model, Tensor<T> x,
                       const std::vector<int64_t>& grid, bool clip_x0 = true, const NoDeduce<StepCallback<T>>& on_step = {}) {
    return detail::karras_ode(s, p, model, std::move(x), grid, false, clip_x0, on_step);
}

// Heun's method (Karras et al. 2022, Algorithm 1): Euler, then the trapezoid correction.
template <class T>
Tensor<T> heun_sample(const Schedule& s, const Parametrization& p, const NoDeduce<Denoiser<T>>& model, Tensor<T> x,
                      const std::vector<int64_t>& grid, bool clip_x0 = true, const NoDeduce<StepCallback<T>>& on_step = {}) {
    return detail::karras_ode(s, p, model, std::move(x), grid, true, clip_x0, on_step);
}

// Predictor-corrector for the VP process (Song et al. 2021, Algorithm 3, with the corrector of
// Algorithm 5):
// an ancestral step, then Langevin steps x += e score + sqrt(2 e) z at the new timestep,
// score = -eps_hat / sqrt(1 - alpha_bar), e = 2 alpha (r |z| / |score|)^2 with the norms
// averaged over the batch.
template <class T>
Tensor<T> predictor_corrector_sample(const Schedule& s, const Parametrization& p, const NoDeduce<Denoiser<T>>& model, Tensor<T> x,
                                     Rng& rng, int64_t corrector_steps = 1, double snr = 0.16, bool clip_x0 = true,
                                     const NoDeduce<StepCallback<T>>& on_step = {}) {
    const int64_t B = x.size(0), D = x.numel() / B;
    for (int64_t t = s.num_steps() - 1, step = 0; t >= 0; --t, ++step) {
        x = ddpm_step(s, p, model, x, t, rng, clip_x0);
        for (int64_t j = 0; t > 0 && j < corrector_steps; ++j) {
            const int64_t tc = t - 1;
            const Tensor<T> eps = detail::predict(s, p, model, x, tc, false).pred_eps.value();
            const Tensor<T> z = detail::standard_normal_like(x, rng);
            const double inv_sigma = 1.0 / s.sqrt_one_minus_alphas_cumprod[static_cast<size_t>(tc)];
            // Step size from the batch's mean norms, as in the authors' code: a per-example
            // ratio is unstable in few dimensions.
            double z_norm = 0, score_norm = 0;
            for (int64_t b = 0; b < B; ++b) {
                double zz = 0, ss = 0;
                for (int64_t i = b * D; i < (b + 1) * D; ++i) {
                    zz += double(z.data()[i]) * z.data()[i];
                    ss += double(eps.data()[i]) * eps.data()[i] * inv_sigma * inv_sigma;
                }
                z_norm += std::sqrt(zz) / double(B);
                score_norm += std::sqrt(ss) / double(B);
            }
            const double e = 2.0 * s.alphas[static_cast<size_t>(tc)] * std::pow(snr * z_norm / std::max(score_norm, 1e-30), 2);
            for (int64_t i = 0; i < x.numel(); ++i)
                x.data()[i] = static_cast<T>(x.data()[i] - e * inv_sigma * eps.data()[i] + std::sqrt(2.0 * e) * z.data()[i]);
        }
        if (on_step) on_step(step, t, x);
    }
    return x;
}

}  // namespace diffusion
DDPMKIT_END_NAMESPACE
