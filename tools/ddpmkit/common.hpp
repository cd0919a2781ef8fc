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

// A sampler and its grid, as `sample` and the main job's pictures run it. The defaults are
// the best samples for their cost in the comparison of README.md (Frechet distances), the
// sampler of the trainer's grids.
struct SamplerChoice {
    std::string name = "dpm";
    int64_t steps = train::TrainConfig().sample_steps;
    diffusion::Spacing spacing = diffusion::Spacing::Uniform;
    double eta = 0.0;
};
inline const std::vector<std::string> kSamplers = {"dpm", "ddim", "ddpm", "euler", "heun", "pc"};
inline const std::vector<std::string> kSpacings = {"uniform", "quadratic", "karras"};

inline Flags::Specs sampler_flags() {
    const SamplerChoice defaults;
    return {{"sampler", "NAME", "dpm (DPM-Solver++ 2M), ddim, ddpm (ancestral, all T steps), euler, heun or pc", defaults.name},
            {"steps", "N", "grid size (model calls; heun calls 2N-1; ddpm and pc use every step)", std::to_string(defaults.steps)},
            {"spacing", "NAME", one_of(kSpacings), kSpacings[0]},
            {"eta", "ETA", "DDIM noise (0: deterministic, 1: ancestral)", "0"}};
}

inline SamplerChoice sampler_choice(const Flags& f) {
    SamplerChoice s;
    s.name = f.choice("sampler", kSamplers);
    s.steps = f.integer("steps", 1);
    const std::string spacing = f.choice("spacing", kSpacings);
    s.spacing = spacing == "quadratic" ? diffusion::Spacing::Quadratic
                : spacing == "karras"  ? diffusion::Spacing::Karras
                                       : diffusion::Spacing::Uniform;
    s.eta = f.number("eta", 0);
    return s;
}

// The grid must fit the checkpoint's process.
inline void check_steps(const SamplerChoice& s, const train::LoadedModel& m) {
    if (s.steps > m.schedule.num_steps())
        throw UsageError("--steps " + std::to_string(s.steps) + " is more than the checkpoint's " +
                         std::to_string(m.schedule.num_steps()) + " timesteps");
}

inline TensorF run_sampler(const SamplerChoice& s, const train::LoadedModel& m, const TensorF& xT, Rng& rng,
                           const diffusion::StepCallback<float>& on_step = {}) {
    const diffusion::Denoiser<float> model = train::denoiser(*m.model);
    const diffusion::Parametrization& p = m.config.param;
    if (s.name == "ddpm") return diffusion::ddpm_sample(m.schedule, p, model, xT, rng, true, on_step);
    if (s.name == "pc") return diffusion::predictor_corrector_sample(m.schedule, p, model, xT, rng, 1, 0.16, true, on_step);
    const std::vector<int64_t> grid = diffusion::timestep_grid(m.schedule, s.steps, s.spacing);
    if (s.name == "dpm") return diffusion::dpm_solver_pp_2m_sample(m.schedule, p, model, xT, grid, true, on_step);
    if (s.name == "ddim") return diffusion::ddim_sample(m.schedule, p, model, xT, grid, s.eta, rng, true, on_step);
    if (s.name == "euler") return diffusion::euler_sample(m.schedule, p, model, xT, grid, true, on_step);
    if (s.name == "heun") return diffusion::heun_sample(m.schedule, p, model, xT, grid, true, on_step);
    throw std::logic_error("run_sampler: no sampler named \"" + s.name + "\"");
}

}  // namespace cli
