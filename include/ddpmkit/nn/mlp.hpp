// ddpmkit — a diffusion model for vectors: an MLP on x_t whose every hidden layer also takes a
// projection of emb(t) (+ emb(y)), so that each layer knows the noise level. Points in the
// plane (the lessons' two-dimensional toys) train in seconds and can be drawn; any vector data
// fits. A DiffusionModule like the U-Net, so the Trainer, the samplers and guidance take it.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "ddpmkit/config.hpp"
#include "ddpmkit/nn/condition.hpp"
#include "ddpmkit/nn/layers.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace nn {

struct MlpConfig {
    int64_t dim = 2;          // x is [B, dim]
    int64_t hidden = 128;     // units of each hidden layer
    int64_t layers = 4;       // linear layers (>= 2): in, layers - 2 hidden, out
    int64_t emb = 64;         // width of the timestep (and class) embedding
    int64_t num_classes = 0;  // > 0: class-conditional; label num_classes means "no class"
};

template <class T>
class MlpDenoiser : public DiffusionModule<T> {
public:
    MlpDenoiser(MlpConfig config, uint64_t seed) : config_(config), init_(seed) {
        if (config_.dim < 1 || config_.hidden < 1 || config_.layers < 2 || config_.emb < 2 || config_.emb % 2 != 0 || config_.num_classes < 0)
            throw std::invalid_argument("MlpDenoiser: dim, hidden >= 1, layers >= 2, emb even and >= 2, num_classes >= 0");
        time_ = std::make_unique<TimestepEmbedding<T>>(config_.emb, config_.emb, init_);
        this->register_module("time", *time_);
        if (config_.num_classes > 0) {
            class_emb_ = std::make_unique<Embedding<T>>(config_.num_classes + 1, config_.emb, init_);
            this->register_module("class_emb", *class_emb_);
        }
        for (int64_t k = 0; k < config_.layers; ++k) {
            const int64_t in = k == 0 ? config_.dim : config_.hidden, out = k + 1 == config_.layers ? config_.dim : config_.hidden;
            linears_.push_back(std::make_unique<Linear<T>>(in, out, init_));
            this->register_module("linear" + std::to_string(k), *linears_.back());
            if (k + 1 == config_.layers) break;
            emb_proj_.push_back(std::make_unique<Linear<T>>(config_.emb, config_.hidden, init_));
            this->register_module("emb" + std::to_string(k), *emb_proj_.back());
        }
    }

    const MlpConfig& config() const { return config_; }

    // x [B, dim], timesteps t [B], labels [B] if class-conditional -> [B, dim].
    Var<T> forward(const Var<T>& x, const Tensor<int64_t>& t, const Condition<T>& c = {}) const override {
        if (x.dim() != 2 || x.size(1) != config_.dim) throw shape_error("MlpDenoiser::forward", x.shape(), "is not [B, " + std::to_string(config_.dim) + "]");
        if (t.numel() != x.size(0)) throw shape_error("MlpDenoiser::forward", x.shape(), t.shape(), "(x, t): one timestep per example is needed");
        ConditionSpec{config_.num_classes, 0}.check("MlpDenoiser::forward", c, x.size(0), 1, 1);
        Var<T> emb = time_->forward(t);
        if (c.labels.defined()) emb = emb + class_emb_->forward(c.labels);
        const Var<T> emb_act = silu(emb);
        Var<T> h = x;
        for (size_t k = 0; k + 1 < linears_.size(); ++k) h = silu(linears_[k]->forward(h) + emb_proj_[k]->forward(emb_act));
        return linears_.back()->forward(h);
    }

private:
    MlpConfig config_;
    Rng init_;
    std::unique_ptr<TimestepEmbedding<T>> time_;
    std::unique_ptr<Embedding<T>> class_emb_;
    std::vector<std::unique_ptr<Linear<T>>> linears_, emb_proj_;  // emb_proj_[k]: emb -> the input of layer k + 1
};

}  // namespace nn
DDPMKIT_END_NAMESPACE
