// ddpmkit — optimizers (SGD with momentum, Adam, AdamW), gradient-norm clipping, the
// learning-rate schedule (linear warmup, cosine decay) and the EMA of the parameters.
// Updates follow torch.optim's order of operations; their state saves to safetensors
// under "<prefix><parameter name>" so that a resumed run continues exactly.
#pragma once

#include <algorithm>
#include <cmath>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "ddpmkit/autograd/var.hpp"
#include "ddpmkit/config.hpp"
#include "ddpmkit/io/safetensors.hpp"
#include "ddpmkit/kernels/elementwise.hpp"
#include "ddpmkit/kernels/optimizer.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace train {

template <class T>
using NamedParameters = std::vector<std::pair<std::string, Var<T>*>>;

// Keeps one state tensor per parameter and per slot ("m", "v", "momentum"...).
template <class T>
class Optimizer {
public:
    explicit Optimizer(NamedParameters<T> params, double lr_) : lr(lr_), params_(std::move(params)) {}
    virtual ~Optimizer() = default;
    // One update from the parameters' current gradients; parameters without one are skipped.
    virtual void step() = 0;
    int64_t steps() const { return steps_; }

    void save_state(safetensors::Writer& w, const std::string& prefix) const {
        for (const auto& [slot, tensors] : state_)
            for (size_t i = 0; i < params_.size(); ++i) w.add(prefix + slot + "." + params_[i].first, tensors[i]);
        w.add(prefix + "steps", Tensor<int64_t>::scalar(steps_));
    }
    void load_state(const safetensors::File& f, const std::string& prefix) {
        for (auto& [slot, tensors] : state_)
            for (size_t i = 0; i < params_.size(); ++i) tensors[i].copy_from(f.get<T>(prefix + slot + "." + params_[i].first));
        steps_ = f.get<int64_t>(prefix + "steps").item();
    }

    double lr;

protected:
    // A zero tensor per parameter for a named slot of state.
    std::vector<Tensor<T>>& add_slot(const std::string& slot) {
        std::vector<Tensor<T>> tensors;
        for (auto& [name, p] : params_) tensors.emplace_back(p->shape());
        state_.emplace_back(slot, std::move(tensors));
        return state_.back().second;
    }
    NamedParameters<T> params_;
    int64_t steps_ = 0;

private:
    std::deque<std::pair<std::string, std::vector<Tensor<T>>>> state_;  // a deque: add_slot's references stay valid
};

// p -= lr b, b = momentum b + (g + wd p)  (b = g + wd p at the first step), as torch.optim.SGD.
template <class T>
class SGD : public Optimizer<T> {
public:
    SGD(NamedParameters<T> params, double lr, double momentum = 0.0, double weight_decay = 0.0)
        : Optimizer<T>(std::move(params), lr), momentum_(momentum), weight_decay_(weight_decay), buf_(this->add_slot("momentum")) {}
    void step() override {
        for (size_t i = 0; i < this->params_.size(); ++i) {
            Var<T>& p = *this->params_[i].second;
            if (!p.grad().defined()) continue;
            T* w = p.value().data();
            const T* g = p.grad().data();
            T* b = buf_[i].data();
            for (int64_t j = 0; j < p.numel(); ++j) {
                const T d = g[j] + static_cast<T>(weight_decay_) * w[j];
                b[j] = this->steps_ == 0 ? d : static_cast<T>(momentum_) * b[j] + d;
                w[j] -= static_cast<T>(this->lr) * (momentum_ != 0.0 ? b[j] : d);
            }
        }
        ++this->steps_;
    }

private:
    double momentum_, weight_decay_;
    std::vector<Tensor<T>>& buf_;
};

// Adam (Kingma & Ba 2015) with L2 weight decay added to the gradient, as torch.optim.Adam.
template <class T>
class Adam : public Optimizer<T> {
public:
    Adam(NamedParameters<T> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
         double weight_decay = 0.0)
        : Adam(std::move(params), lr, beta1, beta2, eps, weight_decay, false) {}
    void step() override {
        const kernels::AdamStep s{this->lr, beta1_, beta2_, eps_, weight_decay_, decoupled_, this->steps_ + 1};
        for (size_t i = 0; i < this->params_.size(); ++i) {
            Var<T>& p = *this->params_[i].second;
            if (p.grad().defined())
                kernels::adam_update(p.numel(), s, p.value().data(), p.grad().data(), m_[i].data(), v_[i].data());
        }
        ++this->steps_;
    }

protected:
    Adam(NamedParameters<T> params, double lr, double beta1, double beta2, double eps, double weight_decay, bool decoupled)
        : Optimizer<T>(std::move(params), lr),
          beta1_(beta1),
          beta2_(beta2),
          eps_(eps),
          weight_decay_(weight_decay),
          decoupled_(decoupled),
          m_(this->add_slot("m")),
          v_(this->add_slot("v")) {}

private:
    double beta1_, beta2_, eps_, weight_decay_;
    bool decoupled_;
    std::vector<Tensor<T>>&m_, &v_;
};

// AdamW (Loshchilov & Hutter 2019): weight decay decoupled from the gradient, p *= 1 - lr wd.
template <class T>
class AdamW : public Adam<T> {
public:
    AdamW(NamedParameters<T> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
          double weight_decay = 1e-2)
        : Adam<T>(std::move(params), lr, beta1, beta2, eps, weight_decay, true) {}
};

// Scales all gradients by max_norm / (norm + 1e-6) when their global L2 norm exceeds
// max_norm (torch.nn.utils.clip_grad_norm_). Returns the norm before clipping.
template <class T>
double clip_grad_norm(const std::vector<Var<T>*>& params, double max_norm) {
    double sq = 0.0;
    for (const Var<T>* p : params)
        if (p->grad().defined())
            for (int64_t i = 0; i < p->numel(); ++i) sq += double(p->grad().data()[i]) * double(p->grad().data()[i]);
    const double norm = std::sqrt(sq), coef = max_norm / (norm + 1e-6);
    if (coef < 1.0)
        for (Var<T>* p : params)
            if (p->grad().defined())
                for (int64_t i = 0; i < p->numel(); ++i) p->grad().data()[i] *= static_cast<T>(coef);
    return norm;
}

// Learning rate at a step: linear warmup from 0 over `warmup` steps, then constant, or
// (with total > warmup) a cosine decay to min_lr at step `total`.
struct LrSchedule {
    double base_lr = 1e-3;
    int64_t warmup = 0;
    int64_t total = 0;  // 0: no decay
    double min_lr = 0.0;

    double at(int64_t step) const {
        if (step < warmup) return base_lr * double(step + 1) / double(warmup);
        if (total <= warmup) return base_lr;
        const double progress = std::min(1.0, double(step - warmup) / double(total - warmup));
        return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + std::cos(3.14159265358979323846 * progress));
    }
};

// Exponential moving average of the parameters: e = d e + (1 - d) p. With warmup, the
// decay is min(d, (1 + n) / (10 + n)) at the n-th update, so early averages are not
// dominated by the random initialization.
template <class T>
class Ema {
public:
    Ema(NamedParameters<T> params, double decay, bool warmup = true)
        : decay_(decay), warmup_(warmup), params_(std::move(params)) {
        for (auto& [name, p] : params_) shadow_.push_back(p->value().clone());
    }
    double decay_at(int64_t n) const { return warmup_ ? std::min(decay_, (1.0 + double(n)) / (10.0 + double(n))) : decay_; }
    void update() {
        const T d = static_cast<T>(decay_at(updates_));
        for (size_t i = 0; i < params_.size(); ++i) {  // e += (1 - d) (p - e)
            T* e = shadow_[i].data();
            const T* p = params_[i].second->value().data();
            for (int64_t j = 0; j < shadow_[i].numel(); ++j) e[j] = d * e[j] + (T(1) - d) * p[j];
        }
        ++updates_;
    }
    // Exchanges the averaged and the live weights (call twice to swap back).
    void swap() {
        for (size_t i = 0; i < params_.size(); ++i) {
            Tensor<T>& live = params_[i].second->value();
            for (int64_t j = 0; j < live.numel(); ++j) std::swap(live.data()[j], shadow_[i].data()[j]);
        }
    }
    const Tensor<T>& averaged(size_t i) const { return shadow_[i]; }
    int64_t updates() const { return updates_; }

    void save_state(safetensors::Writer& w, const std::string& prefix) const {
        for (size_t i = 0; i < params_.size(); ++i) w.add(prefix + params_[i].first, shadow_[i]);
        w.add(prefix + "updates", Tensor<int64_t>::scalar(updates_));
    }
    void load_state(const safetensors::File& f, const std::string& prefix) {
        for (size_t i = 0; i < params_.size(); ++i) shadow_[i].copy_from(f.get<T>(prefix + params_[i].first));
        updates_ = f.get<int64_t>(prefix + "updates").item();
    }

private:
    double decay_;
    bool warmup_;
    NamedParameters<T> params_;
    std::vector<Tensor<T>> shadow_;
    int64_t updates_ = 0;
};

}  // namespace train
DDPMKIT_END_NAMESPACE
