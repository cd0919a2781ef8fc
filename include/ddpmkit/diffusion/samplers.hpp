// ddpmkit — samplers: from x_T ~ N(0, I) to x_0 with any denoiser (x_t, t, condition) ->
// output, so analytic models can stand in for networks. Ancestral DDPM (Ho et al. 2020,
// Algorithm 2), DDIM (Song, Meng & Ermon 2021, eq. 12), DPM-Solver++(2M) (Lu et al. 2022,
// Algorithm 2), Euler and Heun on the probability-flow ODE (Karras et al. 2022, Algorithm 1),
// and a predictor-corrector sampler (Song et al. 2021, Algorithm 3).
//
// Every sampler is a stepper, as diffusers' schedulers are: it knows the timestep of the
// next model call, and step(x, t, model_output) returns the x of the call after it (the
// sample x_0 once done()). The caller may run the model itself and change x between steps
// (inpainting, guidance); sample() is the plain loop. make_sampler() builds one by name.
//
// A grid is the strictly decreasing list of timesteps of the model calls, from T-1 down to
// 0 (or the one timestep T-1 of a one-step sampler). Every sampler ends with x_0 = the
// model's x_0 prediction at the grid's last timestep (the mean, no noise added). Model
// calls: DDIM, DPM-Solver++ and Euler one per grid entry, Heun 2 per entry but the first,
// DDPM T, predictor-corrector T + corrector_steps (T - 1).
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "ddpmkit/autograd/ops.hpp"
#include "ddpmkit/config.hpp"
#include "ddpmkit/diffusion/process.hpp"
#include "ddpmkit/diffusion/schedule.hpp"
#include "ddpmkit/kernels/arithmetic.hpp"
#include "ddpmkit/nn/condition.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace diffusion {

// Keeps a parameter out of template argument deduction: T comes from the tensors, so a
// lambda converts to the Denoiser or std::function parameter.
template <class U>
struct NoDeduceImpl {
    using type = U;
};
template <class U>
using NoDeduce = typename NoDeduceImpl<U>::type;

// The network, or any function: x_t [B, ...], the timestep of each example and the
// condition -> model output. A function of (x, t) alone converts too, as an unconditional
// model that refuses a condition.
template <class T>
class Denoiser {
public:
    using Function = std::function<Tensor<T>(const Tensor<T>& x, const Tensor<int64_t>& t, const nn::Condition<T>& c)>;

    Denoiser() = default;
    template <class F, std::enable_if_t<std::is_invocable_r<Tensor<T>, F&, const Tensor<T>&, const Tensor<int64_t>&,
                                                            const nn::Condition<T>&>::value, int> = 0>
    Denoiser(F f) : fn_(std::move(f)) {}
    template <class F, std::enable_if_t<std::is_invocable_r<Tensor<T>, F&, const Tensor<T>&, const Tensor<int64_t>&>::value &&
                                            !std::is_invocable<F&, const Tensor<T>&, const Tensor<int64_t>&, const nn::Condition<T>&>::value,
                                        int> = 0>
    Denoiser(F f)
        : fn_([f = std::move(f)](const Tensor<T>& x, const Tensor<int64_t>& t, const nn::Condition<T>& c) mutable {
              if (!c.empty()) throw std::invalid_argument("denoiser: a condition given to an unconditional model");
              return f(x, t);
          }) {}

    Tensor<T> operator()(const Tensor<T>& x, const Tensor<int64_t>& t, const nn::Condition<T>& c = {}) const { return fn_(x, t, c); }
    explicit operator bool() const { return static_cast<bool>(fn_); }

private:
    Function fn_;
};

// Called after each model call with the call's index, its timestep and the new x.
template <class T>
using StepCallback = std::function<void(int64_t call, int64_t t, const Tensor<T>& x)>;

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


inline void check_grid(const std::vector<int64_t>& grid, int64_t T) {
    bool ok = !grid.empty() && grid.front() <= T - 1 && grid.back() >= 0;
    for (size_t i = 1; ok && i < grid.size(); ++i) ok = grid[i] < grid[i - 1];
    if (!ok) throw std::invalid_argument("sampler: the grid must decrease strictly from at most T-1 to at least 0");
}

// The settings of every sampler; each reads the ones it has.
struct SamplerOptions {
    int64_t steps = 10;                  // grid entries (DDPM and predictor-corrector use all T timesteps)
    Spacing spacing = Spacing::Uniform;  // how the grid is spaced
    double eta = 0.0;                    // DDIM: 0 deterministic, 1 ancestral on the grid
    bool clip_x0 = true;                 // clamp the x_0 prediction to [-1, 1]
    int64_t corrector_steps = 1;         // predictor-corrector: Langevin steps per timestep
    double snr = 0.16;                   // predictor-corrector: the corrector's signal-to-noise ratio
    Rng rng = Rng(0);                    // the noise of the stochastic samplers
};

// A stepper: the timesteps of its model calls, one update per call.
template <class T>
class Sampler {
public:
    virtual ~Sampler() = default;

    bool done() const { return next_ == plan_.size(); }
    // The timestep of the next model call.
    int64_t timestep() const {
        if (done()) throw std::logic_error("sampler: no model call is left (done)");
        return plan_[next_];
    }
    // Model calls made and in all.
    int64_t calls() const { return static_cast<int64_t>(next_); }
    int64_t total_calls() const { return static_cast<int64_t>(plan_.size()); }

    // x given the model's output at (x, t), t = timestep(): the x of the next model call, at
    // timestep() after it, or the sample x_0 once done().
    Tensor<T> step(const Tensor<T>& x, int64_t t, const Tensor<T>& model_output) {
        if (done()) throw std::logic_error("sampler: step after the last model call");
        if (t != plan_[next_])
            throw std::invalid_argument("sampler: step at t = " + std::to_string(t) + ", but the model call due is at t = " +
                                        std::to_string(plan_[next_]));
        Tensor<T> out = update(x, t, model_output);
        ++next_;
        return out;
    }
    // The x_0 prediction of the last step (diffusers' pred_original_sample).
    const Tensor<T>& pred_x0() const { return pred_x0_; }

protected:
    // The update of call next_ (at timestep t).
    virtual Tensor<T> update(const Tensor<T>& x, int64_t t, const Tensor<T>& model_output) = 0;
    void set_plan(std::vector<int64_t> plan) {
        plan_ = std::move(plan);
        next_ = 0;
    }
    size_t next_call() const { return next_; }

    Tensor<T> pred_x0_;

private:
    std::vector<int64_t> plan_;
    size_t next_ = 0;
};

// The plain loop: the model at each call's timestep, then the sampler's update, from the
// sampler's first call (a sampler that has stepped already is refused: it would return x
// unchanged, or half sampled).
template <class T>
Tensor<T> sample(Sampler<T>& sampler, const NoDeduce<Denoiser<T>>& model, Tensor<T> x, const NoDeduce<nn::Condition<T>>& c = {},
                 const NoDeduce<StepCallback<T>>& on_step = {}) {
    if (sampler.calls() != 0)
        throw std::logic_error("sample: the sampler has made " + std::to_string(sampler.calls()) + " of its " +
                               std::to_string(sampler.total_calls()) + " model calls already; restart() it for another batch");
    NoGradGuard no_grad;
    while (!sampler.done()) {
        const int64_t call = sampler.calls(), t = sampler.timestep();
        x = sampler.step(x, t, model(x, Tensor<int64_t>(Shape{x.size(0)}, t), c));
        if (on_step) on_step(call, t, x);
    }
    return x;
}

// A sampler of the DDPM process: its schedule and parametrization, and a grid.
template <class T>
class ProcessSampler : public Sampler<T> {
public:
    ProcessSampler(const Schedule& s, const Parametrization& p, const SamplerOptions& o) : s_(s), p_(p), o_(o) {}
    // Starts over on this grid (samplers of every timestep refuse another).
    virtual void set_timesteps(const std::vector<int64_t>& grid) {
        check_grid(grid, s_.num_steps());
        grid_ = grid;
        this->set_plan(grid);
    }
    // Starts over on the same grid (for the next batch; the noise stream goes on).
    void restart() { set_timesteps(std::vector<int64_t>(grid_)); }
    const std::vector<int64_t>& grid() const { return grid_; }
    const Schedule& schedule() const { return s_; }

protected:
    // p(x_{t-1} | x_t) and the x_0, eps predictions from the model's output.
    PMeanVariance<T> predict(const Tensor<T>& x, int64_t t, const Tensor<T>& out, bool clip_x0) {
        NoGradGuard no_grad;
        const PMeanVariance<T> pm = p_mean_variance(s_, p_, Var<T>(out), Var<T>(x), Tensor<int64_t>(Shape{x.size(0)}, t), clip_x0);
        this->pred_x0_ = pm.pred_x0.value();
        return pm;
    }
    double abar(int64_t t) const { return s_.alphas_cumprod[static_cast<size_t>(t)]; }
    // Position of t in the grid (the grid's timesteps are distinct).
    size_t index_of(int64_t t) const { return static_cast<size_t>(std::find(grid_.begin(), grid_.end(), t) - grid_.begin()); }
    std::vector<int64_t> every_timestep() const {
        std::vector<int64_t> g;
        for (int64_t t = s_.num_steps() - 1; t >= 0; --t) g.push_back(t);
        return g;
    }

    Schedule s_;
    Parametrization p_;
    SamplerOptions o_;
    std::vector<int64_t> grid_;
};

// Ancestral sampling (Ho et al. 2020, Algorithm 2) over every timestep:
// x_{t-1} = mu_theta(x_t, t) + sigma_t z, z ~ N(0, I); at t = 0 the mean alone.
template <class T>
class DdpmSampler : public ProcessSampler<T> {
public:
    DdpmSampler(const Schedule& s, const Parametrization& p, const SamplerOptions& o) : ProcessSampler<T>(s, p, o) {
        ProcessSampler<T>::set_timesteps(this->every_timestep());
    }
    // A run of consecutive timesteps down to 0 (tasks start below T-1 or jump back up).
    void set_timesteps(const std::vector<int64_t>& grid) override {
        bool consecutive = !grid.empty() && grid.back() == 0;
        for (size_t i = 1; consecutive && i < grid.size(); ++i) consecutive = grid[i] == grid[i - 1] - 1;
        if (!consecutive)
            throw std::invalid_argument("ddpm sampler: ancestral steps need every timestep from the first down to 0 (use ddim with eta 1 on a shorter grid)");
        ProcessSampler<T>::set_timesteps(grid);
    }

protected:
    Tensor<T> update(const Tensor<T>& x, int64_t t, const Tensor<T>& out) override { return ancestral(x, t, out, this->o_.clip_x0); }
    Tensor<T> ancestral(const Tensor<T>& x, int64_t t, const Tensor<T>& out, bool clip_x0) {
        const PMeanVariance<T> pm = this->predict(x, t, out, clip_x0);
        if (t == 0) return pm.pred_x0.value();  // the posterior mean at t = 0 is x0_hat
        NoGradGuard no_grad;
        return (pm.mean + exp(T(0.5) * pm.log_variance) * Var<T>(Tensor<T>::randn(x.shape(), this->o_.rng))).value();
    }
};

// DDIM (Song, Meng & Ermon 2021, eq. 12) on a grid t_1 > ... > t_N:
// x_prev = sqrt(a_prev) x0_hat + sqrt(1 - a_prev - sigma^2) eps_hat + sigma z, with
// sigma = eta sqrt((1 - a_prev) / (1 - a)) sqrt(1 - a / a_prev); eta = 0 is deterministic,
// eta = 1 is ancestral sampling on the grid. After t_N: x_0 = x0_hat.
template <class T>
class DdimSampler : public ProcessSampler<T> {
public:
    DdimSampler(const Schedule& s, const Parametrization& p, const SamplerOptions& o) : ProcessSampler<T>(s, p, o) {
        this->set_timesteps(timestep_grid(s, o.steps, o.spacing));
    }

protected:
    Tensor<T> update(const Tensor<T>& x, int64_t t, const Tensor<T>& out) override {
        const PMeanVariance<T> pm = this->predict(x, t, out, this->o_.clip_x0);
        const size_t i = this->next_call();
        if (i + 1 == this->grid_.size()) return pm.pred_x0.value();
        const double a = this->abar(t), a_prev = this->abar(this->grid_[i + 1]);
        const double sigma = this->o_.eta * std::sqrt((1 - a_prev) / (1 - a)) * std::sqrt(1 - a / a_prev);
        Tensor<T> next = std::sqrt(a_prev) * pm.pred_x0.value() + std::sqrt(std::max(0.0, 1 - a_prev - sigma * sigma)) * pm.pred_eps.value();
        if (sigma > 0) next += sigma * Tensor<T>::randn(x.shape(), this->o_.rng);
        return next;
    }
};

// DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2), multistep second order in the data
// prediction: with lambda = log(alpha / sigma), h = lambda_next - lambda,
// x_next = (sigma_next / sigma) x - alpha_next (e^-h - 1) D, D = x0_hat corrected by the
// previous step's x0_hat: D = (1 + 1/(2r)) x0_hat - x0_prev / (2r), r = h_prev / h.
// The step into t = 0 is first order (D = x0_hat): lambda jumps there (to 4.6 on the linear
// schedule), so r is small and 1/(2r) would weigh the extrapolation by more than 2 at 10 to
// 20 steps. The authors' code does so on grids under 15 steps (into any last timestep); on
// a Fashion-MNIST model it also measured better at 20 and 50 (README: Which sampler).
template <class T>
class DpmSolverPP2MSampler : public ProcessSampler<T> {
public:
    DpmSolverPP2MSampler(const Schedule& s, const Parametrization& p, const SamplerOptions& o) : ProcessSampler<T>(s, p, o) {
        this->set_timesteps(timestep_grid(s, o.steps, o.spacing));
    }
    void set_timesteps(const std::vector<int64_t>& grid) override {
        ProcessSampler<T>::set_timesteps(grid);
        x0_prev_ = Tensor<T>();
    }

protected:
    Tensor<T> update(const Tensor<T>& x, int64_t t, const Tensor<T>& out) override {
        const Tensor<T> x0 = this->predict(x, t, out, this->o_.clip_x0).pred_x0.value();
        const std::vector<int64_t>& grid = this->grid_;
        const size_t i = this->next_call();
        if (i + 1 == grid.size()) return x0;
        const int64_t next = grid[i + 1];
        const double h = lambda(next) - lambda(t);
        const bool first_order_final = i + 2 == grid.size() && (next == 0 || grid.size() < 15);
        Tensor<T> D = x0;
        if (x0_prev_.defined() && !first_order_final) {
            const double r = h_prev_ / h;
            D = (1.0 + 0.5 / r) * x0 - (0.5 / r) * x0_prev_;
        }
        x0_prev_ = x0;
        h_prev_ = h;
        return (sigma(next) / sigma(t)) * x - (std::sqrt(this->abar(next)) * std::expm1(-h)) * D;
    }

private:
    double sigma(int64_t t) const { return std::sqrt(1.0 - this->abar(t)); }
    double lambda(int64_t t) const { return std::log(std::sqrt(this->abar(t)) / sigma(t)); }

    Tensor<T> x0_prev_;
    double h_prev_ = 0.0;
};

// Euler's and Heun's methods on the probability-flow ODE (Karras et al. 2022, Algorithm 1)
// in the variables of the VP process: sigma = sqrt(1/alpha_bar - 1), x_tilde = x / sqrt(alpha_bar),
// dx_tilde / dsigma = eps_hat. Heun calls the model again at the Euler point and steps with
// the mean of both slopes (the trapezoid); its calls go t_1, t_2, t_2, t_3, t_3, ..., t_N, t_N.
// The last step reaches sigma = 0: x_0 = x0_hat. With clip_x0, eps_hat is the one of the
// clamped x_0 hat (as DDIM's): an undertrained model's eps_hat at high noise otherwise
// throws the path far outside the data's range.
template <class T>
class KarrasOdeSampler : public ProcessSampler<T> {
public:
    KarrasOdeSampler(const Schedule& s, const Parametrization& p, const SamplerOptions& o, bool heun)
        : ProcessSampler<T>(s, p, o), heun_(heun) {
        this->set_timesteps(timestep_grid(s, o.steps, o.spacing));
    }
    void set_timesteps(const std::vector<int64_t>& grid) override {
        ProcessSampler<T>::set_timesteps(grid);
        if (!heun_) return;
        std::vector<int64_t> plan = {grid.front()};  // then each later timestep twice: correct, then predict
        for (size_t i = 1; i < grid.size(); ++i) plan.insert(plan.end(), {grid[i], grid[i]});
        this->set_plan(plan);
    }

protected:
    Tensor<T> update(const Tensor<T>& x, int64_t t, const Tensor<T>& out) override {
        const Tensor<T> eps = this->predict(x, t, out, this->o_.clip_x0).pred_eps.value();
        const size_t call = this->next_call();
        const bool correcting = heun_ && call % 2 == 1;
        if (correcting) {  // x is the Euler point at t: average the slopes at both ends
            const Tensor<T> xt = x_tilde_ + (0.5 * dsigma_) * (slope_ + eps);
            return std::sqrt(this->abar(t)) * xt;
        }
        const size_t i = this->index_of(t);
        if (i + 1 == this->grid_.size()) return this->pred_x0_;
        const int64_t next = this->grid_[i + 1];
        x_tilde_ = (1.0 / std::sqrt(this->abar(t))) * x;
        slope_ = eps;
        dsigma_ = sigma(next) - sigma(t);
        return std::sqrt(this->abar(next)) * (x_tilde_ + dsigma_ * eps);
    }

private:
    double sigma(int64_t t) const { return std::sqrt(1.0 / this->abar(t) - 1.0); }

    bool heun_;
    Tensor<T> x_tilde_, slope_;
    double dsigma_ = 0.0;
};

// Predictor-corrector for the VP process (Song et al. 2021, Algorithm 3, with the corrector
// of Algorithm 5): an ancestral step to t-1, then corrector_steps Langevin steps
// x += e score + sqrt(2 e) z at t-1, score = -eps_hat / sqrt(1 - alpha_bar),
// e = 2 alpha (r |z| / |score|)^2 with the norms averaged over the batch. Calls go
// T-1, (T-2 x corrector_steps), T-2, ..., (0 x corrector_steps), 0.
template <class T>
class PredictorCorrectorSampler : public DdpmSampler<T> {
public:
    PredictorCorrectorSampler(const Schedule& s, const Parametrization& p, const SamplerOptions& o) : DdpmSampler<T>(s, p, o) {
        set_timesteps(this->grid_);
    }
    void set_timesteps(const std::vector<int64_t>& grid) override {
        DdpmSampler<T>::set_timesteps(grid);
        std::vector<int64_t> plan;
        for (int64_t t : grid) {
            for (int64_t j = 0; t != grid.front() && j < this->o_.corrector_steps; ++j) plan.push_back(t);
            plan.push_back(t);
        }
        this->set_plan(plan);
    }

protected:
    Tensor<T> update(const Tensor<T>& x, int64_t t, const Tensor<T>& out) override {
        const size_t call = this->next_call();
        const int64_t period = this->o_.corrector_steps + 1;  // every call but the first comes in such runs
        const bool predictor = call == 0 || (static_cast<int64_t>(call) - 1) % period == period - 1;
        if (predictor) return this->ancestral(x, t, out, this->o_.clip_x0);
        const Tensor<T> eps = this->predict(x, t, out, false).pred_eps.value();
        const Tensor<T> z = Tensor<T>::randn(x.shape(), this->o_.rng);
        const double inv_sigma = 1.0 / this->s_.sqrt_one_minus_alphas_cumprod[static_cast<size_t>(t)];
        // Step size from the batch's mean norms, as in the authors' code: a per-example ratio
        // is unstable in few dimensions.
        const int64_t B = x.size(0), D = x.numel() / B;
        double z_norm = 0, score_norm = 0;
        for (int64_t b = 0; b < B; ++b) {
            double zz = 0, ee = 0;
            for (int64_t k = b * D; k < (b + 1) * D; ++k) {
                zz += double(z.data()[k]) * z.data()[k];
                ee += double(eps.data()[k]) * eps.data()[k];
            }
            z_norm += std::sqrt(zz) / double(B);
            score_norm += std::sqrt(ee) * inv_sigma / double(B);
        }
        const double e = 2.0 * this->s_.alphas[static_cast<size_t>(t)] * std::pow(this->o_.snr * z_norm / std::max(score_norm, 1e-30), 2);
        return x - (e * inv_sigma) * eps + std::sqrt(2.0 * e) * z;
    }
};

// One entry per sampler: its name, what it is, and how to build it.
template <class T>
struct SamplerEntry {
    std::string name;
    std::string summary;
    bool uses_grid;  // false: the sampler calls the model at every timestep (options.steps unused)
    std::function<std::unique_ptr<ProcessSampler<T>>(const Schedule&, const Parametrization&, const SamplerOptions&)> make;
};

template <class T>
const std::vector<SamplerEntry<T>>& sampler_registry() {
    using S = Schedule;
    using P = Parametrization;
    using O = SamplerOptions;
    static const std::vector<SamplerEntry<T>> registry = {
        {"dpm", "DPM-Solver++(2M), second-order multistep (Lu et al. 2022)", true,
         [](const S& s, const P& p, const O& o) { return std::make_unique<DpmSolverPP2MSampler<T>>(s, p, o); }},
        {"ddim", "DDIM, deterministic at eta 0 (Song, Meng & Ermon 2021)", true,
         [](const S& s, const P& p, const O& o) { return std::make_unique<DdimSampler<T>>(s, p, o); }},
        {"ddpm", "ancestral sampling over every timestep (Ho et al. 2020)", false,
         [](const S& s, const P& p, const O& o) { return std::make_unique<DdpmSampler<T>>(s, p, o); }},
        {"euler", "Euler's method on the probability-flow ODE (Karras et al. 2022)", true,
         [](const S& s, const P& p, const O& o) { return std::make_unique<KarrasOdeSampler<T>>(s, p, o, false); }},
        {"heun", "Heun's method on the probability-flow ODE, 2 calls per step (Karras et al. 2022)", true,
         [](const S& s, const P& p, const O& o) { return std::make_unique<KarrasOdeSampler<T>>(s, p, o, true); }},
        {"pc", "predictor-corrector: ancestral step + Langevin corrector (Song et al. 2021)", false,
         [](const S& s, const P& p, const O& o) { return std::make_unique<PredictorCorrectorSampler<T>>(s, p, o); }},
    };
    return registry;
}

// The names of the registry, in its order (the first is the default).
inline std::vector<std::string> sampler_names() {
    std::vector<std::string> names;
    for (const auto& e : sampler_registry<float>()) names.push_back(e.name);
    return names;
}

// The default sampler: the registry's first.
inline std::string default_sampler() { return sampler_names().front(); }

template <class T>
const SamplerEntry<T>& sampler_entry(const std::string& name) {
    for (const auto& e : sampler_registry<T>())
        if (e.name == name) return e;
    std::string known;
    for (const auto& n : sampler_names()) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown sampler \"" + name + "\" (" + known + ")");
}

// The sampler of that name, on the grid of options.steps and options.spacing.
template <class T>
std::unique_ptr<ProcessSampler<T>> make_sampler(const std::string& name, const Schedule& s, const Parametrization& p,
                                                const SamplerOptions& o = {}) {
    return sampler_entry<T>(name).make(s, p, o);
}

}  // namespace diffusion
DDPMKIT_END_NAMESPACE
