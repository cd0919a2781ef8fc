// 10 — the score view: learn grad log p, then walk uphill with noise.
//
// The score of a density is s(x) = grad_x log p(x): arrows that point where the data are
// denser. Langevin dynamics, x <- x + a s(x) + sqrt(2a) z, samples p once it has run long
// enough. Song & Ermon 2019 learn the score of the data blurred by noise sigma_i at a ladder of
// levels (a noise-conditional score network), by denoising score matching: for
// x~ = x + sigma z the best s(x~, sigma) is E[-z / sigma | x~], so they minimize
// sigma^2 / 2 |s(x~, sigma) + z / sigma|^2 (diffusion::dsm_loss). Annealed Langevin dynamics
// then walks at the largest sigma first, where the blurred density is smooth and connected,
// and anneals down to the smallest (diffusion::AnnealedLangevinSampler).
//
// The lesson trains an MLP (nn::MlpDenoiser, the level index as its "timestep") on lesson
// 06's 8 Gaussians with its own short loop, compares the learned score with the exact one
// (a Gaussian mixture blurred by sigma is a mixture of wider Gaussians), and samples by
// annealed Langevin with both. Writes 10_score_large_sigma.png and 10_score_small_sigma.png
// (the learned score field as arrows) and 10_samples.png.
// PNG output: one .cpp file of a program compiles stb_image_write, by defining this first.
#define DDPMKIT_STB_IMPLEMENTATION

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <ddpmkit/ddpmkit.hpp>

using namespace ddpmkit;

const int64_t kCentres = 8;
const double kSd = 0.05, kPi = 3.14159265358979323846;

double centre(int64_t k, int c) { return 0.8 * (c == 0 ? std::cos(2 * kPi * k / kCentres) : std::sin(2 * kPi * k / kCentres)); }

TensorF draw_data(int64_t n, Rng& rng) {
    const TensorF z = TensorF::randn({n, 2}, rng, 0.0, kSd);
    std::vector<double> u(static_cast<size_t>(n));
    rng.uniform(u.data(), n);
    TensorF x({n, 2});
    for (int64_t i = 0; i < n; ++i) {
        const int64_t k = std::min(kCentres - 1, static_cast<int64_t>(u[size_t(i)] * kCentres));
        x(i, 0) = float(centre(k, 0) + z(i, 0)), x(i, 1) = float(centre(k, 1) + z(i, 1));
    }
    return x;
}

// The exact score of the data blurred by sigma: a mixture of N(mu_k, (s^2 + sigma^2) I), so
// s(x) = sum_k r_k (mu_k - x) / (s^2 + sigma^2), r_k the posterior weight of component k.
TensorF exact_score(const TensorF& x, const std::vector<double>& sigmas, const Tensor<int64_t>& level) {
    TensorF out(x.shape());
    for (int64_t i = 0; i < x.size(0); ++i) {
        const double v = kSd * kSd + std::pow(sigmas[size_t(level(i))], 2);
        double r[kCentres], top = -INFINITY, z = 0, sx = 0, sy = 0;
        for (int64_t k = 0; k < kCentres; ++k)
            top = std::max(top, r[k] = -(std::pow(x(i, 0) - centre(k, 0), 2) + std::pow(x(i, 1) - centre(k, 1), 2)) / (2 * v));
        for (int64_t k = 0; k < kCentres; ++k) z += r[k] = std::exp(r[k] - top);
        for (int64_t k = 0; k < kCentres; ++k) sx += r[k] / z * (centre(k, 0) - x(i, 0)) / v, sy += r[k] / z * (centre(k, 1) - x(i, 1)) / v;
        out(i, 0) = float(sx), out(i, 1) = float(sy);
    }
    return out;
}

int main() {
    const std::vector<double> sigmas = diffusion::geometric_sigmas(1.0, 0.02, 10);
    const int64_t L = static_cast<int64_t>(sigmas.size()), steps = 3000, batch = 256;
    nn::MlpDenoiser<float> model(nn::MlpConfig{}, 1);
    train::Adam<float> adam(model.named_parameters(), 2e-3);
    const train::LrSchedule lr{2e-3, 100, steps, 1e-4};
    Rng rng(0);
    std::printf("denoising score matching: an MLP of %lld parameters, %lld noise levels from %.2f to %.2f, %lld steps\n",
                static_cast<long long>(model.num_parameters()), static_cast<long long>(L), sigmas.front(), sigmas.back(),
                static_cast<long long>(steps));
    for (int64_t step = 1; step <= steps; ++step) {
        const VarF x(draw_data(batch, rng)), z(TensorF::randn({batch, 2}, rng));
        Tensor<int64_t> level({batch});
        for (int64_t b = 0; b < batch; ++b) level(b) = static_cast<int64_t>(rng.randint(L));
        const VarF loss = mean(diffusion::dsm_loss(model.forward(diffusion::perturb(x, z, sigmas, level), level, {}), z, sigmas, level));
        model.zero_grad();
        loss.backward();
        adam.lr = lr.at(step - 1);
        adam.step();
        if (step % 1000 == 0) std::printf("  step %4lld  loss %.4f\n", static_cast<long long>(step), loss.item());
    }
    model.eval();
    const diffusion::Denoiser<float> learned = train::denoiser(model);

    // The learned score against the exact one on fresh noisy points, level by level (relative error).
    std::printf("relative error of the learned score |s - s*| / |s*| on noisy data, by level:\n");
    for (int64_t i = 0; i < L; i += 3) {
        const Tensor<int64_t> level(Shape{2000}, i);
        const TensorF x = draw_data(2000, rng) + sigmas[size_t(i)] * TensorF::randn({2000, 2}, rng);
        const TensorF s = learned(x, level), want = exact_score(x, sigmas, level);
        double err = 0, norm = 0;
        for (int64_t j = 0; j < x.numel(); ++j) err += std::pow(s.data()[j] - want.data()[j], 2), norm += std::pow(want.data()[j], 2);
        std::printf("  sigma %.3f: %.3f\n", sigmas[size_t(i)], std::sqrt(err / norm));
    }

    // Annealed Langevin dynamics with the learned and the exact score, from the same start.
    const TensorF start = TensorF::rand({1000, 2}, rng, -1.0, 1.0);
    diffusion::AnnealedLangevinSampler<float> langevin(sigmas, 100, 2e-5, true, Rng(3));
    const TensorF with_learned = diffusion::sample(langevin, learned, start);
    diffusion::AnnealedLangevinSampler<float> again(sigmas, 100, 2e-5, true, Rng(3));
    const TensorF with_exact = diffusion::sample(again, diffusion::Denoiser<float>([&](const TensorF& x, const Tensor<int64_t>& level) {
                                                     return exact_score(x, sigmas, level);
                                                 }),
                                                 start);
    auto on_data = [&](const TensorF& x) {
        double on = 0;
        for (int64_t i = 0; i < x.size(0); ++i)
            for (int64_t k = 0; k < kCentres; ++k) on += std::hypot(x(i, 0) - centre(k, 0), x(i, 1) - centre(k, 1)) < 4 * kSd ? 1.0 / double(x.size(0)) : 0.0;
        return on;
    };
    std::printf("annealed Langevin, 100 steps per level: %.1f %% of samples on the data with the learned score, %.1f %% with the exact\n",
                100 * on_data(with_learned), 100 * on_data(with_exact));

    // The learned score field on a grid at a large and a small sigma, arrow lengths compressed
    // (the square root of |s|, scaled to fit) so that both the far field and the blobs show.
    PlotOptions o;
    o.width = o.height = 640;
    o.x_min = o.y_min = -1.3, o.x_max = o.y_max = 1.3;
    const TensorF data = draw_data(1000, rng);
    std::vector<double> data_x, data_y;
    for (int64_t i = 0; i < data.size(0); ++i) data_x.push_back(data(i, 0)), data_y.push_back(data(i, 1));
    for (int64_t i : {int64_t(2), int64_t(6)}) {
        TensorF grid({21 * 21, 2});
        for (int64_t a = 0; a < 21; ++a)
            for (int64_t b = 0; b < 21; ++b) grid(a * 21 + b, 0) = float(-1.2 + 0.12 * a), grid(a * 21 + b, 1) = float(-1.2 + 0.12 * b);
        const TensorF score = learned(grid, Tensor<int64_t>(Shape{21 * 21}, i));
        double longest = 0;
        for (int64_t j = 0; j < grid.size(0); ++j) longest = std::max(longest, std::hypot(double(score(j, 0)), double(score(j, 1))));
        std::vector<double> x, y, u, v;
        for (int64_t j = 0; j < grid.size(0); ++j) {
            const double n = std::hypot(double(score(j, 0)), double(score(j, 1))), k = n > 0 ? 0.11 * std::sqrt(n / longest) / n : 0.0;
            x.push_back(grid(j, 0)), y.push_back(grid(j, 1)), u.push_back(k * score(j, 0)), v.push_back(k * score(j, 1));
        }
        char title[96];
        std::snprintf(title, sizeof title, "learned score s(x, sigma = %.3f)", sigmas[size_t(i)]);
        o.title = title;
        const std::string file = i == 2 ? "10_score_large_sigma.png" : "10_score_small_sigma.png";
        write_png(file, Plot(o).points(data_x, data_y, "data", 1.2, Plot::Rgb{190, 190, 190}).arrows(x, y, u, v, "s(x, sigma)").render());
    }

    o.title = "annealed Langevin samples";
    o.x_min = o.y_min = -1.2, o.x_max = o.y_max = 1.2;
    auto column = [](const TensorF& x, int64_t c) {
        std::vector<double> v;
        for (int64_t i = 0; i < x.size(0); ++i) v.push_back(x(i, c));
        return v;
    };
    write_png("10_samples.png", Plot(o)
                                    .points(column(with_exact, 0), column(with_exact, 1), "exact score", 1.5, Plot::Rgb{190, 190, 190})
                                    .points(column(with_learned, 0), column(with_learned, 1), "learned score", 1.5)
                                    .render());
    std::printf("wrote 10_score_large_sigma.png, 10_score_small_sigma.png and 10_samples.png\n");
    return 0;
}
