// ddpmkit — the umbrella header: everything public, in layer order.
#pragma once

#include "ddpmkit/config.hpp"
#include "ddpmkit/version.hpp"

#include "ddpmkit/core/parallel.hpp"
#include "ddpmkit/core/random.hpp"
#include "ddpmkit/core/shape.hpp"
#include "ddpmkit/core/tensor.hpp"

#include "ddpmkit/kernels/arithmetic.hpp"
#include "ddpmkit/kernels/elementwise.hpp"
#include "ddpmkit/kernels/gemm.hpp"
#include "ddpmkit/kernels/layout.hpp"
#include "ddpmkit/kernels/reduce.hpp"
#include "ddpmkit/kernels/reference.hpp"
#include "ddpmkit/kernels/simd.hpp"
#include "ddpmkit/kernels/softmax.hpp"

#include "ddpmkit/autograd/dot.hpp"
#include "ddpmkit/autograd/gradcheck.hpp"
#include "ddpmkit/autograd/ops.hpp"
#include "ddpmkit/autograd/var.hpp"

#include "ddpmkit/io/json.hpp"
#include "ddpmkit/io/safetensors.hpp"

#include "ddpmkit/autograd/nn_ops.hpp"
#include "ddpmkit/kernels/conv2d.hpp"
#include "ddpmkit/kernels/norm.hpp"
#include "ddpmkit/kernels/optimizer.hpp"

#include "ddpmkit/nn/layers.hpp"
#include "ddpmkit/nn/mlp.hpp"
#include "ddpmkit/nn/module.hpp"
#include "ddpmkit/nn/unet.hpp"

#include "ddpmkit/train/optim.hpp"
#include "ddpmkit/dist/group.hpp"
#include "ddpmkit/train/gradient_sum.hpp"
#include "ddpmkit/train/trainer.hpp"

#include "ddpmkit/diffusion/bound.hpp"
#include "ddpmkit/diffusion/losses.hpp"
#include "ddpmkit/diffusion/mixture.hpp"
#include "ddpmkit/diffusion/process.hpp"
#include "ddpmkit/diffusion/samplers.hpp"
#include "ddpmkit/diffusion/schedule.hpp"
#include "ddpmkit/diffusion/score.hpp"
#include "ddpmkit/diffusion/tasks.hpp"
#include "ddpmkit/diffusion/timestep_sampler.hpp"

#include "ddpmkit/io/cifar.hpp"
#include "ddpmkit/io/dataset.hpp"
#include "ddpmkit/io/idx.hpp"
#include "ddpmkit/io/image.hpp"
#include "ddpmkit/io/plot.hpp"
#include "ddpmkit/io/progress.hpp"
