// ddpmkit inpaint, denoise and superres: the tasks of diffusion/tasks.hpp on a checkpoint, on a
// PNG or on test images. On test images each prints how well it did beside a plain baseline
// (PSNR, and the share of outputs the classifier puts in the original's class) and writes a
// picture: a row each for the original, the input, the output and the baseline.
#pragma once

#include <ddpmkit/eval/classifier.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common.hpp"

namespace cli {

// ---- the images of a task: a picture file, or test images with their labels ----

inline Flags::Specs task_image_flags() {
    return concat({{"image", "FILE", "a PNG, PGM or PPM of the model's size (else test images)", ""},
                   {"first", "I", "the first test image", "0"},
                   {"n", "N", "test images, measured against the baseline", "8"},
                   {"classifier", "FILE", "with test images: ddpmkit classifier's file, to count outputs in the original's class", ""},
                   {"batch", "B", "images per batch", "64"},
                   {"seed", "S", "random seed", "0"},
                   {"out", "PNG", "the picture (its folder is created)", ""}},
                  {checkpoint_flags(), sampler_flags(), data_flags("the test images")});
}

struct TaskImages {
    TensorF images;                                // [N, C, H, W] in [-1, 1]
    Tensor<int64_t> labels;                        // the test images' classes (undefined for a picture file)
    std::unique_ptr<eval::Classifier> classifier;  // with test images and --classifier
};

inline TaskImages task_images(const Flags& f, const nn::UNetConfig& mc) {
    if (!f.str("image").empty()) {
        TaskImages t{read_image(f.str("image"), static_cast<int>(mc.in_ch)), {}, nullptr};
        if (t.images.size(2) != mc.res || t.images.size(3) != mc.res)
            throw UsageError("--image " + f.str("image") + " is " + std::to_string(t.images.size(3)) + "x" + std::to_string(t.images.size(2)) +
                             " pixels; the model takes " + std::to_string(mc.res) + "x" + std::to_string(mc.res));
        return t;
    }
    const ImageDataset test = load_data(f.choice("data", kDataSets), f.str("data-dir"), false);
    const int64_t first = f.integer("first", 0), n = f.integer("n", 1, kMaxImages);
    if (first + n > test.size())
        throw UsageError("--first " + std::to_string(first) + " --n " + std::to_string(n) + " is past the " + std::to_string(test.size()) +
                         " test images");
    if (test.images.size(1) != mc.in_ch || test.images.size(2) != mc.res)
        throw UsageError("the test images " + test.images.shape().str() + " do not fit the checkpoint's model (" + std::to_string(mc.in_ch) +
                         " channels, " + std::to_string(mc.res) + " pixels)");
    TaskImages t{test.images.slice(first, first + n).clone(), test.labels.slice(first, first + n).clone(), nullptr};
    if (!f.str("classifier").empty()) {
        t.classifier = std::make_unique<eval::Classifier>();
        eval::load_classifier(*t.classifier, f.str("classifier"));
    }
    return t;
}

// PSNR in dB of x against the truth over the pixels where `region` is 1, or over all pixels
// (images in [-1, 1]: the peak-to-peak range is 2).
inline double psnr(const TensorF& x, const TensorF& truth, const TensorF& region = {}) {
    const TensorF weight = region.defined() ? region * TensorF::ones(truth.shape()) : TensorF::ones(truth.shape());
    double se = 0, count = 0;
    for (int64_t i = 0; i < truth.numel(); ++i) {
        se += weight.data()[i] * std::pow(double(x.data()[i]) - truth.data()[i], 2);
        count += weight.data()[i];
    }
    return 10 * std::log10(4.0 / std::max(se / std::max(count, 1.0), 1e-20));
}

// One line of the measured table: PSNR over the region (undefined: the whole image), with a
// classifier the share of x it puts in the original's class, then `extra`.
inline void report(const std::string& what, const TensorF& x, const TaskImages& t, const TensorF& region, const std::string& extra = "") {
    std::printf("  %-38s PSNR %6.2f dB", what.c_str(), psnr(x, t.images, region));
    if (t.classifier) {
        const ImageDataset outputs{x, t.labels, static_cast<int>(eval::Classifier::kClasses), "outputs"};
        std::printf("   in the original's class %5.1f %%", 100 * eval::classifier_accuracy(*t.classifier, outputs));
    }
    std::printf("%s\n", extra.c_str());
}

// Runs fn on batches of the images (fn(first, batch) -> outputs) with a progress line.
template <class Fn>
TensorF in_batches(const TensorF& images, int64_t batch, Fn fn) {
    TensorF out(images.shape());
    ProgressLine progress(images.size(0));
    for (int64_t first = 0; first < images.size(0); first += batch) {
        const int64_t end = std::min(images.size(0), first + batch);
        const TensorF y = fn(first, images.slice(first, end));
        std::copy(y.data(), y.data() + y.numel(), out.data() + first * (images.numel() / images.size(0)));
        progress.update(end);
    }
    return out;
}

// The picture: one row per tensor (at most 16 images each).
inline void write_rows(const std::string& path, const std::vector<TensorF>& rows) {
    const int64_t cols = std::min<int64_t>(16, rows.front().size(0));
    const Shape& s = rows.front().shape();
    TensorF all({cols * int64_t(rows.size()), s[1], s[2], s[3]});
    const int64_t per = s[1] * s[2] * s[3];
    for (size_t r = 0; r < rows.size(); ++r) std::copy(rows[r].data(), rows[r].data() + cols * per, all.data() + int64_t(r) * cols * per);
    GridOptions grid;
    grid.cols = static_cast<int>(cols);
    prepare_output_file(path);
    write_grid_png(path, all, grid);
    std::printf("wrote %s\n", path.c_str());
}

// ---- ddpmkit inpaint ----

inline const std::vector<std::string> kMasks = {"centre", "left", "bottom", "strokes"};

// The mask (1: keep) by name, or from a picture file (white: keep), [1, 1, res, res].
inline TensorF make_mask(const std::string& name, int64_t res, uint64_t seed) {
    TensorF m({1, 1, res, res}, 1.0f);
    if (name == "centre") {
        for (int64_t r = res / 4; r < res - res / 4; ++r)
            for (int64_t c = res / 4; c < res - res / 4; ++c) m(0, 0, r, c) = 0;
    } else if (name == "left" || name == "bottom") {
        for (int64_t r = 0; r < res; ++r)
            for (int64_t c = 0; c < res; ++c)
                if (name == "left" ? c < res / 2 : r >= res / 2) m(0, 0, r, c) = 0;
    } else if (name == "strokes") {  // 4 random strokes 2 pixels wide
        Rng rng(seed ^ 0x6d61736bULL);
        const TensorF ends = TensorF::rand({4, 4}, rng, 0.0, double(res));
        for (int64_t k = 0; k < 4; ++k)
            for (int64_t s = 0; s <= 4 * res; ++s) {
                const double u = double(s) / double(4 * res);
                const double x = ends(k, 0) + u * (ends(k, 2) - ends(k, 0)), y = ends(k, 1) + u * (ends(k, 3) - ends(k, 1));
                for (int64_t dy = 0; dy < 2; ++dy)
                    for (int64_t dx = 0; dx < 2; ++dx)
                        m(0, 0, std::clamp<int64_t>(int64_t(y) + dy, 0, res - 1), std::clamp<int64_t>(int64_t(x) + dx, 0, res - 1)) = 0;
            }
    } else {
        const TensorF picture = read_image(name, 1);
        if (picture.size(2) != res || picture.size(3) != res)
            throw UsageError("--mask " + name + " is not " + std::to_string(res) + "x" + std::to_string(res) + " pixels");
        for (int64_t i = 0; i < m.numel(); ++i) m.data()[i] = picture.data()[i] > 0 ? 1.0f : 0.0f;
    }
    return m;
}

inline int cmd_inpaint(int argc, char** argv) {
    Flags f("inpaint", "Fills the masked part of images with an unconditional checkpoint: the replacement method (the\n"
                       "known pixels noised to each step's t) or RePaint (Lugmayr et al. 2022: also jumps back up the\n"
                       "chain). On test images it measures the filled region's PSNR beside filling with the mean image.",
            concat({{"mask", "NAME", one_of(kMasks) + " (the part to fill), or a PNG (white: keep)", "centre"},
                    {"method", "NAME", "replacement or repaint", "repaint"},
                    {"jump-length", "N", "RePaint: grid steps jumped back up", "5"},
                    {"jump-count", "N", "RePaint: jumps per window (each window sampled N + 1 times)", "4"}},
                   {task_image_flags()}));
    if (!f.parse(argc, argv)) return 0;
    SamplerChoice sampler = sampler_choice(f);
    if (!f.given("sampler")) sampler.name = "ddim", sampler.options.eta = f.given("eta") ? f.number("eta", 0) : 1.0;  // RePaint needs noise
    if (!f.given("steps")) sampler.options.steps = 50;
    const train::LoadedModel m = load_checkpoint(f);
    check_steps(sampler, m);
    const nn::UNetConfig& mc = m.config.model;
    if (mc.num_classes > 0 || mc.cond_ch > 0) throw UsageError("--checkpoint: inpainting takes an unconditional model");
    const std::string method = f.choice("method", {"replacement", "repaint"});
    diffusion::InpaintOptions o;
    if (method == "repaint") o.jump_length = f.integer("jump-length", 1), o.jump_count = f.integer("jump-count", 0);
    const TaskImages t = task_images(f, mc);
    const uint64_t seed = static_cast<uint64_t>(f.integer("seed", 0));
    const TensorF mask = make_mask(f.str("mask"), mc.res, seed);
    const auto stepper = make_sampler(sampler, m, seed);
    Rng rng(seed);
    const TensorF filled = in_batches(t.images, f.integer("batch", 1, kMaxBatch), [&](int64_t, const TensorF& known) {
        return diffusion::inpaint(*stepper, train::denoiser(*m.model), known, mask, rng, o);
    });
    const TensorF keep = mask * TensorF::ones(t.images.shape()), hole = 1.0 - keep;
    const TensorF shown = keep * t.images;  // the hole shown mid-gray (0)
    if (t.labels.defined()) {
        const ImageDataset train_set = load_data(f.choice("data", kDataSets), f.str("data-dir"), true);
        TensorF mean({1, mc.in_ch, mc.res, mc.res});
        for (int64_t i = 0; i < train_set.size(); ++i) mean += train_set.images.slice(i, i + 1);
        mean = mean / double(train_set.size());
        const TensorF mean_fill = keep * t.images + hole * mean;
        std::printf("%lld test images from %lld, mask %s, the filled region (%s):\n", static_cast<long long>(t.images.size(0)),
                    static_cast<long long>(f.integer("first", 0)), f.str("mask").c_str(), describe(sampler).c_str());
        report(method == "repaint" ? "RePaint (jump " + std::to_string(o.jump_length) + " x " + std::to_string(o.jump_count) + ")"
                                      : std::string("replacement"),
               filled, t, hole);
        report("mean image (baseline)", mean_fill, t, hole);
        if (!f.str("out").empty()) write_rows(f.str("out"), {t.images, shown, filled, mean_fill});
    } else {
        write_rows(f.str("out").empty() ? "inpainted.png" : f.str("out"), {shown, filled});
    }
    return 0;
}

// ---- ddpmkit denoise ----

inline int cmd_denoise(int argc, char** argv) {
    Flags f("denoise", "Removes Gaussian noise of known sigma (images in [-1, 1]) with an unconditional checkpoint:\n"
                       "SDEdit (Meng et al. 2021) starts the reverse chain at the t where sqrt((1 - abar_t) / abar_t) = sigma\n"
                       "(--steps spread over [0, t]); tweedie is the one-step posterior mean. On test images the noise\n"
                       "is added and the result measured beside the best Gaussian blur. With --strength instead,\n"
                       "image-to-image: the image noised to t = strength (T - 1) and sampled back.",
            concat({{"sigma", "S", "the noise's standard deviation", "0.2"},
                    {"strength", "X", "image-to-image in (0, 1] instead of denoising", ""},
                    {"method", "NAME", "sdedit or tweedie", "sdedit"}},
                   {task_image_flags()}));
    if (!f.parse(argc, argv)) return 0;
    SamplerChoice sampler = sampler_choice(f);
    const train::LoadedModel m = load_checkpoint(f);
    check_steps(sampler, m);
    const nn::UNetConfig& mc = m.config.model;
    if (mc.num_classes > 0 || mc.cond_ch > 0) throw UsageError("--checkpoint: denoising takes an unconditional model");
    const std::string method = f.choice("method", {"sdedit", "tweedie"});
    const TaskImages t = task_images(f, mc);
    const uint64_t seed = static_cast<uint64_t>(f.integer("seed", 0));
    const auto stepper = make_sampler(sampler, m, seed);
    Rng rng(seed);
    const diffusion::Denoiser<float> model = train::denoiser(*m.model);
    if (f.given("strength")) {
        const double strength = f.number("strength", 0);
        const TensorF out = in_batches(t.images, f.integer("batch", 1, kMaxBatch), [&](int64_t, const TensorF& x) {
            return diffusion::image_to_image(*stepper, model, x, strength, rng);
        });
        write_rows(f.str("out").empty() ? "image_to_image.png" : f.str("out"), {t.images, out});
        return 0;
    }
    const double sigma = f.number("sigma", 0);
    if (!(sigma > 0)) throw UsageError("--sigma must be > 0");
    // A picture file is taken as noisy already; test images get the noise here.
    const TensorF noisy = t.labels.defined() ? t.images + sigma * TensorF::randn(t.images.shape(), rng) : t.images;
    const TensorF out = in_batches(noisy, f.integer("batch", 1, kMaxBatch), [&](int64_t, const TensorF& y) {
        return method == "tweedie" ? diffusion::tweedie_denoise(m.schedule, m.config.param, model, y, sigma, rng)
                                   : diffusion::denoise(*stepper, model, y, sigma, rng);
    });
    if (!t.labels.defined()) {
        write_rows(f.str("out").empty() ? "denoised.png" : f.str("out"), {noisy, out});
        return 0;
    }
    // The baseline: the Gaussian blur whose width is best for these very images (an oracle).
    TensorF blurred = noisy;
    double best = psnr(noisy, t.images), best_width = 0;
    for (double w = 0.3; w <= 3.0; w += 0.1) {
        const TensorF b = diffusion::gaussian_blur(noisy, w);
        const double p = psnr(b, t.images);
        if (p > best) best = p, best_width = w, blurred = b;
    }
    std::printf("%lld test images from %lld with noise sigma %.3g (t = %lld), %s:\n", static_cast<long long>(t.images.size(0)),
                static_cast<long long>(f.integer("first", 0)), sigma, static_cast<long long>(diffusion::timestep_for_sigma(m.schedule, sigma)),
                method == "tweedie" ? "Tweedie's posterior mean" : ("SDEdit, " + describe(sampler)).c_str());
    report(method == "tweedie" ? "tweedie" : "sdedit", out, t, {});
    report("best Gaussian blur (" + std::to_string(best_width).substr(0, 3) + " px, baseline)", blurred, t, {});
    report("noisy input", noisy, t, {});
    if (!f.str("out").empty()) write_rows(f.str("out"), {t.images, noisy, out, blurred});
    return 0;
}

// ---- ddpmkit superres ----

// Root mean squared difference between a and b.
inline double rms_difference(const TensorF& a, const TensorF& b) {
    double se = 0;
    for (int64_t i = 0; i < a.numel(); ++i) se += std::pow(double(a.data()[i]) - b.data()[i], 2);
    return std::sqrt(se / double(a.numel()));
}

inline int cmd_superres(int argc, char** argv) {
    Flags f("superres", "Upsamples images with a super-resolution checkpoint (ddpmkit train --task superres, SR3:\n"
                        "Saharia et al. 2021). --image is a low-resolution PNG; test images are shrunk by the\n"
                        "checkpoint's factor (block means) and the outputs measured beside bilinear and bicubic\n"
                        "upsampling: PSNR, the classifier's accuracy, and the consistency (the output shrunk again\n"
                        "against the low-resolution input, as RMS).",
            task_image_flags());
    if (!f.parse(argc, argv)) return 0;
    const SamplerChoice sampler = sampler_choice(f);
    const train::LoadedModel m = load_checkpoint(f);
    check_steps(sampler, m);
    const nn::UNetConfig& mc = m.config.model;
    const int64_t factor = m.config.superres_factor;
    if (factor == 0) throw UsageError("--checkpoint is not a super-resolution model (ddpmkit train --task superres makes one)");
    TaskImages t;
    TensorF low;
    if (!f.str("image").empty()) {
        low = read_image(f.str("image"), static_cast<int>(mc.in_ch));
        if (low.size(2) * factor != mc.res || low.size(3) * factor != mc.res)
            throw UsageError("--image " + f.str("image") + " is " + std::to_string(low.size(3)) + "x" + std::to_string(low.size(2)) +
                             " pixels; the model upsamples " + std::to_string(mc.res / factor) + "x" + std::to_string(mc.res / factor) + " by " +
                             std::to_string(factor));
    } else {
        t = task_images(f, mc);
        low = diffusion::downsample_area(t.images, factor);
    }
    const uint64_t seed = static_cast<uint64_t>(f.integer("seed", 0));
    const auto stepper = make_sampler(sampler, m, seed);
    Rng rng(seed);
    const TensorF bilinear = diffusion::superres_condition(low, mc.res);
    const TensorF out = in_batches(bilinear, f.integer("batch", 1, kMaxBatch), [&](int64_t, const TensorF& c) {
        stepper->restart();
        nn::Condition<float> cond;
        cond.image = c.clone();
        return diffusion::sample(*stepper, train::denoiser(*m.model), TensorF::randn(c.shape(), rng), cond);
    });
    if (!t.images.defined()) {
        write_rows(f.str("out").empty() ? "superres.png" : f.str("out"), {bilinear, out});
        return 0;
    }
    const TensorF bicubic = diffusion::resize(low, mc.res, mc.res, diffusion::Interpolation::Bicubic);
    std::printf("%lld test images from %lld, %lldx%lld -> %lldx%lld (%s); consistency: the output shrunk again against the input:\n",
                static_cast<long long>(t.images.size(0)), static_cast<long long>(f.integer("first", 0)),
                static_cast<long long>(mc.res / factor), static_cast<long long>(mc.res / factor), static_cast<long long>(mc.res),
                static_cast<long long>(mc.res), describe(sampler).c_str());
    for (const auto& [name, x] : {std::pair<std::string, TensorF>{"SR3", out}, {"bilinear (baseline)", bilinear}, {"bicubic (baseline)", bicubic}}) {
        char consistency[64];
        std::snprintf(consistency, sizeof consistency, "   consistency RMS %.4f", rms_difference(diffusion::downsample_area(x, factor), low));
        report(name, x, t, {}, consistency);
    }
    if (!f.str("out").empty()) write_rows(f.str("out"), {t.images, bilinear, bicubic, out});
    return 0;
}

}  // namespace cli
