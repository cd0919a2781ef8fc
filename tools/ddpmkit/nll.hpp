// ddpmkit nll: the variational bound on test images in bits/dim, term by term.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"

namespace cli {

inline int cmd_nll(int argc, char** argv) {
    Flags f("nll", "Test-set negative log-likelihood bound in bits/dim (Ho et al. 2020, eq. 5), per term:\n"
                   "L_0 (decoder), L_1 + ... + L_{T-1} (the KL terms) and L_T (prior). The exact bound costs T model\n"
                   "calls per image; --timesteps K estimates the KL sum from K random terms per image (unbiased).",
            concat({{"images", "N", "test images to evaluate (the first N)", "100"},
                    {"timesteps", "K", "KL terms per image (0: all T-1, exact)", "0"},
                    {"batch", "B", "images per batch", "50"},
                    {"seed", "S", "random seed", "0"}},
                   {checkpoint_flags(), data_flags("its test split")}));
    if (!f.parse(argc, argv)) return 0;
    const std::string data_name = f.choice("data", kDataSets);
    const int64_t images = f.integer("images", 2, kMaxImages), batch = f.integer("batch", 1, kMaxBatch),
                  K = f.integer("timesteps", 0, train::TrainConfig::kMaxTimesteps);
    const uint64_t seed = static_cast<uint64_t>(f.integer("seed", 0));
    const train::LoadedModel m = load_checkpoint(f);
    if (K > m.schedule.num_steps() - 1)
        throw UsageError("--timesteps " + std::to_string(K) + " is more than the checkpoint's " +
                         std::to_string(m.schedule.num_steps() - 1) + " KL terms");
    const ImageDataset test = load_data(data_name, f.str("data-dir"), false);
    const int64_t n = std::min(images, test.size());
    // Batch j of test images draws its noise from its own part of the stream: under mpirun each
    // process takes its share of the batches, and the terms are the same.
    diffusion::BoundTerms all;
    for (std::vector<double>* v : {&all.decoder, &all.kl, &all.prior, &all.total}) v->assign(static_cast<size_t>(n), 0.0);
    const auto [first, last] = my_parts((n + batch - 1) / batch);
    std::unique_ptr<ProgressLine> progress;  // rank 0's share
    if (processes().is_root()) progress = std::make_unique<ProgressLine>(std::min(n, last * batch) - first * batch);
    for (int64_t j = first; j < last; ++j) {
        const int64_t done = j * batch;
        const TensorF x0 = test.images.slice(done, std::min(n, done + batch)).clone();
        Rng rng(seed, part_counter(j));
        const diffusion::BoundTerms b = K == 0 ? diffusion::calc_bpd(m.schedule, m.config.param, train::denoiser(*m.model), x0, rng)
                                               : diffusion::estimate_bpd(m.schedule, m.config.param, train::denoiser(*m.model), x0, K, rng);
        std::copy(b.decoder.begin(), b.decoder.end(), all.decoder.begin() + done);
        std::copy(b.kl.begin(), b.kl.end(), all.kl.begin() + done);
        std::copy(b.prior.begin(), b.prior.end(), all.prior.begin() + done);
        std::copy(b.total.begin(), b.total.end(), all.total.begin() + done);
        if (progress) progress->update(done + x0.size(0) - first * batch);
    }
    for (std::vector<double>* v : {&all.decoder, &all.kl, &all.prior, &all.total})  // each image's terms are non-zero on one process only
        processes().all_reduce_sum(v->data(), n);
    if (!processes().is_root()) return 0;
    auto mean_se = [](const std::vector<double>& v) {
        const double mean = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
        double ss = 0;
        for (double x : v) ss += (x - mean) * (x - mean);
        return std::make_pair(mean, std::sqrt(ss / double(v.size() - 1) / double(v.size())));
    };
    std::printf("%s, %lld test images, %s, step %lld:\n", f.str("checkpoint").c_str(), static_cast<long long>(n),
                K == 0 ? "exact bound (all T terms)" : ("estimate from " + std::to_string(K) + " KL terms per image").c_str(),
                static_cast<long long>(m.step));
    const std::pair<const char*, const std::vector<double>*> rows[] = {
        {"L_0 (decoder)", &all.decoder}, {"L_1..L_{T-1} (KL)", &all.kl}, {"L_T (prior)", &all.prior}, {"total", &all.total}};
    for (const auto& [name, v] : rows) {
        const auto [mean, se] = mean_se(*v);
        std::printf("  %-20s %9.5g bits/dim  +- %.2g (standard error)\n", name, mean, se);
    }
    return 0;
}

}  // namespace cli
