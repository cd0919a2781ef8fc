// ddpmkit — the checkpoint of a training run: one safetensors file that PyTorch opens.
// Metadata: the run's TrainConfig (kind = "ddpmkit-checkpoint", the U-Net's config, the
// process, the loss, the optimizer's settings, the data set). Tensors: process.betas (F64,
// so a custom schedule survives), model.* (live weights), ema.* (averaged weights), opt.*
// (Adam's moments), state.* (step, generators, data order, timestep sampler). Written to a
// temporary file and renamed, so a crash leaves the previous checkpoint whole.
#pragma once

#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

#include "ddpmkit/config.hpp"
#include "ddpmkit/diffusion/losses.hpp"
#include "ddpmkit/diffusion/samplers.hpp"
#include "ddpmkit/diffusion/schedule.hpp"
#include "ddpmkit/io/safetensors.hpp"
#include "ddpmkit/nn/unet.hpp"
#include "ddpmkit/train/gradient_sum.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace train {

// The settings of a training run as the ddpmkit program makes it: a U-Net on an image data
// set. The model and the process are recorded in the checkpoint; the limits (steps,
// minutes) and the reporting intervals are not.
struct TrainConfig {
    // The model: small and fast by default, what trains well in minutes on two cores
    // (docs/performance.md): ch 16, 2 blocks, attention at 7x7.
    nn::UNetConfig model = [] {
        nn::UNetConfig c;
        c.ch = 16;
        c.groups = 8;
        return c;
    }();
    std::string schedule = "linear";
    int64_t timesteps = 1000;
    diffusion::Parametrization param;
    diffusion::LossType loss = diffusion::LossType::Simple;
    double min_snr_gamma = 0.0;  // > 0: weight the MSE by min(SNR, gamma) (Hang et al. 2023)
    // How t is drawn: "uniform", or "importance" (Nichol & Dhariwal 2021, sec. 3.3; what L_vlb
    // training needs); "" picks importance for the kl loss, uniform otherwise.
    std::string timestep_sampler;
    double label_dropout = 0.1;  // class-conditional models: share of labels replaced by the null label
    std::string data;            // the data set's name and its ImageDataset::digest(), so that a resume
    std::string data_digest;     // cannot continue on other data
    // > 0: super-resolution (SR3): the model sees the image shrunk by this factor (block means)
    // and upsampled bilinearly, as model.cond_ch extra input channels.
    int64_t superres_factor = 0;
    int64_t batch = 64;
    int64_t processes = 1;      // data parallelism: each of them takes batch / processes examples
    int64_t micro_batches = 1;  // gradient accumulation: each process's examples in this many parts
    int64_t bucket_bytes = kDefaultBucketBytes;  // several processes: TrainerOptions::bucket_bytes
    double lr = 1e-3;
    int64_t warmup = 200;
    int64_t lr_decay = 0;  // > warmup: cosine decay of the learning rate to 0 at this step
    double grad_clip = 1.0;
    double ema_decay = 0.995;
    int64_t steps = 0;     // stop after this many steps (0: no step limit)
    double minutes = 0.0;  // stop after this much training time in this run (0: no time limit)
    uint64_t seed = 0;
    bool flip = false;     // random horizontal flips of the data
    bool detect_anomaly = false;  // check every op's value and gradient (TrainerOptions::detect_anomaly)
    int64_t log_every = 10;
    int64_t checkpoint_every = 500;
    double checkpoint_minutes = 2.0;
    int64_t sample_every = 1000;  // 0: sample grids only at the end
    int64_t sample_count = 64;
    std::string sampler = diffusion::default_sampler();  // of the sample grids (README: Which sampler)
    diffusion::SamplerOptions sampling;                  // its steps (at most timesteps), spacing, ...

    // Limits past any run this library makes (the model's: UNetConfig's), checked before
    // anything is allocated: past them a setting comes from a corrupt file or a mistyped flag.
    static constexpr int64_t kMaxTimesteps = 100000, kMaxBatch = 65536, kMaxSteps = int64_t(1) << 40, kMaxProcesses = 65536;

    // Throws std::invalid_argument naming the first setting that cannot work.
    void validate() const {
        model.validate();
        auto fail = [](const std::string& what) { throw std::invalid_argument("TrainConfig: " + what); };
        auto in_range = [&](const char* name, int64_t value, int64_t low, int64_t high) {
            if (value < low || value > high)
                fail(std::string(name) + " " + std::to_string(value) + " is outside " + std::to_string(low) + ".." + std::to_string(high));
        };
        in_range("timesteps", timesteps, 1, kMaxTimesteps);
        in_range("batch", batch, 1, kMaxBatch);
        in_range("processes", processes, 1, kMaxProcesses);
        if (batch % processes != 0) fail("batch " + std::to_string(batch) + " does not divide among " + std::to_string(processes) + " processes");
        in_range("micro_batches", micro_batches, 1, batch / processes);
        in_range("bucket_bytes", bucket_bytes, 0, int64_t(1) << 40);
        in_range("warmup", warmup, 0, kMaxSteps), in_range("lr_decay", lr_decay, 0, kMaxSteps), in_range("steps", steps, 0, kMaxSteps);
        in_range("superres_factor", superres_factor, 0, model.res);
        auto real = [&](const char* name, double value, double low, double high, bool high_open) {
            if (!(value >= low && (high_open ? value < high : value <= high))) {
                std::ostringstream m;  // shortest forms: 0.001, 1e+30
                m << name << " " << value << " is outside [" << low << ", " << high << (high_open ? ")" : "]");
                fail(m.str());
            }
        };
        real("lr", lr, 0, 1e3, false), real("ema_decay", ema_decay, 0, 1, false), real("label_dropout", label_dropout, 0, 1, true);
        real("grad_clip", grad_clip, -1e30, 1e30, false), real("min_snr_gamma", min_snr_gamma, 0, 1e30, false);
    }

    // The settings that define the model and the process, as checkpoint metadata.
    std::map<std::string, std::string> to_metadata() const {
        std::map<std::string, std::string> m = model.to_metadata();
        m["kind"] = "ddpmkit-checkpoint";
        m["schedule"] = schedule;
        m["timesteps"] = std::to_string(timesteps);
        m["output"] = output_name(param.output);
        m["variance"] = variance_name(param.variance);
        m["loss"] = loss_name(loss);
        m["min_snr_gamma"] = std::to_string(min_snr_gamma);
        m["timestep_sampler"] = timestep_sampler_name();
        m["label_dropout"] = std::to_string(label_dropout);
        m["data"] = data;
        m["data_digest"] = data_digest;
        m["lr_decay"] = std::to_string(lr_decay);
        m["superres_factor"] = std::to_string(superres_factor);
        m["batch"] = std::to_string(batch);
        m["processes"] = std::to_string(processes);
        m["micro_batches"] = std::to_string(micro_batches);
        m["lr"] = std::to_string(lr);
        m["warmup"] = std::to_string(warmup);
        m["grad_clip"] = std::to_string(grad_clip);
        m["ema_decay"] = std::to_string(ema_decay);
        m["seed"] = std::to_string(seed);
        m["flip"] = flip ? "1" : "0";
        return m;
    }
    static TrainConfig from_metadata(const std::map<std::string, std::string>& m) {
        const auto kind = m.find("kind");
        if (kind == m.end() || kind->second != "ddpmkit-checkpoint")
            throw std::invalid_argument("not a ddpmkit training checkpoint (its metadata has " +
                                        (kind == m.end() ? std::string("no \"kind\"") : "kind = \"" + kind->second + "\"") + ")");
        auto get = [&](const char* key) {
            const auto it = m.find(key);
            if (it == m.end()) throw std::invalid_argument(std::string("checkpoint metadata has no \"") + key + "\"");
            return it->second;
        };
        // The whole value must be the number: "12abc" is not 12.
        auto number = [&](const char* key, auto parse) {
            const std::string v = get(key);
            size_t used = 0;
            try {
                const auto x = parse(v, &used);
                if (used == v.size()) return x;
            } catch (const std::exception&) {
            }
            throw std::invalid_argument(std::string("checkpoint metadata ") + key + " = \"" + v + "\" is not a number");
        };
        auto integer = [](const std::string& v, size_t* used) { return std::stoll(v, used); };
        auto natural = [](const std::string& v, size_t* used) { return std::stoull(v, used); };
        auto real = [](const std::string& v, size_t* used) { return std::stod(v, used); };
        TrainConfig c;
        c.model = nn::UNetConfig::from_metadata(m);
        c.schedule = get("schedule");
        c.timesteps = number("timesteps", integer);
        c.param.output = parse_output(get("output"));
        c.param.variance = parse_variance(get("variance"));
        c.loss = parse_loss(get("loss"));
        c.min_snr_gamma = number("min_snr_gamma", real);
        // Keys that checkpoints of older versions lack keep their defaults.
        auto has = [&](const char* key) { return m.count(key) > 0; };
        if (has("timestep_sampler")) c.timestep_sampler = get("timestep_sampler");
        if (has("label_dropout")) c.label_dropout = number("label_dropout", real);
        if (has("data")) c.data = get("data");
        if (has("data_digest")) c.data_digest = get("data_digest");
        if (has("lr_decay")) c.lr_decay = number("lr_decay", integer);
        if (has("superres_factor")) c.superres_factor = number("superres_factor", natural);
        c.batch = number("batch", integer);
        if (has("processes")) c.processes = number("processes", integer);
        if (has("micro_batches")) c.micro_batches = number("micro_batches", integer);
        c.lr = number("lr", real);
        c.warmup = number("warmup", integer);
        c.grad_clip = number("grad_clip", real);
        c.ema_decay = number("ema_decay", real);
        c.seed = number("seed", natural);
        const std::string flip = get("flip");
        if (flip != "0" && flip != "1") throw std::invalid_argument("checkpoint metadata flip = \"" + flip + "\" is not 0 or 1");
        c.flip = flip == "1";
        c.validate();
        return c;
    }

    // The timestep sampler in effect: the one named, or the loss's default.
    std::string timestep_sampler_name() const {
        if (!timestep_sampler.empty()) return timestep_sampler;
        return loss == diffusion::LossType::Kl ? "importance" : "uniform";
    }

    static std::string output_name(diffusion::ModelOutput o) {
        return o == diffusion::ModelOutput::Eps ? "eps" : o == diffusion::ModelOutput::X0 ? "x0" : "v";
    }
    static diffusion::ModelOutput parse_output(const std::string& s) {
        if (s == "eps") return diffusion::ModelOutput::Eps;
        if (s == "x0") return diffusion::ModelOutput::X0;
        if (s == "v") return diffusion::ModelOutput::V;
        throw std::invalid_argument("unknown model output \"" + s + "\" (eps, x0 or v)");
    }
    static std::string variance_name(diffusion::ModelVariance v) {
        return v == diffusion::ModelVariance::FixedSmall ? "small" : v == diffusion::ModelVariance::FixedLarge ? "large" : "learned";
    }
    static diffusion::ModelVariance parse_variance(const std::string& s) {
        if (s == "small") return diffusion::ModelVariance::FixedSmall;
        if (s == "large") return diffusion::ModelVariance::FixedLarge;
        if (s == "learned") return diffusion::ModelVariance::Learned;
        throw std::invalid_argument("unknown variance \"" + s + "\" (small, large or learned)");
    }
    static std::string loss_name(diffusion::LossType l) {
        return l == diffusion::LossType::Simple ? "simple" : l == diffusion::LossType::Hybrid ? "hybrid" : "kl";
    }
    static diffusion::LossType parse_loss(const std::string& s) {
        if (s == "simple") return diffusion::LossType::Simple;
        if (s == "hybrid") return diffusion::LossType::Hybrid;
        if (s == "kl") return diffusion::LossType::Kl;
        throw std::invalid_argument("unknown loss \"" + s + "\" (simple, hybrid or kl)");
    }
};


// The process of a checkpoint: its betas (process.betas), or for checkpoints of older
// versions the named schedule of its metadata.
inline diffusion::Schedule schedule_of(const safetensors::File& f, const TrainConfig& c) {
    if (!f.contains("process.betas")) return diffusion::Schedule::named(c.schedule, c.timesteps);
    const Tensor<double> b = f.get<double>("process.betas");
    if (b.dim() != 1 || b.numel() != c.timesteps)
        throw std::runtime_error("process.betas is " + b.shape().str() + ", but the metadata says timesteps = " + std::to_string(c.timesteps));
    return diffusion::Schedule::from_betas(std::vector<double>(b.data(), b.data() + b.numel()));
}

// A trained model loaded from a checkpoint, with its EMA weights (for sampling) or its live ones.
struct LoadedModel {
    TrainConfig config;
    std::unique_ptr<nn::UNet<float>> model;
    diffusion::Schedule schedule;
    int64_t step = 0;
};

inline LoadedModel load_checkpoint(const std::string& path, bool ema = true) {
    const safetensors::File f = safetensors::File::read(path);
    TrainConfig c;
    try {
        c = TrainConfig::from_metadata(f.metadata());
    } catch (const std::exception& e) {
        throw std::runtime_error(path + ": " + e.what());
    }
    LoadedModel m{c, std::make_unique<nn::UNet<float>>(c.model, c.seed), schedule_of(f, c), f.get<int64_t>("state.step").item()};
    for (auto& [name, p] : m.model->named_parameters()) {
        const std::string key = (ema ? "ema." : "model.") + name;
        const TensorF value = f.get<float>(key);
        if (value.shape() != p->shape())
            throw std::runtime_error(path + ": tensor " + key + " is " + value.shape().str() + ", but the U-Net of its metadata has " +
                                     p->shape().str());
        p->value().copy_from(value);
    }
    m.model->eval();
    return m;
}

// Any diffusion model as a denoiser for the samplers (no gradients).
inline diffusion::Denoiser<float> denoiser(const nn::DiffusionModule<float>& model) {
    return [&model](const TensorF& x, const Tensor<int64_t>& t, const nn::Condition<float>& c) {
        NoGradGuard no_grad;
        return model.forward(VarF(x), t, c).value();
    };
}

}  // namespace train
DDPMKIT_END_NAMESPACE
