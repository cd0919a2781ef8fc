// Tests of train/: optimizers against torch.optim (tests/data/make_optim_golden.py) and
// against updates written out by hand, clipping, the LR schedule, the EMA, saved state.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "ddpmkit/ddpmkit.hpp"
#include "helpers.hpp"
#include "tiny_training.hpp"

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
    // Checkpoints of older versions lack the keys added since: they read as the defaults.
    std::map<std::string, std::string> older = m;
    for (const char* key : {"timestep_sampler", "label_dropout", "data", "lr_decay", "cond_ch"}) CHECK(older.erase(key) == 1);
    const train::TrainConfig old = train::TrainConfig::from_metadata(older);
    CHECK(old.timestep_sampler_name() == "uniform");
    CHECK(old.lr_decay == 0);
    CHECK(old.data.empty());
    CHECK(old.model.cond_ch == 0);
    c.loss = diffusion::LossType::Kl;
    CHECK(c.timestep_sampler_name() == "importance");  // L_vlb needs it (Nichol & Dhariwal sec. 3.3)
}

namespace {

// The smallest diffusion model: eps_hat = w x_t + b, conditioned on nothing it needs but
// recording the labels it is given.
struct AffineModel : nn::DiffusionModule<float> {
    VarF w{TensorF({1}, {0.5f}), true}, b{TensorF({1}, {0.0f}), true};
    mutable std::vector<int64_t> seen_labels;
    AffineModel() {
        register_parameter("w", w);
        register_parameter("b", b);
    }
    VarF forward(const VarF& x, const Tensor<int64_t>&, const nn::Condition<float>& c) const override {
        if (c.labels.defined()) seen_labels.insert(seen_labels.end(), c.labels.data(), c.labels.data() + c.labels.numel());
        return x * w + b;
    }
};

// The same 16 images, all of class 3, batch after batch.
struct FixedSource : train::BatchSource {
    TensorF x0;
    FixedSource() {
        Rng rng(5);
        x0 = TensorF::rand({16, 1, 2, 2}, rng, -1, 1);
    }
    int64_t batch_size() const override { return 16; }
    train::Batch next(int64_t begin, int64_t end) override { return {x0.slice(begin, end), {Tensor<int64_t>(Shape{end - begin}, 3), {}}}; }
};

struct Recorder : train::Observer {
    std::vector<train::StepReport> reports;
    int starts = 0, ends = 0;
    void on_start(train::Trainer&) override { ++starts; }
    void on_step(train::Trainer&, const train::StepReport& r) override { reports.push_back(r); }
    void on_end(train::Trainer&) override { ++ends; }
};

}  // namespace

TEST_CASE("train: the Trainer trains any model with label dropout, a weighting, a cosine LR schedule and observers") {
    AffineModel model;
    FixedSource data;
    train::TrainerOptions o;
    o.label_dropout = 0.25;
    o.null_label = 9;
    o.weighting = [](const Tensor<int64_t>& t) { return TensorF(t.shape(), 2.0f); };
    o.lr = train::LrSchedule{0.05, 5, 40, 0.0};
    train::Trainer trainer(model, diffusion::Schedule::linear(100), data, o);
    auto recorder = std::make_shared<Recorder>();
    trainer.add_observer(recorder);
    trainer.run(50, 0);
    CHECK(trainer.step() == 50);
    CHECK(recorder->starts == 1);
    CHECK(recorder->ends == 1);
    REQUIRE(recorder->reports.size() == 50);
    for (size_t i = 0; i < 50; ++i) {
        const train::StepReport& r = recorder->reports[i];
        CHECK(r.step == int64_t(i) + 1);
        CHECK(r.lr == doctest::Approx(o.lr.at(int64_t(i))));        // warmup, then cosine to 0 at step 40
        CHECK(r.loss == doctest::Approx(2.0 * r.mse).epsilon(1e-5));  // weight 2 on every example's MSE
    }
    CHECK(recorder->reports[40].lr == 0.0);  // LrSchedule counts steps from 0: step index 40 is the 41st
    // 800 labels: a quarter became the null label 9, the rest stayed 3.
    REQUIRE(model.seen_labels.size() == 800);
    const double nulls = double(std::count(model.seen_labels.begin(), model.seen_labels.end(), 9)) / 800.0;
    CHECK(std::count(model.seen_labels.begin(), model.seen_labels.end(), 3) + std::count(model.seen_labels.begin(), model.seen_labels.end(), 9) == 800);
    CHECK(std::abs(nulls - 0.25) < 5 * std::sqrt(0.25 * 0.75 / 800));
    // It learned: x_t alone predicts eps with w near b_t / (a_t^2 var(x0) + b_t^2) > 0.5 on average.
    CHECK(recorder->reports.back().mse < recorder->reports.front().mse);
}

TEST_CASE("train: the Trainer stops before the update when the loss is not finite") {
    AffineModel model;
    model.w.value().fill(std::numeric_limits<float>::quiet_NaN());
    FixedSource data;
    train::Trainer trainer(model, diffusion::Schedule::linear(100), data, train::TrainerOptions{});
    CHECK(test::message_of<train::TrainingDiverged>([&] { trainer.run(3, 0); }) ==
          "training stopped: the loss became NaN at step 1, before the update");
    CHECK(trainer.step() == 0);
    CHECK(std::isnan(model.w.value()(0)));
    CHECK(model.b.value()(0) == 0.0f);  // no update reached the weights
}

TEST_CASE("train: with detect_anomaly the Trainer names the op that made the first NaN") {
    AffineModel model;
    model.w.value().fill(std::numeric_limits<float>::quiet_NaN());
    FixedSource data;
    train::TrainerOptions o;
    o.detect_anomaly = true;
    train::Trainer trainer(model, diffusion::Schedule::linear(100), data, o);
    const std::string message = test::message_of<train::TrainingDiverged>([&] { trainer.run(3, 0); });
    CHECK(message.rfind("training stopped: anomaly: the forward value of ", 0) == 0);
    INFO(message);
    CHECK(message.find("has NaN at element 0 (nearest parameter upstream: w) at step 1, before the update") != std::string::npos);
    CHECK(trainer.step() == 0);
}

TEST_CASE("train: the Trainer stops when an update makes a weight non-finite, naming the parameter") {
    AffineModel model;
    FixedSource data;
    train::TrainerOptions o;
    o.lr = train::LrSchedule{1e39, 0, 0, 0.0};  // past float's range: a finite gradient, an infinite step
    train::Trainer trainer(model, diffusion::Schedule::linear(100), data, o);
    auto recorder = std::make_shared<Recorder>();
    trainer.add_observer(recorder);
    const std::string message = test::message_of<train::TrainingDiverged>([&] { trainer.run(3, 0); });
    CHECK(message.rfind("training stopped: the update made parameter ", 0) == 0);
    CHECK(message.find(" at step 1") != std::string::npos);
    CHECK(trainer.step() == 0);
    CHECK(recorder->reports.empty());  // no observer (no checkpoint) saw the step
}

TEST_CASE("train: the importance sampler's state round-trips, and a wrong one is named") {
    diffusion::LossSecondMomentSampler a(4, 3), b(4, 3);
    for (int k = 0; k < 5; ++k) a.update(Tensor<int64_t>({4}, {0, 1, 2, 3}), {1.0 + k, 2.0, 3.0 * k, 0.5});
    CHECK(a.warmed_up());
    b.restore(a.state());
    CHECK(b.warmed_up());
    CHECK(b.probabilities() == a.probabilities());
    CHECK(a.state()(0, 0) == 3);  // history 3: the last three losses are kept
    CHECK(a.state()(0, 1) == 3.0);
    CHECK(test::message_of<std::runtime_error>([&] { b.restore(Tensor<double>({4, 2})); }) ==
          "the importance sampler's state is [4,2], not [4,4]");
}

TEST_CASE("train: a data set without labels trains an unconditional model; asking it for labels is named") {
    ImageDataset unlabelled;
    unlabelled.name = "noise";
    Rng rng(8);
    unlabelled.images = TensorF::rand({12, 1, 2, 2}, rng, -1, 1);
    DataLoader loader(unlabelled, 4, 0);
    CHECK(!loader.next().y.defined());
    train::LoaderSource source(DataLoader(unlabelled, 4, 0), false);
    CHECK(source.next(0, 4).cond.empty());
    AffineModel model;
    train::Trainer trainer(model, diffusion::Schedule::linear(50), source, train::TrainerOptions{});
    trainer.run(3, 0);
    CHECK(trainer.step() == 3);
    CHECK(model.seen_labels.empty());
    CHECK(test::message_of<std::invalid_argument>([&] { train::LoaderSource(DataLoader(unlabelled, 4, 0), true); }) ==
          "LoaderSource: noise has no class labels");
}

TEST_CASE("train: micro-batches take the step of the whole batch; the batch must divide among the processes") {
    train::TrainerOptions o;
    const test::TinyRun whole = test::train_tiny_unet(o, 3);
    for (int64_t k : {2, 8}) {
        o.micro_batches = k;
        const test::TinyRun parts = test::train_tiny_unet(o, 3);
        CAPTURE(k);
        // The same examples, timesteps and noise; only the order of float additions differs.
        const test::RunDistance d = test::distance(whole, parts);
        CHECK(d.weights < test::kWeightTolerance);
        CHECK(d.grad_norms < test::kGradNormTolerance);
        CHECK(d.weights > 0.0);  // summed in another order: equal bits would mean the parts were not taken
    }
    // With dropout, each part takes its rows' part of the whole batch's masks.
    o.micro_batches = 1;
    const test::TinyRun whole_dropout = test::train_tiny_unet(o, 3, 0.3);
    CHECK(test::distance(whole, whole_dropout).weights > 1e-3);  // the masks matter
    o.micro_batches = 4;
    const test::RunDistance dd = test::distance(whole_dropout, test::train_tiny_unet(o, 3, 0.3));
    CHECK(dd.weights < test::kWeightTolerance);
    CHECK(dd.grad_norms < test::kGradNormTolerance);
    o.micro_batches = 9;
    CHECK(test::message_of<std::invalid_argument>([&] { test::train_tiny_unet(o, 1); }) ==
          "Trainer: 9 micro-batches for 8 examples per process");
    // Three processes (a group that is never asked for a collective: the check comes first).
    struct ThreeProcesses : dist::Group {
        int rank() const override { return 0; }
        int size() const override { return 3; }
        void all_reduce_sum(float*, int64_t) override { FAIL("no collective expected"); }
        void all_reduce_sum(double*, int64_t) override { FAIL("no collective expected"); }
        void broadcast(void*, int64_t, int) override { FAIL("no collective expected"); }
        void all_gather(const void*, int64_t, void*) override { FAIL("no collective expected"); }
    } three;
    o.micro_batches = 1;
    o.group = &three;
    CHECK(test::message_of<std::invalid_argument>([&] { test::train_tiny_unet(o, 1); }) ==
          "Trainer: the batch of 8 does not divide among 3 processes");
}
