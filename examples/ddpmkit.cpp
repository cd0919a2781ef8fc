// ddpmkit — the command-line program: train a DDPM on a data set, sample from it, measure
// its bits/dim, and inspect safetensors files. `ddpmkit COMMAND --help` explains each.
#define DDPMKIT_STB_IMPLEMENTATION  // this program compiles stb_image_write (see io/image.hpp)
#include <ddpmkit/ddpmkit.hpp>
#include <ddpmkit/eval/classifier.hpp>
#include <ddpmkit/eval/frechet.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <limits>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

using namespace ddpmkit;

namespace {

// A bad flag or value: the program prints it with a pointer to --help and exits 2.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// 0.5 as "0.5", 1e-3 as "0.001"
std::string shortest(double x) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", x);
    return text;
}

// "a, b or c"
std::string one_of(const std::vector<std::string>& names) {
    std::string out;
    for (size_t i = 0; i < names.size(); ++i) out += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
    return out;
}

const std::string kVersion = std::string("ddpmkit ") + DDPMKIT_VERSION_STRING + " (" + DDPMKIT_ARCH_NAME + " kernels)";

// --name value / --name=value flags with defaults; switches take no value.
class Flags {
public:
    struct Spec {
        std::string name, value_name, help, default_value;
    };
    Flags(std::string command, std::string summary, std::vector<Spec> specs)
        : command_(std::move(command)), summary_(std::move(summary)), specs_(std::move(specs)) {
        for (const Spec& s : specs_)
            if (!s.value_name.empty()) values_[s.name] = s.default_value;
    }
    // Returns false when --help or --version was asked for (and is printed): nothing to run.
    bool parse(int argc, char** argv, std::vector<std::string>* positional = nullptr) {
        for (int i = 0; i < argc; ++i) {
            std::string arg = argv[i];
            if (arg == "--help" || arg == "-h") {
                std::printf("%s", usage().c_str());
                return false;
            }
            if (arg == "--version") {
                std::printf("%s\n", kVersion.c_str());
                return false;
            }
            if (arg.rfind("--", 0) != 0) {
                if (!positional) throw UsageError("unexpected argument \"" + arg + "\"");
                positional->push_back(arg);
                continue;
            }
            std::string name = arg.substr(2), value;
            const size_t eq = name.find('=');
            const bool inline_value = eq != std::string::npos;
            if (inline_value) value = name.substr(eq + 1), name = name.substr(0, eq);
            const Spec* spec = find(name);
            if (!spec) throw UsageError("unknown flag --" + name);
            if (spec->value_name.empty()) {  // a switch
                if (inline_value) throw UsageError("--" + name + " takes no value");
                switches_[name] = true;
                continue;
            }
            if (!inline_value) {
                if (i + 1 >= argc) throw UsageError("--" + name + " needs a value (" + spec->value_name + ")");
                value = argv[++i];
            }
            values_[name] = value;
            given_[name] = true;
        }
        return true;
    }
    std::string str(const std::string& name) const { return values_.at(name); }
    bool given(const std::string& name) const { return given_.count(name) != 0; }
    bool on(const std::string& name) const { return switches_.count(name) != 0; }
    // The flag's value as a whole number, at least `min`.
    int64_t integer(const std::string& name, int64_t min = std::numeric_limits<int64_t>::min()) const {
        const std::string v = str(name);
        size_t used = 0;
        int64_t out = 0;
        try {
            out = std::stoll(v, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (v.empty() || used != v.size()) throw UsageError("--" + name + " takes a whole number, not \"" + v + "\"");
        if (out < min) throw UsageError("--" + name + " must be at least " + std::to_string(min) + ", not " + v);
        return out;
    }
    // The flag's value as a finite number, at least `min`.
    double number(const std::string& name, double min = -std::numeric_limits<double>::infinity()) const {
        const std::string v = str(name);
        size_t used = 0;
        double out = 0;
        try {
            out = std::stod(v, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (v.empty() || used != v.size() || !std::isfinite(out)) throw UsageError("--" + name + " takes a number, not \"" + v + "\"");
        if (out < min) throw UsageError("--" + name + " must be at least " + shortest(min) + ", not " + v);
        return out;
    }
    // The flag's value, which must be one of `allowed`.
    std::string choice(const std::string& name, const std::vector<std::string>& allowed) const {
        const std::string v = str(name);
        if (std::find(allowed.begin(), allowed.end(), v) == allowed.end())
            throw UsageError("--" + name + " is " + one_of(allowed) + ", not \"" + v + "\"");
        return v;
    }
    std::string usage() const {
        std::string u = "usage: ddpmkit " + command_ + " [flags]\n\n" + summary_ + "\n\nflags:\n";
        for (const Spec& s : specs_) {
            std::string left = "  --" + s.name + (s.value_name.empty() ? "" : " " + s.value_name);
            left.resize(std::max<size_t>(left.size() + 2, 28), ' ');
            u += left + s.help + (s.default_value.empty() ? "" : " (default " + s.default_value + ")") + "\n";
        }
        return u + "  --help                    this text\n  --version                 the version of ddpmkit\n";
    }

private:
    const Spec* find(const std::string& name) const {
        for (const Spec& s : specs_)
            if (s.name == name) return &s;
        return nullptr;
    }
    std::string command_, summary_;
    std::vector<Spec> specs_;
    std::map<std::string, std::string> values_;
    std::map<std::string, bool> given_, switches_;
};

const std::vector<std::string> kDataSets = {"fashion-mnist", "mnist", "cifar10", "shapes"};

// The data set by name; Fashion-MNIST falls back to the embedded shapes, saying so.
ImageDataset load_data(const std::string& name, const std::string& dir, bool train) {
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

// A sampler and its grid, as `sample` and the main job's pictures run it. The defaults are
// the best samples for their cost in the comparison of README.md (Frechet distances).
struct SamplerChoice {
    std::string name = "dpm";
    int64_t steps = 20;
    diffusion::Spacing spacing = diffusion::Spacing::Uniform;
    double eta = 0.0;
};
const std::vector<std::string> kSamplers = {"dpm", "ddim", "ddpm", "euler", "heun", "pc"};
const std::vector<std::string> kSpacings = {"uniform", "quadratic", "karras"};

diffusion::Spacing parse_spacing(const std::string& s) {
    return s == "quadratic" ? diffusion::Spacing::Quadratic : s == "karras" ? diffusion::Spacing::Karras : diffusion::Spacing::Uniform;
}

TensorF run_sampler(const SamplerChoice& s, const train::LoadedModel& m, const TensorF& xT, Rng& rng,
                    const diffusion::StepCallback<float>& on_step = {}) {
    const diffusion::Denoiser<float> model = train::denoiser(*m.model);
    const diffusion::Parametrization& p = m.config.param;
    if (s.name == "ddpm") return diffusion::ddpm_sample(m.schedule, p, model, xT, rng, true, on_step);
    if (s.name == "pc") return diffusion::predictor_corrector_sample(m.schedule, p, model, xT, rng, 1, 0.16, true, on_step);
    const std::vector<int64_t> grid = diffusion::timestep_grid(m.schedule, s.steps, s.spacing);
    if (s.name == "dpm") return diffusion::dpm_solver_pp_2m_sample(m.schedule, p, model, xT, grid, true, on_step);
    if (s.name == "ddim") return diffusion::ddim_sample(m.schedule, p, model, xT, grid, s.eta, rng, true, on_step);
    if (s.name == "euler") return diffusion::euler_sample(m.schedule, p, model, xT, grid, on_step);
    if (s.name == "heun") return diffusion::heun_sample(m.schedule, p, model, xT, grid, on_step);
    throw std::logic_error("run_sampler: no sampler named \"" + s.name + "\"");
}

// The checkpoint of `flag`, with a message that says which flag named it.
train::LoadedModel load_checkpoint_of(const Flags& f, const std::string& flag, bool ema) {
    const std::string path = f.str(flag);
    if (path.empty()) throw UsageError("--" + flag + " FILE is required");
    try {
        return train::load_checkpoint(path, ema);
    } catch (const std::exception& e) {
        throw std::runtime_error("--" + flag + ": " + e.what());
    }
}

void handle_stop_signal(int) { train::stop_requested() = true; }

// ---- train ----

int cmd_train(int argc, char** argv) {
    Flags f("train", "Trains a DDPM (Ho et al. 2020, Algorithm 1) and writes checkpoints, a CSV log, sample grids,\n"
                     "and at the end samples.png, chain.png (the reverse chain x_T -> x_0) and loss.png.\n"
                     "Ctrl-C stops after the current step and writes a checkpoint; --resume continues it exactly.",
            {{"data", "NAME", one_of(kDataSets) + " (embedded)", "fashion-mnist"},
             {"data-dir", "DIR", "folder of the data set's files", ""},
             {"out", "DIR", "output folder (created with its parents)", "runs/fashion-mnist"},
             {"minutes", "M", "training time of this run (0: no limit)", "10"},
             {"steps", "N", "stop at this step (0: no limit)", "0"},
             {"size", "NAME", "small (ch 16, 0.41M parameters) or reference (ch 32, 1.62M)", "small"},
             {"ch", "N", "base channels (overrides --size)", ""},
             {"loss", "NAME", "simple, hybrid or kl", "simple"},
             {"output", "NAME", "what the model predicts: eps, x0 or v", "eps"},
             {"variance", "NAME", "large (beta_t), small (beta tilde_t) or learned", "large"},
             {"schedule", "NAME", "linear, cosine or sigmoid", "linear"},
             {"timesteps", "T", "diffusion steps", "1000"},
             {"min-snr", "GAMMA", "min-SNR-gamma loss weighting (0: off)", "0"},
             {"batch", "B", "batch size", "64"},
             {"lr", "LR", "Adam learning rate", "1e-3"},
             {"warmup", "N", "linear learning-rate warmup steps", "200"},
             {"ema", "DECAY", "EMA decay of the weights used for sampling", "0.995"},
             {"seed", "S", "random seed", "0"},
             {"threads", "N", "OpenMP threads (0: all)", "0"},
             {"flip", "", "random horizontal flips", ""},
             {"sample-every", "N", "sample grid every N steps (0: only at the end)", "1000"},
             {"checkpoint-every", "N", "checkpoint every N steps (and every 2 minutes)", "500"},
             {"resume", "", "continue from the checkpoint in --out (its settings define the run)", ""},
             {"no-pictures", "", "skip the pictures at the end", ""}});
    if (!f.parse(argc, argv)) return 0;

    // Every flag is checked before any work: the data, the model and the folder come after.
    const std::string out = f.str("out"), data_name = f.choice("data", kDataSets);
    train::TrainConfig c;
    if (f.on("resume")) {
        for (const char* fixed : {"size", "ch", "loss", "output", "variance", "schedule", "timesteps", "min-snr", "batch", "lr",
                                  "warmup", "ema", "seed"})
            if (f.given(fixed))
                throw UsageError(std::string("--") + fixed + " cannot be given with --resume: the checkpoint's settings continue");
        if (f.on("flip")) throw UsageError("--flip cannot be given with --resume: the checkpoint's settings continue");
        const std::string path = out + "/checkpoint.safetensors";
        try {
            c = train::TrainConfig::from_metadata(safetensors::File::read(path).metadata());
        } catch (const std::exception& e) {
            throw std::runtime_error("--resume: " + std::string(e.what()));
        }
    } else {
        if (f.choice("size", {"small", "reference"}) == "reference") c.model = nn::UNetConfig{};
        if (f.given("ch")) c.model.ch = f.integer("ch", 1);
        c.loss = train::TrainConfig::parse_loss(f.choice("loss", {"simple", "hybrid", "kl"}));
        c.param.output = train::TrainConfig::parse_output(f.choice("output", {"eps", "x0", "v"}));
        c.param.variance = train::TrainConfig::parse_variance(f.choice("variance", {"large", "small", "learned"}));
        c.schedule = f.choice("schedule", {"linear", "cosine", "sigmoid"});
        c.timesteps = f.integer("timesteps", 2);
        try {  // the linear schedule scales its betas by 1000 / T: too few steps push them past 1
            diffusion::Schedule::named(c.schedule, c.timesteps);
        } catch (const std::invalid_argument& e) {
            throw UsageError("--timesteps " + f.str("timesteps") + " does not fit the " + c.schedule + " schedule: " + e.what());
        }
        c.min_snr_gamma = f.number("min-snr", 0);
        c.batch = f.integer("batch", 1);
        c.lr = f.number("lr", 0);
        c.warmup = f.integer("warmup", 0);
        c.ema_decay = f.number("ema", 0);
        if (c.ema_decay > 1) throw UsageError("--ema is a decay between 0 and 1, not " + f.str("ema"));
        c.seed = static_cast<uint64_t>(f.integer("seed", 0));
        c.flip = f.on("flip");
    }
    c.minutes = f.number("minutes", 0);
    c.steps = f.integer("steps", 0);
    c.sample_every = f.integer("sample-every", 0);
    c.checkpoint_every = f.integer("checkpoint-every", 1);
    if (c.minutes <= 0 && c.steps <= 0) throw UsageError("--minutes and --steps are both 0: give a time or a step limit");
    const int64_t threads = f.integer("threads", 0);
    make_output_dir(out);

    if (threads > 0) set_num_threads(static_cast<int>(threads));
    ImageDataset data = load_data(data_name, f.str("data-dir"), true);
    if (!f.on("resume")) {
        c.model.in_ch = data.images.size(1);
        c.model.res = data.images.size(2);
        c.model.attn = {c.model.res / 4};  // the lowest resolution, as 7 for 28x28
        c.model.out_ch = c.param.channel_factor() * c.model.in_ch;
    }
    train::Trainer trainer(c, std::move(data), out);
    if (f.on("resume")) trainer.resume();
    std::printf("training a %lld-parameter U-Net on %s, %s, %s loss; output in %s/\n",
                static_cast<long long>(trainer.model().num_parameters()), data_name.c_str(),
                (trainer.step() > 0 ? "resuming at step " + std::to_string(trainer.step()) : std::string("from scratch")).c_str(),
                train::TrainConfig::loss_name(c.loss).c_str(), out.c_str());
    std::signal(SIGINT, handle_stop_signal);
    std::signal(SIGTERM, handle_stop_signal);
    try {
        trainer.run();
    } catch (const train::TrainingDiverged& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    std::printf("step %lld: checkpoint %s\n", static_cast<long long>(trainer.step()), trainer.checkpoint_path().c_str());
    if (f.on("no-pictures")) return 0;

    // The pictures: samples, the reverse chain of a few samples, the loss curve.
    const SamplerChoice sampler;
    trainer.write_sample_grid(out + "/samples.png");
    const train::LoadedModel m = train::load_checkpoint(trainer.checkpoint_path());
    Rng rng(c.seed + 777);
    std::vector<TensorF> frames;
    const TensorF xT = TensorF::randn({8, c.model.in_ch, c.model.res, c.model.res}, rng);
    frames.push_back(xT);
    const int64_t every = std::max<int64_t>(1, sampler.steps / 10);  // about ten frames
    run_sampler(sampler, m, xT, rng, [&](int64_t step, int64_t, const TensorF& x) {
        if ((step + 1) % every == 0) frames.push_back(x.clone());
    });
    write_png(out + "/chain.png", make_strip(frames));
    std::vector<double> steps, losses;
    for (const auto& [s, l] : trainer.loss_history()) steps.push_back(s), losses.push_back(l);
    ChartOptions chart;
    chart.title = "training loss (" + train::TrainConfig::loss_name(c.loss) + ")";
    chart.log_y = true;
    chart.smoothing = 0.9;
    write_png(out + "/loss.png", plot_line_chart(steps, losses, chart));
    std::printf("wrote %s/samples.png (%lld samples, %s %lld steps, EMA weights)\n"
                "      %s/chain.png (the reverse chain x_T -> x_0 of 8 samples)\n"
                "      %s/loss.png (the loss curve; every step in %s/log.csv)\n",
                out.c_str(), static_cast<long long>(c.sample_count), sampler.name.c_str(), static_cast<long long>(sampler.steps),
                out.c_str(), out.c_str(), out.c_str());
    return 0;
}

// ---- sample ----

int cmd_sample(int argc, char** argv) {
    const SamplerChoice defaults;
    Flags f("sample", "Samples from a checkpoint and writes a PNG grid (and, with --raw, the samples as safetensors).",
            {{"checkpoint", "FILE", "checkpoint written by ddpmkit train", ""},
             {"sampler", "NAME", "dpm (DPM-Solver++ 2M), ddim, ddpm (ancestral, all T steps), euler, heun or pc", defaults.name},
             {"steps", "N", "grid size (model calls; heun calls 2N-1; ddpm and pc use every step)", std::to_string(defaults.steps)},
             {"spacing", "NAME", one_of(kSpacings), "uniform"},
             {"eta", "ETA", "DDIM noise (0: deterministic, 1: ancestral)", "0"},
             {"n", "N", "number of samples", "64"},
             {"batch", "B", "samples per batch", "64"},
             {"seed", "S", "random seed", "0"},
             {"out", "FILE", "PNG grid (its folder is created)", "samples.png"},
             {"raw", "FILE", "also write the samples [N, C, H, W] in [-1, 1] as safetensors", ""},
             {"live-weights", "", "sample with the live weights instead of the EMA", ""}});
    if (!f.parse(argc, argv)) return 0;
    SamplerChoice sampler;
    sampler.name = f.choice("sampler", kSamplers);
    sampler.steps = f.integer("steps", 1);
    sampler.spacing = parse_spacing(f.choice("spacing", kSpacings));
    sampler.eta = f.number("eta", 0);
    const int64_t n = f.integer("n", 1), batch = std::min(n, f.integer("batch", 1));
    Rng rng(static_cast<uint64_t>(f.integer("seed", 0)));
    const std::string out = f.str("out"), raw = f.str("raw");
    if (f.str("checkpoint").empty()) throw UsageError("--checkpoint FILE is required");
    prepare_output_file(out);
    if (!raw.empty()) prepare_output_file(raw);
    const train::LoadedModel m = load_checkpoint_of(f, "checkpoint", !f.on("live-weights"));
    if (sampler.steps > m.schedule.num_steps())
        throw UsageError("--steps " + std::to_string(sampler.steps) + " is more than the checkpoint's " +
                         std::to_string(m.schedule.num_steps()) + " timesteps");

    const nn::UNetConfig& mc = m.config.model;
    TensorF all({n, mc.in_ch, mc.res, mc.res});
    ProgressLine progress(n);
    for (int64_t done = 0; done < n; done += batch) {
        const int64_t b = std::min(batch, n - done);
        const TensorF x = run_sampler(sampler, m, TensorF::randn({b, mc.in_ch, mc.res, mc.res}, rng), rng);
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

// ---- nll ----

int cmd_nll(int argc, char** argv) {
    Flags f("nll", "Test-set negative log-likelihood bound in bits/dim (Ho et al. 2020, eq. 5), per term:\n"
                   "L_0 (decoder), L_1 + ... + L_{T-1} (the KL terms) and L_T (prior). The exact bound costs T model\n"
                   "calls per image; --timesteps K estimates the KL sum from K random terms per image (unbiased).",
            {{"checkpoint", "FILE", "checkpoint written by ddpmkit train", ""},
             {"data", "NAME", one_of(kDataSets) + ": its test split", "fashion-mnist"},
             {"data-dir", "DIR", "folder of the data set's files", ""},
             {"images", "N", "test images to evaluate (the first N)", "100"},
             {"timesteps", "K", "KL terms per image (0: all T-1, exact)", "0"},
             {"batch", "B", "images per batch", "50"},
             {"seed", "S", "random seed", "0"},
             {"live-weights", "", "use the live weights instead of the EMA", ""}});
    if (!f.parse(argc, argv)) return 0;
    const std::string data_name = f.choice("data", kDataSets);
    const int64_t images = f.integer("images", 2), batch = f.integer("batch", 1), K = f.integer("timesteps", 0);
    Rng rng(static_cast<uint64_t>(f.integer("seed", 0)));
    const train::LoadedModel m = load_checkpoint_of(f, "checkpoint", !f.on("live-weights"));
    if (K > m.schedule.num_steps() - 1)
        throw UsageError("--timesteps " + std::to_string(K) + " is more than the checkpoint's " +
                         std::to_string(m.schedule.num_steps() - 1) + " KL terms");
    const ImageDataset test = load_data(data_name, f.str("data-dir"), false);
    const int64_t n = std::min(images, test.size());
    diffusion::BoundTerms all;
    ProgressLine progress(n);
    for (int64_t done = 0; done < n; done += batch) {
        const TensorF x0 = test.images.slice(done, std::min(n, done + batch)).clone();
        const diffusion::BoundTerms b = K == 0 ? diffusion::calc_bpd(m.schedule, m.config.param, train::denoiser(*m.model), x0, rng)
                                               : diffusion::estimate_bpd(m.schedule, m.config.param, train::denoiser(*m.model), x0, K, rng);
        all.decoder.insert(all.decoder.end(), b.decoder.begin(), b.decoder.end());
        all.kl.insert(all.kl.end(), b.kl.begin(), b.kl.end());
        all.prior.insert(all.prior.end(), b.prior.begin(), b.prior.end());
        all.total.insert(all.total.end(), b.total.begin(), b.total.end());
        progress.update(done + x0.size(0));
    }
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

// ---- classifier ----

int cmd_classifier(int argc, char** argv) {
    Flags f("classifier", "Trains the small Fashion-MNIST classifier (eval/classifier.hpp) whose 128 features\n"
                          "`ddpmkit fd` compares samples in, and reports its test accuracy.",
            {{"data", "NAME", "fashion-mnist, mnist or shapes", "fashion-mnist"},
             {"data-dir", "DIR", "folder of the data set's files", ""},
             {"out", "FILE", "where to save it (its folder is created)", "classifier.safetensors"},
             {"epochs", "N", "passes over the training set", "5"},
             {"seed", "S", "random seed", "0"}});
    if (!f.parse(argc, argv)) return 0;
    const std::string data_name = f.choice("data", {"fashion-mnist", "mnist", "shapes"}), out = f.str("out");
    eval::ClassifierTrainOptions options;
    options.epochs = f.integer("epochs", 1);
    options.seed = static_cast<uint64_t>(f.integer("seed", 0));
    prepare_output_file(out);
    const ImageDataset train_set = load_data(data_name, f.str("data-dir"), true);
    const ImageDataset test_set = load_data(data_name, f.str("data-dir"), false);
    eval::Classifier model(options.seed);
    std::unique_ptr<ProgressLine> progress;
    const double accuracy = eval::train_classifier(model, train_set, test_set, options, [&](const eval::ClassifierProgress& p) {
        if (!progress) progress = std::make_unique<ProgressLine>(p.total_steps);
        progress->update(p.step, {{"loss", p.loss}, {"accuracy", p.batch_accuracy}});
    });
    progress.reset();
    eval::save_classifier(model, out, {{"test_accuracy", std::to_string(accuracy)}, {"data", data_name}});
    std::printf("test accuracy %.2f%% on %lld images; wrote %s\n", 100 * accuracy, static_cast<long long>(test_set.size()),
                out.c_str());
    return 0;
}

// ---- fd ----

int cmd_fd(int argc, char** argv) {
    Flags f("fd", "Frechet distance (Heusel et al. 2017) between samples and the test set, in the features of\n"
                  "a classifier trained by `ddpmkit classifier`. Both sets have the same size: the distance\n"
                  "is biased upwards for small sets, so compare numbers of the same --n only.",
            {{"classifier", "FILE", "classifier written by ddpmkit classifier", "classifier.safetensors"},
             {"samples", "FILE", "samples written by ddpmkit sample --raw", ""},
             {"data", "NAME", one_of(kDataSets) + ": the reference set (its test split)", "fashion-mnist"},
             {"data-dir", "DIR", "folder of the data set's files", ""},
             {"n", "N", "images of each set (the first N samples and test images)", "10000"}});
    if (!f.parse(argc, argv)) return 0;
    const std::string data_name = f.choice("data", kDataSets);
    const int64_t wanted = f.integer("n", 2);
    if (f.str("samples").empty()) throw UsageError("--samples FILE is required (ddpmkit sample --raw FILE writes one)");
    eval::Classifier model;
    eval::load_classifier(model, f.str("classifier"));
    const TensorF samples = safetensors::File::read(f.str("samples")).get<float>("samples");
    const ImageDataset test = load_data(data_name, f.str("data-dir"), false);
    const int64_t n = std::min({wanted, samples.size(0), test.size()});
    if (n < 2) throw std::runtime_error("need at least 2 images in each set: " + f.str("samples") + " holds " +
                                        std::to_string(samples.size(0)));
    const TensorF a = eval::classifier_features(model, samples.slice(0, n));
    const TensorF b = eval::classifier_features(model, test.images.slice(0, n));
    std::printf("FD %.4f between %lld samples of %s and %lld test images of %s\n", eval::frechet_distance(a, b),
                static_cast<long long>(n), f.str("samples").c_str(), static_cast<long long>(n), data_name.c_str());
    return 0;
}

// ---- inspect ----

int cmd_inspect(int argc, char** argv) {
    Flags f("inspect", "Lists the tensors of a safetensors file (name, dtype, shape) and its metadata.", {});
    std::vector<std::string> files;
    if (!f.parse(argc, argv, &files)) return 0;
    if (files.size() != 1) throw UsageError("give exactly one FILE");
    const safetensors::File file = safetensors::File::read(files[0]);
    int64_t elements = 0;
    for (const std::string& name : file.names()) {
        const safetensors::TensorInfo& t = file.info(name);
        std::printf("%-48s %-4s %s\n", name.c_str(), safetensors::dtype_name(t.dtype), t.shape.str().c_str());
        elements += t.shape.numel();
    }
    std::printf("%zu tensors, %lld elements\n", file.names().size(), static_cast<long long>(elements));
    for (const auto& [key, value] : file.metadata()) std::printf("  %s = %s\n", key.c_str(), value.c_str());
    return 0;
}

// ---- bench ----

double median_of(std::vector<double> v) {
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

double peak_rss_mb() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports kilobytes
}

// Times what shared/reference/torch_unet.py times, the same way, and prints the same JSON keys:
// the reference U-Net (UNET.md), x0 ~ U[-1, 1], linear betas 1e-4 .. 0.02 over 1000 steps;
// train step = q_sample, forward, MSE on eps, zero grads, backward, Adam(2e-4);
// sample step = one forward without gradients at t = 500.
int cmd_bench(int argc, char** argv) {
    Flags f("bench unet",
            "Times the reference U-Net's training step (forward + backward + Adam on the eps-MSE loss) and\n"
            "sampling step (one forward without gradients), as shared/reference/torch_unet.py does, and\n"
            "prints one JSON line: params, batch, threads, train_step_s, sample_step_s (medians after\n"
            "warm-up) and peak_rss_mb (the process's peak resident memory).",
            {{"batch", "B", "images per step", "64"},
             {"threads", "N", "OpenMP threads", "2"},
             {"steps", "N", "timed steps of each kind", "20"},
             {"warmup", "N", "untimed steps before them", "2"},
             {"res", "R", "image side (attention stays at side 7, as in the peer)", "28"}});
    std::vector<std::string> what;
    if (!f.parse(argc, argv, &what)) return 0;
    if (what.size() != 1 || what[0] != "unet") throw UsageError("the benchmark to run is unet: ddpmkit bench unet [flags]");
    const int64_t batch = f.integer("batch", 1), threads = f.integer("threads", 1), steps = f.integer("steps", 1),
                  warmup = f.integer("warmup", 0);
    set_num_threads(static_cast<int>(threads));

    nn::UNetConfig config;
    config.res = f.integer("res", 4);
    nn::UNet<float> model(config, 0);
    train::Adam<float> adam(model.named_parameters(), 2e-4);
    const diffusion::Schedule schedule = diffusion::Schedule::linear(1000);
    Rng rng(0);
    const Shape shape{batch, config.in_ch, config.res, config.res};
    const VarF x0(TensorF::rand(shape, rng, -1.0, 1.0));

    const diffusion::UniformSampler timesteps(1000);
    float loss_value = 0.0f;
    auto train_step = [&] {
        const Tensor<int64_t> t = timesteps.sample(batch, rng).t;
        const VarF eps(TensorF::randn(shape, rng));
        const VarF loss = mse(model.forward(diffusion::q_sample(schedule, x0, t, eps), t), eps);
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

const char* kUsage =
    "usage: ddpmkit COMMAND [flags]   (ddpmkit COMMAND --help for its flags; ddpmkit --version)\n\n"
    "commands:\n"
    "  train       train a DDPM and write checkpoints, samples and the loss curve\n"
    "  sample      sample from a checkpoint with dpm, ddim, ddpm, euler, heun or pc\n"
    "  nll         test-set bits/dim: the variational bound, term by term\n"
    "  classifier  train the Fashion-MNIST classifier whose features fd uses\n"
    "  fd          Frechet distance between samples and the test set\n"
    "  inspect     list the tensors of a safetensors file\n"
    "  bench unet  time the reference U-Net's training and sampling steps (JSON, as torch_unet.py)\n";

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {  // a usage error: the usage goes to stderr
        std::fprintf(stderr, "%s", kUsage);
        return 2;
    }
    if (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
        std::printf("%s", kUsage);
        return 0;
    }
    if (std::string(argv[1]) == "--version") {
        std::printf("%s\n", kVersion.c_str());
        return 0;
    }
    const std::string command = argv[1];
    const std::map<std::string, int (*)(int, char**)> commands = {
        {"train", cmd_train}, {"sample", cmd_sample},         {"nll", cmd_nll},
        {"classifier", cmd_classifier}, {"fd", cmd_fd}, {"inspect", cmd_inspect}, {"bench", cmd_bench}};
    const auto it = commands.find(command);
    if (it == commands.end()) {
        std::fprintf(stderr, "ddpmkit: unknown command \"%s\"\n\n%s", command.c_str(), kUsage);
        return 2;
    }
    try {
        return it->second(argc - 2, argv + 2);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "ddpmkit %s: %s (see ddpmkit %s --help)\n", command.c_str(), e.what(), command.c_str());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ddpmkit %s: %s\n", command.c_str(), e.what());
        return 1;
    }
}
