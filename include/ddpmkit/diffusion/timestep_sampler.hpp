// ddpmkit — how training draws timesteps: uniformly, or by importance sampling with
// p_t proportional to sqrt(E[L_t^2]) (Nichol & Dhariwal 2021, sec. 3.3), which lowers the
// variance of the L_vlb objective. Each draw comes with weights 1 / (T p_t) that keep the
// weighted loss an unbiased estimate of the uniform one.
#pragma once

#include <algorithm>
#include <cmath>
#include <deque>
#include <stdexcept>
#include <string>
#include <vector>

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/random.hpp"
#include "ddpmkit/core/tensor.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace diffusion {

struct TimestepDraw {
    Tensor<int64_t> t;  // [B]
    Tensor<float> weights;  // [B], 1 / (T p_t)
};

class TimestepSampler {
public:
    explicit TimestepSampler(int64_t num_steps) : T_(num_steps) {}
    virtual ~TimestepSampler() = default;
    // The probability of each timestep, summing to 1.
    virtual std::vector<double> probabilities() const = 0;
    // Tells the sampler the losses seen at these timesteps (importance sampling learns from them).
    virtual void update(const Tensor<int64_t>& t, const std::vector<double>& losses) {
        (void)t;
        (void)losses;
    }

    // What it has learned, for a checkpoint (undefined: nothing), and its restoration.
    virtual Tensor<double> state() const { return {}; }
    virtual void restore(const Tensor<double>& state) { (void)state; }

    TimestepDraw sample(int64_t batch, Rng& rng) const {
        const std::vector<double> p = probabilities();
        std::vector<double> cdf(p.size());
        double acc = 0.0;
        for (size_t i = 0; i < p.size(); ++i) cdf[i] = (acc += p[i]);
        std::vector<double> u(static_cast<size_t>(batch));
        rng.uniform(u.data(), batch);
        TimestepDraw d{Tensor<int64_t>({batch}), Tensor<float>({batch})};
        for (int64_t b = 0; b < batch; ++b) {  // inverse CDF
            const size_t i = std::min<size_t>(static_cast<size_t>(std::upper_bound(cdf.begin(), cdf.end(), u[static_cast<size_t>(b)] * acc) - cdf.begin()), p.size() - 1);
            d.t.data()[b] = static_cast<int64_t>(i);
            d.weights.data()[b] = static_cast<float>(1.0 / (static_cast<double>(T_) * p[i]));
        }
        return d;
    }
    int64_t num_steps() const { return T_; }

protected:
    int64_t T_;
};

class UniformSampler : public TimestepSampler {
public:
    using TimestepSampler::TimestepSampler;
    std::vector<double> probabilities() const override {
        return std::vector<double>(static_cast<size_t>(T_), 1.0 / static_cast<double>(T_));
    }
};

// Uniform until every timestep has `history` losses, then p_t proportional to
// sqrt(mean of its last `history` squared losses), mixed with `uniform_share` of the uniform
// (Nichol & Dhariwal 2021, sec. 3.3). Uniform while every recorded loss is 0.
class LossSecondMomentSampler : public TimestepSampler {
public:
    explicit LossSecondMomentSampler(int64_t num_steps, size_t history = 10, double uniform_share = 0.001)
        : TimestepSampler(num_steps), history_(history), uniform_share_(uniform_share), losses_(static_cast<size_t>(num_steps)) {}

    std::vector<double> probabilities() const override {
        std::vector<double> p(static_cast<size_t>(T_), 1.0 / static_cast<double>(T_));
        if (!warmed_up()) return p;
        double total = 0.0;
        for (size_t t = 0; t < p.size(); ++t) {
            double sq = 0.0;
            for (double l : losses_[t]) sq += l * l;
            total += (p[t] = std::sqrt(sq / static_cast<double>(losses_[t].size())));
        }
        if (!(total > 0.0)) return std::vector<double>(p.size(), 1.0 / static_cast<double>(T_));
        for (double& v : p) v = (1.0 - uniform_share_) * v / total + uniform_share_ / static_cast<double>(T_);
        return p;
    }
    void update(const Tensor<int64_t>& t, const std::vector<double>& losses) override {
        for (int64_t b = 0; b < t.numel(); ++b) {
            std::deque<double>& h = losses_[static_cast<size_t>(t.data()[b])];
            h.push_back(losses[static_cast<size_t>(b)]);
            if (h.size() > history_) h.pop_front();
        }
    }
    // [T, history + 1]: per timestep the number of losses kept, then the losses (oldest first).
    Tensor<double> state() const override {
        const int64_t H = static_cast<int64_t>(history_);
        Tensor<double> s({T_, H + 1});
        for (int64_t t = 0; t < T_; ++t) {
            const std::deque<double>& h = losses_[static_cast<size_t>(t)];
            s(t, 0) = static_cast<double>(h.size());
            for (size_t i = 0; i < h.size(); ++i) s(t, static_cast<int64_t>(i) + 1) = h[i];
        }
        return s;
    }
    void restore(const Tensor<double>& s) override {
        const int64_t H = static_cast<int64_t>(history_);
        if (s.shape() != Shape{T_, H + 1})
            throw std::runtime_error("the importance sampler's state is " + s.shape().str() + ", not [" + std::to_string(T_) + "," +
                                     std::to_string(H + 1) + "]");
        for (int64_t t = 0; t < T_; ++t) {
            const double n = s(t, 0);
            if (!(n >= 0 && n <= double(H) && n == std::floor(n)))
                throw std::runtime_error("the importance sampler's state counts " + std::to_string(n) + " losses at t = " + std::to_string(t));
            std::deque<double>& h = losses_[static_cast<size_t>(t)];
            h.clear();
            for (int64_t i = 0; i < static_cast<int64_t>(n); ++i) h.push_back(s(t, i + 1));
        }
    }
    bool warmed_up() const {
        for (const auto& h : losses_)
            if (h.size() < history_) return false;
        return true;
    }

private:
    size_t history_;
    double uniform_share_;
    std::vector<std::deque<double>> losses_;
};

}  // namespace diffusion
DDPMKIT_END_NAMESPACE
