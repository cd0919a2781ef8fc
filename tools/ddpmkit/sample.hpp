// ddpmkit sample: samples from a checkpoint with any sampler, as a PNG grid and raw tensors.
#pragma once

#include <ddpmkit/eval/classifier.hpp>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "common.hpp"

namespace cli {

inline int cmd_sample(int argc, char** argv) {
    Flags f("sample", "Samples from a checkpoint and writes a PNG grid (and, with --raw, the samples as safetensors).",
            concat({{"n", "N", "number of samples", "64"},
                    {"batch", "B", "samples per batch", "64"},
                    {"seed", "S", "random seed", "0"},
                    {"out", "FILE", "PNG grid (its folder is created)", "samples.png"},
                    {"raw", "FILE", "also write the samples [N, C, H, W] in [-1, 1] as safetensors", ""},
                    {"class", "K", "class-conditional checkpoints: draw class K (-1: a row per class)", "-1"},
                    {"guidance", "W", "classifier-free guidance scale w: (1 + w) eps(x, y) - w eps(x, null)", "0"},
                    {"classifier", "FILE", "class-conditional checkpoints: report the share the classifier puts in the asked class", ""}},
                   {checkpoint_flags(), sampler_flags()}));
    if (!f.parse(argc, argv)) return 0;
    const SamplerChoice sampler = sampler_choice(f);
    const int64_t n = f.integer("n", 1, kMaxImages), batch = std::min(n, f.integer("batch", 1, kMaxBatch));
    const uint64_t seed = static_cast<uint64_t>(f.integer("seed", 0));
    const std::string out = f.str("out"), raw = f.str("raw");
    if (f.str("checkpoint").empty()) throw UsageError("--checkpoint FILE is required");
    const bool root = processes().is_root();
    if (root) prepare_output_file(out);
    if (root && !raw.empty()) prepare_output_file(raw);
    const train::LoadedModel m = load_checkpoint(f);
    check_steps(sampler, m);

    const nn::UNetConfig& mc = m.config.model;
    if (mc.cond_ch > 0) throw UsageError("--checkpoint is a super-resolution model: ddpmkit superres runs it");
    const int64_t label = f.integer("class", -1);
    const double guidance = f.number("guidance", 0);
    if (mc.num_classes == 0 && (f.given("class") || f.given("guidance")))
        throw UsageError("--class and --guidance need a class-conditional checkpoint (ddpmkit train --classes)");
    if (label < -1 || label >= mc.num_classes)
        throw UsageError("--class " + std::to_string(label) + " is outside [0, " + std::to_string(mc.num_classes - 1) + "] (or -1)");
    const diffusion::Denoiser<float> model =
        mc.num_classes > 0 ? diffusion::classifier_free_guidance<float>(train::denoiser(*m.model), guidance, mc.num_classes)
                           : train::denoiser(*m.model);
    const int64_t per_class = mc.num_classes > 0 ? (n + mc.num_classes - 1) / mc.num_classes : n;
    TensorF all({n, mc.in_ch, mc.res, mc.res});  // zeros where other processes draw
    Tensor<int64_t> asked({n});
    for (int64_t i = 0; i < n; ++i) asked(i) = mc.num_classes == 0 ? 0 : label >= 0 ? label : i / per_class;
    // Batch j of `batch` samples draws x_T and the sampler's noise from its own part of the
    // streams: under mpirun each process draws its share of the batches, the same samples.
    const int64_t batches = (n + batch - 1) / batch;
    const auto [first, last] = my_parts(batches);
    std::unique_ptr<ProgressLine> progress;  // rank 0's share
    if (root) progress = std::make_unique<ProgressLine>(std::min(n, last * batch) - first * batch);
    for (int64_t j = first; j < last; ++j) {
        const int64_t done = j * batch, b = std::min(batch, n - done);
        const auto stepper = make_sampler(sampler, m, seed, part_counter(j));
        nn::Condition<float> cond;
        if (mc.num_classes > 0) cond.labels = asked.slice(done, done + b);  // class `label`, or a row of per_class samples for each class in turn
        Rng noise(seed, part_counter(j));
        const TensorF x = diffusion::sample(*stepper, model, TensorF::randn({b, mc.in_ch, mc.res, mc.res}, noise), cond);
        std::copy(x.data(), x.data() + x.numel(), all.data() + done * x.numel() / b);
        if (progress) progress->update(done + b - first * batch);
    }
    processes().all_reduce_sum(all.data(), all.numel());  // every sample is non-zero on one process only
    if (!root) return 0;
    GridOptions grid;
    if (mc.num_classes > 0 && label < 0) grid.cols = static_cast<int>(per_class);
    write_grid_png(out, all, grid);
    std::printf("wrote %s (%lld samples, %s, step %lld of training)\n", out.c_str(), static_cast<long long>(n),
                describe(sampler).c_str(), static_cast<long long>(m.step));
    if (!f.str("classifier").empty()) {
        if (mc.num_classes == 0) throw UsageError("--classifier needs a class-conditional checkpoint");
        eval::Classifier classifier;
        eval::load_classifier(classifier, f.str("classifier"));
        const double share = eval::classifier_accuracy(classifier, ImageDataset{all, asked, static_cast<int>(mc.num_classes), "samples"});
        std::printf("the classifier puts %.1f %% of the samples in the asked class (guidance w = %g)\n", 100 * share, guidance);
    }
    if (!raw.empty()) {
        safetensors::Writer w;
        w.add("samples", all);
        w.write(raw);
        std::printf("wrote %s\n", raw.c_str());
    }
    return 0;
}

}  // namespace cli
