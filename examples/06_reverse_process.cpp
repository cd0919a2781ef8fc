// 06 — the reverse process, with a perfect denoiser: Algorithm 2 by hand.
//
// Sampling runs the chain backwards: x_T ~ N(0, I), then for t = T, ..., 1
//     x_{t-1} = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps(x_t, t)) + sigma_t z
// with z ~ N(0, I) (none at the last step) and sigma_t^2 = beta_t (Ho et al. 2020, Algorithm 2
// and eq. 11). A trained network would supply eps(x_t, t); here the data are a mixture of 8
// small Gaussians on a circle, whose best possible denoiser E[eps | x_t] is known in closed
// form (diffusion::GaussianMixture), so what is drawn is the method itself, free of a
// network's error.
//
// The lesson runs Algorithm 2 written out below on 2,000 points, checks each step's mean
// against the library's p_mean_variance (which takes the other way to the same mean: x_0 from
// eps, then the posterior mean of eq. 7), and runs the library's own ancestral sampler. Prints
// how many samples land on the data (within 4 standard deviations of a centre) and how evenly
// they share the 8 centres; writes 06_samples.png (the samples beside the centres) and
// 06_snapshots.png (500 points at t = 999, 300, 100 and 0).
// PNG output: one .cpp file of a program compiles stb_image_write, by defining this first.
#define DDPMKIT_STB_IMPLEMENTATION

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include <ddpmkit/ddpmkit.hpp>

using namespace ddpmkit;

int main() {
    const int64_t N = 2000, T = 1000, K = 8;
    const double pi = 3.14159265358979323846, sd = 0.04;
    TensorD centres({K, 2});
    for (int64_t k = 0; k < K; ++k) centres(k, 0) = 0.7 * std::cos(2 * pi * k / K), centres(k, 1) = 0.7 * std::sin(2 * pi * k / K);
    const diffusion::Schedule s = diffusion::Schedule::linear(T);
    const diffusion::Denoiser<double> eps_model = diffusion::GaussianMixture<double>{centres, sd, {}}.denoiser(s);

    // Algorithm 2, by hand, keeping snapshots of the first 500 points.
    Rng rng(3);
    TensorD x = TensorD::randn({N, 2}, rng);
    const std::vector<int64_t> shown = {T - 1, 300, 100, 0};
    std::vector<TensorD> snapshots;
    double worst = 0;  // the largest difference from the library's mean of p(x_{t-1} | x_t)
    for (int64_t t = T - 1; t >= 0; --t) {
        if (std::find(shown.begin(), shown.end(), t) != shown.end()) snapshots.push_back(x.slice(0, 500).clone());  // x_t
        const Tensor<int64_t> tt(Shape{N}, t);
        const TensorD eps = eps_model(x, tt);
        const double beta = s.betas[size_t(t)], alpha = 1 - beta, abar = s.alphas_cumprod[size_t(t)];
        TensorD mean({N, 2});
        for (int64_t i = 0; i < mean.numel(); ++i)
            mean.data()[i] = (x.data()[i] - beta / std::sqrt(1 - abar) * eps.data()[i]) / std::sqrt(alpha);
        const TensorD library = diffusion::p_mean_variance(s, diffusion::Parametrization{}, VarD(eps), VarD(x), tt).mean.value();
        for (int64_t i = 0; i < mean.numel(); ++i) worst = std::max(worst, std::abs(mean.data()[i] - library.data()[i]));
        x = t > 0 ? mean + std::sqrt(beta) * TensorD::randn({N, 2}, rng) : mean;
    }
    std::printf("Algorithm 2 by hand: its mean of p(x_{t-1} | x_t) and the library's differ by at most %.2e over all %lld steps\n",
                worst, static_cast<long long>(T));

    // The library's ancestral sampler (the same Algorithm 2), from other noise.
    diffusion::SamplerOptions o;
    o.rng = Rng(4);
    o.clip_x0 = false;  // the data are not images in [-1, 1]
    const auto ddpm = diffusion::make_sampler<double>("ddpm", s, diffusion::Parametrization{}, o);
    const TensorD y = diffusion::sample(*ddpm, eps_model, TensorD::randn({N, 2}, rng));

    // On the data: the nearest centre within 4 sd; and how the samples share the centres.
    auto report = [&](const char* name, const TensorD& z) {
        std::vector<int64_t> count(size_t(K), 0);
        int64_t on = 0;
        for (int64_t i = 0; i < N; ++i) {
            int64_t best = 0;
            double d_best = INFINITY;
            for (int64_t k = 0; k < K; ++k) {
                const double d = std::hypot(z(i, 0) - centres(k, 0), z(i, 1) - centres(k, 1));
                if (d < d_best) d_best = d, best = k;
            }
            if (d_best < 4 * sd) ++on, ++count[size_t(best)];
        }
        std::printf("%-22s %5.1f %% on the data; per centre:", name, 100.0 * on / N);
        for (int64_t c : count) std::printf(" %4lld", static_cast<long long>(c));
        std::printf("  (%lld each if even)\n", static_cast<long long>(N / K));
    };
    report("Algorithm 2 by hand:", x);
    report("the library's ddpm:", y);

    PlotOptions po;
    po.title = "2,000 samples of the reverse process, perfect denoiser";
    po.x_min = -1.2, po.x_max = 1.2, po.y_min = -1.2, po.y_max = 1.2;
    po.width = po.height = 640;
    auto column = [&](const TensorD& z, int64_t c) {
        std::vector<double> v;
        for (int64_t i = 0; i < z.size(0); ++i) v.push_back(z(i, c));
        return v;
    };
    write_png("06_samples.png", Plot(po)
                                    .points(column(x, 0), column(x, 1), "Algorithm 2 by hand", 1.5)
                                    .points(column(y, 0), column(y, 1), "the library's ddpm", 1.5)
                                    .points(column(centres, 0), column(centres, 1), "the 8 centres", 4.0, Plot::Rgb{20, 20, 20})
                                    .render());
    po.title = "500 points on their way: x_t of Algorithm 2";
    po.x_min = po.y_min = -2.5, po.x_max = po.y_max = 2.5;
    Plot way(po);
    for (size_t j = 0; j < shown.size(); ++j)
        way.points(column(snapshots[j], 0), column(snapshots[j], 1), "t = " + std::to_string(shown[j]), 1.5);
    write_png("06_snapshots.png", way.render());
    std::printf("wrote 06_samples.png and 06_snapshots.png\n");
    return worst < 1e-9 ? 0 : 1;
}
