// 03 — noise schedules: how fast the forward process destroys an image.
//
// The forward process adds noise in T small steps of variance beta_t (Ho et al. 2020, eq. 2);
// all that matters for x_t is their product abar_t = prod_{s<=t} (1 - beta_s), because
//     q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)                    (eq. 4)
// so x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps. The signal-to-noise ratio of x_t is
// SNR(t) = abar_t / (1 - abar_t); under the linear schedule its log falls from +9.2 to -10.1.
//   linear  (Ho et al.): beta_t from 1e-4 to 0.02, evenly;
//   cosine  (Nichol & Dhariwal 2021): abar_t = f(t) / f(0), f(t) = cos^2(((t/T + s) / (1 + s)) pi/2);
//   sigmoid (Jabri et al. 2022): abar_t from a sigmoid of t between -3 and 3.
// The linear schedule spends its last few hundred steps on images that are already almost
// pure noise; cosine and sigmoid keep more signal for longer.
//
// Prints abar_t and log SNR at a few t, and writes 03_alpha_bar.png and 03_log_snr.png (the
// three schedules against t) and 03_noised.png (one image at t = 0, 50, 100, 200, 300, 500,
// 700, 999 under each schedule, the same noise in every row).
// PNG output: one .cpp file of a program compiles stb_image_write, by defining this first.
#define DDPMKIT_STB_IMPLEMENTATION

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <ddpmkit/ddpmkit.hpp>

using namespace ddpmkit;

int main() {
    const int64_t T = 1000;
    const std::vector<std::string> names = {"linear", "cosine", "sigmoid"};
    std::vector<diffusion::Schedule> schedules;
    for (const std::string& name : names) schedules.push_back(diffusion::Schedule::named(name, T));
    auto log_snr = [](double abar) { return std::log(abar / (1 - abar)); };

    std::printf("abar_t (log SNR) at t:\n%8s", "t");
    for (const std::string& name : names) std::printf("  %19s", name.c_str());
    std::printf("\n");
    for (int64_t t : {0, 100, 250, 500, 750, 900, 999}) {
        std::printf("%8lld", static_cast<long long>(t));
        for (const diffusion::Schedule& s : schedules) {
            const double abar = s.alphas_cumprod[size_t(t)];
            std::printf("  %10.3g (%6.2f)", abar, log_snr(abar));
        }
        std::printf("\n");
    }
    for (size_t k = 0; k < names.size(); ++k) {
        int64_t half = 0;  // the first t where as much noise as signal is left in the variance
        while (schedules[k].alphas_cumprod[size_t(half)] > 0.5) ++half;
        std::printf("%-8s abar_t falls below 1/2 at t = %lld\n", names[k].c_str(), static_cast<long long>(half));
    }

    std::vector<double> t_axis(size_t(T), 0.0);
    for (int64_t t = 0; t < T; ++t) t_axis[size_t(t)] = double(t);
    PlotOptions o;
    o.x_label = "t";
    o.title = "abar_t: the share of x_0's variance left in x_t";
    o.y_label = "abar_t";
    Plot abar_plot(o);
    o.title = "log SNR(t) = log(abar_t / (1 - abar_t))";
    o.y_label = "log SNR";
    Plot snr_plot(o);
    for (size_t k = 0; k < names.size(); ++k) {
        std::vector<double> snr;
        for (double abar : schedules[k].alphas_cumprod) snr.push_back(log_snr(abar));
        abar_plot.line(t_axis, schedules[k].alphas_cumprod, names[k], 2.0);
        snr_plot.line(t_axis, snr, names[k], 2.0);
    }
    write_png("03_alpha_bar.png", abar_plot.render());
    write_png("03_log_snr.png", snr_plot.render());

    // One image (Fashion-MNIST if installed, else a shape) noised by eq. 4 with one eps.
    const DatasetChoice data = load_fashion_mnist_or_embedded(kDefaultFashionMnistDir, false, 1);
    const TensorF x0 = data.data.images.slice(0, 1);
    const std::vector<int64_t> steps = {0, 50, 100, 200, 300, 500, 700, 999};
    Rng rng(0);
    const TensorF eps = TensorF::randn(x0.shape(), rng);
    TensorF rows({int64_t(names.size() * steps.size()), 1, 28, 28});
    for (size_t k = 0; k < names.size(); ++k)
        for (size_t j = 0; j < steps.size(); ++j) {
            const Tensor<int64_t> t(Shape{1}, steps[j]);
            rows.slice(int64_t(k * steps.size() + j), int64_t(k * steps.size() + j + 1)).copy_from(diffusion::q_sample(schedules[k], x0, t, eps));
        }
    GridOptions grid;
    grid.cols = static_cast<int>(steps.size());
    grid.scale = 3;
    write_grid_png("03_noised.png", rows, grid);
    std::printf("%s\nwrote 03_alpha_bar.png, 03_log_snr.png, and 03_noised.png (rows: linear, cosine, sigmoid; columns: t = 0, 50, 100,\n"
                "200, 300, 500, 700, 999)\n",
                data.message.c_str());
    return 0;
}
