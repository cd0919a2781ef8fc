// ddpmkit — the Markov-chain trainer (Ho et al. 2020, Algorithm 1): draw x_0 from the data,
// t uniformly, eps ~ N(0, I); take a gradient step on the loss of the model's prediction
// from x_t = q_sample(x_0, t, eps). Adam with warmup and clipping, an EMA of the weights,
// a progress line, a CSV log, sample grids from the EMA weights, and crash-safe
// checkpoints from which --resume continues exactly as an uninterrupted run would.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "ddpmkit/config.hpp"
#include "ddpmkit/diffusion/losses.hpp"
#include "ddpmkit/diffusion/samplers.hpp"
#include "ddpmkit/diffusion/timestep_sampler.hpp"
#include "ddpmkit/io/dataset.hpp"
#include "ddpmkit/io/file.hpp"
#include "ddpmkit/io/image.hpp"
#include "ddpmkit/io/progress.hpp"
#include "ddpmkit/io/safetensors.hpp"
#include "ddpmkit/nn/unet.hpp"
#include "ddpmkit/train/optim.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace train {

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
    int64_t batch = 64;
    double lr = 1e-3;
    int64_t warmup = 200;
    double grad_clip = 1.0;
    double ema_decay = 0.995;
    int64_t steps = 0;     // stop after this many steps (0: no step limit)
    double minutes = 0.0;  // stop after this much training time in this run (0: no time limit)
    uint64_t seed = 0;
    bool flip = false;     // random horizontal flips of the data
    int64_t log_every = 10;
    int64_t checkpoint_every = 500;
    double checkpoint_minutes = 2.0;
    int64_t sample_every = 1000;  // 0: sample grids only at the end
    int64_t sample_count = 64;
    std::string sampler = diffusion::default_sampler();  // of the sample grids (README: Which sampler)
    diffusion::SamplerOptions sampling;                  // its steps (at most timesteps), spacing, ...

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
        m["batch"] = std::to_string(batch);
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
        c.batch = number("batch", integer);
        c.lr = number("lr", real);
        c.warmup = number("warmup", integer);
        c.grad_clip = number("grad_clip", real);
        c.ema_decay = number("ema_decay", real);
        c.seed = number("seed", natural);
        c.flip = get("flip") == "1";
        return c;
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

// A loss that became NaN or infinite: training stops, the last checkpoint stays as it was.
class TrainingDiverged : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Set by SIGINT/SIGTERM: the trainer finishes its step, writes a checkpoint and returns.
inline std::atomic<bool>& stop_requested() {
    static std::atomic<bool> flag{false};
    return flag;
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
    LoadedModel m{c, std::make_unique<nn::UNet<float>>(c.model, c.seed), diffusion::Schedule::named(c.schedule, c.timesteps),
                  f.get<int64_t>("state.step").item()};
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

class Trainer {
public:
    using Clock = std::chrono::steady_clock;

    Trainer(TrainConfig config, ImageDataset data, std::string out_dir)
        : c_(std::move(config)),
          out_(std::move(out_dir)),
          schedule_(diffusion::Schedule::named(c_.schedule, c_.timesteps)),
          model_(c_.model, c_.seed),
          loader_(std::move(data), c_.batch, c_.seed, LoaderOptions{true, c_.flip}),
          rng_(c_.seed ^ 0x7a11ULL),
          opt_(model_.named_parameters(), c_.lr),
          ema_(model_.named_parameters(), c_.ema_decay),
          lr_(LrSchedule{c_.lr, c_.warmup, 0, 0.0}) {
        const Shape& s = loader_.dataset().images.shape();
        if (s[1] != c_.model.in_ch || s[2] != c_.model.res || s[3] != c_.model.res)
            throw std::invalid_argument("Trainer: the data " + loader_.dataset().name + " has images " + s.str() +
                                        " but the model takes [B, " + std::to_string(c_.model.in_ch) + ", " +
                                        std::to_string(c_.model.res) + ", " + std::to_string(c_.model.res) + "]");
        if (c_.param.variance == diffusion::ModelVariance::Learned && c_.model.out_channels() != 2 * c_.model.in_ch)
            throw std::invalid_argument("Trainer: a learned variance needs out_ch = 2 in_ch");
        make_output_dir(out_);  // every missing level, checked writable before any training
    }

    std::string checkpoint_path() const { return out_ + "/checkpoint.safetensors"; }
    std::string log_path() const { return out_ + "/log.csv"; }
    int64_t step() const { return step_; }
    nn::UNet<float>& model() { return model_; }
    const diffusion::Schedule& schedule() const { return schedule_; }

    // Continues from the checkpoint in the output folder: model, optimizer, EMA, step, the
    // generators and the data order. The config's model and process must match the checkpoint's.
    void resume() {
        const safetensors::File f = safetensors::File::read(checkpoint_path());
        const TrainConfig saved = TrainConfig::from_metadata(f.metadata());
        if (saved.to_metadata() != c_.to_metadata())
            throw std::invalid_argument("Trainer::resume: " + checkpoint_path() + " was written with other settings");
        for (auto& [name, p] : model_.named_parameters()) p->value().copy_from(f.get<float>("model." + name));
        opt_.load_state(f, "opt.");
        ema_.load_state(f, "ema.");
        step_ = f.get<int64_t>("state.step").item();
        const Tensor<int64_t> rng = f.get<int64_t>("state.rng"), loader = f.get<int64_t>("state.loader");
        rng_.set_state(static_cast<uint64_t>(rng(0)), static_cast<uint64_t>(rng(1)));
        model_.noise_rng().set_state(static_cast<uint64_t>(rng(2)), static_cast<uint64_t>(rng(3)));
        loader_.restore(LoaderState{static_cast<uint64_t>(loader(0)), loader(1), loader(2)});
        resumed_ = true;
    }

    // Trains until the step or time limit (or SIGINT); writes the last checkpoint and the
    // pictures. Throws TrainingDiverged when the loss stops being finite.
    void run() {
        if (c_.steps <= 0 && c_.minutes <= 0) throw std::invalid_argument("Trainer::run: give a number of steps or minutes");
        const std::vector<std::string> columns = {"step", "loss", "mse", "vb", "grad_norm", "lr", "seconds"};
        if (resumed_) keep_log_rows_up_to(step_);
        CsvLogger log(log_path(), columns, resumed_);
        const int64_t first = step_;
        ProgressLine progress(c_.steps > 0 ? c_.steps : first + 1, first);
        const Clock::time_point start = Clock::now();
        Clock::time_point last_checkpoint = start;
        NamedValues shown;
        auto minutes_since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count() / 60.0; };
        while ((c_.steps <= 0 || step_ < c_.steps) && (c_.minutes <= 0 || minutes_since(start) < c_.minutes) &&
               !stop_requested()) {
            const StepResult r = train_step();
            if (!std::isfinite(r.loss)) {
                progress.finish();
                throw TrainingDiverged("training stopped: the loss became " + std::string(std::isnan(r.loss) ? "NaN" : "infinite") +
                                       " at step " + std::to_string(step_ + 1) + "; the last good checkpoint " +
                                       checkpoint_path() + " is kept");
            }
            ++step_;
            if (c_.minutes > 0 && c_.steps <= 0) {  // a timed run: estimate where it will end
                const double done = double(step_ - first), elapsed = minutes_since(start);
                progress.set_total(step_ + static_cast<int64_t>(done / elapsed * (c_.minutes - elapsed)));
            }
            if (step_ % c_.log_every == 0 || step_ == 1)
                log.log({double(step_), r.loss, r.mse, r.vb, r.grad_norm, opt_.lr, minutes_since(start) * 60.0});
            shown = {{"loss", r.loss}};
            if (c_.loss == diffusion::LossType::Hybrid) shown.push_back({"vb", r.vb});
            shown.push_back({"grad", r.grad_norm});
            progress.update(step_, shown);
            if (step_ % c_.checkpoint_every == 0 || minutes_since(last_checkpoint) >= c_.checkpoint_minutes) {
                save_checkpoint();
                last_checkpoint = Clock::now();
            }
            if (c_.sample_every > 0 && step_ % c_.sample_every == 0) {
                char name[64];
                std::snprintf(name, sizeof name, "/samples_step_%06lld.png", static_cast<long long>(step_));
                write_sample_grid(out_ + name);
            }
        }
        if (c_.steps <= 0 || step_ < c_.steps) {  // stopped by the clock or a signal: end the line at this step
            progress.set_total(step_);
            progress.update(step_, shown);
        }
        progress.finish();
        save_checkpoint();
    }

    // One training step on the next batch: returns the loss before the update.
    struct StepResult {
        double loss, mse, vb, grad_norm;
    };
    StepResult train_step() {
        const DataBatch batch = loader_.next();
        const int64_t B = batch.x.size(0);
        const diffusion::TimestepDraw draw = uniform_.sample(B, rng_);
        const VarF x0(batch.x), noise(TensorF::randn(batch.x.shape(), rng_));
        const VarF xt = diffusion::q_sample(schedule_, x0, draw.t, noise);
        model_.train();
        const VarF out = model_.forward(xt, draw.t);
        const diffusion::TrainingLoss<float> tl = diffusion::training_losses(schedule_, c_.param, c_.loss, out, x0, xt, draw.t, noise);
        Var<float> per_example = tl.loss;
        if (c_.min_snr_gamma > 0 && tl.mse.defined()) {  // reweight the MSE part only
            const VarF w(diffusion::min_snr_weights<float>(schedule_, c_.param.output, draw.t, c_.min_snr_gamma));
            per_example = per_example + (w - 1.0f) * tl.mse;
        }
        const VarF loss = mean(per_example * VarF(draw.weights));
        model_.zero_grad();
        loss.backward();
        StepResult r{loss.item(), NAN, NAN, 0.0};
        {
            NoGradGuard no_grad;
            if (tl.mse.defined()) r.mse = mean(tl.mse).item();
            if (tl.vb.defined()) r.vb = mean(tl.vb).item();
        }
        if (!std::isfinite(r.loss)) return r;
        r.grad_norm = clip_grad_norm(model_.parameters(), c_.grad_clip);
        opt_.lr = lr_.at(step_);
        opt_.step();
        ema_.update();
        return r;
    }

    void save_checkpoint() {
        safetensors::Writer w;
        for (const auto& [key, value] : c_.to_metadata()) w.set_metadata(key, value);
        for (auto& [name, p] : model_.named_parameters()) w.add("model." + name, p->value());
        opt_.save_state(w, "opt.");
        ema_.save_state(w, "ema.");
        w.add("state.step", Tensor<int64_t>::scalar(step_));
        const Rng& noise = model_.noise_rng();
        w.add("state.rng", Tensor<int64_t>({4}, {int64_t(rng_.seed()), int64_t(rng_.counter()), int64_t(noise.seed()),
                                                 int64_t(noise.counter())}));
        const LoaderState ls = loader_.state();
        w.add("state.loader", Tensor<int64_t>({3}, {int64_t(ls.seed), ls.epoch, ls.position}));
        w.write(checkpoint_path());
    }

    // A grid of samples from the EMA weights (fixed seed: grids over training compare).
    void write_sample_grid(const std::string& path) {
        ema_.swap();
        model_.eval();
        Rng rng(c_.seed + 12345);
        const TensorF xT = TensorF::randn({c_.sample_count, c_.model.in_ch, c_.model.res, c_.model.res}, rng);
        diffusion::SamplerOptions o = c_.sampling;
        o.steps = std::min(o.steps, schedule_.num_steps());
        const auto sampler = diffusion::make_sampler<float>(c_.sampler, schedule_, c_.param, o);
        const TensorF x = diffusion::sample(*sampler, denoiser(model_), xT);
        ema_.swap();
        write_grid_png(path, x);
    }

    // (step, loss) of every row of the log, a resumed run's earlier rows included.
    std::vector<std::pair<double, double>> loss_history() const {
        std::vector<std::pair<double, double>> out;
        std::ifstream in(log_path());
        std::string line;
        std::getline(in, line);  // header
        while (std::getline(in, line)) {
            std::stringstream ss(line);
            std::string step, loss;
            if (std::getline(ss, step, ',') && std::getline(ss, loss, ',')) out.push_back({std::stod(step), std::stod(loss)});
        }
        return out;
    }

private:
    // A resumed run restarts at the checkpoint's step: rows logged after it are dropped.
    void keep_log_rows_up_to(int64_t step) const {
        std::ifstream in(log_path());
        if (!in) return;
        std::string line, kept;
        bool header = true;
        while (std::getline(in, line)) {
            if (header || (!line.empty() && std::stoll(line.substr(0, line.find(','))) <= step)) kept += line + "\n";
            header = false;
        }
        in.close();
        std::ofstream(log_path(), std::ios::trunc) << kept;
    }

    TrainConfig c_;
    std::string out_;
    diffusion::Schedule schedule_;
    nn::UNet<float> model_;
    DataLoader loader_;
    Rng rng_;
    Adam<float> opt_;
    Ema<float> ema_;
    LrSchedule lr_;
    diffusion::UniformSampler uniform_{c_.timesteps};
    int64_t step_ = 0;
    bool resumed_ = false;
};

}  // namespace train
DDPMKIT_END_NAMESPACE
