// ddpmkit program: the flag groups several commands share — the data set, the checkpoint,
// the sampler — each defined once, with what reads them.
#pragma once

#include <ddpmkit/ddpmkit.hpp>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "flags.hpp"

namespace cli {

using namespace ddpmkit;

// The processes this program runs as: one, or those of mpirun when built with DDPMKIT_MPI
// (main.cpp sets them). Rank 0 alone writes files and reports.
inline dist::Group*& process_group() {
    static dist::Group* group = &dist::solo();
    return group;
}
inline dist::Group& processes() { return *process_group(); }

// A safetensors file as rank 0 reads it, on every process (no shared file system needed).
inline safetensors::File read_on_root(const std::string& path) {
    dist::Group& g = processes();
    return safetensors::File::parse(dist::broadcast_bytes(g, g.is_root() ? read_whole_file(path) : std::vector<uint8_t>{}), path);
}

// Where part j of a piece of work (a batch of samples or of test images) starts in each random
// stream it draws from: 2^32 blocks apart, far more than a part draws. A part's numbers then
// depend on j alone, not on the parts drawn before it, so any process can draw any part and the
// output does not depend on the process count.
inline uint64_t part_counter(int64_t j) { return static_cast<uint64_t>(j) << 32; }

// Which parts of `parts` this process draws: dist::share's contiguous share.
inline std::pair<int64_t, int64_t> my_parts(int64_t parts) { return dist::share(parts, processes().rank(), processes().size()); }

// Counts a command takes from its flags: images to draw or evaluate, and images per batch.
// Far above any real use; past them a flag is a typo, refused before anything is allocated.
constexpr int64_t kMaxImages = 1000000, kMaxBatch = 65536;

// ---- the data set: --data, --data-dir ----

inline const std::vector<std::string> kDataSets = {"fashion-mnist", "mnist", "cifar10", "shapes"};

inline Flags::Specs data_flags(const std::string& what, const std::vector<std::string>& allowed = kDataSets) {
    return {{"data", "NAME", one_of(allowed) + ": " + what, "fashion-mnist"},
            {"data-dir", "DIR", "folder of the data set's files (Fashion-MNIST: " + std::string(kDefaultFashionMnistDir) + ")", ""}};
}

// The data set by name; Fashion-MNIST falls back to the embedded shapes, saying so.
inline ImageDataset load_data(const std::string& name, const std::string& dir, bool train) {
    if (name == "fashion-mnist") {
        DatasetChoice choice = load_fashion_mnist_or_embedded(dir.empty() ? kDefaultFashionMnistDir : dir, train);
        if (choice.embedded) std::fprintf(stderr, "%s\n", choice.message.c_str());
        return std::move(choice.data);
    }
    if (name == "mnist") return load_mnist(dir, train);
    if (name == "cifar10") return load_cifar10(dir, train);
    if (name == "shapes") return make_shapes_dataset(train ? 60000 : 10000, train ? 0 : 1);
    throw UsageError("--data is " + one_of(kDataSets) + ", not \"" + name + "\"");
}

// ---- the checkpoint: --checkpoint, --live-weights ----

inline Flags::Specs checkpoint_flags() {
    return {{"checkpoint", "FILE", "checkpoint written by ddpmkit train", ""},
            {"live-weights", "", "use the live weights instead of the EMA", ""}};
}

// The checkpoint of --checkpoint; a failure names the flag.
inline train::LoadedModel load_checkpoint(const Flags& f) {
    const std::string path = f.str("checkpoint");
    if (path.empty()) throw UsageError("--checkpoint FILE is required");
    try {
        return train::load_checkpoint(path, !f.on("live-weights"));
    } catch (const std::exception& e) {
        throw std::runtime_error("--checkpoint: " + std::string(e.what()));
    }
}

// ---- the sampler: --sampler, --steps, --spacing, --eta ----

// A sampler of the registry and its options, as `sample` and the main job's pictures run
// it. The defaults (the registry's first sampler, SamplerOptions' steps) are the best
// samples for their cost in the comparison of README.md, and the trainer's grids use them.
struct SamplerChoice {
    std::string name = diffusion::default_sampler();
    diffusion::SamplerOptions options;
};
inline const std::vector<std::string> kSpacings = {"uniform", "quadratic", "karras"};

inline Flags::Specs sampler_flags() {
    const SamplerChoice defaults;
    std::string names;
    for (const auto& e : diffusion::sampler_registry<float>()) names += (names.empty() ? "" : "; ") + e.name + ": " + e.summary;
    return {{"sampler", "NAME", names, defaults.name},
            {"steps", "N", "grid size (model calls; heun calls 2N-1; ddpm and pc use every step)", std::to_string(defaults.options.steps)},
            {"spacing", "NAME", one_of(kSpacings), kSpacings[0]},
            {"eta", "ETA", "DDIM noise (0: deterministic, 1: ancestral)", "0"}};
}

inline SamplerChoice sampler_choice(const Flags& f) {
    SamplerChoice s;
    s.name = f.choice("sampler", diffusion::sampler_names());
    s.options.steps = f.integer("steps", 1, train::TrainConfig::kMaxTimesteps);
    const std::string spacing = f.choice("spacing", kSpacings);
    s.options.spacing = spacing == "quadratic" ? diffusion::Spacing::Quadratic
                        : spacing == "karras"  ? diffusion::Spacing::Karras
                                               : diffusion::Spacing::Uniform;
    s.options.eta = f.number("eta", 0);
    return s;
}

// What the sampler runs, for the reports: "dpm, 10 steps" or "ddpm, every step".
inline std::string describe(const SamplerChoice& s) {
    for (const auto& e : diffusion::sampler_registry<float>())
        if (e.name == s.name && !e.uses_grid) return s.name + ", every step";
    return s.name + ", " + std::to_string(s.options.steps) + " steps";
}

// The grid must fit the checkpoint's process.
inline void check_steps(const SamplerChoice& s, const train::LoadedModel& m) {
    if (s.options.steps > m.schedule.num_steps())
        throw UsageError("--steps " + std::to_string(s.options.steps) + " is more than the checkpoint's " +
                         std::to_string(m.schedule.num_steps()) + " timesteps");
}

// The chosen sampler on the checkpoint's process, its noise drawn from a stream of its own
// (x_T comes from the seed's stream).
// counter: where in its stream the sampler's noise starts (work split in parts: part_counter).
inline std::unique_ptr<diffusion::ProcessSampler<float>> make_sampler(SamplerChoice s, const train::LoadedModel& m, uint64_t seed,
                                                                       uint64_t counter = 0) {
    s.options.rng = Rng(seed ^ 0x6e6f697365ULL, counter);
    return diffusion::make_sampler<float>(s.name, m.schedule, m.config.param, s.options);
}

}  // namespace cli
