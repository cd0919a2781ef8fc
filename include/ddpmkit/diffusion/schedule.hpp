// ddpmkit — noise schedules: the betas of the forward process and every coefficient
// derived from them, computed once in double.
//
// Index t = 0..T-1 in code is timestep t+1 of the papers: alphas_cumprod[0] = 1 - beta_1.
// Names follow improved-diffusion (Nichol & Dhariwal 2021).
#pragma once

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "ddpmkit/config.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace diffusion {

constexpr double kPi = 3.14159265358979323846;

class Schedule {
public:
    // Linear betas from 1e-4 to 0.02 at T = 1000 (Ho et al. 2020, sec. 4), both ends
    // scaled by 1000/T so that other T keep the shape of alpha_bar over t/T.
    static Schedule linear(int64_t T = 1000) {
        check_steps(T);
        const double scale = 1000.0 / static_cast<double>(T), lo = scale * 1e-4, hi = scale * 0.02;
        std::vector<double> betas(static_cast<size_t>(T));
        for (int64_t t = 0; t < T; ++t) betas[static_cast<size_t>(t)] = T == 1 ? lo : lo + (hi - lo) * double(t) / double(T - 1);
        return Schedule(betas, "linear");
    }
    // alpha_bar(t) = f(t) / f(0), f(t) = cos((t/T + s) / (1 + s) pi/2)^2, betas clipped at
    // 0.999 (Nichol & Dhariwal 2021, eq. 17).
    static Schedule cosine(int64_t T = 1000, double s = 0.008) {
        check_steps(T);
        auto f = [&](double t) { return std::pow(std::cos((t / double(T) + s) / (1.0 + s) * kPi / 2.0), 2); };
        return from_alpha_bar(T, [&](double t) { return f(t) / f(0.0); }, "cosine");
    }
    // alpha_bar(t) = (sigmoid(end/tau) - sigmoid((start + (end - start) t/T) / tau)) /
    // (sigmoid(end/tau) - sigmoid(start/tau)) (Jabri, Fleet & Chen 2022, the sigmoid schedule).
    static Schedule sigmoid(int64_t T = 1000, double start = -3.0, double end = 3.0, double tau = 1.0) {
        check_steps(T);
        auto sg = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
        const double v_start = sg(start / tau), v_end = sg(end / tau);
        return from_alpha_bar(
            T, [&](double t) { return (v_end - sg((start + (end - start) * t / double(T)) / tau)) / (v_end - v_start); },
            "sigmoid");
    }
    // Any betas in (0, 1).
    static Schedule from_betas(const std::vector<double>& betas) { return Schedule(betas, "custom"); }
    // By name: "linear", "cosine" or "sigmoid".
    static Schedule named(const std::string& name, int64_t T) {
        if (name == "linear") return linear(T);
        if (name == "cosine") return cosine(T);
        if (name == "sigmoid") return sigmoid(T);
        throw std::invalid_argument("Schedule: unknown schedule \"" + name + "\" (linear, cosine or sigmoid)");
    }

    int64_t num_steps() const { return static_cast<int64_t>(betas.size()); }
    const std::string& name() const { return name_; }
    // Signal-to-noise ratio alpha_bar / (1 - alpha_bar) at index t.
    double snr(int64_t t) const {
        const double a = alphas_cumprod[static_cast<size_t>(t)];
        return a / (1.0 - a);
    }

    std::vector<double> betas;                          // beta_t
    std::vector<double> alphas;                         // alpha_t = 1 - beta_t
    std::vector<double> alphas_cumprod;                 // alpha_bar_t = prod_{s<=t} alpha_s
    std::vector<double> alphas_cumprod_prev;            // alpha_bar_{t-1}, 1 at t = 0
    std::vector<double> sqrt_alphas_cumprod;            // sqrt(alpha_bar_t)
    std::vector<double> sqrt_one_minus_alphas_cumprod;  // sqrt(1 - alpha_bar_t)
    std::vector<double> log_one_minus_alphas_cumprod;   // log(1 - alpha_bar_t)
    std::vector<double> sqrt_recip_alphas_cumprod;      // 1 / sqrt(alpha_bar_t)
    std::vector<double> sqrt_recipm1_alphas_cumprod;    // sqrt(1 / alpha_bar_t - 1)
    std::vector<double> posterior_variance;             // beta tilde_t (Ho et al. eq. 7)
    std::vector<double> posterior_log_variance_clipped; // log beta tilde_t, with beta tilde_1 for t = 0
    std::vector<double> posterior_mean_coef1;           // of x_0 in mu tilde_t (eq. 7)
    std::vector<double> posterior_mean_coef2;           // of x_t in mu tilde_t (eq. 7)

private:
    Schedule(const std::vector<double>& b, const std::string& name) : betas(b), name_(name) {
        if (betas.empty()) throw std::invalid_argument("Schedule: no betas");
        for (size_t i = 0; i < betas.size(); ++i)
            if (!(betas[i] > 0.0 && betas[i] < 1.0))
                throw std::invalid_argument("Schedule: beta at index " + std::to_string(i) + " = " + std::to_string(betas[i]) +
                                            " is outside (0, 1)");
        const size_t T = betas.size();
        double prod = 1.0;
        for (size_t t = 0; t < T; ++t) {
            alphas.push_back(1.0 - betas[t]);
            alphas_cumprod_prev.push_back(prod);
            prod *= alphas[t];
            alphas_cumprod.push_back(prod);
        }
        for (size_t t = 0; t < T; ++t) {
            const double a = alphas_cumprod[t], a_prev = alphas_cumprod_prev[t];
            sqrt_alphas_cumprod.push_back(std::sqrt(a));
            sqrt_one_minus_alphas_cumprod.push_back(std::sqrt(1.0 - a));
            log_one_minus_alphas_cumprod.push_back(std::log(1.0 - a));
            sqrt_recip_alphas_cumprod.push_back(std::sqrt(1.0 / a));
            sqrt_recipm1_alphas_cumprod.push_back(std::sqrt(1.0 / a - 1.0));
            posterior_variance.push_back(betas[t] * (1.0 - a_prev) / (1.0 - a));  // eq. 7
            posterior_mean_coef1.push_back(betas[t] * std::sqrt(a_prev) / (1.0 - a));
            posterior_mean_coef2.push_back((1.0 - a_prev) * std::sqrt(alphas[t]) / (1.0 - a));
        }
        // beta tilde is 0 at t = 0: its log takes beta tilde_1 instead (improved-diffusion), or
        // beta_0 when there is no t = 1 (T = 1).
        for (size_t t = 0; t < T; ++t)
            posterior_log_variance_clipped.push_back(std::log(t > 0 ? posterior_variance[t] : T > 1 ? posterior_variance[1] : betas[0]));
    }
    template <class F>
    static Schedule from_alpha_bar(int64_t T, const F& alpha_bar, const std::string& name) {
        std::vector<double> betas;
        for (int64_t t = 0; t < T; ++t) betas.push_back(std::min(1.0 - alpha_bar(double(t + 1)) / alpha_bar(double(t)), 0.999));
        return Schedule(betas, name);
    }
    static void check_steps(int64_t T) {
        if (T < 1) throw std::invalid_argument("Schedule: T = " + std::to_string(T) + " steps");
    }
    std::string name_;
};

}  // namespace diffusion
DDPMKIT_END_NAMESPACE
