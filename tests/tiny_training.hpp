// A tiny U-Net trained a few steps, for the tests that compare ways of taking the same steps:
// micro-batches (test_train.cpp) and processes (test_mpi.cpp) against one process in one pass.
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "ddpmkit/diffusion/schedule.hpp"
#include "ddpmkit/io/dataset.hpp"
#include "ddpmkit/nn/unet.hpp"
#include "ddpmkit/train/trainer.hpp"

namespace test {

struct TinyRun {
    std::vector<ddpmkit::TensorF> params;  // in order, after the steps
    std::vector<double> grad_norms;        // each step's gradient norm, before clipping
};

// A U-Net (ch 8, 8x8 pictures, attention at 4x4, this dropout) trained `steps` steps of batch 8
// on 32 random images with these options (seed 3, grad clip 1). The gradient norms catch what the weights
// cannot: Adam's step barely depends on the gradient's scale, so a gradient summed wrongly by a
// constant factor would leave the weights nearly where they should be.
inline TinyRun train_tiny_unet(ddpmkit::train::TrainerOptions options, int64_t steps, double dropout = 0.0) {
    using namespace ddpmkit;
    nn::UNetConfig c;
    c.ch = 8, c.mult = {1, 2}, c.blocks = 1, c.attn = {4}, c.groups = 4, c.res = 8, c.dropout = dropout;
    nn::UNet<float> model(c, 3);
    ImageDataset data;
    data.name = "random";
    Rng rng(21);
    data.images = TensorF::rand({32, 1, 8, 8}, rng, -1, 1);
    train::LoaderSource source(DataLoader(data, 8, 3), false);
    options.seed = 3;
    train::Trainer trainer(model, diffusion::Schedule::linear(100), source, options);
    struct Norms : train::Observer {
        std::vector<double> seen;
        void on_step(train::Trainer&, const train::StepReport& r) override { seen.push_back(r.grad_norm); }
    };
    auto norms = std::make_shared<Norms>();
    trainer.add_observer(norms);
    trainer.run(steps, 0);
    TinyRun out;
    for (auto& [name, p] : model.named_parameters()) out.params.push_back(p->value().clone());
    out.grad_norms = norms->seen;
    return out;
}

// How far two runs of the same steps are apart: the largest |a - b| of the weights relative to
// the largest weight, and of the gradient norms relative to the norm.
struct RunDistance {
    double weights = 0.0, grad_norms = 0.0;
};
inline RunDistance distance(const TinyRun& a, const TinyRun& b) {
    RunDistance d;
    double scale = 0.0;
    for (size_t k = 0; k < a.params.size(); ++k)
        for (int64_t i = 0; i < a.params[k].numel(); ++i) {
            d.weights = std::max(d.weights, std::abs(double(a.params[k].data()[i]) - double(b.params[k].data()[i])));
            scale = std::max(scale, std::abs(double(a.params[k].data()[i])));
        }
    d.weights /= scale;
    for (size_t s = 0; s < a.grad_norms.size(); ++s)
        d.grad_norms = std::max(d.grad_norms, std::abs(a.grad_norms[s] - b.grad_norms[s]) / a.grad_norms[s]);
    return d;
}

// Float sums in another order, through 3 Adam steps: Adam divides each gradient element by its
// running magnitude, so an element near 0 turns a last-bit difference into a visible one.
// Measured, 2 and 8 micro-batches: the weights 0.5e-5 to 1.0e-5 apart (AVX-512 and scalar
// kernels), the gradient norms 1e-8.
constexpr double kWeightTolerance = 1e-4, kGradNormTolerance = 1e-5;

}  // namespace test
