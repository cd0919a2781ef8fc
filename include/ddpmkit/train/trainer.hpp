// ddpmkit — the Markov-chain trainer (Ho et al. 2020, Algorithm 1): draw x_0 (and its
// condition) from the data, t from a timestep sampler, eps ~ N(0, I); take a gradient step on
// the loss of the model's prediction from x_t = q_sample(x_0, t, eps).
//
// Trainer composes the parts: any model (x_t, t, condition) -> output, a source of batches,
// the process, the loss and its per-example weighting, a timestep sampler, Adam with a
// warmup and cosine learning rate and gradient clipping, an EMA of the weights, label dropout
// for classifier-free guidance, and observers that report (progress line, CSV log, sample
// grids, checkpoints). Run is the ddpmkit program's training run: a U-Net from a
// TrainConfig on an image data set, with crash-safe checkpoints from which resume()
// continues exactly as an uninterrupted run would.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "ddpmkit/config.hpp"
#include "ddpmkit/diffusion/losses.hpp"
#include "ddpmkit/diffusion/samplers.hpp"
#include "ddpmkit/diffusion/tasks.hpp"
#include "ddpmkit/diffusion/timestep_sampler.hpp"
#include "ddpmkit/dist/group.hpp"
#include "ddpmkit/io/dataset.hpp"
#include "ddpmkit/io/file.hpp"
#include "ddpmkit/io/image.hpp"
#include "ddpmkit/io/progress.hpp"
#include "ddpmkit/io/safetensors.hpp"
#include "ddpmkit/nn/unet.hpp"
#include "ddpmkit/train/checkpoint.hpp"
#include "ddpmkit/train/optim.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace train {

// A loss, gradient or updated weight that became NaN or infinite: training stops, and nothing
// of that step is saved (the last checkpoint stays as it was).
class TrainingDiverged : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Set by SIGINT/SIGTERM: the trainer finishes its step, writes a checkpoint and returns.
inline std::atomic<bool>& stop_requested() {
    static std::atomic<bool> flag{false};
    return flag;
}

// One batch of training data: x_0 [B, C, H, W] in [-1, 1] and what the model is conditioned on.
struct Batch {
    TensorF x0;
    nn::Condition<float> cond;
};

// Where the batches come from, with the state a resumed run continues from. A data-parallel
// process takes rows [begin, end) of each batch (dist::share); the source moves past the whole.
class BatchSource {
public:
    virtual ~BatchSource() = default;
    virtual int64_t batch_size() const = 0;
    virtual Batch next(int64_t begin, int64_t end) = 0;
    virtual Tensor<int64_t> state() const { return {}; }  // undefined: nothing to save
    virtual void restore(const Tensor<int64_t>& state) { (void)state; }
};

// A DataLoader's batches; its labels go into the condition when the model takes classes,
// and for super-resolution by `superres_factor` the images shrunk and upsampled again (SR3).
class LoaderSource : public BatchSource {
public:
    LoaderSource(DataLoader loader, bool with_labels, int64_t superres_factor = 0)
        : loader_(std::move(loader)), with_labels_(with_labels), superres_factor_(superres_factor) {
        if (with_labels_ && loader_.dataset().num_classes == 0)
            throw std::invalid_argument("LoaderSource: " + loader_.dataset().name + " has no class labels");
        const int64_t res = loader_.dataset().images.size(2);
        if (superres_factor_ < 0 || (superres_factor_ > 0 && res % superres_factor_ != 0))
            throw std::invalid_argument("LoaderSource: super-resolution factor " + std::to_string(superres_factor_) + " does not divide the " +
                                        std::to_string(res) + "-pixel images");
    }
    int64_t batch_size() const override { return loader_.batch_size(); }
    Batch next(int64_t begin, int64_t end) override {
        DataBatch b = loader_.next_part(begin, end);
        Batch out{b.x, {}};
        if (with_labels_) out.cond.labels = b.y;
        if (superres_factor_ > 0) out.cond.image = low_resolution_condition(b.x);
        return out;
    }
    // SR3's input for images x: x shrunk by the factor, upsampled bilinearly to x's size.
    TensorF low_resolution_condition(const TensorF& x) const {
        return diffusion::superres_condition(diffusion::downsample_area(x, superres_factor_), x.size(2));
    }
    Tensor<int64_t> state() const override {
        const LoaderState s = loader_.state();
        return Tensor<int64_t>({3}, {int64_t(s.seed), s.epoch, s.position});
    }
    void restore(const Tensor<int64_t>& s) override {
        if (s.shape() != Shape{3}) throw std::runtime_error("the data loader's state is " + s.shape().str() + ", not [3]");
        loader_.restore(LoaderState{static_cast<uint64_t>(s(0)), s(1), s(2)});
    }
    const DataLoader& loader() const { return loader_; }

private:
    DataLoader loader_;
    bool with_labels_;
    int64_t superres_factor_;
};

// What one step reports.
struct StepReport {
    int64_t step = 0;          // steps done, this one included
    double loss = NAN;         // the weighted loss that was minimized
    double mse = NAN;          // mean of the L_simple part (NaN for the kl loss)
    double vb = NAN;           // mean of the bound's term, bits/dim (NaN for the simple loss)
    double grad_norm = NAN;    // before clipping
    double lr = NAN;
    double seconds = 0.0;      // since this run started
    double step_seconds = 0.0;           // this step's time
    double communication_seconds = 0.0;  // of which summing over the processes (data parallelism)
};

class Trainer;

// Told about the run's start, each step and its end; the Trainer writes nothing itself.
class Observer {
public:
    virtual ~Observer() = default;
    virtual void on_start(Trainer& trainer) { (void)trainer; }
    virtual void on_step(Trainer& trainer, const StepReport& report) {
        (void)trainer;
        (void)report;
    }
    virtual void on_end(Trainer& trainer) { (void)trainer; }
};

struct TrainerOptions {
    diffusion::Parametrization param;
    diffusion::LossType loss = diffusion::LossType::Simple;
    // Per-example weight of the L_simple part from each example's t (empty: 1); the bound's
    // part of the hybrid loss keeps weight 1. min_snr_weighting() gives min-SNR-gamma.
    std::function<TensorF(const Tensor<int64_t>& t)> weighting;
    bool importance_sampling = false;  // t by the loss-aware sampler (Nichol & Dhariwal sec. 3.3), else uniform
    bool detect_anomaly = false;       // name the first op whose value or gradient is not finite (slower)
    double label_dropout = 0.0;        // share of labels replaced by null_label (classifier-free guidance)
    int64_t null_label = 0;            // the model's "no class" label
    LrSchedule lr{1e-3, 0, 0, 0.0};
    double grad_clip = 1.0;  // <= 0: no clipping
    double ema_decay = 0.995;
    uint64_t seed = 0;
    // Data parallelism: each process of the group takes its share of every batch (the same
    // images, timesteps and noise one process would draw for those rows), and the gradients are
    // summed over the processes before identical updates. The batch must divide evenly.
    dist::Group* group = &dist::solo();
    // Gradient accumulation: each process's share goes through the model in this many parts,
    // one after another, so that a batch larger than memory allows gives the same step.
    int64_t micro_batches = 1;
    // With several processes: the gradients are summed in buckets of about this many bytes, each
    // as soon as the backward pass has completed it (GradientSum; 0: all at once, after it).
    int64_t bucket_bytes = kDefaultBucketBytes;
};

// min(SNR, gamma) relative to what the output's MSE already weighs (Hang et al. 2023).
inline std::function<TensorF(const Tensor<int64_t>&)> min_snr_weighting(const diffusion::Schedule& s, diffusion::ModelOutput output,
                                                                         double gamma) {
    return [s, output, gamma](const Tensor<int64_t>& t) { return diffusion::min_snr_weights<float>(s, output, t, gamma); };
}

class Trainer {
public:
    using Clock = std::chrono::steady_clock;

    Trainer(nn::DiffusionModule<float>& model, diffusion::Schedule schedule, BatchSource& data, TrainerOptions options)
        : model_(model),
          schedule_(std::move(schedule)),
          data_(data),
          o_(std::move(options)),
          rng_(o_.seed ^ 0x7a11ULL),
          opt_(model_.named_parameters(), o_.lr.base_lr),
          ema_(model_.named_parameters(), o_.ema_decay) {
        if (o_.importance_sampling)
            timesteps_ = std::make_unique<diffusion::LossSecondMomentSampler>(schedule_.num_steps());
        else
            timesteps_ = std::make_unique<diffusion::UniformSampler>(schedule_.num_steps());
        if (!(o_.label_dropout >= 0.0 && o_.label_dropout < 1.0))
            throw std::invalid_argument("Trainer: label dropout " + std::to_string(o_.label_dropout) + " is outside [0, 1)");
        const int processes = group().size();
        if (data_.batch_size() % processes != 0)
            throw std::invalid_argument("Trainer: the batch of " + std::to_string(data_.batch_size()) + " does not divide among " +
                                        std::to_string(processes) + " processes");
        if (o_.micro_batches < 1 || o_.micro_batches > data_.batch_size() / processes)
            throw std::invalid_argument("Trainer: " + std::to_string(o_.micro_batches) + " micro-batches for " +
                                        std::to_string(data_.batch_size() / processes) + " examples per process");
        if (processes > 1) {
            gradient_sum_.emplace(group(), model_.parameters(), o_.bucket_bytes);
            synchronize();
        }
    }

    void add_observer(std::shared_ptr<Observer> observer) { observers_.push_back(std::move(observer)); }

    int64_t step() const { return step_; }
    nn::DiffusionModule<float>& model() { return model_; }
    const diffusion::Schedule& schedule() const { return schedule_; }
    const TrainerOptions& options() const { return o_; }
    Ema<float>& ema() { return ema_; }
    dist::Group& group() const { return *o_.group; }

    // Trains until `steps` steps are done (0: no limit) or `minutes` of this run have passed
    // (0: no limit) or a stop is requested. Throws TrainingDiverged when the loss or the
    // gradient stops being finite; the observers do not see that step.
    void run(int64_t steps, double minutes) {
        if (steps <= 0 && minutes <= 0) throw std::invalid_argument("Trainer::run: give a number of steps or minutes");
        const Clock::time_point start = Clock::now();
        auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
        for (auto& o : observers_) o->on_start(*this);
        auto keep_going = [&] {
            bool go = (steps <= 0 || step_ < steps) && (minutes <= 0 || elapsed() < minutes * 60.0) && !stop_requested();
            if (group().size() > 1) {  // the processes stop together, when the first of them would
                double stops = go ? 0.0 : 1.0;
                group().all_reduce_sum(&stops, 1);
                go = stops == 0.0;
            }
            return go;
        };
        while (keep_going()) {
            StepReport r = train_step();
            r.seconds = elapsed();
            for (auto& o : observers_) o->on_step(*this, r);
        }
        for (auto& o : observers_) o->on_end(*this);
    }

    // One gradient step on the next batch. With options().detect_anomaly, the first op whose
    // value or gradient is not finite stops training (TrainingDiverged) by its name.
    StepReport train_step() {
        if (!o_.detect_anomaly) return unguarded_step();
        AnomalyGuard guard;
        guard.name_leaves(model_.named_parameters());
        try {
            return unguarded_step();
        } catch (const autograd::AnomalyError& e) {
            diverged(e.what());
        }
    }

private:
    // The step on the whole batch of B examples, of which this process takes rows [first, last)
    // in micro_batches parts: the loss is the sum over every process's rows of the weighted
    // per-example losses / B, so that the summed gradients are those of the whole batch.
    StepReport unguarded_step() {
        const Clock::time_point start = Clock::now();
        double communication = 0.0;
        auto communicate = [&](auto&& collective) {
            const Clock::time_point t0 = Clock::now();
            collective();
            communication += std::chrono::duration<double>(Clock::now() - t0).count();
        };
        dist::Group& g = group();
        const int64_t B = data_.batch_size();
        const auto [first, last] = dist::share(B, g.rank(), g.size());
        Batch batch = data_.next(first, last);
        // The whole batch's timesteps and label dropout (a few numbers) on every process, then
        // this process's part of the noise: together, exactly what one process draws.
        const diffusion::TimestepDraw draw = timesteps_->sample(B, rng_);
        if (o_.label_dropout > 0 && batch.cond.labels.defined()) {  // the null label teaches the unconditional model
            std::vector<double> u(static_cast<size_t>(B));
            rng_.uniform(u.data(), B);
            batch.cond.labels = batch.cond.labels.clone();
            for (int64_t b = first; b < last; ++b)
                if (u[static_cast<size_t>(b)] < o_.label_dropout) batch.cond.labels(b - first) = o_.null_label;
        }
        const int64_t per_example = batch.x0.numel() / (last - first);
        TensorF noise(batch.x0.shape());
        rng_.normal_part(noise.data(), B * per_example, first * per_example, last * per_example);
        model_.train();
        model_.zero_grad();
        // Dropout masks: every part of the batch starts from the step's place in the shared
        // stream and takes its rows' part (BatchPartGuard), as one pass over the batch would.
        Rng* dropout_rng = model_.dropout_rng();
        const uint64_t dropout_counter = dropout_rng ? dropout_rng->counter() : 0;
        double sums[3] = {0.0, 0.0, 0.0};  // the loss; B x the means of mse and vb
        bool has_mse = false, has_vb = false;
        std::vector<double> losses(static_cast<size_t>(B), 0.0);  // what the importance sampler learns from
        for (int64_t m = 0; m < o_.micro_batches; ++m) {
            const auto [m0, m1] = dist::share(last - first, static_cast<int>(m), static_cast<int>(o_.micro_batches));
            const Tensor<int64_t> t = draw.t.slice(first + m0, first + m1);
            const VarF x0(batch.x0.slice(m0, m1)), eps(noise.slice(m0, m1));
            const VarF xt = diffusion::q_sample(schedule_, x0, t, eps);
            if (dropout_rng) dropout_rng->set_state(dropout_rng->seed(), dropout_counter);
            const BatchPartGuard part(first + m0, m1 - m0, B);
            const VarF out = model_.forward(xt, t, batch.cond.rows(m0, m1));
            const diffusion::TrainingLoss<float> tl = diffusion::training_losses(schedule_, o_.param, o_.loss, out, x0, xt, t, eps);
            VarF weighted = tl.loss;
            if (o_.weighting && tl.mse.defined()) weighted = weighted + (VarF(o_.weighting(t)) - 1.0f) * tl.mse;
            const VarF loss = sum(weighted * VarF(draw.weights.slice(first + m0, first + m1))) * (1.0f / static_cast<float>(B));
            sums[0] += loss.item();
            {
                NoGradGuard no_grad;
                const double n = static_cast<double>(m1 - m0);  // mean x n is exact in double: one process's mean comes back
                if ((has_mse = tl.mse.defined())) sums[1] += mean(tl.mse).item() * n;
                if ((has_vb = tl.vb.defined())) sums[2] += mean(tl.vb).item() * n;
            }
            for (int64_t b = m0; b < m1; ++b) losses[static_cast<size_t>(first + b)] = tl.loss.value().data()[b - m0];
            if (!std::isfinite(sums[0])) break;  // every process finds it after the sums below
            // Adds to the parameters' gradients; the last part's starts summing them on the way.
            if (gradient_sum_ && m == o_.micro_batches - 1) gradient_sum_->backward(loss);
            else loss.backward();
        }
        if (gradient_sum_) communication += gradient_sum_->finish();
        communicate([&] { g.all_reduce_sum(sums, 3); });
        StepReport r;
        r.step = step_ + 1;
        r.loss = sums[0];
        if (has_mse) r.mse = sums[1] / static_cast<double>(B);
        if (has_vb) r.vb = sums[2] / static_cast<double>(B);
        if (!std::isfinite(r.loss)) diverged("the loss became " + std::string(std::isnan(r.loss) ? "NaN" : "infinite"));
        r.grad_norm = clip_grad_norm(model_.parameters(), o_.grad_clip > 0 ? o_.grad_clip : HUGE_VAL);
        if (!std::isfinite(r.grad_norm)) diverged("the gradient's norm became " + std::string(std::isnan(r.grad_norm) ? "NaN" : "infinite"));
        communicate([&] { g.all_reduce_sum(losses.data(), B); });  // each example's loss is non-zero on one process only
        timesteps_->update(draw.t, losses);
        r.lr = opt_.lr = o_.lr.at(step_);
        opt_.step();
        for (auto& [name, p] : model_.named_parameters())  // a finite gradient can still overflow a weight
            for (int64_t i = 0; i < p->numel(); ++i)
                if (!std::isfinite(p->value().data()[i]))
                    throw TrainingDiverged("training stopped: the update made parameter " + name + " " +
                                           (std::isnan(p->value().data()[i]) ? "NaN" : "infinite") + " at step " + std::to_string(step_ + 1));
        ema_.update();
        ++step_;
        r.communication_seconds = communication;
        r.step_seconds = std::chrono::duration<double>(Clock::now() - start).count();
        return r;
    }

    // Every process starts from rank 0's weights, optimizer and EMA state and generators.
    void synchronize() {
        safetensors::Writer w(safetensors::Checksums::omit);
        std::vector<uint8_t> bytes;
        if (group().is_root()) {
            save_state(w);
            bytes = w.serialize();
        }
        load_state(safetensors::File::parse(dist::broadcast_bytes(group(), std::move(bytes)), "rank 0's training state"));
    }

public:
    // Everything a resumed run needs, under model., opt., ema. and state.
    void save_state(safetensors::Writer& w) {
        for (auto& [name, p] : model_.named_parameters()) w.add("model." + name, p->value());
        opt_.save_state(w, "opt.");
        ema_.save_state(w, "ema.");
        w.add("state.step", Tensor<int64_t>::scalar(step_));
        const Rng* noise = model_.dropout_rng();
        w.add("state.rng", Tensor<int64_t>({4}, {int64_t(rng_.seed()), int64_t(rng_.counter()), int64_t(noise ? noise->seed() : 0),
                                                 int64_t(noise ? noise->counter() : 0)}));
        if (data_.state().defined()) w.add("state.loader", data_.state());
        if (o_.importance_sampling) w.add("state.timesteps", timesteps_->state());
    }
    void load_state(const safetensors::File& f) {
        for (auto& [name, p] : model_.named_parameters()) {
            const TensorF value = f.get<float>("model." + name);
            if (value.shape() != p->shape())
                throw std::runtime_error("tensor model." + name + " is " + value.shape().str() + ", the model's is " + p->shape().str());
            p->value().copy_from(value);
        }
        opt_.load_state(f, "opt.");
        ema_.load_state(f, "ema.");
        step_ = f.get<int64_t>("state.step").item();
        // One optimizer step and one EMA update per training step: counts that disagree mean a
        // damaged file (a flipped bit in state.step would otherwise resume at a wrong step).
        if (step_ < 0 || step_ != opt_.steps() || step_ != ema_.updates())
            throw std::runtime_error("state.step is " + std::to_string(step_) + " but opt.steps is " + std::to_string(opt_.steps()) +
                                     " and ema.updates " + std::to_string(ema_.updates()) + ": the checkpoint is damaged");
        const Tensor<int64_t> rng = f.get<int64_t>("state.rng");
        if (rng.shape() != Shape{4}) throw std::runtime_error("state.rng is " + rng.shape().str() + ", not [4]");
        rng_.set_state(static_cast<uint64_t>(rng(0)), static_cast<uint64_t>(rng(1)));
        if (Rng* noise = model_.dropout_rng()) noise->set_state(static_cast<uint64_t>(rng(2)), static_cast<uint64_t>(rng(3)));
        if (data_.state().defined()) data_.restore(f.get<int64_t>("state.loader"));
        if (o_.importance_sampling) timesteps_->restore(f.get<double>("state.timesteps"));
    }

private:
    [[noreturn]] void diverged(const std::string& what) const {
        throw TrainingDiverged("training stopped: " + what + " at step " + std::to_string(step_ + 1) + ", before the update");
    }

    nn::DiffusionModule<float>& model_;
    diffusion::Schedule schedule_;
    BatchSource& data_;
    TrainerOptions o_;
    Rng rng_;
    Adam<float> opt_;
    Ema<float> ema_;
    std::unique_ptr<diffusion::TimestepSampler> timesteps_;
    std::vector<std::shared_ptr<Observer>> observers_;
    int64_t step_ = 0;
    std::optional<GradientSum> gradient_sum_;  // several processes: the gradients' sum over them
};

// ---- observers ----

// The progress line: step, loss, steps per second and the time left.
class ProgressObserver : public Observer {
public:
    // steps: the run's step limit (0: estimated from `minutes`, the run's time limit).
    ProgressObserver(int64_t steps, double minutes, bool show_vb) : steps_(steps), minutes_(minutes), show_vb_(show_vb) {}
    void on_start(Trainer& t) override {
        first_ = t.step();
        line_ = std::make_unique<ProgressLine>(steps_ > 0 ? steps_ : first_ + 1, first_);
    }
    void on_step(Trainer& t, const StepReport& r) override {
        if (steps_ <= 0 && minutes_ > 0 && r.seconds > 0)  // a timed run: estimate where it will end
            line_->set_total(r.step + static_cast<int64_t>(double(r.step - first_) / r.seconds * (minutes_ * 60.0 - r.seconds)));
        shown_ = {{"loss", r.loss}};
        if (show_vb_) shown_.push_back({"vb", r.vb});
        shown_.push_back({"grad", r.grad_norm});
        if (t.group().size() > 1) {  // the share of the step spent summing over the processes, averaged
            communication_ += r.communication_seconds, stepping_ += r.step_seconds;
            shown_.push_back({"comm%", 100.0 * communication_ / stepping_});
        }
        line_->update(r.step, shown_);
    }
    void on_end(Trainer& t) override {
        if (steps_ <= 0 || t.step() < steps_) {  // stopped by the clock or a signal: end the line at this step
            line_->set_total(t.step());
            line_->update(t.step(), shown_);
        }
        line_->finish();
    }

private:
    int64_t steps_;
    double minutes_;
    bool show_vb_;
    int64_t first_ = 0;
    double communication_ = 0.0, stepping_ = 0.0;
    std::unique_ptr<ProgressLine> line_;
    NamedValues shown_;
};

// The CSV log: step, loss, mse, vb, grad_norm, lr, seconds, every `every` steps and at step 1.
// A resumed run appends to the log, which must end at its checkpoint's step (Run::resume trims
// it so, atomically).
class CsvObserver : public Observer {
public:
    CsvObserver(std::string path, int64_t every, bool resumed) : path_(std::move(path)), every_(every), resumed_(resumed) {}
    void on_start(Trainer&) override {
        log_ = std::make_unique<CsvLogger>(path_, std::vector<std::string>{"step", "loss", "mse", "vb", "grad_norm", "lr", "seconds"},
                                           resumed_);
    }
    void on_step(Trainer&, const StepReport& r) override {
        if (r.step % every_ == 0 || r.step == 1) log_->log({double(r.step), r.loss, r.mse, r.vb, r.grad_norm, r.lr, r.seconds});
    }

private:
    std::string path_;
    int64_t every_;
    bool resumed_;
    std::unique_ptr<CsvLogger> log_;
};

// Calls `save` every `every` steps, every `minutes` minutes, and at the end.
class CheckpointObserver : public Observer {
public:
    CheckpointObserver(std::function<void()> save, int64_t every, double minutes) : save_(std::move(save)), every_(every), minutes_(minutes) {}
    void on_start(Trainer&) override { last_ = Trainer::Clock::now(); }
    void on_step(Trainer&, const StepReport& r) override {
        if ((every_ > 0 && r.step % every_ == 0) ||
            std::chrono::duration<double>(Trainer::Clock::now() - last_).count() >= minutes_ * 60.0) {
            save_();
            last_ = Trainer::Clock::now();
        }
    }
    void on_end(Trainer&) override { save_(); }

private:
    std::function<void()> save_;
    int64_t every_;
    double minutes_;
    Trainer::Clock::time_point last_;
};

// Calls `draw(step)` every `every` steps.
class EveryStepsObserver : public Observer {
public:
    EveryStepsObserver(int64_t every, std::function<void(int64_t)> draw) : every_(every), draw_(std::move(draw)) {}
    void on_step(Trainer&, const StepReport& r) override {
        if (every_ > 0 && r.step % every_ == 0) draw_(r.step);
    }

private:
    int64_t every_;
    std::function<void(int64_t)> draw_;
};

// ---- the program's run ----

// A U-Net from a TrainConfig trained on an image data set, into an output folder: the
// checkpoint, log.csv, sample grids. resume() continues the folder's checkpoint exactly.
//
// Data parallel (a group of several processes): every process trains its share of each batch;
// rank 0 alone reads the checkpoint (and sends it to the others), writes the checkpoint, the log
// and the pictures, and reports.
class Run {
public:
    Run(TrainConfig config, ImageDataset data, std::string out_dir, dist::Group& group = dist::solo())
        : c_(checked_for(std::move(config), group)),
          out_(std::move(out_dir)),
          model_(c_.model, c_.seed),
          data_(DataLoader(std::move(data), c_.batch, c_.seed, LoaderOptions{true, c_.flip}), c_.model.num_classes > 0, c_.superres_factor),
          trainer_(model_, diffusion::Schedule::named(c_.schedule, c_.timesteps), data_, trainer_options(c_, group)) {
        const ImageDataset& d = data_.loader().dataset();
        const Shape& s = d.images.shape();
        if (s[1] != c_.model.in_ch || s[2] != c_.model.res || s[3] != c_.model.res)
            throw std::invalid_argument("Run: the data " + d.name + " has images " + s.str() + " but the model takes [B, " +
                                        std::to_string(c_.model.in_ch) + ", " + std::to_string(c_.model.res) + ", " +
                                        std::to_string(c_.model.res) + "]");
        if (c_.model.num_classes > 0 && c_.model.num_classes != d.num_classes)
            throw std::invalid_argument("Run: the model has " + std::to_string(c_.model.num_classes) + " classes, the data " + d.name +
                                        " has " + std::to_string(d.num_classes));
        if (c_.model.cond_ch != (c_.superres_factor > 0 ? c_.model.in_ch : 0))
            throw std::invalid_argument("Run: the model takes " + std::to_string(c_.model.cond_ch) + " conditioning channels; " +
                                        (c_.superres_factor > 0 ? "super-resolution needs in_ch" : "only super-resolution takes any"));
        if (c_.param.variance == diffusion::ModelVariance::Learned && c_.model.out_channels() != 2 * c_.model.in_ch)
            throw std::invalid_argument("Run: a learned variance needs out_ch = 2 in_ch");
        if (group.is_root()) make_output_dir(out_);  // every missing level, checked writable before any training
    }

    std::string checkpoint_path() const { return out_ + "/checkpoint.safetensors"; }
    std::string log_path() const { return out_ + "/log.csv"; }
    int64_t step() const { return trainer_.step(); }
    nn::UNet<float>& model() { return model_; }
    Trainer& trainer() { return trainer_; }

    // Continues from the checkpoint in the output folder; its settings must be this run's.
    void resume() {
        dist::Group& g = trainer_.group();
        const safetensors::File f =
            safetensors::File::parse(dist::broadcast_bytes(g, g.is_root() ? read_whole_file(checkpoint_path()) : std::vector<uint8_t>{}), checkpoint_path());
        const TrainConfig saved = TrainConfig::from_metadata(f.metadata());
        if (saved.to_metadata() != c_.to_metadata())
            throw std::invalid_argument("Run::resume: " + checkpoint_path() + " was written with other settings");
        try {
            trainer_.load_state(f);
        } catch (const std::exception& e) {
            throw std::runtime_error(checkpoint_path() + ": " + e.what());
        }
        resumed_ = true;
        saved_step_ = trainer_.step();
        if (g.is_root()) trim_log(saved_step_);
    }

    // Trains to the config's step or time limit (or SIGINT), reporting as the program does,
    // and writes the last checkpoint. Throws TrainingDiverged when training stops being finite,
    // naming the step of the checkpoint on disk (every saved step passed the checks).
    void run() {
        if (trainer_.group().is_root()) add_reporting();
        try {
            trainer_.run(c_.steps, c_.minutes);
        } catch (const TrainingDiverged& e) {
            throw TrainingDiverged(std::string(e.what()) + "; " +
                                   (saved_step_ < 0 ? "no checkpoint was written"
                                                    : "the last good checkpoint, of step " + std::to_string(saved_step_) + ", is kept in " + checkpoint_path()));
        }
    }

    // The log, the progress line, the checkpoints and the sample grids (rank 0's part of run()).
    void add_reporting() {
        trainer_.add_observer(std::make_shared<CsvObserver>(log_path(), c_.log_every, resumed_));
        trainer_.add_observer(std::make_shared<ProgressObserver>(c_.steps, c_.minutes, c_.loss == diffusion::LossType::Hybrid));
        trainer_.add_observer(std::make_shared<CheckpointObserver>([this] { save_checkpoint(); }, c_.checkpoint_every, c_.checkpoint_minutes));
        trainer_.add_observer(std::make_shared<EveryStepsObserver>(c_.sample_every, [this](int64_t step) {
            char name[64];
            std::snprintf(name, sizeof name, "/samples_step_%06lld.png", static_cast<long long>(step));
            write_sample_grid(out_ + name);
        }));
    }

    void save_checkpoint() {
        safetensors::Writer w;
        for (const auto& [key, value] : c_.to_metadata()) w.set_metadata(key, value);
        w.add("process.betas", Tensor<double>({trainer_.schedule().num_steps()}, trainer_.schedule().betas));
        trainer_.save_state(w);
        w.write(checkpoint_path());
        saved_step_ = trainer_.step();
    }

    // The condition of the pictures' sample b: class b mod num_classes; for super-resolution
    // training image b's low-resolution version (n at most the data's size).
    nn::Condition<float> sample_condition(int64_t n) const {
        nn::Condition<float> cond;
        if (c_.model.num_classes > 0) {
            cond.labels = Tensor<int64_t>({n});
            for (int64_t b = 0; b < n; ++b) cond.labels(b) = b % c_.model.num_classes;
        }
        if (c_.superres_factor > 0) cond.image = data_.low_resolution_condition(data_.loader().dataset().images.slice(0, n));
        return cond;
    }

    // A grid of samples from the EMA weights (fixed seed: grids over training compare), with
    // sample_condition; super-resolution shows the inputs, then the outputs.
    void write_sample_grid(const std::string& path) {
        Ema<float>& ema = trainer_.ema();
        ema.swap();
        model_.eval();
        Rng rng(c_.seed + 12345);
        const TensorF xT = TensorF::randn({c_.sample_count, c_.model.in_ch, c_.model.res, c_.model.res}, rng);
        const nn::Condition<float> cond = sample_condition(c_.sample_count);
        diffusion::SamplerOptions o = c_.sampling;
        o.steps = std::min(o.steps, trainer_.schedule().num_steps());
        const auto sampler = diffusion::make_sampler<float>(c_.sampler, trainer_.schedule(), c_.param, o);
        const TensorF x = diffusion::sample(*sampler, denoiser(model_), xT, cond);
        ema.swap();
        write_grid_png(path, c_.superres_factor > 0 ? concat_rows(cond.image, x) : x);  // super-resolution: inputs, then outputs
    }

    // (step, loss) of every row of the log, a resumed run's earlier rows included.
    std::vector<std::pair<double, double>> loss_history() const {
        std::vector<std::pair<double, double>> out;
        for_each_log_row([&](int64_t, const std::string& line, bool) {
            double step = NAN, loss = NAN;
            if (std::sscanf(line.c_str(), "%lf,%lf", &step, &loss) != 2)
                throw std::runtime_error(log_path() + ": the row \"" + line + "\" does not start with a step and a loss");
            out.push_back({step, loss});
        });
        return out;
    }

private:
    // Calls row(line number, text, complete) for each row after the header; a last row without
    // its line break was cut short by a crash.
    template <class F>
    void for_each_log_row(F row) const {
        std::ifstream in(log_path(), std::ios::binary);
        std::string line;
        std::getline(in, line);  // the header
        for (int64_t number = 2; std::getline(in, line); ++number) row(number, line, !in.eof());
    }

    // The log as the checkpoint of `step` left it: the rows up to that step, without rows logged
    // after it or a row a crash cut short; replaced whole (through a temporary file), so that a
    // crash now leaves the old log or the new one.
    void trim_log(int64_t step) const {
        std::ifstream header_in(log_path(), std::ios::binary);
        std::string text;
        if (!std::getline(header_in, text)) return;  // no log yet
        text += "\n";
        for_each_log_row([&](int64_t number, const std::string& line, bool complete) {
            char* end = nullptr;
            const long long row_step = std::strtoll(line.c_str(), &end, 10);
            if (!complete) return;
            if (end == line.c_str() || *end != ',')
                throw std::runtime_error(log_path() + ": line " + std::to_string(number) + " is not a row of the log: \"" + line + "\"");
            if (row_step <= step) text += line + "\n";
        });
        safetensors::detail::AtomicFile out(log_path());
        out.write(text.data(), text.size());
        out.commit();
    }

    static TrainConfig checked_for(TrainConfig c, const dist::Group& group) {
        if (c.processes != group.size())
            throw std::invalid_argument("Run: the run is set for " + std::to_string(c.processes) + " processes, and " + std::to_string(group.size()) +
                                        (group.size() == 1 ? " is" : " are") + " running");
        return c;
    }

    static TrainerOptions trainer_options(const TrainConfig& c, dist::Group& group) {
        TrainerOptions o;
        o.group = &group;
        o.micro_batches = c.micro_batches;
        o.bucket_bytes = c.bucket_bytes;
        o.param = c.param;
        o.loss = c.loss;
        const diffusion::Schedule s = diffusion::Schedule::named(c.schedule, c.timesteps);
        if (c.min_snr_gamma > 0) o.weighting = min_snr_weighting(s, c.param.output, c.min_snr_gamma);
        const std::string ts = c.timestep_sampler_name();
        if (ts != "uniform" && ts != "importance")
            throw std::invalid_argument("unknown timestep sampler \"" + ts + "\" (uniform or importance)");
        o.importance_sampling = ts == "importance";
        o.detect_anomaly = c.detect_anomaly;
        if (c.model.num_classes > 0) {
            o.label_dropout = c.label_dropout;
            o.null_label = c.model.num_classes;
        }
        o.lr = LrSchedule{c.lr, c.warmup, c.lr_decay, 0.0};
        o.grad_clip = c.grad_clip;
        o.ema_decay = c.ema_decay;
        o.seed = c.seed;
        return o;
    }

    TrainConfig c_;
    std::string out_;
    nn::UNet<float> model_;
    LoaderSource data_;
    Trainer trainer_;
    bool resumed_ = false;
    int64_t saved_step_ = -1;  // the step of the checkpoint on disk (-1: none written by this run)
};

}  // namespace train
DDPMKIT_END_NAMESPACE
