// 08 — the variational bound, term by term: where the bits go.
//
// A diffusion model's negative log-likelihood is bounded by (Ho et al. 2020, eq. 5)
//     L = L_T + sum_{t>1} L_{t-1} + L_0,
//     L_T     = KL(q(x_T | x_0) || N(0, I))                     the prior: no parameters
//     L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))   two Gaussians (eqs. 6-7)
//     L_0     = -log p(x_0 | x_1)                               a Gaussian discretized to 256 values
// in bits per dimension. With p's variance fixed at sigma_t^2, each KL splits in two (eq. 12):
//     L_{t-1} = 1/2 (log(sigma_t^2 / beta~_t) + beta~_t / sigma_t^2 - 1)          the variance's price
//             + beta_t^2 / (2 sigma_t^2 alpha_t (1 - abar_t)) |eps - eps_theta|^2   the mean's error
// L_simple (eq. 14) keeps only |eps - eps_theta|^2 and drops the weight in front of it.
//
// The data here are 16 Fashion-MNIST test images (a shape set if it is not installed), and the
// model is the best one possible for them: the exact E[eps | x_t] of the 16 images
// (diffusion::GaussianMixture with a width far inside one pixel level). The true
// negative log-likelihood is log2(16) bits per image, 0.005 bits/dim; the lesson computes all
// 1,000 terms of the bound with sigma_t^2 = beta_t and with sigma_t^2 = beta~_t, checks the sum
// against the library's calc_bpd and each term against eq. 12, prints where the bits go, and
// draws 08_terms.png (L_t against t), 08_weights.png (eq. 12's weight against L_simple's) and
// 08_cumulative.png (the KL terms summed from t = 1 up).
// PNG output: one .cpp file of a program compiles stb_image_write, by defining this first.
#define DDPMKIT_STB_IMPLEMENTATION

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <ddpmkit/ddpmkit.hpp>

using namespace ddpmkit;
using diffusion::ModelVariance;

int main() {
    const int64_t K = 16, T = 1000;
    const DatasetChoice data = load_fashion_mnist_or_embedded(kDefaultFashionMnistDir, false, K);
    const TensorD x0 = data.data.images.slice(0, K).cast<double>();  // on the 8-bit grid in [-1, 1]
    const int64_t D = x0.numel() / K;
    const diffusion::Schedule s = diffusion::Schedule::linear(T);
    const diffusion::Denoiser<double> eps_model = diffusion::GaussianMixture<double>{x0, 1e-3, {}}.denoiser(s);
    std::printf("%s\nThe data: %lld images; their true -log2 p is log2(%lld) = %.0f bits per image, %.4f bits/dim.\n\n",
                data.message.c_str(), static_cast<long long>(K), static_cast<long long>(K), std::log2(double(K)),
                std::log2(double(K)) / double(D));

    struct Run {
        const char* name;
        ModelVariance variance;
        std::vector<double> term, price;  // per t (bits/dim, mean over the images): L_t, and the variance's price in it
        std::vector<double> weight;       // eq. 12's weight of |eps - eps_theta|^2 (mean over dims), bits/dim
        double prior = 0;
    };
    std::vector<Run> runs = {{"sigma^2 = beta_t", ModelVariance::FixedLarge, {}, {}, {}},
                             {"sigma^2 = beta~_t", ModelVariance::FixedSmall, {}, {}, {}}};
    std::vector<double> mse(size_t(T), 0.0);  // E|eps - eps_theta|^2 per dim, at each t
    double worst_eq12 = 0, worst_library = 0;
    for (Run& run : runs) {
        const diffusion::Parametrization p{diffusion::ModelOutput::Eps, run.variance};
        run.term.assign(size_t(T), 0.0), run.price.assign(size_t(T), 0.0), run.weight.assign(size_t(T), 0.0);
        // All T terms, from t = T - 1 down with one noise draw each, as calc_bpd draws them.
        Rng rng(8);
        const VarD x(x0);
        double total = 0;
        for (int64_t t = T - 1; t >= 0; --t) {
            const Tensor<int64_t> ts(Shape{K}, t);
            const TensorD eps = TensorD::randn(x0.shape(), rng);
            const VarD xt = diffusion::q_sample(s, x, ts, VarD(eps));
            const TensorD eps_hat = eps_model(xt.value(), ts);
            const TensorD vb = diffusion::vb_terms_bpd(s, p, VarD(eps_hat), x, xt, ts).value();
            const size_t i = size_t(t);
            const double beta = s.betas[i], post = s.posterior_variance[i],
                         sigma2 = diffusion::p_mean_variance(s, p, VarD(eps_hat), xt, ts).variance.value().data()[0];
            run.weight[i] = beta * beta / (2 * sigma2 * s.alphas[i] * (1 - s.alphas_cumprod[i])) / diffusion::kLn2;
            // (r - 1 - log r) / 2 with r = beta~ / sigma^2: >= 0, and 0 only for sigma^2 = beta~ (up to rounding).
            run.price[i] = t == 0 ? 0 : std::max(0.0, 0.5 * (std::log(sigma2 / post) + post / sigma2 - 1) / diffusion::kLn2);
            for (int64_t b = 0; b < K; ++b) {
                double err = 0;  // |eps - eps_theta|^2 / D of image b
                for (int64_t j = b * D; j < (b + 1) * D; ++j) err += (eps.data()[j] - eps_hat.data()[j]) * (eps.data()[j] - eps_hat.data()[j]);
                err /= double(D);
                if (t > 0) worst_eq12 = std::max(worst_eq12, std::abs(vb(b) - (run.price[i] + run.weight[i] * err)));
                run.term[i] += vb(b) / double(K);
                mse[i] += err / double(K) / double(runs.size());
            }
            total += run.term[i];
        }
        const TensorD prior = diffusion::prior_bpd(s, x).value();
        for (int64_t b = 0; b < K; ++b) run.prior += prior(b) / double(K);
        total += run.prior;
        Rng same(8);
        const diffusion::BoundTerms library = diffusion::calc_bpd(s, p, eps_model, x0, same);
        double library_total = 0;
        for (double v : library.total) library_total += v / double(K);
        worst_library = std::max(worst_library, std::abs(library_total - total));
        std::printf("%-18s the bound is %.4f bits/dim (calc_bpd: %.4f)\n", run.name, total, library_total);
    }
    std::printf("Each L_t equals eq. 12 (the variance's price + weight x |eps - eps_theta|^2) to %.1e bits/dim;\n"
                "the terms summed by hand equal the library's calc_bpd to %.1e.\n\n",
                worst_eq12, worst_library);

    // Where the bits go: the terms summed over ranges of t.
    const std::vector<std::pair<int64_t, int64_t>> ranges = {{0, 1}, {1, 11}, {11, 101}, {101, 301}, {301, 601}, {601, T}};
    std::printf("bits/dim by range of t      L_0    L_1-10  L_11-100 L_101-300 L_301-600 L_601-999   L_T    total\n");
    for (const Run& run : runs) {
        for (const bool price_only : {false, true}) {
            std::printf("%-18s %-8s", run.name, price_only ? "(price)" : "");
            double total = 0;
            for (auto [from, to] : ranges) {
                double sum = 0;
                for (int64_t t = from; t < to; ++t) sum += (price_only ? run.price : run.term)[size_t(t)];
                std::printf(" %9.4f", sum);
                total += sum;
            }
            const double prior = price_only ? 0.0 : run.prior;
            std::printf(" %9.6f %8.4f\n", prior, total + prior);
        }
    }
    std::printf("(price): the part that no denoiser can remove, a fixed sigma_t^2 differing from beta~_t.\n");
    double kl_small = 0;  // sigma^2 = beta~_t: no price, so the KL terms are the mean's error alone
    for (int64_t t = 1; t < T; ++t) kl_small += runs[1].term[size_t(t)];
    std::printf("With sigma^2 = beta~_t the KL terms L_1..L_999 sum to %.4f bits/dim: the %.0f bits per image of which\n"
                "image x_0 is (%.4f bits/dim), spent between t = 300 and 999 where x_t stops telling.\n",
                kl_small, std::log2(double(K)), std::log2(double(K)) / double(D));
    std::printf("The exact denoiser's |eps - eps_theta|^2 per dim at t = 1, 10, 100, 300, 600, 999:");
    for (int64_t t : {1, 10, 100, 300, 600, 999}) std::printf(" %.2g", mse[size_t(t)]);
    std::printf("\nL_0 pays for a decoder of width sigma_1 = %.4f against pixel levels 2/255 apart: most of the bound.\n",
                std::sqrt(s.posterior_variance[1]));

    // Pictures.
    std::vector<double> t_axis(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) t_axis[size_t(t)] = double(t);
    PlotOptions o;
    o.title = "L_t of the exact denoiser (bits/dim)";
    o.x_label = "t";
    o.log_y = true;
    o.y_min = 1e-10;  // below: the exact denoiser's rounding
    Plot terms(o);
    for (const Run& run : runs) terms.line(t_axis, run.term, run.name, 2.0);
    terms.line(t_axis, runs[0].price, "its variance's price alone", 1.2);
    write_png("08_terms.png", terms.render());

    o.y_min = NAN;
    o.title = "Weight of |eps - eps_theta|^2 in L_t, relative to L_simple's";
    Plot weights(o);
    for (const Run& run : runs) {
        double mean = 0;
        for (int64_t t = 1; t < T; ++t) mean += run.weight[size_t(t)] / double(T - 1);
        std::vector<double> relative(size_t(T), NAN);
        for (int64_t t = 1; t < T; ++t) relative[size_t(t)] = run.weight[size_t(t)] / mean;
        weights.line(t_axis, relative, std::string("eq. 12, ") + run.name, 2.0);
    }
    weights.line(t_axis, std::vector<double>(size_t(T), 1.0), "L_simple (eq. 14): the same for all t", 2.0);
    write_png("08_weights.png", weights.render());

    o.title = "The KL terms summed: L_1 + ... + L_t (bits/dim)";
    o.y_min = 1e-6;
    Plot cumulative(o);
    for (const Run& run : runs) {
        std::vector<double> sum(t_axis.size(), NAN);
        double acc = 0;
        for (int64_t t = 1; t < T; ++t) sum[size_t(t)] = acc += run.term[size_t(t)];
        cumulative.line(t_axis, sum, run.name, 2.0);
    }
    cumulative.line({0, double(T - 1)}, std::vector<double>(2, std::log2(double(K)) / double(D)), "the true -log2 p (which image)", 1.2);
    write_png("08_cumulative.png", cumulative.render());
    std::printf("wrote 08_terms.png, 08_weights.png and 08_cumulative.png\n");
    return worst_eq12 < 1e-9 && worst_library < 1e-9 ? 0 : 1;
}
