// 04 — the forward process: T small steps, or one jump.
//
// The forward process is a Markov chain that adds a little Gaussian noise at each step
// (Ho et al. 2020, eq. 2):
//     q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I).
// Because a Gaussian step of a Gaussian is Gaussian, t steps at once have a closed form
// (eq. 4), with abar_t = prod_{s<=t} (1 - beta_s):
//     q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I).
// Training uses eq. 4 to reach any t in one draw. Here 10,000 one-dimensional "images" x_0,
// each -0.8 or +0.8, go through the chain step by step (diffusion::q_step, eq. 2) and, apart,
// in one jump (diffusion::q_sample, eq. 4). The two must give the same distribution: a
// mixture of N(+-0.8 sqrt(abar_t), 1 - abar_t), which the two peaks of x_0 melt into, until
// it is N(0, 1) at t = T.
//
// Prints the mean and variance of both against eq. 4's, and writes 04_forward.png: the
// histogram of the step-by-step chain at t = 50, 150, 400 and 999, and eq. 4's density as a line.
// PNG output: one .cpp file of a program compiles stb_image_write, by defining this first.
#define DDPMKIT_STB_IMPLEMENTATION

#include <cmath>
#include <cstdio>
#include <vector>

#include <ddpmkit/ddpmkit.hpp>

using namespace ddpmkit;

int main() {
    const int64_t N = 10000, T = 1000;
    const double pi = 3.14159265358979323846;
    const diffusion::Schedule s = diffusion::Schedule::linear(T);
    TensorD x0({N, 1});
    for (int64_t i = 0; i < N; ++i) x0(i, 0) = i % 2 ? 0.8 : -0.8;  // E[x_0] = 0, Var[x_0] = 0.64

    auto moments = [&](const TensorD& x) {
        double m = 0, v = 0;
        for (int64_t i = 0; i < N; ++i) m += x(i, 0) / double(N);
        for (int64_t i = 0; i < N; ++i) v += (x(i, 0) - m) * (x(i, 0) - m) / double(N - 1);
        return std::pair<double, double>{m, v};
    };

    PlotOptions o;
    o.title = "x_t: T steps of eq. 2 (bars) against eq. 4 (lines)";
    o.x_label = "x_t";
    o.y_label = "density";
    o.x_min = -3, o.x_max = 3;
    Plot plot(o);
    std::printf("%5s  %10s  %22s  %22s  %22s\n", "t", "abar_t", "steps of eq. 2: mean, var", "one jump, eq. 4: mean, var",
                "eq. 4 exactly: mean, var");
    Rng rng(1);
    TensorD x = x0;
    size_t shown = 0;
    for (int64_t t = 0; t < T; ++t) {
        x = diffusion::q_step(s, x, Tensor<int64_t>(Shape{N}, t), TensorD::randn({N, 1}, rng));  // x_{t-1} -> x_t
        if (t != 50 && t != 150 && t != 400 && t != T - 1) continue;
        const double abar = s.alphas_cumprod[size_t(t)];
        const TensorD jump = diffusion::q_sample(s, x0, Tensor<int64_t>(Shape{N}, t), TensorD::randn({N, 1}, rng));
        const auto [m_chain, v_chain] = moments(x);
        const auto [m_jump, v_jump] = moments(jump);
        std::printf("%5lld  %10.6f  %10.4f, %10.4f  %10.4f, %10.4f  %10.4f, %10.4f\n", static_cast<long long>(t), abar, m_chain, v_chain,
                    m_jump, v_jump, 0.0, 0.64 * abar + (1 - abar));

        // The histogram of the chain and eq. 4's density, a mixture of two Gaussians.
        const Plot::Rgb color = plot_detail::kPalette[shown++];
        std::vector<double> values(x.data(), x.data() + N), grid, density;
        const double mean = 0.8 * std::sqrt(abar), var = 1 - abar;
        for (double u = -3; u <= 3; u += 0.01) {
            grid.push_back(u);
            density.push_back(0.5 * (std::exp(-(u - mean) * (u - mean) / (2 * var)) + std::exp(-(u + mean) * (u + mean) / (2 * var))) /
                              std::sqrt(2 * pi * var));
        }
        const std::string label = "t = " + std::to_string(t);
        plot.histogram(values, 80, "", color).line(grid, density, label, 2.0, color);
    }
    write_png("04_forward.png", plot.render());
    std::printf("Eq. 4's variance is abar_t Var[x_0] + (1 - abar_t): the variance stays near 1 when the data's is near 1,\n"
                "which is why the images are scaled to [-1, 1] (eq. 2 is variance-preserving).\n"
                "wrote 04_forward.png\n");
    return 0;
}
