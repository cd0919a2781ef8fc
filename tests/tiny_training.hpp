// A tiny U-Net trained a few steps, for the tests that compare ways of taking the same steps:
// micro-batches (test_train.cpp) and processes (test_mpi.cpp) against one process in one pass.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "ddpmkit/diffusion/schedule.hpp"
#include "ddpmkit/io/dataset.hpp"
#include "ddpmkit/nn/unet.hpp"
#include "ddpmkit/train/trainer.hpp"

namespace test {

// The parameters, in order, of a U-Net (ch 8, 8x8 pictures, attention at 4x4) after `steps`
// steps of batch 8 on 32 random images, with these options (seed 3, grad clip 1).
inline std::vector<ddpmkit::TensorF> train_tiny_unet(ddpmkit::train::TrainerOptions options, int64_t steps) {
    using namespace ddpmkit;
    nn::UNetConfig c;
    c.ch = 8, c.mult = {1, 2}, c.blocks = 1, c.attn = {4}, c.groups = 4, c.res = 8;
    nn::UNet<float> model(c, 3);
    ImageDataset data;
    data.name = "random";
    Rng rng(21);
    data.images = TensorF::rand({32, 1, 8, 8}, rng, -1, 1);
    train::LoaderSource source(DataLoader(data, 8, 3), false);
    options.seed = 3;
    train::Trainer trainer(model, diffusion::Schedule::linear(100), source, options);
    trainer.run(steps, 0);
    std::vector<TensorF> out;
    for (auto& [name, p] : model.named_parameters()) out.push_back(p->value().clone());
    return out;
}

// The largest |a - b| over every element, relative to the largest |a| (the parameters' scale).
inline double max_relative_difference(const std::vector<ddpmkit::TensorF>& a, const std::vector<ddpmkit::TensorF>& b) {
    double diff = 0.0, scale = 0.0;
    for (size_t k = 0; k < a.size(); ++k)
        for (int64_t i = 0; i < a[k].numel(); ++i) {
            diff = std::max(diff, std::abs(double(a[k].data()[i]) - double(b[k].data()[i])));
            scale = std::max(scale, std::abs(double(a[k].data()[i])));
        }
    return diff / scale;
}

}  // namespace test
