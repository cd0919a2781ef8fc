// ddpmkit train: Algorithm 1 of Ho et al. 2020 on a data set, with checkpoints, a CSV log,
// sample grids, and at the end the pictures: samples, the reverse chain, the loss curve.
#pragma once

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <system_error>

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ddpmkit/io/plot.hpp>

#include <optional>

#include "common.hpp"

namespace cli {

// The first Ctrl-C (or SIGTERM) stops after the current step with a checkpoint; a second one
// stops at once, as it would without the handler.
inline void handle_stop_signal(int signal) {
    if (train::stop_requested()) {
        std::signal(signal, SIG_DFL);
        std::raise(signal);
    }
    train::stop_requested() = true;
}

// Holds DIR/train.lock while a trainer trains into DIR: a second trainer is refused, with the
// first one's pid. The kernel releases the lock (flock) when its holder ends in any way, even
// by SIGKILL, so a crashed trainer's lock never blocks: the file stays, unlocked.
class FolderLock {
public:
    explicit FolderLock(const std::string& dir) : path_(dir + "/train.lock") {
        fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "cannot open " + path_);
        if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
            const int err = errno;
            char pid[32] = {};
            const ssize_t n = ::pread(fd_, pid, sizeof pid - 1, 0);
            ::close(fd_);
            if (err != EWOULDBLOCK) throw std::system_error(err, std::generic_category(), "cannot lock " + path_);
            std::string holder(pid, n > 0 ? static_cast<size_t>(n) : 0);
            holder = holder.substr(0, holder.find('\n'));
            throw std::runtime_error("another ddpmkit train (pid " + (holder.empty() ? "?" : holder) + ") is training into " + dir +
                                     ": wait for it to end, stop it, or choose another --out");
        }
        const std::string me = std::to_string(::getpid()) + "\n";
        if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size()))
            throw std::system_error(errno, std::generic_category(), "cannot write " + path_);
    }
    ~FolderLock() { ::close(fd_); }
    FolderLock(const FolderLock&) = delete;
    FolderLock& operator=(const FolderLock&) = delete;

private:
    std::string path_;
    int fd_ = -1;
};

// Removes the temporary files that saves killed midway left in dir (NAME.tmp.PID.N of the
// checkpoint and the log); only a trainer holding the folder's lock may call it.
inline void remove_stale_temporaries(const std::string& dir) {
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), &::closedir);
    if (!d) throw std::system_error(errno, std::generic_category(), "cannot list " + dir);
    std::vector<std::string> stale;
    while (const dirent* e = ::readdir(d.get())) {
        const std::string name = e->d_name;
        for (const char* prefix : {"checkpoint.safetensors.tmp.", "log.csv.tmp."})
            if (name.rfind(prefix, 0) == 0) stale.push_back(dir + "/" + name);
    }
    for (const std::string& path : stale) {
        if (::unlink(path.c_str()) != 0) throw std::system_error(errno, std::generic_category(), "cannot remove " + path);
        std::fprintf(stderr, "removed %s, left by a save that was interrupted\n", path.c_str());
    }
}

// The settings of a run that its checkpoint records, and the metadata keys each flag sets.
inline const std::vector<std::pair<std::string, std::vector<std::string>>> kRunFlags = {
    {"size", {"mult", "blocks", "groups", "heads", "dropout"}},
    {"ch", {"ch"}},
    {"loss", {"loss"}},
    {"output", {"output"}},
    {"variance", {"variance"}},
    {"schedule", {"schedule"}},
    {"timesteps", {"timesteps"}},
    {"min-snr", {"min_snr_gamma"}},
    {"timestep-sampler", {"timestep_sampler"}},
    {"label-dropout", {"label_dropout"}},
    {"data", {"data"}},
    {"task", {"superres_factor"}},
    {"factor", {"superres_factor"}},
    {"lr-decay", {"lr_decay"}},
    {"batch", {"batch"}},
    {"micro-batches", {"micro_batches"}},
    {"lr", {"lr"}},
    {"warmup", {"warmup"}},
    {"ema", {"ema_decay"}},
    {"seed", {"seed"}},
    {"flip", {"flip"}}};

// The run the flags ask for (the image size comes from the data, later).
inline train::TrainConfig run_config(const Flags& f) {
    train::TrainConfig c;
    if (f.choice("size", {"small", "reference"}) == "reference") c.model = nn::UNetConfig{};
    if (f.given("ch")) c.model.ch = f.integer("ch", 1);
    c.loss = train::TrainConfig::parse_loss(f.choice("loss", {"simple", "hybrid", "kl"}));
    const bool superres = f.choice("task", {"generate", "superres"}) == "superres";
    // Super-resolution predicts v: an eps model's x_0 at large t is its error over sqrt(abar_t),
    // and the low-resolution image it is given barely moves eps there (README: the tasks).
    const std::string output = f.choice("output", {"auto", "eps", "x0", "v"});
    c.param.output = train::TrainConfig::parse_output(output != "auto" ? output : superres ? "v" : "eps");
    c.param.variance = train::TrainConfig::parse_variance(f.choice("variance", {"large", "small", "learned"}));
    c.schedule = f.choice("schedule", {"linear", "cosine", "sigmoid"});
    c.timesteps = f.integer("timesteps", 2);
    try {  // the linear schedule scales its betas by 1000 / T: too few steps push them past 1
        diffusion::Schedule::named(c.schedule, c.timesteps);
    } catch (const std::invalid_argument& e) {
        throw UsageError("--timesteps " + f.str("timesteps") + " does not fit the " + c.schedule + " schedule: " + e.what());
    }
    c.min_snr_gamma = f.number("min-snr", 0);
    const std::string ts = f.choice("timestep-sampler", {"auto", "uniform", "importance"});
    c.timestep_sampler = ts == "auto" ? "" : ts;
    c.label_dropout = f.number("label-dropout", 0);
    if (c.label_dropout >= 1) throw UsageError("--label-dropout is a share in [0, 1), not " + f.str("label-dropout"));
    c.data = f.choice("data", kDataSets);
    if (superres) {
        c.superres_factor = f.integer("factor", 2);
    } else if (f.given("factor")) {
        throw UsageError("--factor is for --task superres");
    }
    c.lr_decay = f.integer("lr-decay", 0);
    c.batch = f.integer("batch", 1);
    c.processes = processes().size();
    c.micro_batches = f.integer("micro-batches", 1);
    c.bucket_bytes = f.integer("bucket-kb", 0, int64_t(1) << 30) * 1024;
    c.lr = f.number("lr", 0);
    c.warmup = f.integer("warmup", 0);
    c.ema_decay = f.number("ema", 0);
    if (c.ema_decay > 1) throw UsageError("--ema is a decay between 0 and 1, not " + f.str("ema"));
    c.seed = static_cast<uint64_t>(f.integer("seed", 0));
    c.flip = f.on("flip");
    try {  // the limits of every setting (the image size is checked again once the data is read)
        c.validate();
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
    }
    return c;
}

inline int cmd_train(int argc, char** argv) {
    Flags f("train", "Trains a DDPM (Ho et al. 2020, Algorithm 1) and writes checkpoints, a CSV log, sample grids,\n"
                     "and at the end samples.png, chain.png (the reverse chain x_T -> x_0) and loss.png.\n"
                     "Ctrl-C stops after the current step and writes a checkpoint; --resume continues it exactly.",
            concat({{"out", "DIR", "output folder (created with its parents)", "runs/fashion-mnist"},
                    {"minutes", "M", "training time of this run (0: no limit)", "10"},
                    {"steps", "N", "stop at this step (0: no limit)", "0"},
                    {"size", "NAME", "small (ch 16, 0.41M parameters) or reference (ch 32, 1.62M)", "small"},
                    {"ch", "N", "base channels (overrides --size)", ""},
                    {"loss", "NAME", "simple, hybrid or kl", "simple"},
                    {"output", "NAME", "what the model predicts: eps, x0, v, or auto: v for --task superres, else eps", "auto"},
                    {"variance", "NAME", "large (beta_t), small (beta tilde_t) or learned", "large"},
                    {"schedule", "NAME", "linear, cosine or sigmoid", "linear"},
                    {"timesteps", "T", "diffusion steps", "1000"},
                    {"min-snr", "GAMMA", "min-SNR-gamma loss weighting (0: off)", "0"},
                    {"timestep-sampler", "NAME", "how t is drawn: uniform, importance (loss-aware) or auto (importance for kl)", "auto"},
                    {"classes", "", "class-conditional: the model takes the data's labels (null label for guidance)", ""},
                    {"label-dropout", "P", "with --classes: share of labels replaced by the null label", "0.1"},
                    {"task", "NAME", "generate, or superres: SR3, conditioned on the image shrunk by --factor and upsampled", "generate"},
                    {"factor", "F", "with --task superres: the factor of the low resolution (4: 28x28 from 7x7)", "4"},
                    {"batch", "B", "batch size (under mpirun: of all the processes together)", "64"},
                    {"micro-batches", "K", "gradient accumulation: each process's examples go through the model in K parts", "1"},
                    {"bucket-kb", "KB", "under mpirun: sum the gradients in buckets of KB kilobytes as the backward pass completes them (0: after it)", "1024"},
                    {"lr", "LR", "Adam learning rate", "1e-3"},
                    {"warmup", "N", "linear learning-rate warmup steps", "200"},
                    {"lr-decay", "N", "cosine decay of the learning rate to 0 at step N (0: constant)", "0"},
                    {"ema", "DECAY", "EMA decay of the weights used for sampling", "0.995"},
                    {"seed", "S", "random seed", "0"},
                    {"threads", "N", "OpenMP threads (0: all)", "0"},
                    {"flip", "", "random horizontal flips", ""},
                    {"sample-every", "N", "sample grid every N steps (0: only at the end)", "1000"},
                    {"checkpoint-every", "N", "checkpoint every N steps (and every 2 minutes)", "500"},
                    {"resume", "", "continue from the checkpoint in --out (its settings define the run)", ""},
                    {"overwrite", "", "start afresh in an --out that holds a checkpoint, replacing it and the log", ""},
                    {"no-pictures", "", "skip the pictures at the end", ""},
                    {"detect-anomaly", "", "check every op's values and gradients; name the first that is not finite (slower)", ""}},
                   {data_flags("the training split (shapes: embedded)")}));
    if (!f.parse(argc, argv)) return 0;

    // Every flag is checked before any work: the data, the model and the folder come after.
    const std::string out = f.str("out");
    train::TrainConfig c = run_config(f);
    if (f.on("resume")) {
        train::TrainConfig saved;
        try {
            saved = train::TrainConfig::from_metadata(read_on_root(out + "/checkpoint.safetensors").metadata());
        } catch (const std::exception& e) {
            throw std::runtime_error("--resume: " + std::string(e.what()));
        }
        // A flag given beside --resume must agree with the checkpoint: none is ignored silently.
        const std::map<std::string, std::string> asked = c.to_metadata(), have = saved.to_metadata();
        for (const auto& [flag, keys] : kRunFlags)
            if (f.given(flag) || f.on(flag))
                for (const std::string& key : keys)
                    if (asked.at(key) != have.at(key))
                        throw UsageError("--" + flag + " asks for " + key + " = " + asked.at(key) + ", but the checkpoint has " +
                                         have.at(key) + ": a resumed run keeps its checkpoint's settings");
        if (f.on("classes") && saved.model.num_classes == 0)
            throw UsageError("--classes asks for a class-conditional model, but the checkpoint's has no classes");
        if (saved.processes != c.processes)
            throw std::runtime_error("--resume: the checkpoint was trained by " + std::to_string(saved.processes) + " process" +
                                     (saved.processes == 1 ? "" : "es") + ", and " + std::to_string(c.processes) + (c.processes == 1 ? " is" : " are") +
                                     " running: continue it with mpirun -np " + std::to_string(saved.processes) + " (a process count is part of a run)");
        c = saved;
    }
    c.detect_anomaly = f.on("detect-anomaly");
    c.minutes = f.number("minutes", 0);
    c.steps = f.integer("steps", 0, train::TrainConfig::kMaxSteps);
    c.sample_every = f.integer("sample-every", 0, train::TrainConfig::kMaxSteps);
    c.checkpoint_every = f.integer("checkpoint-every", 1, train::TrainConfig::kMaxSteps);
    if (c.minutes <= 0 && c.steps <= 0) throw UsageError("--minutes and --steps are both 0: give a time or a step limit");
    const int64_t threads = f.integer("threads", 0, 4096);
    if (f.on("resume") && f.on("overwrite")) throw UsageError("--resume continues the checkpoint, --overwrite replaces it: give one");
    std::optional<FolderLock> lock;  // rank 0 writes the folder
    if (processes().is_root()) {
        make_output_dir(out);
        lock.emplace(out);
        remove_stale_temporaries(out);
        const std::string checkpoint = out + "/checkpoint.safetensors";
        if (!f.on("resume") && !f.on("overwrite") && ::access(checkpoint.c_str(), F_OK) == 0)
            throw UsageError(out + " holds a checkpoint already: --resume continues it, --overwrite replaces it (and the log)");
    }

    if (threads > 0) set_num_threads(static_cast<int>(threads));
    const std::string data_name = c.data.empty() ? f.choice("data", kDataSets) : c.data;  // a resumed run: its checkpoint's
    ImageDataset data = load_data(data_name, f.str("data-dir"), true);
    const std::string digest = data.digest();
    if (f.on("resume") && !c.data_digest.empty() && c.data_digest != digest)
        throw std::runtime_error("--resume: the data " + data_name + " read now (digest " + digest + ") are not the data of the checkpoint (" +
                                 c.data_digest + "): the run would continue on other data");
    if (!f.on("resume")) {
        c.data_digest = digest;
        if (f.on("classes")) c.model.num_classes = data.num_classes;
        c.model.in_ch = data.images.size(1);
        c.model.res = data.images.size(2);
        c.model.attn = {c.model.res / 4};  // the lowest resolution, as 7 for 28x28
        c.model.out_ch = c.param.channel_factor() * c.model.in_ch;
        if (c.superres_factor > 0) {
            if (c.model.res % c.superres_factor != 0)
                throw UsageError("--factor " + std::to_string(c.superres_factor) + " does not divide the " + std::to_string(c.model.res) + "-pixel images");
            c.model.cond_ch = c.model.in_ch;
        }
    }
    train::Run trainer(c, std::move(data), out, processes());
    if (f.on("resume")) trainer.resume();
    if (processes().is_root())
        std::printf("training a %lld-parameter U-Net on %s, %s, %s loss%s; output in %s/\n",
                    static_cast<long long>(trainer.model().num_parameters()), data_name.c_str(),
                    (trainer.step() > 0 ? "resuming at step " + std::to_string(trainer.step()) : std::string("from scratch")).c_str(),
                    train::TrainConfig::loss_name(c.loss).c_str(),
                    c.processes > 1 ? (", " + std::to_string(c.processes) + " processes of " + std::to_string(c.batch / c.processes) + " examples").c_str() : "",
                    out.c_str());
    std::fflush(stdout);  // before the progress line on stderr, also when stdout is a file or a pipe
    std::signal(SIGINT, handle_stop_signal);
    std::signal(SIGTERM, handle_stop_signal);
    try {
        trainer.run();
    } catch (const train::TrainingDiverged& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    if (!processes().is_root()) return 0;
    std::printf("step %lld: checkpoint %s\n", static_cast<long long>(trainer.step()), trainer.checkpoint_path().c_str());
    if (f.on("no-pictures")) return 0;

    // The pictures: samples, the reverse chain of a few samples, the loss curve.
    SamplerChoice sampler;  // the default, as `ddpmkit sample` and the trainer's grids run it
    sampler.options.steps = std::min(sampler.options.steps, c.timesteps);
    trainer.write_sample_grid(out + "/samples.png");
    const train::LoadedModel m = train::load_checkpoint(trainer.checkpoint_path());
    Rng rng(c.seed + 777);
    std::vector<TensorF> frames;
    const TensorF xT = TensorF::randn({8, c.model.in_ch, c.model.res, c.model.res}, rng);
    frames.push_back(xT);
    const auto stepper = make_sampler(sampler, m, c.seed + 777);
    const int64_t every = std::max<int64_t>(1, stepper->total_calls() / 10);  // about ten frames
    diffusion::sample(*stepper, train::denoiser(*m.model), xT, trainer.sample_condition(8), [&](int64_t call, int64_t, const TensorF& x) {
        if ((call + 1) % every == 0) frames.push_back(x.clone());
    });
    write_png(out + "/chain.png", make_strip(frames));
    std::vector<double> steps, losses;
    for (const auto& [s, l] : trainer.loss_history()) steps.push_back(s), losses.push_back(l);
    ChartOptions chart;
    chart.title = "training loss (" + train::TrainConfig::loss_name(c.loss) + ")";
    chart.log_y = true;
    chart.smoothing = 0.9;
    write_png(out + "/loss.png", plot_line_chart(steps, losses, chart));
    std::printf("wrote %s/samples.png (%lld samples, %s, EMA weights)\n"
                "      %s/chain.png (the reverse chain x_T -> x_0 of 8 samples)\n"
                "      %s/loss.png (the loss curve; every step in %s/log.csv)\n",
                out.c_str(), static_cast<long long>(c.sample_count), describe(sampler).c_str(), out.c_str(), out.c_str(), out.c_str());
    return 0;
}

}  // namespace cli
