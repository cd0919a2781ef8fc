// ddpmkit sample: samples from a checkpoint with any sampler, as a PNG grid and raw tensors.
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>

#include "common.hpp"

namespace cli {

inline int cmd_sample(int argc, char** argv) {
    Flags f("sample", "Samples from a checkpoint and writes a PNG grid (and, with --raw, the samples as safetensors).",
            concat({{"n", "N", "number of samples", "64"},
                    {"batch", "B", "samples per batch", "64"},
                    {"seed", "S", "random seed", "0"},
                    {"out", "FILE", "PNG grid (its folder is created)", "samples.png"},
                    {"raw", "FILE", "also write the samples [N, C, H, W] in [-1, 1] as safetensors", ""}},
                   {checkpoint_flags(), sampler_flags()}));
    if (!f.parse(argc, argv)) return 0;
    const SamplerChoice sampler = sampler_choice(f);
    const int64_t n = f.integer("n", 1), batch = std::min(n, f.integer("batch", 1));
    const uint64_t seed = static_cast<uint64_t>(f.integer("seed", 0));
    Rng rng(seed);
    const std::string out = f.str("out"), raw = f.str("raw");
    if (f.str("checkpoint").empty()) throw UsageError("--checkpoint FILE is required");
    prepare_output_file(out);
    if (!raw.empty()) prepare_output_file(raw);
    const train::LoadedModel m = load_checkpoint(f);
    check_steps(sampler, m);

    const nn::UNetConfig& mc = m.config.model;
    TensorF all({n, mc.in_ch, mc.res, mc.res});
    const auto stepper = make_sampler(sampler, m, seed);
    ProgressLine progress(n);
    for (int64_t done = 0; done < n; done += batch) {
        const int64_t b = std::min(batch, n - done);
        stepper->restart();
        const TensorF x = diffusion::sample(*stepper, train::denoiser(*m.model), TensorF::randn({b, mc.in_ch, mc.res, mc.res}, rng));
        std::copy(x.data(), x.data() + x.numel(), all.data() + done * x.numel() / b);
        progress.update(done + b);
    }
    write_grid_png(out, all);
    std::printf("wrote %s (%lld samples, %s, step %lld of training)\n", out.c_str(), static_cast<long long>(n),
                sampler.name.c_str(), static_cast<long long>(m.step));
    if (!raw.empty()) {
        safetensors::Writer w;
        w.add("samples", all);
        w.write(raw);
        std::printf("wrote %s\n", raw.c_str());
    }
    return 0;
}

}  // namespace cli
