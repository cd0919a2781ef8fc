// ddpmkit — layers: Linear, Conv2d, GroupNorm, Dropout, Embedding, self-attention,
// nearest Upsample, and the sinusoidal timestep embedding with its MLP.
// Weights use PyTorch's layouts and default initialization (uniform in +-1/sqrt(fan_in)).
// Shape letters: B batch, C channels, H W size, D embedding width.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "ddpmkit/autograd/nn_ops.hpp"
#include "ddpmkit/autograd/ops.hpp"
#include "ddpmkit/config.hpp"
#include "ddpmkit/nn/module.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace nn {

// U(-1/sqrt(fan_in), 1/sqrt(fan_in)): what torch.nn gives Linear and Conv2d weights and biases.
template <class T>
Var<T> uniform_parameter(const Shape& shape, int64_t fan_in, Rng& rng) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    return Var<T>(Tensor<T>::rand(shape, rng, -bound, bound), true);
}

template <class T>
class Linear : public Module<T> {
public:
    Var<T> weight, bias;  // [out, in], [out]
    Linear(int64_t in, int64_t out, Rng& rng)
        : weight(uniform_parameter<T>({out, in}, in, rng)), bias(uniform_parameter<T>({out}, in, rng)) {
        this->register_parameter("weight", weight);
        this->register_parameter("bias", bias);
    }
    Var<T> forward(const Var<T>& x) const { return linear(x, weight, bias); }
};

template <class T>
class Conv2d : public Module<T> {
public:
    Var<T> weight, bias;  // [out, in, k, k], [out]
    int64_t stride, pad;
    Conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride_, int64_t pad_, Rng& rng)
        : weight(uniform_parameter<T>({out, in, kernel, kernel}, in * kernel * kernel, rng)),
          bias(uniform_parameter<T>({out}, in * kernel * kernel, rng)),
          stride(stride_),
          pad(pad_) {
        this->register_parameter("weight", weight);
        this->register_parameter("bias", bias);
    }
    // conv(x) + residual (a residual connection's sum, made as the output is written), or conv(x).
    Var<T> forward(const Var<T>& x, const Var<T>& residual = Var<T>()) const {
        return conv2d(x, weight, bias, stride, pad, residual);
    }
};

template <class T>
class GroupNorm : public Module<T> {
public:
    Var<T> weight, bias;  // gamma = 1, beta = 0 at first
    int64_t groups;
    double eps;
    GroupNorm(int64_t groups_, int64_t channels, double eps_ = 1e-5)
        : weight(Tensor<T>::ones({channels}), true), bias(Tensor<T>::zeros({channels}), true), groups(groups_), eps(eps_) {
        if (groups < 1 || channels % groups != 0)
            throw std::invalid_argument("GroupNorm: " + std::to_string(channels) + " channels do not split into " +
                                        std::to_string(groups) + " groups");
        this->register_parameter("weight", weight);
        this->register_parameter("bias", bias);
    }
    Var<T> forward(const Var<T>& x) const { return group_norm(x, weight, bias, groups, eps); }
    // silu(forward(x + shift)) as one fused op, shift [B, C] broadcast over the positions (or
    // none): what the U-Net's ResBlocks and output head need.
    Var<T> forward_silu(const Var<T>& x, const Var<T>& shift = Var<T>()) const {
        return group_norm_silu(x, weight, bias, groups, eps, shift);
    }
};

// conv(SiLU(norm(x + shift))) + residual as one op (group_norm_silu_conv2d: the activation is
// never stored); shift [B, C] and residual may be undefined.
template <class T>
Var<T> norm_silu_conv(const GroupNorm<T>& norm, const Conv2d<T>& conv, const Var<T>& x, const Var<T>& shift = Var<T>(),
                      const Var<T>& residual = Var<T>()) {
    return group_norm_silu_conv2d(x, norm.weight, norm.bias, norm.groups, norm.eps, shift, conv.weight, conv.bias, conv.stride,
                                  conv.pad, residual);
}

// Zeroes elements with probability p while training (draws from a generator it shares
// with its model, so that a checkpoint of the model's generator covers it).
template <class T>
class Dropout : public Module<T> {
public:
    Dropout(double p_, Rng& rng) : p(p_), rng_(&rng) {}
    Var<T> forward(const Var<T>& x) const { return active() ? dropout(x, p, *rng_) : x; }
    bool active() const { return this->training() && p > 0.0; }  // else forward is the identity
    double p;

private:
    Rng* rng_;
};

template <class T>
class Embedding : public Module<T> {
public:
    Var<T> weight;  // [N, D], N(0, 1) as in torch.nn.Embedding
    Embedding(int64_t n, int64_t dim, Rng& rng) : weight(Tensor<T>::randn({n, dim}, rng), true) {
        this->register_parameter("weight", weight);
    }
    Var<T> forward(const Tensor<int64_t>& ids) const { return embedding(weight, ids); }
};

// Self-attention over the H W positions (Vaswani et al. 2017, as in the DDPM U-Net):
// q, k, v = split(conv1x1(GN(x))) along channels; per head of C/heads channels
// a_ij = softmax_j(q_i . k_j / sqrt(C/heads)), o_i = sum_j a_ij v_j; out = x + conv1x1(o).
template <class T>
class Attention : public Module<T> {
public:
    GroupNorm<T> norm;
    Conv2d<T> qkv, proj;
    int64_t heads;
    Attention(int64_t channels, int64_t groups, Rng& rng, int64_t heads_ = 1)
        : norm(groups, channels), qkv(channels, 3 * channels, 1, 1, 0, rng), proj(channels, channels, 1, 1, 0, rng), heads(heads_) {
        if (heads < 1 || channels % heads != 0)
            throw std::invalid_argument("Attention: " + std::to_string(channels) + " channels do not split into " +
                                        std::to_string(heads) + " heads");
        this->register_module("norm", norm);
        this->register_module("qkv", qkv);
        this->register_module("proj", proj);
    }
    Var<T> forward(const Var<T>& x) const {
        const Shape& s = x.shape();
        const int64_t B = s[0], C = s[1], P = s[2] * s[3], d = C / heads;
        // [B, 3C, H, W] -> [B, 3, heads, d, P]: q, k, v each [B, heads, d, P] after the split.
        const Var<T> normed = norm.forward(x);
        auto parts = split(reshape(qkv.forward(normed), {B, 3, heads, d, P}), {1, 1, 1}, 1);
        normed.release();  // remade in the backward pass: activation memory
        const Var<T> q = reshape(parts[0], {B * heads, d, P}), k = reshape(parts[1], {B * heads, d, P}),
                     v = reshape(parts[2], {B * heads, d, P});
        const Var<T> o = attention(q, k, v, 1.0 / std::sqrt(double(d)));
        return proj.forward(reshape(o, s), x);
    }
};

// Nearest-neighbour x2, then a 3x3 convolution. The conv is child "1", as in the
// reference's nn.Sequential(nn.Upsample, nn.Conv2d).
template <class T>
class Upsample : public Module<T> {
public:
    Conv2d<T> conv;
    Upsample(int64_t channels, Rng& rng) : conv(channels, channels, 3, 1, 1, rng) { this->register_module("1", conv); }
    Var<T> forward(const Var<T>& x) const {
        const Var<T> up = upsample_nearest2x(x);
        const Var<T> y = conv.forward(up);
        up.release();  // remade in the backward pass: activation memory
        return y;
    }
};

// Sinusoidal embedding of integer timesteps t [B] -> [B, dim] (Vaswani et al. 2017, sec. 3.5;
// DDPM appendix B): first half sin(t f_i), second half cos(t f_i), f_i = exp(-ln(10000) i / (dim/2)).
// Computed in float with the same roundings as the PyTorch reference.
template <class T>
Tensor<T> timestep_embedding(const Tensor<int64_t>& t, int64_t dim) {
    if (dim % 2 != 0 || dim < 2) throw std::invalid_argument("timestep_embedding: width " + std::to_string(dim) + " is not even");
    const int64_t half = dim / 2, B = t.numel();
    Tensor<T> out({B, dim});
    const float scale = static_cast<float>(-std::log(10000.0));
    for (int64_t i = 0; i < half; ++i) {
        const float freq = std::exp(scale * static_cast<float>(i) / static_cast<float>(half));
        for (int64_t b = 0; b < B; ++b) {
            const float arg = static_cast<float>(t.data()[b]) * freq;
            out(b, i) = static_cast<T>(std::sin(arg));
            out(b, half + i) = static_cast<T>(std::cos(arg));
        }
    }
    return out;
}

// The timestep embedding MLP: Linear(ch, 4ch), SiLU, Linear(4ch, 4ch) as children "0"
// and "2" (the reference's nn.Sequential indices).
template <class T>
class TimestepEmbedding : public Module<T> {
public:
    Linear<T> fc1, fc2;
    int64_t ch;
    TimestepEmbedding(int64_t ch_, int64_t dim, Rng& rng) : fc1(ch_, dim, rng), fc2(dim, dim, rng), ch(ch_) {
        this->register_module("0", fc1);
        this->register_module("2", fc2);
    }
    Var<T> forward(const Tensor<int64_t>& t) const { return fc2.forward(silu(fc1.forward(Var<T>(timestep_embedding<T>(t, ch))))); }
};

}  // namespace nn
DDPMKIT_END_NAMESPACE
