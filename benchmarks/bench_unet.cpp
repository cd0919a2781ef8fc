// bench_unet — the whole U-Net step against the PyTorch peer (DESIGN.md, performance model).
//
// Times what shared/reference/torch_unet.py times, the same way: the default U-Net
// (UNetConfig{}, 1,623,169 parameters), 28x28 images,
//   train step:  x_t = sqrt(abar) x0 + sqrt(1 - abar) eps, forward, MSE on eps, zero grads,
//                backward, Adam(lr 2e-4) update;
//   sample step: one forward pass under NoGradGuard at t = 500;
// two warm-up steps, then the median of --steps timed steps. Prints one line per step kind
// and a JSON line shaped like the peer's, so both can be compared side by side:
//
//   bench_unet --threads 2 --batch 64 --steps 10
//   /usr/bin/python3 shared/reference/torch_unet.py --threads 2 --batch 64 --steps 10
//
// A plain main rather than Google Benchmark: one step takes about a second and the peer
// reports medians of single steps. Before timing, the forward output is checked for being
// finite and the loss for being near 1 (the target is unit noise), and the loss must fall
// over the warm-up and timed steps' fixed batch (a smoke check that training trains).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "ddpmkit/ddpmkit.hpp"

using namespace ddpmkit;

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

template <class Fn>
std::vector<double> timed(const Fn& fn, int warmup, int steps) {
    for (int i = 0; i < warmup; ++i) fn();
    std::vector<double> out;
    for (int i = 0; i < steps; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        fn();
        out.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return out;
}

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "bench_unet: %s\n", what.c_str());
    std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
    int threads = 2, batch = 64, steps = 10, warmup = 2;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> int {
            if (i + 1 >= argc) fail("missing value after " + a);
            return std::atoi(argv[++i]);
        };
        if (a == "--threads") threads = value();
        else if (a == "--batch") batch = value();
        else if (a == "--steps") steps = value();
        else if (a == "--warmup") warmup = value();
        else fail("usage: bench_unet [--threads N] [--batch N] [--steps N] [--warmup N]");
    }
    if (threads < 1 || batch < 1 || steps < 1 || warmup < 0) fail("threads, batch and steps must be positive");
    set_num_threads(threads);

    const nn::UNetConfig config{};
    nn::UNet<float> model(config, 0);
    const int64_t params = model.num_parameters();
    train::Adam<float> opt(model.named_parameters(), 2e-4);

    // Linear betas 1e-4 .. 0.02 over 1000 steps, as the peer (its cumprod is in float).
    std::vector<float> abar(1000);
    float acc = 1.0f;
    for (int i = 0; i < 1000; ++i) abar[static_cast<size_t>(i)] = acc *= 1.0f - static_cast<float>(1e-4 + (0.02 - 1e-4) * i / 999.0);
    Rng rng(0);
    const Shape shape{batch, config.in_ch, config.res, config.res};
    const TensorF x0 = TensorF::rand(shape, rng, -1.0, 1.0);
    const int64_t per_image = shape.numel() / batch;

    float first_loss = NAN, last_loss = NAN;
    auto train_step = [&]() {
        std::vector<double> u(static_cast<size_t>(batch));
        rng.uniform(u.data(), batch);
        Tensor<int64_t> t({batch});
        for (int64_t b = 0; b < batch; ++b) t.data()[b] = std::min<int64_t>(999, static_cast<int64_t>(u[static_cast<size_t>(b)] * 1000));
        const TensorF eps = TensorF::randn(shape, rng);
        TensorF xt(shape);
        for (int64_t b = 0; b < batch; ++b) {
            const float a = abar[static_cast<size_t>(t.data()[b])], sa = std::sqrt(a), sb = std::sqrt(1.0f - a);
            for (int64_t i = b * per_image; i < (b + 1) * per_image; ++i) xt.data()[i] = sa * x0.data()[i] + sb * eps.data()[i];
        }
        const VarF loss = mse(model.forward(VarF(xt), t), VarF(eps));
        model.zero_grad();
        loss.backward();
        opt.step();
        last_loss = loss.item();
        if (std::isnan(first_loss)) first_loss = last_loss;
    };
    double checksum = 0;
    auto sample_step = [&]() {
        NoGradGuard no_grad;
        const Tensor<int64_t> t({batch}, std::vector<int64_t>(static_cast<size_t>(batch), 500));
        const VarF out = model.forward(VarF(x0), t);
        checksum = 0;
        for (int64_t i = 0; i < out.numel(); ++i) checksum += out.value().data()[i];
    };

    // Checks first: the forward pass is finite, the loss of unit-noise targets is near 1.
    sample_step();
    if (!std::isfinite(checksum)) fail("the sampling step's output is not finite");
    train_step();
    if (!(last_loss > 0.2f && last_loss < 5.0f)) fail("the first training loss " + std::to_string(last_loss) + " is implausible");

    const std::vector<double> train_s = timed(train_step, warmup, steps);
    const std::vector<double> sample_s = timed(sample_step, warmup, steps);
    if (!std::isfinite(last_loss)) fail("the training loss diverged");

    const double gflop_forward = 2 * 0.277 * batch;  // UNET.md: ~277 M multiply-adds per image forward
    const double tm = median(train_s), sm = median(sample_s);
    std::printf("ddpmkit U-Net (%s, %d threads), batch %d, %lld parameters, median of %d steps after %d warm-up\n",
                DDPMKIT_ARCH_NAME, threads, batch, static_cast<long long>(params), steps, warmup);
    std::printf("  train step  %8.1f ms  (min %.1f, max %.1f)  ~%.0f GFLOP/s  loss %.4f -> %.4f\n", tm * 1e3,
                *std::min_element(train_s.begin(), train_s.end()) * 1e3, *std::max_element(train_s.begin(), train_s.end()) * 1e3,
                3 * gflop_forward / tm, first_loss, last_loss);
    std::printf("  sample step %8.1f ms  (min %.1f, max %.1f)  ~%.0f GFLOP/s\n", sm * 1e3,
                *std::min_element(sample_s.begin(), sample_s.end()) * 1e3,
                *std::max_element(sample_s.begin(), sample_s.end()) * 1e3, gflop_forward / sm);
    std::printf("{\"params\": %lld, \"batch\": %d, \"threads\": %d, \"train_step_s\": %.6f, \"sample_step_s\": %.6f, "
                "\"arch\": \"%s\"}\n",
                static_cast<long long>(params), batch, threads, tm, sm, DDPMKIT_ARCH_NAME);
    return 0;
}
