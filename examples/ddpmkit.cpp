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
    // Returns false when --help was asked for (the usage is printed).
    bool parse(int argc, char** argv, std::vector<std::string>* positional = nullptr) {
        for (int i = 0; i < argc; ++i) {
            std::string arg = argv[i];
            if (arg == "--help" || arg == "-h") {
                std::printf("%s", usage().c_str());
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
    int64_t integer(const std::string& name) const {
        const std::string v = str(name);
        size_t used = 0;
        int64_t out = 0;
        try {
            out = std::stoll(v, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (v.empty() || used != v.size()) throw UsageError("--" + name + " takes a whole number, not \"" + v + "\"");
        return out;
    }
    double number(const std::string& name) const {
        const std::string v = str(name);
        size_t used = 0;
        double out = 0;
        try {
            out = std::stod(v, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (v.empty() || used != v.size() || !std::isfinite(out)) throw UsageError("--" + name + " takes a number, not \"" + v + "\"");
        return out;
    }
    std::string usage() const {
        std::string u = "usage: ddpmkit " + command_ + " [flags]\n\n" + summary_ + "\n\nflags:\n";
        for (const Spec& s : specs_) {
            std::string left = "  --" + s.name + (s.value_name.empty() ? "" : " " + s.value_name);
            left.resize(std::max<size_t>(left.size() + 2, 28), ' ');
            u += left + s.help + (s.default_value.empty() ? "" : " (default " + s.default_value + ")") + "\n";
        }
        return u + "  --help                    this text\n";
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

diffusion::Spacing parse_spacing(const std::string& s) {
    if (s == "uniform") return diffusion::Spacing::Uniform;
    if (s == "quadratic") return diffusion::Spacing::Quadratic;
    if (s == "karras") return diffusion::Spacing::Karras;
    throw UsageError("--spacing is uniform, quadratic or karras, not \"" + s + "\"");
}

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
    throw UsageError("--data is fashion-mnist, mnist, cifar10 or shapes, not \"" + name + "\"");
}

void handle_stop_signal(int) { train::stop_requested() = true; }

// ---- train ----

int cmd_train(int argc, char** argv) {
    Flags f("train", "Trains a DDPM (Ho et al. 2020, Algorithm 1) and writes checkpoints, a CSV log, sample grids,\n"
                     "and at the end samples.png, chain.png (the reverse chain x_T -> x_0) and loss.png.\n"
                     "Ctrl-C stops after the current step and writes a checkpoint; --resume continues it exactly.",
            {{"data", "NAME", "fashion-mnist, mnist, cifar10 or shapes (embedded)", "fashion-mnist"},
             {"data-dir", "DIR", "folder of the data set's files", ""},
             {"out", "DIR", "output folder", "runs/fashion-mnist"},
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
             {"resume", "", "continue from the checkpoint in --out", ""},
             {"no-pictures", "", "skip the pictures at the end", ""}});
    if (!f.parse(argc, argv)) return 0;
    if (f.integer("threads") > 0) set_num_threads(static_cast<int>(f.integer("threads")));
    ImageDataset data = load_data(f.str("data"), f.str("data-dir"), true);
    train::TrainConfig c;
    const std::string out = f.str("out");
    if (f.on("resume")) {
        c = train::TrainConfig::from_metadata(safetensors::File::read(out + "/checkpoint.safetensors").metadata());
    } else {
        if (f.str("size") == "reference") c.model = nn::UNetConfig{};
        else if (f.str("size") != "small") throw UsageError("--size is small or reference, not \"" + f.str("size") + "\"");
        if (f.given("ch")) c.model.ch = f.integer("ch");
        c.model.in_ch = data.images.size(1);
        c.model.res = data.images.size(2);
        c.model.attn = {c.model.res / 4};  // the lowest resolution, as 7 for 28x28
        c.loss = train::TrainConfig::parse_loss(f.str("loss"));
        c.param.output = train::TrainConfig::parse_output(f.str("output"));
        c.param.variance = train::TrainConfig::parse_variance(f.str("variance"));
        c.model.out_ch = c.param.channel_factor() * c.model.in_ch;
        c.schedule = f.str("schedule");
        c.timesteps = f.integer("timesteps");
        c.min_snr_gamma = f.number("min-snr");
        c.batch = f.integer("batch");
        c.lr = f.number("lr");
        c.warmup = f.integer("warmup");
        c.ema_decay = f.number("ema");
        c.seed = static_cast<uint64_t>(f.integer("seed"));
        c.flip = f.on("flip");
    }
    c.minutes = f.number("minutes");
    c.steps = f.integer("steps");
    c.sample_every = f.integer("sample-every");
    c.checkpoint_every = std::max<int64_t>(1, f.integer("checkpoint-every"));
    if (c.minutes <= 0 && c.steps <= 0) throw UsageError("give --minutes or --steps (or both)");

    train::Trainer trainer(c, std::move(data), out);
    if (f.on("resume")) trainer.resume();
    std::printf("training a %lld-parameter U-Net on %s, %s, %s loss; output in %s/\n",
                static_cast<long long>(trainer.model().num_parameters()), f.str("data").c_str(),
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
    trainer.write_sample_grid(out + "/samples.png");
    train::LoadedModel m = train::load_checkpoint(trainer.checkpoint_path());
    Rng rng(c.seed + 777);
    std::vector<TensorF> frames;
    const TensorF xT = TensorF::randn({8, c.model.in_ch, c.model.res, c.model.res}, rng);
    frames.push_back(xT);
    diffusion::ddim_sample(m.schedule, m.config.param, train::denoiser(*m.model), xT,
                           diffusion::timestep_grid(m.schedule, 50, diffusion::Spacing::Uniform), 0.0, rng, true,
                           [&](int64_t step, int64_t, const TensorF& x) {
                               if (step % 5 == 4) frames.push_back(x.clone());
                           });
    write_png(out + "/chain.png", make_strip(frames));
    std::vector<double> steps, losses;
    for (const auto& [s, l] : trainer.loss_history()) steps.push_back(s), losses.push_back(l);
    ChartOptions chart;
    chart.title = "training loss (" + train::TrainConfig::loss_name(c.loss) + ")";
    chart.log_y = true;
    chart.smoothing = 0.9;
    write_png(out + "/loss.png", plot_line_chart(steps, losses, chart));
    std::printf("wrote %s/samples.png (64 samples, DDIM 50 steps, EMA weights)\n"
                "      %s/chain.png (the reverse chain x_T -> x_0 of 8 samples)\n"
                "      %s/loss.png (the loss curve; every step in %s/log.csv)\n",
                out.c_str(), out.c_str(), out.c_str(), out.c_str());
    return 0;
}

// ---- sample ----

int cmd_sample(int argc, char** argv) {
    Flags f("sample", "Samples from a checkpoint and writes a PNG grid (and, with --raw, the samples as safetensors).",
            {{"checkpoint", "FILE", "checkpoint written by ddpmkit train", ""},
             {"sampler", "NAME", "ddim, ddpm (ancestral, all T steps), dpm (DPM-Solver++ 2M), euler, heun or pc", "ddim"},
             {"steps", "N", "grid size (model calls; heun calls 2N-1; ddpm and pc use every step)", "50"},
             {"spacing", "NAME", "uniform, quadratic or karras", "uniform"},
             {"eta", "ETA", "DDIM noise (0: deterministic, 1: ancestral)", "0"},
             {"n", "N", "number of samples", "64"},
             {"batch", "B", "samples per batch", "64"},
             {"seed", "S", "random seed", "0"},
             {"out", "FILE", "PNG grid", "samples.png"},
             {"raw", "FILE", "also write the samples [N, C, H, W] in [-1, 1] as safetensors", ""},
             {"live-weights", "", "sample with the live weights instead of the EMA", ""}});
    if (!f.parse(argc, argv)) return 0;
    if (f.str("checkpoint").empty()) throw UsageError("--checkpoint FILE is required");
    const train::LoadedModel m = train::load_checkpoint(f.str("checkpoint"), !f.on("live-weights"));
    const std::string sampler = f.str("sampler");
    const int64_t n = f.integer("n"), batch = std::min(n, f.integer("batch")), steps = f.integer("steps");
    if (n < 1 || batch < 1) throw UsageError("--n and --batch must be positive");
    const std::vector<int64_t> grid =
        sampler == "ddpm" || sampler == "pc" ? std::vector<int64_t>{} : diffusion::timestep_grid(m.schedule, steps, parse_spacing(f.str("spacing")));
    const diffusion::Denoiser<float> model = train::denoiser(*m.model);
    Rng rng(static_cast<uint64_t>(f.integer("seed")));
    const nn::UNetConfig& mc = m.config.model;
    TensorF all({n, mc.in_ch, mc.res, mc.res});
    ProgressLine progress(n);
    for (int64_t done = 0; done < n; done += batch) {
        const int64_t b = std::min(batch, n - done);
        const TensorF xT = TensorF::randn({b, mc.in_ch, mc.res, mc.res}, rng);
        TensorF x;
        if (sampler == "ddim") x = diffusion::ddim_sample(m.schedule, m.config.param, model, xT, grid, f.number("eta"), rng);
        else if (sampler == "ddpm") x = diffusion::ddpm_sample(m.schedule, m.config.param, model, xT, rng);
        else if (sampler == "dpm") x = diffusion::dpm_solver_pp_2m_sample(m.schedule, m.config.param, model, xT, grid);
        else if (sampler == "euler") x = diffusion::euler_sample(m.schedule, m.config.param, model, xT, grid);
        else if (sampler == "heun") x = diffusion::heun_sample(m.schedule, m.config.param, model, xT, grid);
        else if (sampler == "pc") x = diffusion::predictor_corrector_sample(m.schedule, m.config.param, model, xT, rng);
        else throw UsageError("--sampler is ddim, ddpm, dpm, euler, heun or pc, not \"" + sampler + "\"");
        std::copy(x.data(), x.data() + x.numel(), all.data() + done * x.numel() / b);
        progress.update(done + b);
    }
    write_grid_png(f.str("out"), all);
    std::printf("wrote %s (%lld samples, %s, step %lld of training)\n", f.str("out").c_str(), static_cast<long long>(n),
                sampler.c_str(), static_cast<long long>(m.step));
    if (!f.str("raw").empty()) {
        safetensors::Writer w;
        w.add("samples", all);
        w.write(f.str("raw"));
        std::printf("wrote %s\n", f.str("raw").c_str());
    }
    return 0;
}

// ---- nll ----

int cmd_nll(int argc, char** argv) {
    Flags f("nll", "Test-set negative log-likelihood bound in bits/dim (Ho et al. 2020, eq. 5), per term:\n"
                   "L_0 (decoder), L_1 + ... + L_{T-1} (the KL terms) and L_T (prior). The exact bound costs T model\n"
                   "calls per image; --timesteps K estimates the KL sum from K random terms per image (unbiased).",
            {{"checkpoint", "FILE", "checkpoint written by ddpmkit train", ""},
             {"data", "NAME", "data set (its test split)", "fashion-mnist"},
             {"data-dir", "DIR", "folder of the data set's files", ""},
             {"images", "N", "test images to evaluate (the first N)", "100"},
             {"timesteps", "K", "KL terms per image (0: all T-1, exact)", "0"},
             {"batch", "B", "images per batch", "50"},
             {"seed", "S", "random seed", "0"},
             {"live-weights", "", "use the live weights instead of the EMA", ""}});
    if (!f.parse(argc, argv)) return 0;
    if (f.str("checkpoint").empty()) throw UsageError("--checkpoint FILE is required");
    const train::LoadedModel m = train::load_checkpoint(f.str("checkpoint"), !f.on("live-weights"));
    const ImageDataset test = load_data(f.str("data"), f.str("data-dir"), false);
    const int64_t n = std::min(f.integer("images"), test.size()), batch = f.integer("batch"), K = f.integer("timesteps");
    if (n < 2 || batch < 1 || K < 0) throw UsageError("--images must be at least 2, --batch positive, --timesteps >= 0");
    Rng rng(static_cast<uint64_t>(f.integer("seed")));
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
             {"out", "FILE", "where to save it", "classifier.safetensors"},
             {"epochs", "N", "passes over the training set", "5"},
             {"seed", "S", "random seed", "0"}});
    if (!f.parse(argc, argv)) return 0;
    const ImageDataset train_set = load_data(f.str("data"), f.str("data-dir"), true);
    const ImageDataset test_set = load_data(f.str("data"), f.str("data-dir"), false);
    eval::Classifier model(static_cast<uint64_t>(f.integer("seed")));
    eval::ClassifierTrainOptions options;
    options.epochs = f.integer("epochs");
    options.seed = static_cast<uint64_t>(f.integer("seed"));
    std::unique_ptr<ProgressLine> progress;
    const double accuracy = eval::train_classifier(model, train_set, test_set, options, [&](const eval::ClassifierProgress& p) {
        if (!progress) progress = std::make_unique<ProgressLine>(p.total_steps);
        progress->update(p.step, {{"loss", p.loss}, {"accuracy", p.batch_accuracy}});
    });
    progress.reset();
    eval::save_classifier(model, f.str("out"), {{"test_accuracy", std::to_string(accuracy)}, {"data", f.str("data")}});
    std::printf("test accuracy %.2f%% on %lld images; wrote %s\n", 100 * accuracy, static_cast<long long>(test_set.size()),
                f.str("out").c_str());
    return 0;
}

// ---- fd ----

int cmd_fd(int argc, char** argv) {
    Flags f("fd", "Frechet distance (Heusel et al. 2017) between samples and the test set, in the features of\n"
                  "a classifier trained by `ddpmkit classifier`. Both sets have the same size: the distance\n"
                  "is biased upwards for small sets, so compare numbers of the same --n only.",
            {{"classifier", "FILE", "classifier written by ddpmkit classifier", "classifier.safetensors"},
             {"samples", "FILE", "samples written by ddpmkit sample --raw", ""},
             {"data", "NAME", "the reference data set (its test split)", "fashion-mnist"},
             {"data-dir", "DIR", "folder of the data set's files", ""},
             {"n", "N", "images of each set (the first N samples and test images)", "10000"}});
    if (!f.parse(argc, argv)) return 0;
    if (f.str("samples").empty()) throw UsageError("--samples FILE is required (ddpmkit sample --raw FILE writes one)");
    eval::Classifier model;
    eval::load_classifier(model, f.str("classifier"));
    const TensorF samples = safetensors::File::read(f.str("samples")).get<float>("samples");
    const ImageDataset test = load_data(f.str("data"), f.str("data-dir"), false);
    const int64_t n = std::min({f.integer("n"), samples.size(0), test.size()});
    if (n < 2) throw UsageError("need at least 2 images in each set");
    const TensorF a = eval::classifier_features(model, samples.slice(0, n));
    const TensorF b = eval::classifier_features(model, test.images.slice(0, n));
    std::printf("FD %.4f between %lld samples of %s and %lld test images of %s\n", eval::frechet_distance(a, b),
                static_cast<long long>(n), f.str("samples").c_str(), static_cast<long long>(n), f.str("data").c_str());
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
    const int64_t batch = f.integer("batch"), threads = f.integer("threads"), steps = f.integer("steps"),
                  warmup = f.integer("warmup");
    if (batch < 1 || threads < 1 || steps < 1 || warmup < 0)
        throw UsageError("--batch, --threads and --steps must be positive, --warmup not negative");
    set_num_threads(static_cast<int>(threads));

    nn::UNetConfig config;
    config.res = f.integer("res");
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
    "usage: ddpmkit COMMAND [flags]   (ddpmkit COMMAND --help for its flags)\n\n"
    "commands:\n"
    "  train       train a DDPM and write checkpoints, samples and the loss curve\n"
    "  sample      sample from a checkpoint with ddim, ddpm, dpm, euler, heun or pc\n"
    "  nll         test-set bits/dim: the variational bound, term by term\n"
    "  classifier  train the Fashion-MNIST classifier whose features fd uses\n"
    "  fd          Frechet distance between samples and the test set\n"
    "  inspect     list the tensors of a safetensors file\n"
    "  bench unet  time the reference U-Net's training and sampling steps (JSON, as torch_unet.py)\n";

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
        std::printf("%s", kUsage);
        return argc < 2 ? 2 : 0;
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
