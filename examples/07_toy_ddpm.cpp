// 07 — a whole DDPM in two dimensions, trained in seconds.
//
// Algorithm 1 of Ho et al. 2020, on points in the plane instead of images: draw x_0 from the
// data, t uniformly, eps ~ N(0, I); take a gradient step on || eps - eps_theta(x_t, t) ||^2
// with x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (eq. 4; L_simple, eq. 14). The network is
// a small MLP (nn::MlpDenoiser) and train::Trainer runs the loop, with Adam and an EMA of the
// weights. The data are lesson 06's: 8 small Gaussians on a circle, so the trained denoiser can
// be set beside the perfect one. Then Algorithm 2 samples 1,000 points with each, and DDIM
// (Song et al. 2021, deterministic) draws the paths of a few points from x_T to x_0.
//
// Prints the loss as it trains and, for the trained and the perfect denoiser, how many samples
// land on the data (within 4 standard deviations of a centre) and how they share the centres.
// Writes 07_loss.png, 07_samples.png and 07_paths.png.
// PNG output: one .cpp file of a program compiles stb_image_write, by defining this first.
#define DDPMKIT_STB_IMPLEMENTATION

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include <ddpmkit/ddpmkit.hpp>

using namespace ddpmkit;

const int64_t kCentres = 8;
const double kRadius = 0.8, kSd = 0.05, kPi = 3.14159265358979323846;

TensorF centres() {
    TensorF c({kCentres, 2});
    for (int64_t k = 0; k < kCentres; ++k) c(k, 0) = float(kRadius * std::cos(2 * kPi * k / kCentres)), c(k, 1) = float(kRadius * std::sin(2 * kPi * k / kCentres));
    return c;
}

// n points of the data: a centre at random, plus N(0, kSd^2 I).
TensorF draw_data(int64_t n, Rng& rng) {
    const TensorF c = centres(), z = TensorF::randn({n, 2}, rng, 0.0, kSd);
    std::vector<double> u(static_cast<size_t>(n));
    rng.uniform(u.data(), n);
    TensorF x({n, 2});
    for (int64_t i = 0; i < n; ++i) {
        const int64_t k = std::min(kCentres - 1, static_cast<int64_t>(u[size_t(i)] * kCentres));
        x(i, 0) = c(k, 0) + z(i, 0), x(i, 1) = c(k, 1) + z(i, 1);
    }
    return x;
}

// Fresh batches of 256 points of the data, forever: the trainer's source of x_0 (of which a
// process of a data-parallel run takes rows [begin, end)).
struct DataSource : train::BatchSource {
    Rng rng{11};
    int64_t batch_size() const override { return 256; }
    train::Batch next(int64_t begin, int64_t end) override { return {draw_data(256, rng).slice(begin, end), {}}; }
};

// The share of points within 4 sd of a centre, and how many are at each.
void report(const char* name, const TensorF& x) {
    const TensorF c = centres();
    std::vector<int64_t> count(size_t(kCentres), 0);
    int64_t on = 0;
    for (int64_t i = 0; i < x.size(0); ++i)
        for (int64_t k = 0; k < kCentres; ++k)
            if (std::hypot(double(x(i, 0)) - c(k, 0), double(x(i, 1)) - c(k, 1)) < 4 * kSd) ++on, ++count[size_t(k)];
    std::printf("%-20s %5.1f %% on the data; per centre:", name, 100.0 * double(on) / double(x.size(0)));
    for (int64_t n : count) std::printf(" %4lld", static_cast<long long>(n));
    std::printf("\n");
}

std::vector<double> column(const TensorF& x, int64_t c) {
    std::vector<double> v;
    for (int64_t i = 0; i < x.size(0); ++i) v.push_back(x(i, c));
    return v;
}

int main() {
    const int64_t steps = 10000;
    const diffusion::Schedule schedule = diffusion::Schedule::linear(1000);
    nn::MlpDenoiser<float> model(nn::MlpConfig{}, 0);
    DataSource data;
    train::TrainerOptions o;
    o.lr = train::LrSchedule{3e-3, 100, steps, 1e-4};  // warmup, then cosine decay
    o.ema_decay = 0.995;
    train::Trainer trainer(model, schedule, data, o);
    std::vector<double> loss_steps, losses;
    struct Record : train::Observer {
        std::vector<double>&steps, &losses;
        Record(std::vector<double>& s, std::vector<double>& l) : steps(s), losses(l) {}
        void on_step(train::Trainer&, const train::StepReport& r) override {
            steps.push_back(double(r.step)), losses.push_back(r.loss);
            if (r.step % 1000 == 0) std::printf("step %5lld  loss %.4f\n", static_cast<long long>(r.step), r.loss);
        }
    };
    trainer.add_observer(std::make_shared<Record>(loss_steps, losses));
    std::printf("training an MLP of %lld parameters on 8 Gaussians, %lld steps of 256 points\n", static_cast<long long>(model.num_parameters()),
                static_cast<long long>(steps));
    trainer.run(steps, 0);

    trainer.ema().swap();
    model.eval();
    const diffusion::Denoiser<float> eps_theta = train::denoiser(model);
    Rng rng(5);
    diffusion::SamplerOptions so;
    so.clip_x0 = false;  // points, not images in [-1, 1]
    so.rng = Rng(6);
    const auto ddpm = diffusion::make_sampler<float>("ddpm", schedule, o.param, so);
    const TensorF noise = TensorF::randn({1000, 2}, rng);
    const TensorF samples = diffusion::sample(*ddpm, eps_theta, noise);
    ddpm->restart();
    const TensorF perfect = diffusion::sample(*ddpm, diffusion::GaussianMixture<float>{centres(), kSd, {}}.denoiser(schedule), noise);

    // DDIM's paths: x after each of its 50 steps, for 12 points.
    so.steps = 50;
    const auto ddim = diffusion::make_sampler<float>("ddim", schedule, o.param, so);
    const TensorF start = TensorF::randn({12, 2}, rng);
    std::vector<std::vector<double>> px(12), py(12);
    for (int64_t i = 0; i < 12; ++i) px[size_t(i)].push_back(start(i, 0)), py[size_t(i)].push_back(start(i, 1));
    diffusion::sample(*ddim, eps_theta, start, {}, [&](int64_t, int64_t, const TensorF& x) {
        for (int64_t i = 0; i < 12; ++i) px[size_t(i)].push_back(x(i, 0)), py[size_t(i)].push_back(x(i, 1));
    });
    trainer.ema().swap();

    report("trained denoiser:", samples);
    report("perfect denoiser:", perfect);
    std::printf("(%lld at each centre if even)\n", static_cast<long long>(1000 / kCentres));
    Rng data_rng(99);
    const TensorF fresh = draw_data(1000, data_rng);

    ChartOptions chart;
    chart.title = "L_simple while training";
    chart.smoothing = 0.98;
    chart.log_y = true;
    write_png("07_loss.png", plot_line_chart(loss_steps, losses, chart));
    PlotOptions po;
    po.width = po.height = 640;
    po.x_min = po.y_min = -1.2, po.x_max = po.y_max = 1.2;
    po.title = "1,000 samples of Algorithm 2, trained denoiser";
    write_png("07_samples.png", Plot(po)
                                    .points(column(fresh, 0), column(fresh, 1), "data", 1.5, Plot::Rgb{190, 190, 190})
                                    .points(column(samples, 0), column(samples, 1), "samples", 1.5)
                                    .render());
    po.title = "DDIM paths from x_T (dots) to x_0";
    po.x_min = po.y_min = -2.5, po.x_max = po.y_max = 2.5;
    Plot paths(po);
    paths.points(column(fresh, 0), column(fresh, 1), "data", 1.2, Plot::Rgb{190, 190, 190});
    std::vector<double> sx, sy;
    for (size_t i = 0; i < 12; ++i) {
        paths.line(px[i], py[i], "", 1.5);
        sx.push_back(px[i].front()), sy.push_back(py[i].front());
    }
    paths.points(sx, sy, "x_T", 3.0, Plot::Rgb{20, 20, 20});
    write_png("07_paths.png", paths.render());
    std::printf("wrote 07_loss.png, 07_samples.png and 07_paths.png\n");
    return 0;
}
