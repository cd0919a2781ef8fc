// ddpmkit — the training objectives of DDPM: L_simple, the terms of the variational
// bound (L_T, L_{t-1}, L_0) in bits per dimension, L_hybrid, and min-SNR-gamma weights.
// Per-example losses have shape [B]: the mean over an image's dimensions.
#pragma once

#include <cmath>
#include <vector>

#include "ddpmkit/autograd/ops.hpp"
#include "ddpmkit/config.hpp"
#include "ddpmkit/diffusion/process.hpp"
#include "ddpmkit/diffusion/schedule.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace diffusion {

constexpr double kLn2 = 0.69314718055994530942;

// Mean over every axis but the first: [B, ...] -> [B].
template <class T>
Var<T> mean_flat(const Var<T>& x) {
    std::vector<int> axes;
    for (int a = 1; a < x.dim(); ++a) axes.push_back(a);
    return axes.empty() ? x : mean(x, axes);
}

// KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)), elementwise, in nats:
// (logvar2 - logvar1 + e^(logvar1 - logvar2) + (mean1 - mean2)^2 e^-logvar2 - 1) / 2.
template <class T>
Var<T> normal_kl(const Var<T>& mean1, const Var<T>& logvar1, const Var<T>& mean2, const Var<T>& logvar2) {
    const Var<T> d = mean1 - mean2;
    return T(0.5) * (logvar2 - logvar1 + exp(logvar1 - logvar2) + d * d * exp(-logvar2) - T(1));
}

// log p(x) of 8-bit data under a Gaussian discretized into its 256 bins (Ho et al. 2020,
// eq. 13): x in [-1, 1] on the grid k/127.5 - 1; bin [x - 1/255, x + 1/255], the end bins
// open to -inf and +inf. Elementwise, in nats. Probabilities below 1e-12 are clamped.
// log_scale is log(std) and broadcasts against x. Upper tails use erfc (Phi(-u)), so
// probabilities far from the mean do not cancel to 0.
template <class T>
Var<T> discretized_gaussian_log_likelihood(const Tensor<T>& x, const Var<T>& mean, const Var<T>& log_scale) {
    if (mean.shape() != x.shape()) throw shape_error("discretized_gaussian_log_likelihood", x.shape(), mean.shape(), "(x, mean) differ");
    const Var<T> ls = log_scale + Var<T>(Tensor<T>(x.shape()));  // broadcast to x's shape
    const int64_t n = x.numel();
    Tensor<T> logp(x.shape()), d_mean(x.shape()), d_ls(x.shape());
    auto cdf = [](double u) { return 0.5 * std::erfc(-u / std::sqrt(2.0)); };       // Phi(u)
    auto pdf = [](double u) { return std::exp(-0.5 * u * u) / std::sqrt(2.0 * kPi); };  // phi(u)
    for (int64_t i = 0; i < n; ++i) {
        const double xi = x.data()[i], inv_std = std::exp(-double(ls.value().data()[i]));
        const double c = xi - double(mean.value().data()[i]);
        const double hi = (c + 1.0 / 255.0) * inv_std, lo = (c - 1.0 / 255.0) * inv_std;
        // P and its derivatives by the bin's upper and lower standardized edges.
        double p, dp_dhi = 0.0, dp_dlo = 0.0;
        if (xi < -0.999) {  // the first bin: (-inf, hi]
            p = cdf(hi);
            dp_dhi = pdf(hi);
        } else if (xi > 0.999) {  // the last bin: [lo, inf)
            p = cdf(-lo);
            dp_dlo = -pdf(lo);
        } else {
            p = c > 0 ? cdf(-lo) - cdf(-hi) : cdf(hi) - cdf(lo);  // subtract the smaller tails
            dp_dhi = pdf(hi);
            dp_dlo = -pdf(lo);
        }
        if (p < 1e-12) {
            logp.data()[i] = static_cast<T>(std::log(1e-12));
            continue;  // clamped: no gradient
        }
        logp.data()[i] = static_cast<T>(std::log(p));
        // hi, lo = (c +- 1/255) e^-ls: d/dmean = -e^-ls, d/dls = -hi or -lo.
        d_mean.data()[i] = static_cast<T>(-(dp_dhi + dp_dlo) * inv_std / p);
        d_ls.data()[i] = static_cast<T>(-(dp_dhi * hi + dp_dlo * lo) / p);
    }
    return Var<T>::make(logp, "discretized_gaussian_log_likelihood", {mean, ls}, [d_mean, d_ls](autograd::Node<T>& self) {
        for (int k = 0; k < 2; ++k) {
            autograd::Node<T>& parent = *self.parents[static_cast<size_t>(k)];
            if (!parent.requires_grad) continue;
            const Tensor<T>& local = k == 0 ? d_mean : d_ls;
            T* g = parent.grad_buffer().data();
            for (int64_t i = 0; i < local.numel(); ++i) g[i] += self.grad.data()[i] * local.data()[i];
        }
    });
}

// L_T = KL(q(x_T | x_0) || N(0, I)) per example, in bits/dim (Ho et al. 2020, eq. 5).
template <class T>
Var<T> prior_bpd(const Schedule& s, const Var<T>& x0) {
    const Tensor<int64_t> last(Shape{x0.size(0)}, s.num_steps() - 1);
    const Gaussian<T> q = q_mean_variance(s, x0, last);
    const Var<T> zero(Tensor<T>::scalar(T(0)));
    return mean_flat(normal_kl(q.mean, q.log_variance, zero, zero)) / static_cast<T>(kLn2);
}

// The bound's term at t per example, in bits/dim (Ho et al. 2020, eq. 5): for t > 0
// L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)); for t = 0 the decoder
// L_0 = -log p(x_0 | x_1). Returns nats converted to bits, averaged over dimensions.
template <class T>
Var<T> vb_terms_bpd(const Schedule& s, const Parametrization& p, const Var<T>& model_out, const Var<T>& x0, const Var<T>& xt,
                    const Tensor<int64_t>& t) {
    const Gaussian<T> q = q_posterior_mean_variance(s, x0, xt, t);
    const PMeanVariance<T> pm = p_mean_variance(s, p, model_out, xt, t);
    const Var<T> kl = mean_flat(normal_kl(q.mean, q.log_variance, pm.mean, pm.log_variance)) / static_cast<T>(kLn2);
    const Var<T> nll =
        -mean_flat(discretized_gaussian_log_likelihood(x0.value(), pm.mean, T(0.5) * pm.log_variance)) / static_cast<T>(kLn2);
    Tensor<T> first({t.numel()});  // 1 where t = 0: that example's term is the decoder's
    for (int64_t b = 0; b < t.numel(); ++b) first.data()[b] = t.data()[b] == 0 ? T(1) : T(0);
    const Var<T> is_first(first);
    return is_first * nll + (T(1) - is_first) * kl;
}

enum class LossType {
    Simple,  // L_simple: MSE of the prediction (Ho et al. 2020, eq. 14)
    Hybrid,  // L_simple + 0.001 L_vlb, the mean's gradient stopped in L_vlb (Nichol & Dhariwal, sec. 3.1)
    Kl       // L_vlb alone
};

template <class T>
struct TrainingLoss {
    Var<T> loss;  // [B]: what to minimize (before timestep and min-SNR weights)
    Var<T> mse;   // [B]: the L_simple part (undefined for Kl)
    Var<T> vb;    // [B]: the bound's term in bits/dim (undefined for Simple)
};

// The per-example loss of one training step: the model saw x_t = q_sample(x0, t, noise)
// and returned model_out.
template <class T>
TrainingLoss<T> training_losses(const Schedule& s, const Parametrization& p, LossType type, const Var<T>& model_out,
                                const Var<T>& x0, const Var<T>& xt, const Tensor<int64_t>& t, const Var<T>& noise) {
    TrainingLoss<T> r;
    const auto [out, var_out] = split_model_output(p, model_out, xt.shape());
    const double T_steps = static_cast<double>(s.num_steps());
    if (type != LossType::Kl) {
        Var<T> target;
        switch (p.output) {
            case ModelOutput::Eps: target = noise; break;
            case ModelOutput::X0: target = x0; break;
            case ModelOutput::V: target = v_from_x0_eps(s, x0, t, noise); break;
        }
        const Var<T> d = out - target;
        r.mse = mean_flat(d * d);
        r.loss = r.mse;
    }
    if (type != LossType::Simple) {
        // In L_hybrid only the variance learns from the bound: the mean part is detached.
        const Var<T> vb_out =
            p.variance == ModelVariance::Learned && type == LossType::Hybrid ? concat<T>({out.detach(), var_out}, 1)
            : type == LossType::Hybrid                                     ? out.detach()
                                                                           : model_out;
        r.vb = vb_terms_bpd(s, p, vb_out, x0, xt, t);
        // One uniformly drawn term estimates L_vlb / T; lambda = 0.001 in the hybrid (per term: T / 1000).
        r.loss = type == LossType::Hybrid ? r.loss + r.vb * static_cast<T>(T_steps / 1000.0) : r.vb * static_cast<T>(T_steps);
    }
    return r;
}

// Min-SNR-gamma loss weights (Hang et al. 2023, eq. 8) for each example's timestep, for
// the MSE of the given parametrization: eps: min(SNR, g) / SNR; x0: min(SNR, g);
// v: min(SNR, g) / (SNR + 1).
template <class T>
Tensor<T> min_snr_weights(const Schedule& s, ModelOutput output, const Tensor<int64_t>& t, double gamma = 5.0) {
    Tensor<T> w({t.numel()});
    for (int64_t b = 0; b < t.numel(); ++b) {
        const double snr = s.snr(t.data()[b]), clipped = std::min(snr, gamma);
        w.data()[b] = static_cast<T>(output == ModelOutput::Eps ? clipped / snr : output == ModelOutput::X0 ? clipped : clipped / (snr + 1.0));
    }
    return w;
}

}  // namespace diffusion
DDPMKIT_END_NAMESPACE
