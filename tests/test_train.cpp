// Tests of train/: optimizers against torch.optim (tests/data/make_optim_golden.py) and
// against updates written out by hand, clipping, the LR schedule, the EMA, saved state.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "ddpmkit/ddpmkit.hpp"
#include "helpers.hpp"

using namespace ddpmkit;

namespace {

const std::string kData = DDPMKIT_TEST_DATA_DIR;
const std::vector<std::string> kNames = {"conv_in.weight", "down.0.conv1.weight", "mid.1.qkv.weight", "conv_out.bias"};

// Two steps of `opt` from the golden parameters: the golden gradient, then half of it.
template <class Opt, class... Args>
double worst_error_against_torch(const std::string& key, Args... args) {
    const safetensors::File golden = safetensors::File::read(kData + "/golden_small.safetensors");
    const safetensors::File expected = safetensors::File::read(kData + "/optim_golden.safetensors");
    std::vector<VarF> params;
    for (const std::string& n : kNames) params.emplace_back(golden.get<float>(n), true);
    train::NamedParameters<float> named;
    for (size_t i = 0; i < params.size(); ++i) named.emplace_back(kNames[i], &params[i]);
    Opt opt(named, args...);
    for (float scale : {1.0f, 0.5f}) {
        for (size_t i = 0; i < params.size(); ++i) {
            params[i].grad() = golden.get<float>("grad." + kNames[i]);
            for (int64_t j = 0; j < params[i].numel(); ++j) params[i].grad().data()[j] *= scale;
        }
        opt.step();
    }
    double worst = 0;
    for (size_t i = 0; i < params.size(); ++i) {
        const TensorF want = expected.get<float>(key + "." + kNames[i]);
        double err = 0, mag = 0;
        for (int64_t j = 0; j < want.numel(); ++j) {
            err = std::max(err, std::abs(double(params[i].value().data()[j]) - want.data()[j]));
            mag = std::max(mag, std::abs(double(want.data()[j])));
        }
        worst = std::max(worst, err / mag);
    }
    return worst;
}

}  // namespace

TEST_CASE("train: Adam, AdamW and SGD steps on the golden gradients match torch.optim to 1e-6") {
    CHECK(worst_error_against_torch<train::Adam<float>>("adam", 1e-3, 0.9, 0.999, 1e-8, 0.01) <= 1e-6);
    CHECK(worst_error_against_torch<train::AdamW<float>>("adamw", 1e-3, 0.9, 0.999, 1e-8, 0.1) <= 1e-6);
    CHECK(worst_error_against_torch<train::SGD<float>>("sgd", 0.1, 0.9, 0.01) <= 1e-6);
}

TEST_CASE("train: Adam's first steps written out by hand") {
    // From m = v = 0 with a constant gradient g, each step moves p by lr g / (|g| + eps') in
    // the bias-corrected form: m_hat = g, v_hat = g^2, so p_t = p_0 - t lr sign(g) (up to eps).
    VarD p(TensorD({2}, {1.0, -2.0}), true);
    train::Adam<double> adam({{"p", &p}}, 0.01, 0.9, 0.999, 0.0);
    for (int t = 1; t <= 3; ++t) {
        p.grad() = TensorD({2}, {0.5, -4.0});
        adam.step();
        CHECK(p.value()(0) == doctest::Approx(1.0 - 0.01 * t).epsilon(1e-12));
        CHECK(p.value()(1) == doctest::Approx(-2.0 + 0.01 * t).epsilon(1e-12));
    }
}

TEST_CASE("train: SGD with momentum written out by hand") {
    VarD p(TensorD::scalar(1.0), true);
    train::SGD<double> sgd({{"p", &p}}, 0.1, 0.9);
    double w = 1.0, b = 0.0;
    for (int t = 0; t < 5; ++t) {
        p.grad() = TensorD::scalar(2.0 * p.item());  // gradient of p^2
        sgd.step();
        const double g = 2.0 * w;
        b = t == 0 ? g : 0.9 * b + g;
        w -= 0.1 * b;
        CHECK(p.item() == doctest::Approx(w).epsilon(1e-15));
    }
}

TEST_CASE("train: clip_grad_norm scales to the maximum norm") {
    VarD a(TensorD({2}, {0.0, 0.0}), true), b(TensorD::scalar(0.0), true);
    a.grad() = TensorD({2}, {3.0, 0.0});
    b.grad() = TensorD::scalar(4.0);
    CHECK(train::clip_grad_norm<double>({&a, &b}, 1.0) == doctest::Approx(5.0));
    CHECK(a.grad()(0) == doctest::Approx(0.6).epsilon(1e-6));
    CHECK(b.grad().item() == doctest::Approx(0.8).epsilon(1e-6));
    CHECK(train::clip_grad_norm<double>({&a, &b}, 10.0) == doctest::Approx(1.0).epsilon(1e-6));
    CHECK(b.grad().item() == doctest::Approx(0.8).epsilon(1e-6));  // under the limit: untouched
}

TEST_CASE("train: learning rate warmup and cosine decay") {
    const train::LrSchedule s{1e-3, 10, 110, 1e-5};
    CHECK(s.at(0) == doctest::Approx(1e-4));
    CHECK(s.at(9) == doctest::Approx(1e-3));
    CHECK(s.at(10) == doctest::Approx(1e-3));
    CHECK(s.at(60) == doctest::Approx(1e-5 + 0.5 * (1e-3 - 1e-5)));  // half way: cos = 0
    CHECK(s.at(110) == doctest::Approx(1e-5));
    CHECK(s.at(500) == doctest::Approx(1e-5));
    CHECK(train::LrSchedule{2e-4, 0, 0, 0}.at(1000) == 2e-4);
}

TEST_CASE("train: EMA follows e_n = p + (e_0 - p) prod d_k") {
    VarD p(TensorD::scalar(0.0), true);
    train::Ema<double> ema({{"p", &p}}, 0.9, false);
    p.value().fill(1.0);
    for (int n = 0; n < 5; ++n) ema.update();
    CHECK(ema.averaged(0).item() == doctest::Approx(1.0 - std::pow(0.9, 5)).epsilon(1e-14));
    train::Ema<double> warm({{"p", &p}}, 0.999, true);
    CHECK(warm.decay_at(0) == doctest::Approx(0.1));
    CHECK(warm.decay_at(90) == doctest::Approx(0.91));
    CHECK(warm.decay_at(100000) == 0.999);
    ema.swap();
    CHECK(p.item() == doctest::Approx(1.0 - std::pow(0.9, 5)));
    CHECK(ema.averaged(0).item() == 1.0);
}

TEST_CASE("train: optimizer and EMA state saved and loaded continue bitwise") {
    auto run = [](int steps_before, bool reload) {
        VarF w(TensorF({3}, {1.0f, -1.0f, 0.5f}), true);
        auto adam = std::make_unique<train::AdamW<float>>(train::NamedParameters<float>{{"w", &w}}, 0.05);
        auto ema = std::make_unique<train::Ema<float>>(train::NamedParameters<float>{{"w", &w}}, 0.99);
        auto step = [&] {
            w.zero_grad();
            sum(w * w * w).backward();
            adam->step();
            ema->update();
        };
        for (int i = 0; i < steps_before; ++i) step();
        if (reload) {
            safetensors::Writer out;
            adam->save_state(out, "opt.");
            ema->save_state(out, "ema.");
            out.write("train_state_test.safetensors");
            adam = std::make_unique<train::AdamW<float>>(train::NamedParameters<float>{{"w", &w}}, 0.05);
            ema = std::make_unique<train::Ema<float>>(train::NamedParameters<float>{{"w", &w}}, 0.99);
            const safetensors::File in = safetensors::File::read("train_state_test.safetensors");
            adam->load_state(in, "opt.");
            ema->load_state(in, "ema.");
            std::remove("train_state_test.safetensors");
        }
        for (int i = steps_before; i < 6; ++i) step();
        return std::vector<float>{w.value()(0), w.value()(1), w.value()(2), ema->averaged(0)(0), ema->averaged(0)(2)};
    };
    const std::vector<float> straight = run(3, false), resumed = run(3, true);
    CHECK(std::memcmp(straight.data(), resumed.data(), straight.size() * sizeof(float)) == 0);
}

TEST_CASE("train: TrainConfig metadata round trip, and what it refuses") {
    train::TrainConfig c;
    c.timesteps = 250;
    c.lr = 3e-4;
    c.seed = 42;
    c.flip = true;
    const std::map<std::string, std::string> m = c.to_metadata();
    CHECK(train::TrainConfig::from_metadata(m).to_metadata() == m);

    auto refusal = [](std::map<std::string, std::string> meta) {
        return test::message_of<std::invalid_argument>([&] { train::TrainConfig::from_metadata(meta); });
    };
    std::map<std::string, std::string> no_kind = m, classifier = m, junk = m, missing = m;
    no_kind.erase("kind");
    classifier["kind"] = "ddpmkit-classifier";
    junk["timesteps"] = "12abc";
    missing.erase("lr");
    CHECK(refusal(no_kind) == "not a ddpmkit training checkpoint (its metadata has no \"kind\")");
    CHECK(refusal(classifier) == "not a ddpmkit training checkpoint (its metadata has kind = \"ddpmkit-classifier\")");
    CHECK(refusal(junk) == "checkpoint metadata timesteps = \"12abc\" is not a number");
    CHECK(refusal(missing) == "checkpoint metadata has no \"lr\"");
}
