// ddpmkit bench unet: a U-Net's training and sampling steps (the reference U-Net unless the
// model flags say otherwise, the same flags as benchmarks/torch_unet.py), timed as that script
// times its PyTorch twin, as one JSON line.
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "common.hpp"

namespace cli {

inline double median_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Seconds of each of `steps` calls of fn after `warmup` untimed ones.
template <class Fn>
std::vector<double> time_steps(const Fn& fn, int64_t warmup, int64_t steps) {
    for (int64_t i = 0; i < warmup; ++i) fn();
    std::vector<double> seconds;
    for (int64_t i = 0; i < steps; ++i) {
        const auto start = std::chrono::steady_clock::now();
        fn();
        seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    return seconds;
}

inline double peak_rss_mb() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports kilobytes
}

// Times what benchmarks/torch_unet.py times, the same way, and prints the same JSON keys:
// the U-Net of docs/unet.md with the flags' sizes, x0 ~ U[-1, 1], linear betas 1e-4 .. 0.02 over 1000 steps;
// train step = q_sample, forward, MSE on eps, zero grads, backward, Adam(2e-4);
// sample step = one forward without gradients at t = 500.
inline int cmd_bench(int argc, char** argv) {
    Flags f("bench unet",
            "Times a U-Net's training step (forward + backward + Adam on the eps-MSE loss) and sampling\n"
            "step (one forward without gradients), as benchmarks/torch_unet.py does with the same model\n"
            "flags (the defaults are the reference U-Net), and prints one JSON line: params, batch,\n"
            "threads, train_step_s, sample_step_s (medians after warm-up) and peak_rss_mb (the\n"
            "process's peak resident memory).",
            {{"batch", "B", "images per step", "64"},
             {"threads", "N", "OpenMP threads", "2"},
             {"steps", "N", "timed steps of each kind", "20"},
             {"warmup", "N", "untimed steps before them", "2"},
             {"res", "R", "image side", "28"},
             {"ch", "N", "base channels", "32"},
             {"mult", "LIST", "channel multipliers of the levels, comma separated", "1,2,2"},
             {"blocks", "N", "residual blocks per level", "2"},
             {"attn", "LIST", "image sides with self-attention, comma separated (\"\": none)", "7"},
             {"groups", "N", "GroupNorm groups", "8"},
             {"in-ch", "N", "image channels", "1"},
             {"memory", "", "first print what a training step's graph keeps for the backward pass, by op", ""}});
    std::vector<std::string> what;
    if (!f.parse(argc, argv, &what)) return 0;
    if (what.size() != 1 || what[0] != "unet") throw UsageError("the benchmark to run is unet: ddpmkit bench unet [flags]");
    const int64_t batch = f.integer("batch", 1, kMaxBatch), threads = f.integer("threads", 1), steps = f.integer("steps", 1),
                  warmup = f.integer("warmup", 0);
    set_num_threads(static_cast<int>(threads));

    nn::UNetConfig config;
    config.res = f.integer("res", 1);
    config.ch = f.integer("ch", 1);
    config.mult = f.integers("mult", 1);
    config.blocks = f.integer("blocks", 1);
    config.attn = f.integers("attn", 1);
    config.groups = f.integer("groups", 1);
    config.in_ch = f.integer("in-ch", 1);
    try {
        config.validate();
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
    }
    nn::UNet<float> model(config, 0);
    train::Adam<float> adam(model.named_parameters(), 2e-4);
    const diffusion::Schedule schedule = diffusion::Schedule::linear(1000);
    Rng rng(0);
    const Shape shape{batch, config.in_ch, config.res, config.res};
    const VarF x0(TensorF::rand(shape, rng, -1.0, 1.0));

    const diffusion::UniformSampler timesteps(1000);
    auto batch_loss = [&] {  // L_simple of a fresh draw of t and eps
        const Tensor<int64_t> t = timesteps.sample(batch, rng).t;
        const VarF eps(TensorF::randn(shape, rng));
        return mse(model.forward(diffusion::q_sample(schedule, x0, t, eps), t), eps);
    };
    float loss_value = 0.0f;
    auto train_step = [&] {
        const VarF loss = batch_loss();
        model.zero_grad();
        loss.backward();
        adam.step();
        loss_value = loss.item();
    };
    const Tensor<int64_t> t_mid(Shape{batch}, std::vector<int64_t>(static_cast<size_t>(batch), 500));
    double checksum = 0.0;
    auto sample_step = [&] {
        NoGradGuard no_grad;
        checksum = sum(model.forward(x0, t_mid)).item();
    };

    if (f.on("memory")) {
        const VarF loss = batch_loss();
        std::printf("what the training step's graph keeps for the backward pass (batch %lld):\n", static_cast<long long>(batch));
        double total = 0.0;
        for (const GraphMemory& m : graph_memory(loss)) {
            std::printf("  %-22s %5lld values %9.1f MB\n", m.op.c_str(), static_cast<long long>(m.values), m.bytes / 1048576.0);
            total += m.bytes / 1048576.0;
        }
        std::printf("  %-22s %15s %9.1f MB\n", "total", "", total);
    }
    const double train_s = median_of(time_steps(train_step, warmup, steps));
    if (!std::isfinite(loss_value)) throw std::runtime_error("the training loss is not finite");
    const double sample_s = median_of(time_steps(sample_step, warmup, steps));
    if (!std::isfinite(checksum)) throw std::runtime_error("the sampling step's output is not finite");
    std::printf("{\"params\": %lld, \"batch\": %lld, \"threads\": %lld, \"train_step_s\": %.6f, \"sample_step_s\": %.6f, "
                "\"peak_rss_mb\": %.1f, \"arch\": \"%s\"}\n",
                static_cast<long long>(model.num_parameters()), static_cast<long long>(batch), static_cast<long long>(threads),
                train_s, sample_s, peak_rss_mb(), DDPMKIT_ARCH_NAME);
    return 0;
}

}  // namespace cli
