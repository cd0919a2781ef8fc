// A class-conditional U-Net trained by train::Trainer with label dropout (the null label
// teaches the unconditional model that classifier-free guidance needs, Ho & Salimans 2022),
// on the embedded data set of simple shapes in 10 classes. The Trainer composes the parts:
// the model, a source of batches with their labels, the loss, the learning-rate schedule
// and observers; here one observer prints the loss. At the end the EMA weights draw samples
// of each class with DDIM, without and with classifier-free guidance (class_conditional.png).
// Argument: the number of steps (300, about 3 minutes on 2 cores; shapes take form from about
// 1,000).
// PNG output: one .cpp file of a program compiles stb_image_write, by defining this first.
#define DDPMKIT_STB_IMPLEMENTATION

#include <cstdio>
#include <cstdlib>
#include <memory>

#include <ddpmkit/diffusion/tasks.hpp>
#include <ddpmkit/io/dataset.hpp>
#include <ddpmkit/io/image.hpp>
#include <ddpmkit/train/trainer.hpp>

using namespace ddpmkit;

// Prints the loss every `every` steps.
struct PrintLoss : train::Observer {
    int64_t every;
    explicit PrintLoss(int64_t e) : every(e) {}
    void on_step(train::Trainer&, const train::StepReport& r) override {
        if (r.step % every == 0) std::printf("step %4lld  loss %.4f  lr %.2e\n", static_cast<long long>(r.step), r.loss, r.lr);
    }
};

int main(int argc, char** argv) {
    const int64_t steps = argc > 1 ? std::atoll(argv[1]) : 300;
    ImageDataset data = make_shapes_dataset(6000);
    nn::UNetConfig config;
    config.ch = 16;
    config.mult = {1, 2};
    config.blocks = 1;
    config.attn = {};
    config.num_classes = data.num_classes;  // labels 0..9, and 10: "no class"
    nn::UNet<float> model(config, 0);

    train::LoaderSource batches(DataLoader(std::move(data), 32, 0), /*with_labels=*/true);
    train::TrainerOptions o;
    o.label_dropout = 0.1;
    o.null_label = config.num_classes;
    o.lr = train::LrSchedule{2e-3, 50, steps, 1e-4};  // warmup, then cosine decay
    o.ema_decay = 0.99;
    const diffusion::Schedule schedule = diffusion::Schedule::linear(1000);
    train::Trainer trainer(model, schedule, batches, o);
    trainer.add_observer(std::make_shared<PrintLoss>(50));
    std::printf("training a class-conditional U-Net of %lld parameters for %lld steps\n",
                static_cast<long long>(model.num_parameters()), static_cast<long long>(steps));
    trainer.run(steps, 0);

    // Column k of class k, from the EMA weights: the same noise sampled with classifier-free
    // guidance w = 0 (the conditional model alone) and w = 3 (eps = 4 eps(x, y) - 3 eps(x, null)).
    const int64_t per_class = 3, n = per_class * config.num_classes;
    nn::Condition<float> cond{Tensor<int64_t>({n}), {}};
    for (int64_t i = 0; i < n; ++i) cond.labels(i) = i % config.num_classes;
    Rng rng(7);
    const TensorF noise = TensorF::randn({n, 1, 28, 28}, rng);
    diffusion::SamplerOptions so;
    so.steps = 25;
    const auto ddim = diffusion::make_sampler<float>("ddim", schedule, o.param, so);
    trainer.ema().swap();
    model.eval();
    const TensorF plain = diffusion::sample(*ddim, diffusion::classifier_free_guidance(train::denoiser(model), 0.0, config.num_classes), noise, cond);
    ddim->restart();
    const TensorF guided = diffusion::sample(*ddim, diffusion::classifier_free_guidance(train::denoiser(model), 3.0, config.num_classes), noise, cond);
    trainer.ema().swap();
    GridOptions grid;
    grid.cols = static_cast<int>(config.num_classes);
    write_grid_png("class_conditional.png", concat_rows(plain, guided), grid);
    std::printf("wrote class_conditional.png: column k of class k; %lld rows with guidance w = 0, then the same noise with w = 3\n",
                static_cast<long long>(per_class));
    return 0;
}
