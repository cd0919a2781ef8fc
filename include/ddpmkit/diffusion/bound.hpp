// ddpmkit — the variational bound of a model on data, in bits per dimension
// (Ho et al. 2020, eq. 5; Nichol & Dhariwal 2021, sec. 2): L_vlb = L_0 + sum_{t=1}^{T-1} L_t + L_T,
// exactly (all T terms: T model calls per image) or as an unbiased estimate from K
// random terms per image.
#pragma once

#include <cmath>
#include <vector>

#include "ddpmkit/config.hpp"
#include "ddpmkit/diffusion/losses.hpp"
#include "ddpmkit/diffusion/process.hpp"
#include "ddpmkit/diffusion/samplers.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace diffusion {

// Per image, in bits/dim.
struct BoundTerms {
    std::vector<double> decoder;  // L_0 = -log p(x_0 | x_1)
    std::vector<double> kl;       // sum of the KL terms L_1 .. L_{T-1}
    std::vector<double> prior;    // L_T = KL(q(x_T | x_0) || N(0, I))
    std::vector<double> total;    // their sum: the bound on -log p(x_0)

    static BoundTerms zeros(int64_t images) {
        const std::vector<double> z(static_cast<size_t>(images));
        return {z, z, z, z};
    }
};

namespace detail {
// Fills in L_T and the totals once the other terms are summed.
template <class T>
void add_prior_and_total(const Schedule& s, const Var<T>& x0, BoundTerms& r) {
    const Var<T> prior = prior_bpd(s, x0);
    for (size_t i = 0; i < r.total.size(); ++i) {
        r.prior[i] = prior.value().data()[i];
        r.total[i] = r.decoder[i] + r.kl[i] + r.prior[i];
    }
}
}  // namespace detail

// All T terms for each image of x0 [B, ...] (data on the 8-bit grid in [-1, 1]).
template <class T>
BoundTerms calc_bpd(const Schedule& s, const Parametrization& p, const NoDeduce<Denoiser<T>>& model, const Tensor<T>& x0, Rng& rng) {
    NoGradGuard no_grad;
    const int64_t B = x0.size(0);
    BoundTerms r = BoundTerms::zeros(B);
    const Var<T> x(x0);
    for (int64_t t = s.num_steps() - 1; t >= 0; --t) {
        const Tensor<int64_t> ts(Shape{B}, t);
        const Var<T> xt = q_sample(s, x, ts, Var<T>(Tensor<T>::randn(x0.shape(), rng)));
        const Var<T> vb = vb_terms_bpd(s, p, Var<T>(model(xt.value(), ts)), x, xt, ts);
        for (int64_t b = 0; b < B; ++b) (t == 0 ? r.decoder : r.kl)[static_cast<size_t>(b)] += vb.value().data()[b];
    }
    detail::add_prior_and_total(s, x, r);
    return r;
}

// The same terms, with the KL sum estimated from K terms per image drawn uniformly from
// t = 1..T-1 (independently per image): sum ~ (T - 1) mean_k L_{t_k}, unbiased. L_0 and L_T
// are exact. Costs K + 1 model calls per image instead of T.
template <class T>
BoundTerms estimate_bpd(const Schedule& s, const Parametrization& p, const NoDeduce<Denoiser<T>>& model, const Tensor<T>& x0,
                        int64_t K, Rng& rng) {
    NoGradGuard no_grad;
    const int64_t B = x0.size(0), T_steps = s.num_steps();
    BoundTerms r = BoundTerms::zeros(B);
    const Var<T> x(x0);
    for (int64_t k = 0; k <= K; ++k) {  // k = K: the decoder term
        Tensor<int64_t> ts({B});
        for (int64_t b = 0; b < B; ++b) ts.data()[b] = k == K || T_steps == 1 ? 0 : 1 + rng.randint(T_steps - 1);
        const Var<T> xt = q_sample(s, x, ts, Var<T>(Tensor<T>::randn(x0.shape(), rng)));
        const Var<T> vb = vb_terms_bpd(s, p, Var<T>(model(xt.value(), ts)), x, xt, ts);
        for (int64_t b = 0; b < B; ++b) {
            const double v = vb.value().data()[b];
            if (k == K)
                r.decoder[static_cast<size_t>(b)] = v;
            else
                r.kl[static_cast<size_t>(b)] += v * double(T_steps - 1) / double(K);
        }
    }
    detail::add_prior_and_total(s, x, r);
    return r;
}

}  // namespace diffusion
DDPMKIT_END_NAMESPACE
