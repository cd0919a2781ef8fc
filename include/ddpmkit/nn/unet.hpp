// ddpmkit — the DDPM U-Net (Ho et al. 2020, appendix B), exactly as written down in the
// reference (docs/unet.md): the same blocks, order and parameter names as
// the PyTorch twin, so states load in both directions. Shape letters: B batch,
// C channels, R side length, E = 4 ch the embedding width.
#pragma once

#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "ddpmkit/autograd/nn_ops.hpp"
#include "ddpmkit/autograd/ops.hpp"
#include "ddpmkit/config.hpp"
#include "ddpmkit/nn/condition.hpp"
#include "ddpmkit/nn/layers.hpp"
#include "ddpmkit/nn/module.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace nn {

// h = conv3x3(SiLU(GN(x))); h += Linear(SiLU(emb)) over H, W; h = conv3x3(dropout(SiLU(GN(h))));
// out = skip(x) + h, skip a 1x1 conv when the channel count changes.
template <class T>
class ResBlock : public Module<T> {
public:
    GroupNorm<T> norm1;
    Conv2d<T> conv1;
    Linear<T> temb;
    GroupNorm<T> norm2;
    Dropout<T> drop;
    Conv2d<T> conv2;
    std::unique_ptr<Conv2d<T>> skip;  // null: identity

    ResBlock(int64_t cin, int64_t cout, int64_t emb_dim, int64_t groups, double dropout_p, Rng& init, Rng& noise)
        : norm1(groups, cin),
          conv1(cin, cout, 3, 1, 1, init),
          temb(emb_dim, cout, init),
          norm2(groups, cout),
          drop(dropout_p, noise),
          conv2(cout, cout, 3, 1, 1, init) {
        this->register_module("norm1", norm1);
        this->register_module("conv1", conv1);
        this->register_module("temb", temb);
        this->register_module("norm2", norm2);
        this->register_module("drop", drop);
        this->register_module("conv2", conv2);
        if (cin != cout) skip = std::make_unique<Conv2d<T>>(cin, cout, 1, 1, 0, init);
        if (skip) this->register_module("skip", *skip);
    }
    // emb_act = SiLU(emb) [B, E], computed once per forward by the U-Net.
    Var<T> forward(const Var<T>& x, const Var<T>& emb_act) const {
        // Norm, SiLU and convolution are one op each (norm_silu_conv): the activations are
        // never stored, so a block keeps its input, h, its output and a 1x1 skip's output.
        const Var<T> h = norm_silu_conv(norm1, conv1, x);
        // h + temb(emb_act) at every position, added inside norm2 (no tensor of the sum); the
        // residual sum made as the output is written
        const Var<T> shift = temb.forward(emb_act), residual = skip ? skip->forward(x) : x;
        if (!drop.active()) return norm_silu_conv(norm2, conv2, h, shift, residual);
        const Var<T> a2 = norm2.forward_silu(h, shift);  // dropout comes between SiLU and conv2
        const Var<T> out = conv2.forward(drop.forward(a2), residual);
        a2.release();
        return out;
    }
};

struct UNetConfig {
    int64_t in_ch = 1;
    int64_t out_ch = 0;  // 0: in_ch (twice in_ch for a learned variance)
    int64_t ch = 32;
    std::vector<int64_t> mult = {1, 2, 2};
    int64_t blocks = 2;
    std::vector<int64_t> attn = {7};  // side lengths that get self-attention
    int64_t groups = 8;
    int64_t res = 28;
    double dropout = 0.0;
    int64_t num_classes = 0;  // > 0: class-conditional, with a null class for guidance
    int64_t cond_ch = 0;      // > 0: an image of cond_ch channels is concatenated to x (SR3)
    int64_t heads = 1;

    int64_t out_channels() const { return out_ch > 0 ? out_ch : in_ch; }
    ConditionSpec condition() const { return {num_classes, cond_ch}; }

    // Limits far beyond any model this library trains: a setting past one comes from a corrupt
    // file or a mistyped flag, and is refused before anything is allocated.
    static constexpr int64_t kMaxChannels = 4096;       // ch x mult, and heads
    static constexpr int64_t kMaxImageChannels = 1024;  // in_ch, out_ch, cond_ch
    static constexpr int64_t kMaxBlocks = 64, kMaxLevels = 8, kMaxRes = 4096, kMaxClasses = 1000000;
    static constexpr double kMaxParameters = 1e9;

    // Throws std::invalid_argument naming the first setting that cannot work.
    void validate() const {
        auto fail = [](const std::string& what) { throw std::invalid_argument("UNetConfig: " + what); };
        if (in_ch < 1 || out_ch < 0 || ch < 1 || blocks < 1 || groups < 1 || res < 1 || heads < 1 || num_classes < 0 || cond_ch < 0)
            fail("in_ch, ch, blocks, groups, res, heads must be positive; out_ch, num_classes and cond_ch not negative");
        auto at_most = [&](const char* name, int64_t value, int64_t limit) {
            if (value > limit) fail(std::string(name) + " " + std::to_string(value) + " is above the limit of " + std::to_string(limit));
        };
        at_most("in_ch", in_ch, kMaxImageChannels), at_most("out_ch", out_ch, kMaxImageChannels);
        at_most("cond_ch", cond_ch, kMaxImageChannels), at_most("ch", ch, kMaxChannels), at_most("heads", heads, kMaxChannels);
        at_most("blocks", blocks, kMaxBlocks), at_most("res", res, kMaxRes), at_most("num_classes", num_classes, kMaxClasses);
        if (mult.empty()) fail("mult is empty");
        at_most("the number of levels (mult's length)", static_cast<int64_t>(mult.size()), kMaxLevels);
        if (dropout < 0.0 || dropout >= 1.0) fail("dropout " + std::to_string(dropout) + " is outside [0, 1)");
        for (int64_t m : mult) {
            if (m < 1) fail("mult has a non-positive entry");
            if (m > kMaxChannels / ch)
                fail("ch x mult = " + std::to_string(ch) + " x " + std::to_string(m) + " is above the limit of " +
                     std::to_string(kMaxChannels) + " channels");
            if ((ch * m) % groups != 0)
                fail(std::to_string(ch * m) + " channels do not split into " + std::to_string(groups) + " groups");
        }
        for (int64_t side : attn)
            if (side < 1) fail("attn has a non-positive side length " + std::to_string(side));
        // An upper bound of the parameters (in double: no overflow): per level, its ResBlocks'
        // two 3x3 convolutions at twice the channels, the embeddings, the stem and the head.
        double bound = double(num_classes + 1) * 4.0 * double(ch) + 9.0 * double(in_ch + cond_ch + out_channels()) * double(ch);
        for (int64_t m : mult) bound += double(3 * blocks + 3) * 2.0 * 9.0 * 4.0 * double(ch * m) * double(ch * m);
        if (bound > kMaxParameters)
            fail("a model of up to " + std::to_string(static_cast<long long>(bound)) + " parameters is above the limit of 10^9");
        const int64_t halvings = static_cast<int64_t>(mult.size()) - 1;  // each level but the last halves the side
        if (halvings > 30 || res % (int64_t(1) << halvings) != 0)
            fail("res " + std::to_string(res) + " is not divisible by 2^" + std::to_string(halvings) + " (one halving per level)");
        if (ch % 2 != 0) fail("ch " + std::to_string(ch) + " is odd (the timestep embedding needs an even width)");
    }

    // As key -> string metadata (the keys of torch_unet.py's golden files, plus ours).
    std::map<std::string, std::string> to_metadata() const {
        return {{"in_ch", std::to_string(in_ch)}, {"out_ch", std::to_string(out_channels())}, {"ch", std::to_string(ch)},
                {"mult", join(mult)},            {"blocks", std::to_string(blocks)},        {"attn", join(attn)},
                {"groups", std::to_string(groups)}, {"res", std::to_string(res)},           {"dropout", std::to_string(dropout)},
                {"num_classes", std::to_string(num_classes)}, {"cond_ch", std::to_string(cond_ch)}, {"heads", std::to_string(heads)}};
    }
    // Reads the keys that are present; the others keep their defaults.
    static UNetConfig from_metadata(const std::map<std::string, std::string>& meta) {
        UNetConfig c;
        auto get = [&](const char* key, auto& field) {
            const auto it = meta.find(key);
            if (it == meta.end()) return;
            try {
                parse(it->second, field);
            } catch (const std::exception&) {
                throw std::invalid_argument(std::string("UNetConfig: metadata ") + key + " = \"" + it->second +
                                            "\" is not a valid value");
            }
        };
        get("in_ch", c.in_ch);
        get("out_ch", c.out_ch);
        get("ch", c.ch);
        get("mult", c.mult);
        get("blocks", c.blocks);
        get("attn", c.attn);
        get("groups", c.groups);
        get("res", c.res);
        get("dropout", c.dropout);
        get("num_classes", c.num_classes);
        get("cond_ch", c.cond_ch);
        get("heads", c.heads);
        c.validate();
        return c;
    }

private:
    static std::string join(const std::vector<int64_t>& v) {
        std::string s;
        for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
        return s;
    }
    static void parse(const std::string& s, int64_t& out) {
        size_t used = 0;
        out = std::stoll(s, &used);
        if (used != s.size()) throw std::invalid_argument(s);
    }
    static void parse(const std::string& s, double& out) {
        size_t used = 0;
        out = std::stod(s, &used);
        if (used != s.size()) throw std::invalid_argument(s);
    }
    static void parse(const std::string& s, std::vector<int64_t>& out) {
        out.clear();
        std::stringstream ss(s);
        std::string item;
        while (std::getline(ss, item, ',')) {
            int64_t v = 0;
            parse(item, v);
            out.push_back(v);
        }
    }
};

template <class T>
class UNet : public DiffusionModule<T> {
public:
    explicit UNet(const UNetConfig& config, uint64_t seed = 0) : config_(config), init_(seed), noise_(seed ^ 0x5eedULL) {
        config_.validate();
        const int64_t ch = config_.ch, E = 4 * ch, G = config_.groups;
        time_ = std::make_unique<TimestepEmbedding<T>>(ch, E, init_);
        this->register_module("time", *time_);
        conv_in_ = std::make_unique<Conv2d<T>>(config_.in_ch + config_.cond_ch, ch, 3, 1, 1, init_);
        this->register_module("conv_in", *conv_in_);
        this->register_module("down", down_);
        this->register_module("mid", mid_);
        this->register_module("up", up_);

        std::vector<int64_t> skips = {ch};
        int64_t cur = ch, r = config_.res;
        const size_t levels = config_.mult.size();
        for (size_t i = 0; i < levels; ++i) {
            for (int64_t b = 0; b < config_.blocks; ++b) {
                add_res(down_plan_, down_, cur, ch * config_.mult[i]);
                cur = ch * config_.mult[i];
                if (has_attn(r)) add_attn(down_plan_, down_, cur);
                skips.push_back(cur);
            }
            if (i + 1 != levels) {
                down_plan_.push_back({Kind::Down, &down_.push_back(std::make_unique<Conv2d<T>>(cur, cur, 3, 2, 1, init_))});
                skips.push_back(cur);
                r /= 2;
            }
        }
        add_res(mid_plan_, mid_, cur, cur);
        add_attn(mid_plan_, mid_, cur);
        add_res(mid_plan_, mid_, cur, cur);
        for (size_t i = levels; i-- > 0;) {
            for (int64_t b = 0; b <= config_.blocks; ++b) {
                add_res(up_plan_, up_, cur + skips.back(), ch * config_.mult[i]);
                skips.pop_back();
                cur = ch * config_.mult[i];
                if (has_attn(r)) add_attn(up_plan_, up_, cur);
            }
            if (i != 0) {
                up_plan_.push_back({Kind::Up, &up_.push_back(std::make_unique<Upsample<T>>(cur, init_))});
                r *= 2;
            }
        }
        norm_out_ = std::make_unique<GroupNorm<T>>(G, cur);
        conv_out_ = std::make_unique<Conv2d<T>>(cur, config_.out_channels(), 3, 1, 1, init_);
        this->register_module("norm_out", *norm_out_);
        this->register_module("conv_out", *conv_out_);
        if (config_.num_classes > 0) {  // row num_classes is the null class of classifier-free guidance
            class_emb_ = std::make_unique<Embedding<T>>(config_.num_classes + 1, E, init_);
            this->register_module("class_emb", *class_emb_);
        }
    }

    const UNetConfig& config() const { return config_; }
    Rng* dropout_rng() override { return &noise_; }

    // x [B, in_ch, res, res], integer timesteps t [B] and what the config says the model is
    // conditioned on: labels [B] (label num_classes means "no class"), an image
    // [B, cond_ch, res, res] -> [B, out_ch, res, res].
    Var<T> forward(const Var<T>& x, const Tensor<int64_t>& t, const Condition<T>& c = {}) const override {
        const Shape& s = x.shape();
        if (s.rank() != 4 || s[1] != config_.in_ch || s[2] != config_.res || s[3] != config_.res)
            throw shape_error("UNet::forward", s,
                              "is not [B, " + std::to_string(config_.in_ch) + ", " + std::to_string(config_.res) + ", " +
                                  std::to_string(config_.res) + "]");
        if (t.numel() != s[0])
            throw shape_error("UNet::forward", s, t.shape(), "(x, t): one timestep per image is needed");
        config_.condition().check("UNet::forward", c, s[0], s[2], s[3]);
        Var<T> emb = time_->forward(t);
        if (c.labels.defined()) emb = emb + class_emb_->forward(c.labels);
        const Var<T> emb_act = silu(emb);  // SiLU(emb), shared by every ResBlock
        Var<T> h = conv_in_->forward(c.image.defined() ? concat<T>({x, Var<T>(c.image)}, 1) : x);
        std::vector<Var<T>> hs = {h};
        for (const Step& step : down_plan_) {
            h = run(step, h, emb_act);
            if (step.kind == Kind::Attn)
                hs.back() = h;  // attention refines the block's output that is kept
            else
                hs.push_back(h);
        }
        for (const Step& step : mid_plan_) h = run(step, h, emb_act);
        for (const Step& step : up_plan_) {
            if (step.kind == Kind::Res) {
                const Var<T> joined = concat<T>({h, hs.back()}, 1);
                hs.pop_back();
                h = run(step, joined, emb_act);
                joined.release();  // a copy of h and the skip, both kept: remade in the backward pass
            } else {
                h = run(step, h, emb_act);
            }
        }
        return norm_silu_conv(*norm_out_, *conv_out_, h);
    }

private:
    enum class Kind { Res, Attn, Down, Up };
    struct Step {
        Kind kind;
        Module<T>* layer;
    };

    bool has_attn(int64_t r) const { return std::find(config_.attn.begin(), config_.attn.end(), r) != config_.attn.end(); }
    void add_res(std::vector<Step>& plan, ModuleList<T>& list, int64_t cin, int64_t cout) {
        plan.push_back({Kind::Res, &list.push_back(std::make_unique<ResBlock<T>>(cin, cout, 4 * config_.ch, config_.groups,
                                                                                config_.dropout, init_, noise_))});
    }
    void add_attn(std::vector<Step>& plan, ModuleList<T>& list, int64_t c) {
        plan.push_back({Kind::Attn, &list.push_back(std::make_unique<Attention<T>>(c, config_.groups, init_, config_.heads))});
    }
    static Var<T> run(const Step& step, const Var<T>& h, const Var<T>& emb_act) {
        switch (step.kind) {
            case Kind::Res: return static_cast<ResBlock<T>*>(step.layer)->forward(h, emb_act);
            case Kind::Attn: return static_cast<Attention<T>*>(step.layer)->forward(h);
            case Kind::Down: return static_cast<Conv2d<T>*>(step.layer)->forward(h);
            case Kind::Up: return static_cast<Upsample<T>*>(step.layer)->forward(h);
        }
        return h;
    }

    UNetConfig config_;
    Rng init_, noise_;
    std::unique_ptr<TimestepEmbedding<T>> time_;
    std::unique_ptr<Conv2d<T>> conv_in_;
    ModuleList<T> down_, mid_, up_;
    std::vector<Step> down_plan_, mid_plan_, up_plan_;
    std::unique_ptr<GroupNorm<T>> norm_out_;
    std::unique_ptr<Conv2d<T>> conv_out_;
    std::unique_ptr<Embedding<T>> class_emb_;
};

}  // namespace nn
DDPMKIT_END_NAMESPACE
