// Super-resolution as SR3 does it (Saharia et al. 2021): a U-Net that takes, beside x_t, the
// low-resolution image upsampled bilinearly as extra input channels (cond_ch), trained by
// train::Trainer on pairs that LoaderSource makes from each batch (images shrunk 4 times by
// block means, 7x7, and upsampled again). The model predicts v (Salimans & Ho 2022): at large
// t an eps model's x_0 is noise divided by sqrt(abar_t), and the low-resolution image, which
// fixes most of x_0, barely moves eps; v keeps it in view. On the embedded data set of simple
// shapes; at the end, 10 held-out shapes upsampled by DDIM beside bilinear and bicubic
// upsampling, with PSNR and the consistency (the output shrunk again against the input),
// in superresolution.png (rows: the image, bilinear, bicubic, SR3). Argument: the number of
// steps (300, about 3 minutes on 2 cores).
// PNG output: one .cpp file of a program compiles stb_image_write, by defining this first.
#define DDPMKIT_STB_IMPLEMENTATION

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <ddpmkit/diffusion/tasks.hpp>
#include <ddpmkit/io/dataset.hpp>
#include <ddpmkit/io/image.hpp>
#include <ddpmkit/train/trainer.hpp>

using namespace ddpmkit;

// Root mean squared difference.
double rms(const TensorF& a, const TensorF& b) {
    double se = 0;
    for (int64_t i = 0; i < a.numel(); ++i) se += std::pow(double(a.data()[i]) - b.data()[i], 2);
    return std::sqrt(se / double(a.numel()));
}

int main(int argc, char** argv) {
    const int64_t steps = argc > 1 ? std::atoll(argv[1]) : 300, factor = 4;
    nn::UNetConfig config;
    config.ch = 16;
    config.mult = {1, 2};
    config.blocks = 1;
    config.attn = {};
    config.cond_ch = 1;  // the upsampled low-resolution image
    nn::UNet<float> model(config, 0);

    train::LoaderSource pairs(DataLoader(make_shapes_dataset(6000), 32, 0), /*with_labels=*/false, factor);
    train::TrainerOptions o;
    o.param.output = diffusion::ModelOutput::V;
    o.lr = train::LrSchedule{2e-3, 50, steps, 1e-4};  // warmup, then cosine decay
    o.ema_decay = 0.99;
    const diffusion::Schedule schedule = diffusion::Schedule::linear(1000);
    train::Trainer trainer(model, schedule, pairs, o);
    std::printf("training an SR3 U-Net of %lld parameters for %lld steps, 7x7 -> 28x28\n", static_cast<long long>(model.num_parameters()),
                static_cast<long long>(steps));
    trainer.run(steps, 0);

    // 10 shapes the model never saw (seed 1), shrunk and upsampled.
    const TensorF truth = make_shapes_dataset(10, 1).images;
    const TensorF low = diffusion::downsample_area(truth, factor);
    nn::Condition<float> cond;
    cond.image = diffusion::superres_condition(low, 28);
    diffusion::SamplerOptions so;
    so.steps = 25;
    const auto ddim = diffusion::make_sampler<float>("ddim", schedule, o.param, so);
    Rng rng(7);
    trainer.ema().swap();
    model.eval();
    const TensorF sr = diffusion::sample(*ddim, train::denoiser(model), TensorF::randn(truth.shape(), rng), cond);
    trainer.ema().swap();

    const TensorF bicubic = diffusion::resize(low, 28, 28, diffusion::Interpolation::Bicubic);
    std::printf("10 held-out shapes: PSNR against the originals, consistency = RMS of the output shrunk again against the input\n");
    for (const auto& [name, x] : {std::pair<const char*, TensorF>{"bilinear", cond.image}, {"bicubic", bicubic}, {"SR3, DDIM 25 steps", sr}})
        std::printf("  %-20s PSNR %5.2f dB   consistency %.4f\n", name, 10 * std::log10(4.0 / std::pow(rms(x, truth), 2)),
                    rms(diffusion::downsample_area(x, factor), low));
    GridOptions grid;
    grid.cols = 10;
    write_grid_png("superresolution.png", concat_rows(concat_rows(truth, cond.image), concat_rows(bicubic, sr)), grid);
    std::printf("wrote superresolution.png (rows: the image, bilinear, bicubic, SR3)\n");
    return 0;
}
