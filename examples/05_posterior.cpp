// 05 — the forward process run backwards, when x_0 is known: q(x_{t-1} | x_t, x_0).
//
// Given x_0, the step before x_t follows from Bayes' rule and the Markov property:
//     q(x_{t-1} | x_t, x_0) ~ q(x_t | x_{t-1}) q(x_{t-1} | x_0),
// a product of two Gaussians in x_{t-1} (eqs. 2 and 4), hence a Gaussian (Ho et al. 2020,
// eqs. 6 and 7):
//     mean     mu~_t = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x_0 + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t
//     variance beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t.
// The reverse process p(x_{t-1} | x_t) is trained to match it with x_0 replaced by the
// model's guess: this is the target of every term of the bound.
//
// The lesson evaluates Bayes' rule numerically on a grid of 4,001 values of x_{t-1}, for one
// pixel, and compares the mean and variance with diffusion::q_posterior_mean_variance (eq. 7).
// It writes 05_posterior.png (the two densities at three t) and 05_images.png (rows: x_0, x_t,
// the posterior mean, a draw of x_{t-1}; columns t = 50, 150, 300, 500, 800).
// PNG output: one .cpp file of a program compiles stb_image_write, by defining this first.
#define DDPMKIT_STB_IMPLEMENTATION

#include <cmath>
#include <cstdio>
#include <vector>

#include <ddpmkit/ddpmkit.hpp>

using namespace ddpmkit;

int main() {
    const double pi = 3.14159265358979323846;
    const diffusion::Schedule s = diffusion::Schedule::linear(1000);
    auto normal = [pi](double x, double mean, double var) { return std::exp(-(x - mean) * (x - mean) / (2 * var)) / std::sqrt(2 * pi * var); };

    // One pixel: x_0 = 0.6, and an x_t drawn from eq. 4.
    const double x0 = 0.6;
    Rng rng(2);
    PlotOptions o;
    o.title = "q(x_{t-1} | x_t, x_0 = 0.6): Bayes (thick), eq. 7 (thin)";
    o.x_min = -1.5, o.x_max = 1.5;
    o.x_label = "x_{t-1}";
    o.y_label = "density";
    Plot plot(o);
    std::printf("%5s %9s  %22s  %22s\n", "t", "x_t", "Bayes' rule: mean, var", "eq. 7: mean, var");
    double worst = 0;  // the largest relative difference, over the moments
    size_t shown = 0;
    for (int64_t t : {100, 400, 900}) {
        const double abar = s.alphas_cumprod[size_t(t)], abar_prev = s.alphas_cumprod[size_t(t - 1)], beta = s.betas[size_t(t)];
        const double xt = std::sqrt(abar) * x0 + std::sqrt(1 - abar) * TensorD::randn({1}, rng)(0);

        // Bayes' rule on a grid: q(x_t | x_{t-1}) q(x_{t-1} | x_0), normalized numerically.
        const double lo = -3, hi = 3, h = (hi - lo) / 4000;
        std::vector<double> grid, density;
        double z = 0, m = 0, v = 0;
        for (int i = 0; i <= 4000; ++i) {
            const double u = lo + i * h;
            const double p = normal(xt, std::sqrt(1 - beta) * u, beta) * normal(u, std::sqrt(abar_prev) * x0, 1 - abar_prev);
            grid.push_back(u), density.push_back(p), z += p * h;
        }
        for (double& p : density) p /= z;
        for (size_t i = 0; i < grid.size(); ++i) m += grid[i] * density[i] * h;
        for (size_t i = 0; i < grid.size(); ++i) v += (grid[i] - m) * (grid[i] - m) * density[i] * h;

        const diffusion::Gaussian<double> q =
            diffusion::q_posterior_mean_variance(s, VarD(TensorD({1}, x0)), VarD(TensorD({1}, xt)), Tensor<int64_t>(Shape{1}, t));
        const double mean7 = q.mean.value()(0), var7 = q.variance.value()(0);
        worst = std::max({worst, std::abs(m - mean7) / std::sqrt(var7), std::abs(v - var7) / var7});
        std::printf("%5lld %9.4f  %10.6f, %10.3e  %10.6f, %10.3e\n", static_cast<long long>(t), xt, m, v, mean7, var7);

        std::vector<double> closed;
        for (double u : grid) closed.push_back(normal(u, mean7, var7));
        const Plot::Rgb color = plot_detail::kPalette[shown++];
        plot.line(grid, density, "t = " + std::to_string(t), 5.0, color).line(grid, closed, "", 1.2, Plot::Rgb{20, 20, 20});
    }
    std::printf("the grid and eq. 7 agree to %.1e (of a standard deviation, or of the variance)\n", worst);
    write_png("05_posterior.png", plot.render());

    // The same on an image: x_0, x_t, the posterior mean, and a draw of x_{t-1}.
    const DatasetChoice data = load_fashion_mnist_or_embedded(kDefaultFashionMnistDir, false, 1);
    const TensorD image = data.data.images.slice(0, 1).cast<double>();
    const std::vector<int64_t> steps = {50, 150, 300, 500, 800};
    const int64_t n = int64_t(steps.size());
    TensorD rows({4 * n, 1, 28, 28});
    for (int64_t j = 0; j < n; ++j) {
        const Tensor<int64_t> t(Shape{1}, steps[size_t(j)]);
        const TensorD xt = diffusion::q_sample(s, image, t, TensorD::randn(image.shape(), rng));
        const diffusion::Gaussian<double> q = diffusion::q_posterior_mean_variance(s, VarD(image), VarD(xt), t);
        const TensorD draw = q.mean.value() + std::sqrt(q.variance.value()(0, 0, 0, 0)) * TensorD::randn(image.shape(), rng);
        int64_t r = 0;
        for (const TensorD& x : {image, xt, q.mean.value(), draw}) rows.slice(r * n + j, r * n + j + 1).copy_from(x), ++r;
    }
    GridOptions grid;
    grid.cols = static_cast<int>(n);
    grid.scale = 3;
    write_grid_png("05_images.png", rows.cast<float>(), grid);
    std::printf("One step back removes little noise: mu~_t weighs x_0 and x_t by");
    for (int64_t t : steps)
        std::printf(" %.3f, %.3f (t = %lld)%s", s.posterior_mean_coef1[size_t(t)], s.posterior_mean_coef2[size_t(t)], static_cast<long long>(t),
                    t == steps.back() ? ".\n" : ";");
    std::printf("%s\nwrote 05_posterior.png and 05_images.png (rows: x_0, x_t, the posterior mean, a draw of x_{t-1};\n"
                "columns: t = 50, 150, 300, 500, 800)\n",
                data.message.c_str());
    return worst < 1e-3 ? 0 : 1;
}
