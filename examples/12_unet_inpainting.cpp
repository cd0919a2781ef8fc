// 12 — a U-Net on Fashion-MNIST in a minute, then inpainting with it.
//
// Everything of the earlier lessons, on images. First one training step (Algorithm 1) by hand,
// its quantities printed in order so they can be checked with a calculator:
//     t ~ Uniform{1..T},  eps ~ N(0, I),  x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps   (eq. 4)
//     loss = |eps - eps_theta(x_t, t)|^2 / D                                               (eq. 14)
// then the same step as the library takes it. Then a small U-Net (two resolutions, 16 and 32
// channels, no attention) is trained by the Trainer for about half a minute, 700 steps of 16
// images: Adam, a short warmup, cosine decay and an EMA of the weights. Its samples (DDIM, 50
// steps) are rough garments after so few steps (the main job trains for minutes: README).
//
// Then the centre square of 8 test images is filled in by the same model, which was never
// trained for it: the replacement method puts the known pixels back after each step, noised
// to that step's t (eq. 4), and RePaint (Lugmayr et al. 2022) also jumps back up the chain
// so that the known part can steer the rest. Printed: the PSNR of the filled square beside
// filling it with the mean image. Pictures: 12_samples.png, and 12_inpainting.png (rows:
// original, the hole, mean fill, replacement, RePaint).
// Argument: the training steps (default 700).
// PNG output: one .cpp file of a program compiles stb_image_write, by defining this first.
#define DDPMKIT_STB_IMPLEMENTATION

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include <ddpmkit/ddpmkit.hpp>

using namespace ddpmkit;

// PSNR (images in [-1, 1], so the peak-to-peak range is 2) over the pixels where hole = 1.
double psnr_in(const TensorF& a, const TensorF& b, const TensorF& hole) {
    double se = 0, n = 0;
    const int64_t per_image = hole.numel();
    for (int64_t i = 0; i < a.numel(); ++i) {
        const double h = hole.data()[i % per_image], d = double(a.data()[i]) - double(b.data()[i]);
        se += h * d * d, n += h;
    }
    return 10 * std::log10(4.0 / (se / n));
}

int main(int argc, char** argv) {
    const int64_t steps = argc > 1 ? std::atoll(argv[1]) : 700;
    const DatasetChoice train_set = load_fashion_mnist_or_embedded(kDefaultFashionMnistDir, true, 6000);
    std::printf("%s\n", train_set.message.c_str());
    const diffusion::Schedule schedule = diffusion::Schedule::linear(1000);
    nn::UNetConfig config;
    config.ch = 16;
    config.mult = {1, 2};
    config.blocks = 1;
    config.attn = {};
    nn::UNet<float> model(config, 0);

    // ---- One training step by hand, on the first image.
    {
        const TensorF x0 = train_set.data.images.slice(0, 1);
        Rng rng(12);
        const int64_t t = 1 + rng.randint(999);  // index t: the paper's t + 1
        const TensorF eps = TensorF::randn(x0.shape(), rng);
        const double abar = schedule.alphas_cumprod[size_t(t)];
        TensorF xt(x0.shape());
        for (int64_t i = 0; i < x0.numel(); ++i)
            xt.data()[i] = float(std::sqrt(abar) * x0.data()[i] + std::sqrt(1 - abar) * eps.data()[i]);
        const Tensor<int64_t> ts(Shape{1}, t);
        const VarF prediction = model.forward(VarF(xt), ts, {});
        double loss = 0;
        for (int64_t i = 0; i < x0.numel(); ++i) loss += std::pow(double(eps.data()[i]) - double(prediction.value().data()[i]), 2);
        loss /= double(x0.numel());
        std::printf("\nOne training step by hand: t = %lld, abar_t = %.6f, sqrt(abar_t) = %.6f, sqrt(1 - abar_t) = %.6f\n",
                    static_cast<long long>(t), abar, std::sqrt(abar), std::sqrt(1 - abar));
        std::printf("  pixel (row 14, col)   x_0         eps        x_t = sqrt(abar) x_0 + sqrt(1-abar) eps   eps_theta(x_t, t)\n");
        for (int64_t col : {4, 10, 14, 20}) {
            const int64_t i = 14 * 28 + col;
            std::printf("  %2lld                  %+.4f    %+.4f    %+.4f                                   %+.4f\n",
                        static_cast<long long>(col), x0.data()[i], eps.data()[i], xt.data()[i], prediction.value().data()[i]);
        }
        const diffusion::TrainingLoss<float> library = diffusion::training_losses(
            schedule, diffusion::Parametrization{}, diffusion::LossType::Simple, prediction, VarF(x0),
            diffusion::q_sample(schedule, VarF(x0), ts, VarF(eps)), ts, VarF(eps));
        std::printf("  loss = mean over the 784 pixels of (eps - eps_theta)^2 = %.6f (the library's training_losses: %.6f)\n\n",
                    loss, double(library.loss.value().data()[0]));
        if (std::abs(loss - double(library.loss.value().data()[0])) > 1e-5 * loss) return 1;
    }

    // ---- Training: the Trainer takes that step over batches, with Adam, the EMA and a progress line.
    train::LoaderSource batches(DataLoader(train_set.data, 16, 0), /*with_labels=*/false);
    train::TrainerOptions o;
    o.lr = train::LrSchedule{3e-3, 50, steps, 1e-4};  // warmup, then cosine decay
    o.ema_decay = 0.98;                                // a short EMA: the run is short
    train::Trainer trainer(model, schedule, batches, o);
    trainer.add_observer(std::make_shared<train::ProgressObserver>(steps, 0.0, false));
    std::printf("training a U-Net of %lld parameters for %lld steps of 16 images\n", static_cast<long long>(model.num_parameters()),
                static_cast<long long>(steps));
    trainer.run(steps, 0);
    std::printf("\n");
    trainer.ema().swap();
    model.eval();
    const diffusion::Denoiser<float> eps_theta = train::denoiser(model);

    Rng rng(7);
    diffusion::SamplerOptions so;
    so.steps = 50;
    const auto ddim = diffusion::make_sampler<float>("ddim", schedule, o.param, so);
    const TensorF samples = diffusion::sample(*ddim, eps_theta, TensorF::randn({16, 1, 28, 28}, rng));
    GridOptions grid;
    grid.cols = 8;
    grid.scale = 3;
    write_grid_png("12_samples.png", samples, grid);

    // ---- Inpainting the centre square of 8 test images.
    const int64_t n = 8;
    const DatasetChoice test_set = load_fashion_mnist_or_embedded(kDefaultFashionMnistDir, false, n);
    const TensorF originals = test_set.data.images.slice(0, n);
    TensorF keep = TensorF::ones({1, 1, 28, 28}), hole({1, 1, 28, 28});
    for (int64_t r = 7; r < 21; ++r)
        for (int64_t c = 7; c < 21; ++c) keep(0, 0, r, c) = 0, hole(0, 0, r, c) = 1;
    TensorF mean_image({1, 1, 28, 28});  // the baseline fill: the mean of the training images
    const int64_t N = train_set.data.size();
    for (int64_t i = 0; i < N; ++i)
        for (int64_t j = 0; j < 784; ++j) mean_image.data()[j] += train_set.data.images.data()[i * 784 + j] / float(N);
    const TensorF mean_fill = keep * originals + hole * mean_image;
    so.eta = 1.0;  // RePaint's jumps need a stochastic sampler
    const auto stepper = diffusion::make_sampler<float>("ddim", schedule, o.param, so);
    const TensorF replaced = diffusion::inpaint(*stepper, eps_theta, originals, keep, rng);
    const TensorF repainted = diffusion::inpaint(*stepper, eps_theta, originals, keep, rng, diffusion::InpaintOptions{5, 4});
    trainer.ema().swap();
    std::printf("PSNR of the filled 14x14 square, %lld test images: mean image %.2f dB, replacement %.2f dB, RePaint %.2f dB\n",
                static_cast<long long>(n), psnr_in(mean_fill, originals, hole), psnr_in(replaced, originals, hole),
                psnr_in(repainted, originals, hole));
    const TensorF holed = keep * originals + hole;  // the hole in white
    write_grid_png("12_inpainting.png", concat_rows(concat_rows(concat_rows(originals, holed), concat_rows(mean_fill, replaced)), repainted), grid);
    std::printf("wrote 12_samples.png (16 samples, DDIM 50 steps) and 12_inpainting.png (rows: original, the hole, mean fill,\n"
                "replacement, RePaint)\n");
    return 0;
}
