// Tests of diffusion/ without training: closed forms, Bayes' rule on a grid, an independent
// float64 computation of the bound, and samplers driven by the optimal noise prediction
// E[eps | x_t] of data whose distribution is known (a Gaussian, a mixture of Gaussians).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "ddpmkit/ddpmkit.hpp"
#include "helpers.hpp"

using namespace ddpmkit;
using namespace ddpmkit::diffusion;
using test::message_of;

namespace {

// Data x_0 ~ sum_k w_k N(mu_k, s_k^2 I) in D dimensions. With x_t = a x_0 + b eps
// (a = sqrt(alpha_bar), b = sqrt(1 - alpha_bar)), x_t | k ~ N(a mu_k, v_k I), v_k = a^2 s_k^2 + b^2,
// and E[eps | x_t] = sum_k r_k(x_t) b (x_t - a mu_k) / v_k with r_k the posterior of k.
struct Mixture {
    std::vector<double> w, s;
    std::vector<std::vector<double>> mu;
    size_t dims() const { return mu[0].size(); }

    Denoiser<double> optimal_eps(const Schedule& sched) const {
        return [this, &sched](const TensorD& x, const Tensor<int64_t>& t) {
            const int64_t B = x.size(0), D = static_cast<int64_t>(dims());
            TensorD eps(x.shape());
            for (int64_t i = 0; i < B; ++i) {
                const double a = sched.sqrt_alphas_cumprod[static_cast<size_t>(t(i))];
                const double b = sched.sqrt_one_minus_alphas_cumprod[static_cast<size_t>(t(i))];
                std::vector<double> logr(w.size());
                for (size_t k = 0; k < w.size(); ++k) {
                    const double v = a * a * s[k] * s[k] + b * b;
                    double d2 = 0;
                    for (int64_t j = 0; j < D; ++j) d2 += std::pow(x.data()[i * D + j] - a * mu[k][static_cast<size_t>(j)], 2);
                    logr[k] = std::log(w[k]) - 0.5 * D * std::log(v) - 0.5 * d2 / v;
                }
                const double m = *std::max_element(logr.begin(), logr.end());
                double z = 0;
                for (double& l : logr) z += (l = std::exp(l - m));
                for (int64_t j = 0; j < D; ++j) {
                    double e = 0;
                    for (size_t k = 0; k < w.size(); ++k) {
                        const double v = a * a * s[k] * s[k] + b * b;
                        e += logr[k] / z * b * (x.data()[i * D + j] - a * mu[k][static_cast<size_t>(j)]) / v;
                    }
                    eps.data()[i * D + j] = e;
                }
            }
            return eps;
        };
    }
};

const Mixture kGaussian{{1.0}, {0.4}, {{0.5, -0.3}}};
const Mixture kThreeBlobs{{0.5, 0.3, 0.2}, {0.08, 0.08, 0.08}, {{-0.6, -0.6}, {0.6, -0.5}, {0.0, 0.6}}};

struct Moments {
    std::vector<double> mean, var;
};
Moments moments(const TensorD& x) {
    const int64_t N = x.size(0), D = x.size(1);
    Moments m{std::vector<double>(static_cast<size_t>(D)), std::vector<double>(static_cast<size_t>(D))};
    for (int64_t j = 0; j < D; ++j) {
        double s = 0, ss = 0;
        for (int64_t i = 0; i < N; ++i) s += x(i, j);
        const double mu = s / N;
        for (int64_t i = 0; i < N; ++i) ss += (x(i, j) - mu) * (x(i, j) - mu);
        m.mean[static_cast<size_t>(j)] = mu;
        m.var[static_cast<size_t>(j)] = ss / (N - 1);
    }
    return m;
}

// Fraction of samples nearest to each mixture component.
std::vector<double> component_shares(const Mixture& m, const TensorD& x) {
    std::vector<double> share(m.w.size());
    for (int64_t i = 0; i < x.size(0); ++i) {
        size_t best = 0;
        double best_d = 1e300;
        for (size_t k = 0; k < m.w.size(); ++k) {
            const double d = std::pow(x(i, 0) - m.mu[k][0], 2) + std::pow(x(i, 1) - m.mu[k][1], 2);
            if (d < best_d) best_d = d, best = k;
        }
        share[best] += 1.0 / static_cast<double>(x.size(0));
    }
    return share;
}

struct Counted {
    Denoiser<double> model;
    int64_t calls = 0;
    Denoiser<double> wrap() {
        return [this](const TensorD& x, const Tensor<int64_t>& t) {
            ++calls;
            return model(x, t);
        };
    }
};

// The named sampler from the registry on this grid (none: its own), run to x_0.
TensorD run_sampler(const std::string& name, const Schedule& s, const Parametrization& p, const Denoiser<double>& model, const TensorD& xT,
                    const std::vector<int64_t>& grid, bool clip_x0, double eta = 0.0, Rng rng = Rng(0)) {
    SamplerOptions o;
    o.clip_x0 = clip_x0;
    o.eta = eta;
    o.rng = rng;
    const auto sampler = make_sampler<double>(name, s, p, o);
    if (!grid.empty()) sampler->set_timesteps(grid);
    return sample(*sampler, model, xT);
}

TensorD on_8bit_grid(const Shape& s, uint64_t seed) {
    Rng rng(seed);
    TensorD x(s);
    for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = double(rng.randint(256)) / 127.5 - 1.0;
    return x;
}

}  // namespace

TEST_CASE("diffusion: the linear, cosine and sigmoid schedules and their coefficients") {
    const Schedule lin = Schedule::linear(1000);
    CHECK(lin.betas.front() == doctest::Approx(1e-4));
    CHECK(lin.betas.back() == doctest::Approx(0.02));
    CHECK(lin.alphas_cumprod.back() == doctest::Approx(4.035e-5).epsilon(0.01));  // known value for DDPM's schedule
    for (const Schedule& s : {lin, Schedule::cosine(1000), Schedule::sigmoid(1000), Schedule::linear(50)})
        for (size_t t = 0; t < s.betas.size(); ++t) {
            REQUIRE(s.betas[t] > 0.0);
            REQUIRE(s.betas[t] <= 0.999);
            const double a = s.alphas_cumprod[t], a_prev = s.alphas_cumprod_prev[t];
            REQUIRE(a == doctest::Approx(a_prev * (1 - s.betas[t])).epsilon(1e-14));
            REQUIRE(s.sqrt_recipm1_alphas_cumprod[t] * s.sqrt_alphas_cumprod[t] == doctest::Approx(s.sqrt_one_minus_alphas_cumprod[t]));
            // Ho et al. eq. 7: beta tilde = (1 - a_prev) / (1 - a) beta, and the mean coefficients.
            REQUIRE(s.posterior_variance[t] == doctest::Approx((1 - a_prev) / (1 - a) * s.betas[t]).epsilon(1e-14));
            REQUIRE(s.posterior_mean_coef1[t] == doctest::Approx(s.betas[t] * std::sqrt(a_prev) / (1 - a)).epsilon(1e-14));
            REQUIRE(s.posterior_mean_coef2[t] == doctest::Approx((1 - a_prev) * std::sqrt(s.alphas[t]) / (1 - a)).epsilon(1e-14));
        }
    const Schedule cos = Schedule::cosine(1000);
    auto f = [](double u) { return std::pow(std::cos((u + 0.008) / 1.008 * kPi / 2), 2); };
    CHECK(cos.alphas_cumprod[499] == doctest::Approx(f(0.5) / f(0.0)).epsilon(1e-12));  // Nichol & Dhariwal eq. 17
    CHECK(Schedule::sigmoid(1000).alphas_cumprod[499] == doctest::Approx(0.5).epsilon(1e-9));  // symmetric around t = T/2
    CHECK_THROWS_WITH_AS(Schedule::from_betas({0.1, 1.0}), doctest::Contains("index 1"), std::invalid_argument);
    CHECK_THROWS_AS(Schedule::named("quadratic", 10), std::invalid_argument);
}

TEST_CASE("diffusion: changing T keeps each schedule's shape of alpha_bar over t/T") {
    for (const std::string name : {"linear", "cosine", "sigmoid"}) {
        const Schedule a = Schedule::named(name, 1000), b = Schedule::named(name, 250);
        for (double u : {0.1, 0.25, 0.5, 0.75, 0.9}) {
            INFO(name << " at t/T = " << u);
            CHECK(std::abs(a.alphas_cumprod[static_cast<size_t>(u * 1000) - 1] - b.alphas_cumprod[static_cast<size_t>(u * 250) - 1]) < 0.01);
        }
    }
}

TEST_CASE("diffusion: q_step (eq. 2) taken t times matches the closed form q(x_t | x_0) (eq. 4)") {
    const Schedule s = Schedule::linear(1000);
    const int64_t N = 20000;
    Rng rng(1);
    TensorD x(Shape{N}, 0.7);
    for (int64_t t = 0; t < 300; ++t) {  // x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) z   (Ho et al. eq. 2)
        const TensorD z = TensorD::randn({N}, rng);
        x = q_step(s, x, Tensor<int64_t>(Shape{N}, t), z);
        if (t == 9 || t == 299) {
            double m = 0, v = 0;
            for (int64_t i = 0; i < N; ++i) m += x(i) / N;
            for (int64_t i = 0; i < N; ++i) v += (x(i) - m) * (x(i) - m) / (N - 1);
            const Gaussian<double> q = q_mean_variance(s, VarD(TensorD({1}, {0.7})), Tensor<int64_t>({1}, {t}));
            const double sd = std::sqrt(q.variance.item());
            CHECK(std::abs(m - q.mean.item()) < 5 * sd / std::sqrt(double(N)));
            CHECK(std::abs(v - q.variance.item()) < 5 * q.variance.item() * std::sqrt(2.0 / N));
        }
    }
    // q_sample is eq. 4 for a given noise.
    const VarD x0(TensorD({2, 1}, {0.5, -1.0})), eps(TensorD({2, 1}, {1.0, 2.0}));
    const Tensor<int64_t> t({2}, {0, 999});
    const TensorD xt = q_sample(s, x0, t, eps).value();
    CHECK(xt(0, 0) == doctest::Approx(std::sqrt(s.alphas_cumprod[0]) * 0.5 + std::sqrt(1 - s.alphas_cumprod[0])));
    CHECK(xt(1, 0) == doctest::Approx(-std::sqrt(s.alphas_cumprod[999]) + 2 * std::sqrt(1 - s.alphas_cumprod[999])));
    // q_step is eq. 2 for a given noise, per example; the tensor forms equal the Var forms.
    const TensorD up = q_step(s, x0.value(), t, eps.value());
    CHECK(up(0, 0) == doctest::Approx(std::sqrt(1 - s.betas[0]) * 0.5 + std::sqrt(s.betas[0])));
    CHECK(up(1, 0) == doctest::Approx(-std::sqrt(1 - s.betas[999]) + 2 * std::sqrt(s.betas[999])));
    CHECK(q_sample(s, x0.value(), t, eps.value())(1, 0) == xt(1, 0));
    CHECK_THROWS_WITH_AS(q_step(s, x0.value(), t, TensorD({3, 1})), doctest::Contains("q_step"), ShapeError);
}

TEST_CASE("diffusion: the posterior q(x_{t-1} | x_t, x_0) is Bayes' rule computed on a grid") {
    const Schedule s = Schedule::cosine(100);
    for (int64_t t : {1, 10, 60}) {
        const double x0 = 0.3, xt = -0.4;
        const double m_prior = std::sqrt(s.alphas_cumprod[static_cast<size_t>(t - 1)]) * x0, v_prior = 1 - s.alphas_cumprod[static_cast<size_t>(t - 1)];
        const double alpha = s.alphas[static_cast<size_t>(t)], beta = s.betas[static_cast<size_t>(t)];
        // q(y | x0) q(x_t | y) on a fine grid of y = x_{t-1} that covers both factors, normalized numerically.
        auto log_joint = [&](double y) {
            return -0.5 * (y - m_prior) * (y - m_prior) / v_prior - 0.5 * std::pow(xt - std::sqrt(alpha) * y, 2) / beta;
        };
        const double lo = std::min(m_prior - 12 * std::sqrt(v_prior), (xt - 12 * std::sqrt(beta)) / std::sqrt(alpha));
        const double hi = std::max(m_prior + 12 * std::sqrt(v_prior), (xt + 12 * std::sqrt(beta)) / std::sqrt(alpha));
        const double dy = (hi - lo) / 1000000;
        double peak = -1e300;
        for (double y = lo; y <= hi; y += dy) peak = std::max(peak, log_joint(y));
        double z = 0, m = 0, m2 = 0;
        for (double y = lo; y <= hi; y += dy) {
            const double p = std::exp(log_joint(y) - peak);
            z += p;
            m += p * y;
            m2 += p * y * y;
        }
        m /= z;
        const double var = m2 / z - m * m;
        const Gaussian<double> q = q_posterior_mean_variance(s, VarD(TensorD({1}, {x0})), VarD(TensorD({1}, {xt})), Tensor<int64_t>({1}, {t}));
        INFO("t " << t);
        CHECK(q.mean.item() == doctest::Approx(m).epsilon(1e-6));
        CHECK(q.variance.item() == doctest::Approx(var).epsilon(1e-6));
    }
}

TEST_CASE("diffusion: normal_kl is 0 between equal Gaussians, positive otherwise, and matches its closed form") {
    Rng rng(2);
    const VarD m(TensorD::randn({10}, rng)), lv(TensorD::randn({10}, rng));
    const TensorD same = normal_kl(m, lv, m, lv).value();
    for (int64_t i = 0; i < 10; ++i) CHECK(same(i) == doctest::Approx(0.0).scale(1.0).epsilon(1e-15));
    const VarD m2(TensorD::randn({10}, rng)), lv2(TensorD::randn({10}, rng));
    const TensorD kl = normal_kl(m, lv, m2, lv2).value();
    for (int64_t i = 0; i < 10; ++i) CHECK(kl(i) > 0.0);
    // KL(N(0, 1) || N(1, e^2)) = 1 - 1/2 + e^-2 / 2 + e^-2 / 2 = 1/2 + e^-2
    const VarD zero(TensorD::scalar(0.0)), one(TensorD::scalar(1.0)), two(TensorD::scalar(2.0));
    CHECK(normal_kl(zero, zero, one, two).item() == doctest::Approx(0.5 + std::exp(-2.0)).epsilon(1e-14));
}

TEST_CASE("diffusion: the discretized Gaussian likelihood sums to 1 over the 256 bins, and its gradient") {
    for (double mean : {-1.3, -0.2, 0.0, 0.71, 1.05})
        for (double log_scale : {-7.0, -3.0, -0.5, 1.0}) {
            TensorD bins({256});
            for (int k = 0; k < 256; ++k) bins(k) = k / 127.5 - 1.0;
            const TensorD logp = discretized_gaussian_log_likelihood(bins, VarD(TensorD({256}, mean)), VarD(TensorD::scalar(log_scale))).value();
            double total = 0;
            for (int k = 0; k < 256; ++k) total += std::exp(logp(k));
            INFO("mean " << mean << " log_scale " << log_scale);
            // exact but for bins clamped at 1e-12, which add at most 256e-12
            CHECK(total == doctest::Approx(1.0).epsilon(1e-9));
        }
    const TensorD x = on_8bit_grid({2, 6}, 3);
    const GradcheckResult r = gradcheck(
        [&](const std::vector<VarD>& v) { return discretized_gaussian_log_likelihood(x, v[0], v[1]); },
        {VarD(x.clone(), true), VarD(TensorD({2, 1}, {-2.5, -1.0}), true)});
    // the mean sits exactly on the data, where the bin's probability is flat: perturb it
    Rng rng(4);
    const GradcheckResult r2 = gradcheck(
        [&](const std::vector<VarD>& v) { return discretized_gaussian_log_likelihood(x, v[0], v[1]); },
        {VarD(TensorD::rand({2, 6}, rng, -1, 1), true), VarD(TensorD({2, 6}, -1.5), true)});
    INFO(r.message << r2.message);
    CHECK(r.ok);
    CHECK(r2.ok);
}

TEST_CASE("diffusion: every term of the bound is non-negative") {
    const Schedule s = Schedule::linear(100);
    const TensorD x0 = on_8bit_grid({4, 2}, 5);
    Rng rng(6);
    const Mixture data{{1.0}, {0.5}, {{0.0, 0.0}}};
    for (ModelVariance var : {ModelVariance::FixedSmall, ModelVariance::FixedLarge}) {
        const BoundTerms b = calc_bpd(s, Parametrization{ModelOutput::Eps, var}, data.optimal_eps(s), x0, rng);
        for (size_t i = 0; i < 4; ++i) {
            CHECK(b.prior[i] >= 0.0);
            CHECK(b.kl[i] >= 0.0);
            CHECK(b.decoder[i] >= 0.0);
            CHECK(b.total[i] == doctest::Approx(b.prior[i] + b.kl[i] + b.decoder[i]));
        }
    }
}

TEST_CASE("diffusion: the bound of a small fixed case equals a plain float64 computation") {
    // T = 4, three pixels, the model eps_hat = 0.5 x_t, variance beta tilde (clipped at t = 0).
    const std::vector<double> betas = {0.1, 0.2, 0.3, 0.4};
    const Schedule s = Schedule::from_betas(betas);
    const TensorD x0({1, 3}, {-1.0, 153 / 127.5 - 1.0, 1.0});
    const Denoiser<double> model = [](const TensorD& x, const Tensor<int64_t>&) {
        TensorD e(x.shape());
        for (int64_t i = 0; i < x.numel(); ++i) e.data()[i] = 0.5 * x.data()[i];
        return e;
    };
    Rng rng(7);
    const BoundTerms ours = calc_bpd(s, Parametrization{ModelOutput::Eps, ModelVariance::FixedSmall}, model, x0, rng);

    // The same, written out: the noise is drawn in the same order (t = 3, 2, 1, 0).
    Rng again(7);
    double abar[4], prod = 1;
    for (int t = 0; t < 4; ++t) abar[t] = (prod *= 1 - betas[static_cast<size_t>(t)]);
    auto Phi = [](double u) { return 0.5 * std::erfc(-u / std::sqrt(2.0)); };
    double kl_sum = 0, decoder = 0;
    for (int t = 3; t >= 0; --t) {
        const TensorD z = TensorD::randn({1, 3}, again);
        const double a_prev = t > 0 ? abar[t - 1] : 1.0, beta = betas[static_cast<size_t>(t)];
        const double var_post = beta * (1 - a_prev) / (1 - abar[t]);
        const double var_model = t > 0 ? var_post : betas[1] * (1 - abar[0]) / (1 - abar[1]);  // clipped at t = 0
        double term = 0;
        for (int j = 0; j < 3; ++j) {
            const double x = x0(0, j), xt = std::sqrt(abar[t]) * x + std::sqrt(1 - abar[t]) * z(0, j);
            const double x0_hat = (xt - std::sqrt(1 - abar[t]) * 0.5 * xt) / std::sqrt(abar[t]);
            const double c1 = beta * std::sqrt(a_prev) / (1 - abar[t]), c2 = (1 - a_prev) * std::sqrt(1 - beta) / (1 - abar[t]);
            const double mu_model = c1 * x0_hat + c2 * xt;
            if (t > 0) {
                const double mu_post = c1 * x + c2 * xt;
                term += 0.5 * (std::log(var_model / var_post) + var_post / var_model + std::pow(mu_post - mu_model, 2) / var_model - 1);
            } else {
                const double sd = std::sqrt(var_model);
                const double up = x > 0.999 ? 1.0 : Phi((x + 1 / 255.0 - mu_model) / sd);
                const double down = x < -0.999 ? 0.0 : Phi((x - 1 / 255.0 - mu_model) / sd);
                term += -std::log(up - down);
            }
        }
        (t > 0 ? kl_sum : decoder) += term / 3 / std::log(2.0);
    }
    double prior = 0;
    for (int j = 0; j < 3; ++j) {
        const double m = std::sqrt(abar[3]) * x0(0, j), v = 1 - abar[3];
        prior += 0.5 * (-std::log(v) + v + m * m - 1) / 3 / std::log(2.0);
    }
    CHECK(ours.kl[0] == doctest::Approx(kl_sum).epsilon(1e-10));
    CHECK(ours.decoder[0] == doctest::Approx(decoder).epsilon(1e-8));
    CHECK(ours.prior[0] == doctest::Approx(prior).epsilon(1e-12));
    CHECK(ours.total[0] == doctest::Approx(kl_sum + decoder + prior).epsilon(1e-9));
}

TEST_CASE("diffusion: the estimate of the bound from K terms is unbiased") {
    const Schedule s = Schedule::linear(50);
    const Mixture data{{1.0}, {0.3}, {{0.1, -0.1}}};
    const TensorD x0 = on_8bit_grid({1, 2}, 8);
    const Parametrization p{ModelOutput::Eps, ModelVariance::FixedLarge};
    // The exact KL sum, averaged over the forward noise; then the estimate from 5 terms.
    TensorD many({400, 2});
    for (int64_t i = 0; i < 400; ++i) many(i, 0) = x0(0, 0), many(i, 1) = x0(0, 1);
    Rng rng(9);
    const BoundTerms exact = calc_bpd(s, p, data.optimal_eps(s), many, rng);
    const BoundTerms est = estimate_bpd(s, p, data.optimal_eps(s), many, 5, rng);
    auto mean_sd = [](const std::vector<double>& v) {
        double m = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size()), ss = 0;
        for (double x : v) ss += (x - m) * (x - m);
        return std::make_pair(m, std::sqrt(ss / double(v.size() - 1)));
    };
    const auto [me, se] = mean_sd(exact.kl);
    const auto [mk, sk] = mean_sd(est.kl);
    CHECK(std::abs(me - mk) < 5 * std::sqrt(se * se + sk * sk) / std::sqrt(400.0));
    CHECK(sk > se);  // five terms vary more than fifty
    CHECK(est.prior[0] == doctest::Approx(exact.prior[0]));
}

TEST_CASE("diffusion: parametrizations convert into each other and give the same p_mean_variance") {
    const Schedule s = Schedule::cosine(200);
    Rng rng(10);
    const VarD x0(TensorD::rand({3, 4}, rng, -1, 1)), eps(TensorD::randn({3, 4}, rng));
    const Tensor<int64_t> t({3}, {0, 57, 199});
    const VarD xt = q_sample(s, x0, t, eps);
    const VarD v = v_from_x0_eps(s, x0, t, eps);
    auto close = [](const VarD& a, const VarD& b) {
        for (int64_t i = 0; i < a.numel(); ++i) REQUIRE(a.value().data()[i] == doctest::Approx(b.value().data()[i]).epsilon(1e-9).scale(1.0));
    };
    close(x0_from_eps(s, xt, t, eps), x0);
    close(eps_from_x0(s, xt, t, x0), eps);
    close(x0_from_v(s, xt, t, v), x0);
    close(eps_from_v(s, xt, t, v), eps);
    const PMeanVariance<double> a = p_mean_variance(s, {ModelOutput::Eps, ModelVariance::FixedSmall}, eps, xt, t);
    const PMeanVariance<double> b = p_mean_variance(s, {ModelOutput::X0, ModelVariance::FixedSmall}, x0, xt, t);
    const PMeanVariance<double> c = p_mean_variance(s, {ModelOutput::V, ModelVariance::FixedSmall}, v, xt, t);
    close(a.mean, b.mean);
    close(a.mean, c.mean);
    close(a.mean, q_posterior_mean_variance(s, x0, xt, t).mean);  // the true eps gives the true posterior
    // Learned variance, eq. 15: an output of +1 gives log beta_t, -1 gives log beta tilde_t.
    TensorD out({3, 8});
    for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 8; ++j) out(i, j) = j < 4 ? eps.value()(i, j) : (i == 1 ? 1.0 : -1.0);
    const PMeanVariance<double> l = p_mean_variance(s, {ModelOutput::Eps, ModelVariance::Learned}, VarD(out), xt, t);
    CHECK(l.log_variance.value()(1, 0) == doctest::Approx(std::log(s.betas[57])));
    CHECK(l.log_variance.value()(2, 0) == doctest::Approx(s.posterior_log_variance_clipped[199]));
    CHECK_THROWS_AS(p_mean_variance(s, {ModelOutput::Eps, ModelVariance::Learned}, eps, xt, t), ShapeError);
}

TEST_CASE("diffusion: the fixed large and the learned variance at t = 0 and between the end points") {
    const Schedule s = Schedule::linear(100);
    Rng rng(21);
    const VarD xt(TensorD::randn({3, 2}, rng));
    const Tensor<int64_t> t({3}, {0, 57, 99});
    const PMeanVariance<double> large = p_mean_variance(s, {ModelOutput::Eps, ModelVariance::FixedLarge}, xt, xt, t);
    CHECK(large.log_variance.value()(0, 0) == doctest::Approx(std::log(s.posterior_variance[1])));  // beta_0 is too small
    CHECK(large.log_variance.value()(1, 0) == doctest::Approx(std::log(s.betas[57])));  // [B, 1]: it broadcasts
    // eq. 15: v = (output + 1) / 2 interpolates log beta_t and log beta tilde_t (clipped at t = 0).
    TensorD out({3, 4});
    const double outputs[3] = {0.0, 0.5, -0.2};
    for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 4; ++j) out(i, j) = j < 2 ? 0.0 : outputs[i];
    const PMeanVariance<double> l = p_mean_variance(s, {ModelOutput::Eps, ModelVariance::Learned}, VarD(out), xt, t);
    for (int64_t i = 0; i < 3; ++i) {
        const double v = (outputs[i] + 1) / 2, step = static_cast<double>(t(i));
        const double want = v * std::log(s.betas[size_t(step)]) + (1 - v) * s.posterior_log_variance_clipped[size_t(step)];
        CHECK(l.log_variance.value()(i, 1) == doctest::Approx(want).epsilon(1e-12));
    }
}

TEST_CASE("diffusion: the x_0 and v targets of the MSE, and samplers on x_0- and v-models") {
    const Schedule s = Schedule::linear(1000);
    Rng rng(22);
    const VarD x0(TensorD::rand({4, 2}, rng, -1, 1)), noise(TensorD::randn({4, 2}, rng));
    const Tensor<int64_t> t({4}, {0, 10, 500, 999});
    const VarD xt = q_sample(s, x0, t, noise), v = v_from_x0_eps(s, x0, t, noise);
    for (const auto& [output, right] : {std::pair{ModelOutput::X0, x0}, std::pair{ModelOutput::V, v}}) {
        const Parametrization p{output, ModelVariance::FixedLarge};
        CHECK(sum(training_losses(s, p, LossType::Simple, right, x0, xt, t, noise).mse).item() == doctest::Approx(0.0).scale(1e-12));
        // an output off by 0.5 everywhere costs 0.25 per example
        const TrainingLoss<double> off = training_losses(s, p, LossType::Simple, right + 0.5, x0, xt, t, noise);
        for (int64_t i = 0; i < 4; ++i) CHECK(off.mse.value()(i) == doctest::Approx(0.25));
    }
    // The exact model of the three blobs, told as x_0 and as v: DDIM and DPM-Solver++ give the
    // eps-model's samples.
    const Denoiser<double> eps_model = kThreeBlobs.optimal_eps(s);
    auto as = [&](ModelOutput output) -> Denoiser<double> {
        return [&, output](const TensorD& x, const Tensor<int64_t>& steps) {
            const VarD e(eps_model(x, steps)), xv(x);
            const VarD x0_hat = x0_from_eps(s, xv, steps, e);
            return (output == ModelOutput::X0 ? x0_hat : v_from_x0_eps(s, x0_hat, steps, e)).value();
        };
    };
    const TensorD xT = TensorD::randn({64, 2}, rng);
    const std::vector<int64_t> grid = timestep_grid(s, 12, Spacing::Uniform);
    const TensorD want = run_sampler("ddim", s, Parametrization{}, eps_model, xT, grid, false, 0.0, rng);
    const TensorD want_dpm = run_sampler("dpm", s, Parametrization{}, eps_model, xT, grid, false);
    for (ModelOutput output : {ModelOutput::X0, ModelOutput::V}) {
        const Parametrization p{output, ModelVariance::FixedLarge};
        const TensorD a = run_sampler("ddim", s, p, as(output), xT, grid, false, 0.0, rng);
        const TensorD b = run_sampler("dpm", s, p, as(output), xT, grid, false);
        double gap = 0;
        for (int64_t i = 0; i < a.numel(); ++i)
            gap = std::max({gap, std::abs(a.data()[i] - want.data()[i]), std::abs(b.data()[i] - want_dpm.data()[i])});
        INFO("output " << static_cast<int>(output) << ": largest gap " << gap);
        CHECK(gap < 1e-6);
    }
}

TEST_CASE("diffusion: L_simple, L_hybrid's stopped gradient, the bound's gradient, min-SNR weights") {
    const Schedule s = Schedule::linear(100);
    Rng rng(11);
    const VarD x0(on_8bit_grid({2, 3, 2, 2}, 12)), noise(TensorD::randn({2, 3, 2, 2}, rng));
    const Tensor<int64_t> t({2}, {0, 40});
    const VarD xt = q_sample(s, x0, t, noise);
    const Parametrization learned{ModelOutput::Eps, ModelVariance::Learned};
    const TensorD out0 = TensorD::randn({2, 6, 2, 2}, rng, 0.0, 0.5);
    // L_simple is the per-example MSE to the noise.
    const Parametrization fixed{};
    const TrainingLoss<double> simple = training_losses(s, fixed, LossType::Simple, VarD(TensorD::zeros({2, 3, 2, 2})), x0, xt, t, noise);
    double want = 0;
    for (int64_t i = 0; i < 12; ++i) want += noise.value().data()[i] * noise.value().data()[i] / 12;
    CHECK(simple.loss.value()(0) == doctest::Approx(want));
    // Hybrid: the mean channels get exactly L_simple's gradient; the variance channels get the bound's.
    VarD out_h(out0.clone(), true), out_s(out0.clone(), true), out_k(out0.clone(), true);
    sum(training_losses(s, learned, LossType::Hybrid, out_h, x0, xt, t, noise).loss).backward();
    sum(training_losses(s, learned, LossType::Simple, out_s, x0, xt, t, noise).loss).backward();
    sum(training_losses(s, learned, LossType::Kl, out_k, x0, xt, t, noise).loss).backward();
    for (int64_t b = 0; b < 2; ++b)
        for (int64_t c = 0; c < 6; ++c)
            for (int64_t i = 0; i < 4; ++i) {
                const double h = out_h.grad()(b, c, i / 2, i % 2);
                if (c < 3)
                    REQUIRE(h == doctest::Approx(out_s.grad()(b, c, i / 2, i % 2)).epsilon(1e-12));
                else  // Kl's loss is T vb, the hybrid's vb T / 1000
                    REQUIRE(h == doctest::Approx(out_k.grad()(b, c, i / 2, i % 2) / 1000.0).epsilon(1e-9).scale(1e-12));
            }
    // The bound's terms pass gradcheck through p_mean_variance, the KL and the decoder.
    const GradcheckResult r = gradcheck([&](const std::vector<VarD>& v) { return vb_terms_bpd(s, learned, v[0], x0, xt, t); },
                                        {VarD(out0.clone(), true)});
    INFO(r.message);
    CHECK(r.ok);
    const TensorD w = min_snr_weights<double>(s, ModelOutput::Eps, t, 5.0);
    CHECK(w(0) == doctest::Approx(5.0 / s.snr(0)));  // SNR_0 = 9999 > 5
    CHECK(w(1) == doctest::Approx(std::min(s.snr(40), 5.0) / s.snr(40)));
    CHECK(min_snr_weights<double>(s, ModelOutput::V, t, 5.0)(0) == doctest::Approx(5.0 / (s.snr(0) + 1)));
    CHECK(min_snr_weights<double>(s, ModelOutput::X0, t, 5.0)(0) == 5.0);
}

TEST_CASE("diffusion: timestep samplers: uniform, and importance by the loss's second moment") {
    Rng rng(13);
    const UniformSampler uniform(10);
    const TimestepDraw d = uniform.sample(5000, rng);
    std::vector<int> counts(10);
    for (int64_t i = 0; i < 5000; ++i) {
        counts[static_cast<size_t>(d.t(i))]++;
        REQUIRE(d.weights(i) == 1.0f);
    }
    for (int c : counts) CHECK(std::abs(c - 500) < 5 * std::sqrt(5000 * 0.1 * 0.9));
    LossSecondMomentSampler importance(10, 2, 0.0);
    CHECK(!importance.warmed_up());
    for (int round = 0; round < 2; ++round) {
        Tensor<int64_t> t({10});
        std::vector<double> losses(10);
        for (int64_t i = 0; i < 10; ++i) t(i) = i, losses[static_cast<size_t>(i)] = double(i + 1);  // E[L_t^2]^(1/2) = t + 1
        importance.update(t, losses);
    }
    CHECK(importance.warmed_up());
    const std::vector<double> p = importance.probabilities();
    CHECK(p[9] == doctest::Approx(10.0 / 55.0));
    CHECK(p[0] == doctest::Approx(1.0 / 55.0));
    const TimestepDraw di = importance.sample(20000, rng);
    std::fill(counts.begin(), counts.end(), 0);
    for (int64_t i = 0; i < 20000; ++i) counts[static_cast<size_t>(di.t(i))]++;
    CHECK(std::abs(counts[9] / 20000.0 - 10.0 / 55.0) < 0.015);
    CHECK(di.weights(0) == doctest::Approx(1.0 / (10 * p[static_cast<size_t>(di.t(0))])));

    // Every recorded loss 0 (a model that is exact, or a loss of zeros): uniform, not 0 / 0.
    LossSecondMomentSampler zeros(4, 1, 0.0);
    Tensor<int64_t> all({4});
    for (int64_t i = 0; i < 4; ++i) all(i) = i;
    zeros.update(all, std::vector<double>(4, 0.0));
    REQUIRE(zeros.warmed_up());
    CHECK(zeros.probabilities() == std::vector<double>(4, 0.25));
}

TEST_CASE("diffusion: T = 1: the clipped posterior log-variance is log beta_0, not log 0") {
    const Schedule s = Schedule::from_betas({0.3});
    REQUIRE(s.posterior_variance[0] == 0.0);
    CHECK(s.posterior_log_variance_clipped[0] == doctest::Approx(std::log(0.3)));
    const Schedule two = Schedule::from_betas({0.1, 0.2});
    CHECK(two.posterior_log_variance_clipped[0] == doctest::Approx(std::log(two.posterior_variance[1])));
}

TEST_CASE("diffusion: timestep grids have exactly the requested steps, strictly decreasing from T-1 to 0") {
    const Schedule s = Schedule::linear(1000);
    for (Spacing sp : {Spacing::Uniform, Spacing::Quadratic, Spacing::Karras})
        for (int64_t n : {2, 3, 10, 50, 999, 1000}) {
            const std::vector<int64_t> g = timestep_grid(s, n, sp);
            REQUIRE(static_cast<int64_t>(g.size()) == n);
            REQUIRE(g.front() == 999);
            REQUIRE(g.back() == 0);
            for (size_t i = 1; i < g.size(); ++i) REQUIRE(g[i] < g[i - 1]);
        }
    CHECK(timestep_grid(s, 4, Spacing::Uniform) == std::vector<int64_t>{999, 666, 333, 0});
    CHECK(timestep_grid(s, 4, Spacing::Quadratic) == std::vector<int64_t>{999, 444, 111, 0});  // (k/3)^2 999
    // Karras: sigma = sqrt(1/alpha_bar - 1) spaced evenly in sigma^(1/7) from sigma_0 to sigma_999; each
    // grid point is the timestep whose sigma is nearest (0 and 999 at the ends).
    const std::vector<int64_t> karras = timestep_grid(s, 3, Spacing::Karras);
    auto sigma = [&](int64_t t) { return std::sqrt(1.0 / s.alphas_cumprod[size_t(t)] - 1.0); };
    const double mid = std::pow(0.5 * (std::pow(sigma(0), 1 / 7.0) + std::pow(sigma(999), 1 / 7.0)), 7.0);
    REQUIRE(karras.size() == 3);
    CHECK(karras.front() == 999);
    CHECK(karras.back() == 0);
    // sigma grows with t: nearer than both neighbours is nearest of all
    CHECK(std::abs(sigma(karras[1]) - mid) <= std::abs(sigma(karras[1] - 1) - mid));
    CHECK(std::abs(sigma(karras[1]) - mid) <= std::abs(sigma(karras[1] + 1) - mid));
    CHECK_THROWS_AS(timestep_grid(s, 1001, Spacing::Uniform), std::invalid_argument);
}

TEST_CASE("diffusion: every sampler, driven by the optimal noise prediction, reproduces a Gaussian's mean and variance") {
    const Schedule s = Schedule::linear(1000);
    const Parametrization p{ModelOutput::Eps, ModelVariance::FixedLarge};
    const int64_t N = 4000;
    const std::vector<int64_t> grid50 = timestep_grid(s, 50, Spacing::Uniform), grid20 = timestep_grid(s, 20, Spacing::Karras);
    // eta = 1 adds the posterior's small variance at every step: with coarse steps its samples
    // are too narrow (Bao et al. 2022), so it gets a finer grid.
    const std::vector<int64_t> grid250 = timestep_grid(s, 250, Spacing::Uniform);
    struct Run {
        const char* sampler;
        std::vector<int64_t> grid;  // empty: the sampler's own (every timestep)
        double eta;
        int64_t calls;
    };
    const std::vector<Run> runs = {
        {"ddpm", {}, 0.0, 1000},  {"ddim", grid50, 0.0, 50}, {"ddim", grid250, 1.0, 250}, {"dpm", grid20, 0.0, 20},
        {"euler", grid50, 0.0, 50}, {"heun", grid20, 0.0, 39}, {"pc", {}, 0.0, 1999},
    };
    for (const std::string& name : sampler_names())  // every sampler of the registry is here
        CHECK(std::any_of(runs.begin(), runs.end(), [&](const Run& r) { return r.sampler == name; }));
    for (const Run& run : runs) {
        Rng rng(14);
        Counted model{kGaussian.optimal_eps(s)};
        const TensorD xT = TensorD::randn({N, 2}, rng);
        const Moments m = moments(run_sampler(run.sampler, s, p, model.wrap(), xT, run.grid, false, run.eta, rng));
        INFO(run.sampler << " eta " << run.eta << ": mean " << m.mean[0] << ", " << m.mean[1] << "; variance " << m.var[0] << ", " << m.var[1]);
        CHECK(model.calls == run.calls);
        // sampling tolerance: 5 standard errors, plus 0.01 of discretization bias
        for (size_t j = 0; j < 2; ++j) {
            CHECK(std::abs(m.mean[j] - kGaussian.mu[0][j]) < 5 * 0.4 / std::sqrt(double(N)) + 0.01);
            CHECK(std::abs(m.var[j] - 0.16) < 5 * 0.16 * std::sqrt(2.0 / N) + 0.01);
        }
    }
}

TEST_CASE("diffusion: samplers reproduce a mixture's component weights") {
    const Schedule s = Schedule::linear(1000);
    const Parametrization p{};
    const int64_t N = 3000;
    const std::vector<int64_t> grid = timestep_grid(s, 30, Spacing::Uniform);
    for (int which = 0; which < 6; ++which) {
        Rng rng(15);
        const Denoiser<double> model = kThreeBlobs.optimal_eps(s);
        const TensorD xT = TensorD::randn({N, 2}, rng);
        const TensorD x = which == 0   ? run_sampler("ddpm", s, p, model, xT, {}, true, 0.0, rng)
                          : which == 1 ? run_sampler("ddim", s, p, model, xT, grid, true, 0.0, rng)
                          : which == 2 ? run_sampler("dpm", s, p, model, xT, grid, true)
                          : which == 3 ? run_sampler("heun", s, p, model, xT, grid, true)
                          : which == 4 ? run_sampler("euler", s, p, model, xT, timestep_grid(s, 100, Spacing::Uniform), true)
                                       : run_sampler("pc", s, p, model, xT, {}, true, 0.0, rng);
        const std::vector<double> share = component_shares(kThreeBlobs, x);
        for (size_t k = 0; k < 3; ++k) {
            INFO("sampler " << which << " component " << k << ": share " << share[k]);
            CHECK(std::abs(share[k] - kThreeBlobs.w[k]) < 5 * std::sqrt(kThreeBlobs.w[k] * (1 - kThreeBlobs.w[k]) / N));
        }
    }
}

TEST_CASE("diffusion: Euler and Heun with clip_x0 follow the clamped x_0 hat and end inside [-1, 1]") {
    const Schedule s = Schedule::linear(1000);
    const Parametrization p{};
    const std::vector<int64_t> grid = timestep_grid(s, 10, Spacing::Uniform);
    // An untrained-like model: its eps_hat = -2 x puts x_0 hat = x (1 + 2 sqrt(1 - a)) / sqrt(a) far outside the data.
    const Denoiser<double> wild = [](const TensorD& x, const Tensor<int64_t>&) {
        TensorD eps(x.shape());
        for (int64_t i = 0; i < x.numel(); ++i) eps.data()[i] = -2.0 * x.data()[i];
        return eps;
    };
    Rng rng(17);
    const TensorD xT = TensorD::randn({256, 2}, rng);
    for (const bool heun : {false, true}) {
        auto run = [&](bool clip) { return heun ? run_sampler("heun", s, p, wild, xT, grid, clip) : run_sampler("euler", s, p, wild, xT, grid, clip); };
        const TensorD clipped = run(true), free = run(false);
        double clipped_max = 0, free_max = 0;
        for (int64_t i = 0; i < xT.numel(); ++i) {
            clipped_max = std::max(clipped_max, std::abs(clipped.data()[i]));
            free_max = std::max(free_max, std::abs(free.data()[i]));
        }
        INFO(std::string(heun ? "heun" : "euler") << ": max |x_0| " << clipped_max << " clipped, " << free_max << " free");
        CHECK(clipped_max <= 1.0 + 1e-12);  // x_0 hat rebuilt from the clamped one's eps_hat: rounding only
        CHECK(clipped_max > 0.5);  // not collapsed to 0
        CHECK(free_max > 10.0);
    }
}

TEST_CASE("diffusion: one-step sampling returns x_0 hat at T-1 with one model call") {
    const Schedule s = Schedule::linear(1000);
    const Parametrization p{ModelOutput::Eps, ModelVariance::FixedLarge};
    const std::vector<int64_t> grid = timestep_grid(s, 1, Spacing::Uniform);
    REQUIRE(grid == std::vector<int64_t>{999});
    Rng rng(18);
    const TensorD xT = TensorD::randn({64, 2}, rng);
    const Denoiser<double> exact = kGaussian.optimal_eps(s);
    const double a = s.sqrt_alphas_cumprod[999], b = s.sqrt_one_minus_alphas_cumprod[999];
    const TensorD eps = exact(xT, Tensor<int64_t>(Shape{64}, 999));
    for (int which = 0; which < 4; ++which) {
        Counted model{exact};
        const TensorD x = which == 0   ? run_sampler("ddim", s, p, model.wrap(), xT, grid, false, 0.0, rng)
                          : which == 1 ? run_sampler("dpm", s, p, model.wrap(), xT, grid, false)
                          : which == 2 ? run_sampler("euler", s, p, model.wrap(), xT, grid, false)
                                       : run_sampler("heun", s, p, model.wrap(), xT, grid, false);
        INFO("sampler " << which);
        CHECK(model.calls == 1);
        double worst = 0;
        for (int64_t i = 0; i < x.numel(); ++i) worst = std::max(worst, std::abs(x.data()[i] - (xT.data()[i] - b * eps.data()[i]) / a));
        CHECK(worst < 1e-9);
    }
}

TEST_CASE("diffusion: DPM-Solver++(2M) takes its first step and its step into t = 0 at first order, where it is DDIM") {
    // DPM-Solver++'s first-order update in the data prediction is DDIM's (Lu et al. 2022, sec. 4.1):
    // on a grid of two steps both are first order, so the two samplers agree; on three, the middle
    // step is second order and they part.
    const Schedule s = Schedule::linear(1000);
    const Parametrization p{};
    const Denoiser<double> exact = kThreeBlobs.optimal_eps(s);
    Rng rng(20);
    const TensorD xT = TensorD::randn({64, 2}, rng);
    auto largest_gap = [&](const std::vector<int64_t>& grid) {
        const TensorD a = run_sampler("dpm", s, p, exact, xT, grid, false);
        const TensorD b = run_sampler("ddim", s, p, exact, xT, grid, false, 0.0, rng);
        double gap = 0;
        for (int64_t i = 0; i < a.numel(); ++i) gap = std::max(gap, std::abs(a.data()[i] - b.data()[i]));
        return gap;
    };
    CHECK(largest_gap({999, 500, 0}) < 1e-12);
    CHECK(largest_gap({999, 600, 300, 0}) > 1e-3);
}

TEST_CASE("diffusion: orders of convergence on the exact probability-flow ODE of a Gaussian") {
    // For x_0 ~ N(mu, s^2) the ODE's path is x_t = a_t mu + sqrt(a_t^2 s^2 + b_t^2) z with z fixed
    // (a = sqrt(alpha_bar), b = sqrt(1 - alpha_bar)): each solver's error at t = 100, seen in the
    // x_0 hat it returns there, shrinks by 2^order when its steps halve. DDIM and Euler are first
    // order (and the same method: DDIM is Euler's in x / sqrt(alpha_bar) and sigma), DPM-Solver++(2M)
    // and Heun second.
    const Schedule s = Schedule::linear(1000);
    const Parametrization p{};
    const Denoiser<double> exact = kGaussian.optimal_eps(s);
    const double sd = kGaussian.s[0];
    auto grid_to_100 = [](int64_t n) {  // n steps from 999 down to 100
        std::vector<int64_t> g;
        for (int64_t k = 0; k <= n; ++k) g.push_back(std::llround(999.0 - 899.0 * double(k) / double(n)));
        return g;
    };
    Rng rng(19);
    const TensorD xT = TensorD::randn({32, 2}, rng);
    auto error = [&](int which, int64_t n) {
        const std::vector<int64_t> grid = grid_to_100(n);
        const TensorD x = which == 0   ? run_sampler("ddim", s, p, exact, xT, grid, false, 0.0, rng)
                          : which == 1 ? run_sampler("euler", s, p, exact, xT, grid, false)
                          : which == 2 ? run_sampler("dpm", s, p, exact, xT, grid, false)
                                       : run_sampler("heun", s, p, exact, xT, grid, false);
        const double aT = s.sqrt_alphas_cumprod[999], bT = s.sqrt_one_minus_alphas_cumprod[999];
        const double a = s.sqrt_alphas_cumprod[100], b = s.sqrt_one_minus_alphas_cumprod[100];
        double worst = 0;
        for (int64_t i = 0; i < 32; ++i)
            for (int64_t j = 0; j < 2; ++j) {
                const double mu = kGaussian.mu[0][static_cast<size_t>(j)];
                const double z = (xT(i, j) - aT * mu) / std::sqrt(aT * aT * sd * sd + bT * bT);
                const double xt = a * mu + std::sqrt(a * a * sd * sd + b * b) * z;
                const double x0_hat = mu + a * sd * sd * (xt - a * mu) / (a * a * sd * sd + b * b);  // E[x_0 | x_t]
                worst = std::max(worst, std::abs(x(i, j) - x0_hat));
            }
        return worst;
    };
    const char* names[] = {"ddim", "euler", "dpm-solver++ 2m", "heun"};
    for (int which = 0; which < 4; ++which) {
        const double coarse = error(which, 20), fine = error(which, 40);
        const double order = std::log2(coarse / fine);
        INFO(std::string(names[which]) << ": error " << coarse << " at 20 steps, " << fine << " at 40: order " << order);
        CHECK(fine < coarse);
        if (which == 1) CHECK(coarse == doctest::Approx(error(0, 20)).epsilon(1e-9));  // Euler's path is DDIM's
        if (which < 2) CHECK(std::abs(order - 1.0) < 0.3);
        else CHECK(std::abs(order - 2.0) < 0.6);  // measured: 2.46 (DPM-Solver++, still pre-asymptotic) and 2.06 (Heun)
    }
}

TEST_CASE("diffusion: DDIM with eta = 0 converges as the number of steps grows") {
    const Schedule s = Schedule::linear(1000);
    const Parametrization p{};
    Rng rng(16);
    const TensorD xT = TensorD::randn({200, 2}, rng);
    const Denoiser<double> model = kThreeBlobs.optimal_eps(s);
    const TensorD reference = run_sampler("ddim", s, p, model, xT, timestep_grid(s, 1000, Spacing::Uniform), false, 0.0, rng);
    std::vector<double> errors;
    for (int64_t n : {10, 20, 40, 80, 160}) {
        const TensorD x = run_sampler("ddim", s, p, model, xT, timestep_grid(s, n, Spacing::Uniform), false, 0.0, rng);
        double e = 0;
        for (int64_t i = 0; i < x.numel(); ++i) e += std::pow(x.data()[i] - reference.data()[i], 2) / double(x.numel());
        errors.push_back(std::sqrt(e));
    }
    INFO("RMS distance to 1000 steps: " << errors[0] << " " << errors[1] << " " << errors[2] << " " << errors[3] << " " << errors[4]);
    for (size_t i = 1; i < errors.size(); ++i) CHECK(errors[i] < errors[i - 1]);
    CHECK(errors.back() < errors.front() / 8);  // at least first order: 16x the steps, < 1/8 the error
}

TEST_CASE("diffusion: denoising score matching has its closed-form minimum at the true score") {
    // Data N(mu, s^2): the perturbed data N(mu, s^2 + sigma^2) has score -(x - mu) / (s^2 + sigma^2),
    // and E[|sigma s* + z|^2 / 2] per dimension = s^2 / (2 (s^2 + sigma^2)).
    const std::vector<double> sigmas = geometric_sigmas(10.0, 0.1, 5);
    CHECK(sigmas[2] == doctest::Approx(1.0));
    const double mu = 0.3, sd = 0.5;
    Rng rng(17);
    const int64_t N = 20000;
    for (int64_t level : {0, 2, 4}) {
        const double sig = sigmas[static_cast<size_t>(level)];
        const VarD x(TensorD::randn({N, 1}, rng, mu, sd)), z(TensorD::randn({N, 1}, rng));
        const Tensor<int64_t> lv(Shape{N}, level);
        const TensorD xt = perturb(x, z, sigmas, lv).value();
        for (double factor : {1.0, 0.8, 1.3}) {
            TensorD score({N, 1});
            for (int64_t i = 0; i < N; ++i) score(i, 0) = -factor * (xt(i, 0) - mu) / (sd * sd + sig * sig);
            const TensorD l = dsm_loss(VarD(score), z, sigmas, lv).value();
            double m = 0, m2 = 0;
            for (int64_t i = 0; i < N; ++i) m += l(i) / N, m2 += l(i) * l(i) / N;
            // For s = -f (x_tilde - mu) / v, v = s^2 + sigma^2: E = (1 - (2f - f^2) sigma^2 / v) / 2, least at f = 1.
            const double v = sd * sd + sig * sig, expected = 0.5 * (1 - (2 * factor - factor * factor) * sig * sig / v);
            INFO("level " << level << " factor " << factor << ": " << m << " expected " << expected);
            CHECK(std::abs(m - expected) < 5 * std::sqrt((m2 - m * m) / N));
        }
    }
}

TEST_CASE("diffusion: annealed Langevin dynamics with the true score samples the data") {
    const std::vector<double> sigmas = geometric_sigmas(3.0, 0.05, 8);
    const double mu = -0.2, sd = 0.5;
    const Denoiser<double> score = [&](const TensorD& x, const Tensor<int64_t>& level) {
        TensorD out(x.shape());
        for (int64_t i = 0; i < x.numel(); ++i) {
            const double sig = sigmas[static_cast<size_t>(level(i / (x.numel() / x.size(0))))];
            out.data()[i] = -(x.data()[i] - mu) / (sd * sd + sig * sig);
        }
        return out;
    };
    Rng rng(18);
    const int64_t N = 4000;
    AnnealedLangevinSampler<double> langevin(sigmas, 100, 2e-4, true, Rng(19));
    CHECK(langevin.total_calls() == 8 * 100 + 1);
    const TensorD x = sample(langevin, score, TensorD::rand({N, 2}, rng, -1, 1));
    const Moments m = moments(x);
    const double sl2 = 0.05 * 0.05, want_var = sd * sd * sd * sd / (sd * sd + sl2);  // after Tweedie's denoising step
    INFO("mean " << m.mean[0] << " variance " << m.var[0] << " (want " << want_var << ")");
    for (size_t j = 0; j < 2; ++j) {
        CHECK(std::abs(m.mean[j] - mu) < 5 * sd / std::sqrt(double(N)) + 0.01);
        CHECK(std::abs(m.var[j] - want_var) < 5 * want_var * std::sqrt(2.0 / N) + 0.01);
    }
}

TEST_CASE("diffusion: every sampler of the registry, stepped by hand, equals sample(); steps out of order are named") {
    const Schedule s = Schedule::linear(1000);
    const Parametrization p{};
    const Denoiser<double> model = kThreeBlobs.optimal_eps(s);
    Rng rng(21);
    const TensorD xT = TensorD::randn({16, 2}, rng);
    SamplerOptions o;
    o.steps = 8;
    o.eta = 0.5;
    o.rng = Rng(22);
    for (const std::string& name : sampler_names()) {
        INFO(name);
        const auto whole = make_sampler<double>(name, s, p, o), by_hand = make_sampler<double>(name, s, p, o);
        const TensorD want = sample(*whole, model, xT);
        TensorD x = xT;
        int64_t calls = 0;
        while (!by_hand->done()) {
            const int64_t t = by_hand->timestep();
            x = by_hand->step(x, t, model(x, Tensor<int64_t>(Shape{16}, t)));
            ++calls;
        }
        CHECK(calls == by_hand->total_calls());
        CHECK(std::memcmp(x.data(), want.data(), sizeof(double) * 32) == 0);
        CHECK(std::memcmp(by_hand->pred_x0().data(), x.data(), sizeof(double) * 32) == 0);  // the last step returns x0_hat
        CHECK_THROWS_AS(by_hand->step(x, 0, x), std::logic_error);
        CHECK_THROWS_AS(by_hand->timestep(), std::logic_error);
    }
    CHECK(make_sampler<double>("heun", s, p, o)->total_calls() == 2 * 8 - 1);
    CHECK(make_sampler<double>("pc", s, p, o)->total_calls() == 1000 + 999);
    const auto ddim = make_sampler<double>("ddim", s, p, o);
    CHECK(ddim->grid() == timestep_grid(s, 8, Spacing::Uniform));
    CHECK(message_of<std::exception>([&] { ddim->step(xT, 500, xT); }).find("step at t = 500, but the model call due is at t = 999") != std::string::npos);
    CHECK(message_of<std::exception>([&] { make_sampler<double>("ddpm", s, p, o)->set_timesteps({999, 0}); }).find("every timestep") != std::string::npos);
    CHECK(message_of<std::exception>([&] { make_sampler<double>("plms", s, p, o); }) == "unknown sampler \"plms\" (dpm, ddim, ddpm, euler, heun, pc)");
    CHECK(default_sampler() == "dpm");
    // restart() runs the same grid again; a deterministic sampler gives the same samples.
    ddim->set_timesteps({999, 400, 0});
    SamplerOptions deterministic = o;
    deterministic.eta = 0;
    const auto again = make_sampler<double>("ddim", s, p, deterministic);
    const TensorD first = sample(*again, model, xT);
    again->restart();
    CHECK(std::memcmp(sample(*again, model, xT).data(), first.data(), sizeof(double) * 32) == 0);
    // Without restart() a used sampler would hand back x unchanged: sample() refuses it.
    CHECK(message_of<std::logic_error>([&] { sample(*again, model, xT); }) ==
          "sample: the sampler has made 8 of its 8 model calls already; restart() it for another batch");
}

TEST_CASE("diffusion: a loop that edits x between DDIM steps (replacement inpainting) completes the blob of the known coordinate") {
    // Coordinate 0 is known: after each step it is replaced by the known value noised to the
    // timestep of the next model call (q_sample), and by the value itself at the end. The free
    // coordinate should land in the blob that the known one picks: x_0 = 0.6 is only the blob
    // at (0.6, -0.5) (the others are 7.5 and 15 standard deviations away), which holds 30% of
    // unconditional samples. Replacement is known to propagate the known part imperfectly
    // (Lugmayr et al. 2022): measured 82% in the blob, against 30% without the edits.
    const Schedule s = Schedule::linear(1000);
    const Denoiser<double> model = kThreeBlobs.optimal_eps(s);
    const int64_t N = 500;
    Rng rng(23);
    SamplerOptions o;
    o.steps = 50;
    o.clip_x0 = false;
    const auto ddim = make_sampler<double>("ddim", s, Parametrization{}, o);
    TensorD x = TensorD::randn({N, 2}, rng);
    const TensorD known(Shape{N, 1}, 0.6);
    auto replace = [&](TensorD& v, const TensorD& value) {
        for (int64_t i = 0; i < N; ++i) v(i, 0) = value(i, 0);
    };
    const TensorD free = sample(*ddim, model, x);
    ddim->restart();
    while (!ddim->done()) {
        const int64_t t = ddim->timestep();
        x = ddim->step(x, t, model(x, Tensor<int64_t>(Shape{N}, t)));
        replace(x, ddim->done() ? known : q_sample(s, known, Tensor<int64_t>(Shape{N}, ddim->timestep()), TensorD::randn({N, 1}, rng)));
    }
    int64_t in_blob = 0, free_in_blob = 0;
    for (int64_t i = 0; i < N; ++i) {
        CHECK(x(i, 0) == 0.6);
        in_blob += std::abs(x(i, 1) + 0.5) < 0.25;
        free_in_blob += std::abs(free(i, 0) - 0.6) < 0.25 && std::abs(free(i, 1) + 0.5) < 0.25;
    }
    INFO("share in the blob: " << double(in_blob) / N << " inpainted, " << double(free_in_blob) / N << " unconditional");
    CHECK(std::abs(double(free_in_blob) / N - 0.3) < 5 * std::sqrt(0.3 * 0.7 / N));
    CHECK(in_blob > 0.75 * N);
}
