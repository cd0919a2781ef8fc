// Tests of nn/: every layer's gradient in double, conv against a direct sum, the U-Net's
// names and size, the golden comparison against PyTorch, save/load.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>
#include <vector>

#include "ddpmkit/ddpmkit.hpp"
#include "helpers.hpp"
#include "golden.hpp"

using namespace ddpmkit;
using test::check_gradients;
using test::message_of;
using Inputs = std::vector<VarD>;

namespace {

VarD leaf(const Shape& s, uint64_t seed) {
    Rng rng(seed);
    return VarD(TensorD::randn(s, rng), true);
}


const std::string kGolden = std::string(DDPMKIT_TEST_DATA_DIR) + "/golden_small.safetensors";

}  // namespace

TEST_CASE("nn: gradcheck of linear, with and without bias") {
    check_gradients([](const Inputs& v) { return linear(v[0], v[1], v[2]); }, {leaf({3, 5}, 1), leaf({4, 5}, 2), leaf({4}, 3)});
    check_gradients([](const Inputs& v) { return linear(v[0], v[1], VarD()); }, {leaf({3, 5}, 1), leaf({4, 5}, 2)});
}

TEST_CASE("nn: gradcheck of conv2d for every kernel, stride and padding of the U-Net") {
    struct Case {
        int64_t k, stride, pad, H, W;
    };
    for (const Case& c : {Case{3, 1, 1, 5, 6}, Case{3, 2, 1, 6, 6}, Case{1, 1, 0, 4, 3}, Case{2, 2, 0, 5, 4}, Case{3, 1, 0, 4, 5}}) {
        INFO("k " << c.k << " stride " << c.stride << " pad " << c.pad);
        check_gradients([&](const Inputs& v) { return conv2d(v[0], v[1], v[2], c.stride, c.pad); },
                        {leaf({2, 3, c.H, c.W}, 1), leaf({4, 3, c.k, c.k}, 2), leaf({4}, 3)});
    }
    // With a residual added as the output is written: d residual = dy.
    check_gradients([](const Inputs& v) { return conv2d(v[0], v[1], v[2], 1, 1, v[3]); },
                    {leaf({2, 3, 5, 6}, 1), leaf({4, 3, 3, 3}, 2), leaf({4}, 3), leaf({2, 4, 5, 6}, 4)});
    // The input its own residual: the input gradient and dy summed into one gradient.
    check_gradients([](const Inputs& v) { return conv2d(v[0], v[1], v[2], 1, 1, v[0]); },
                    {leaf({2, 4, 5, 6}, 1), leaf({4, 4, 3, 3}, 2), leaf({4}, 3)});
    CHECK_THROWS_AS(conv2d(leaf({2, 3, 5, 6}, 1), leaf({4, 3, 3, 3}, 2), VarD(), 1, 1, leaf({2, 4, 5, 5}, 4)), ShapeError);
}

TEST_CASE("nn: conv2d equals the direct sum of its definition") {
    Rng rng(1);
    const TensorD x = TensorD::randn({2, 3, 7, 6}, rng), w = TensorD::randn({5, 3, 3, 3}, rng), b = TensorD::randn({5}, rng);
    for (int64_t stride : {1, 2}) {
        const TensorD y = conv2d(VarD(x), VarD(w), VarD(b), stride, 1).value();
        for (int64_t n = 0; n < 2; ++n)
            for (int64_t o = 0; o < 5; ++o)
                for (int64_t i = 0; i < y.size(2); ++i)
                    for (int64_t j = 0; j < y.size(3); ++j) {
                        double s = b(o);  // y[n,o,i,j] = b[o] + sum_c,p,q w[o,c,p,q] x[n,c,i s - 1 + p, j s - 1 + q]
                        for (int64_t c = 0; c < 3; ++c)
                            for (int64_t p = 0; p < 3; ++p)
                                for (int64_t q = 0; q < 3; ++q) {
                                    const int64_t r = i * stride - 1 + p, s2 = j * stride - 1 + q;
                                    if (r >= 0 && r < 7 && s2 >= 0 && s2 < 6) s += w(o, c, p, q) * x(n, c, r, s2);
                                }
                        REQUIRE(y(n, o, i, j) == doctest::Approx(s).epsilon(1e-12));
                    }
    }
}

TEST_CASE("nn: gradcheck of group_norm, upsample, embedding") {
    for (int64_t groups : {1, 2, 4}) {
        INFO("groups " << groups);
        check_gradients([&](const Inputs& v) { return group_norm(v[0], v[1], v[2], groups); },
                        {leaf({2, 4, 3, 3}, 1), leaf({4}, 2), leaf({4}, 3)});
    }
    check_gradients([](const Inputs& v) { return upsample_nearest2x(v[0]); }, {leaf({2, 3, 3, 2}, 4)});
    const Tensor<int64_t> ids({4}, {2, 0, 2, 1});
    check_gradients([&](const Inputs& v) { return embedding(v[0], ids); }, {leaf({3, 5}, 5)});
}

TEST_CASE("nn: group_norm normalizes each group to mean 0 and variance 1") {
    Rng rng(2);
    const VarD x(TensorD::randn({2, 6, 4, 4}, rng, 3.0, 2.0));
    const TensorD y = group_norm(x, VarD(TensorD::ones({6})), VarD(TensorD::zeros({6})), 3, 0.0).value();
    for (int64_t n = 0; n < 2; ++n)
        for (int64_t g = 0; g < 3; ++g) {
            double s = 0, ss = 0;
            for (int64_t i = 0; i < 32; ++i) s += y.data()[(n * 3 + g) * 32 + i];
            for (int64_t i = 0; i < 32; ++i) ss += std::pow(y.data()[(n * 3 + g) * 32 + i] - s / 32, 2);
            CHECK(s / 32 == doctest::Approx(0.0).epsilon(1e-12).scale(1.0));
            CHECK(ss / 32 == doctest::Approx(1.0).epsilon(1e-12));
        }
}

TEST_CASE("nn: the attention op equals softmax(q^T k scale) v^T composed of ops, and its gradient checks") {
    const VarD q = leaf({3, 4, 5}, 1), k = leaf({3, 4, 5}, 2), v = leaf({3, 4, 5}, 3);
    const double scale = 0.5;
    const VarD fused = attention(q, k, v, scale);
    const VarD composed = matmul(v, transpose(softmax(matmul(transpose(q, 1, 2), k) * scale, -1), 1, 2));
    for (int64_t i = 0; i < fused.numel(); ++i) CHECK(fused.value().data()[i] == doctest::Approx(composed.value().data()[i]).epsilon(1e-12));
    check_gradients([&](const Inputs& x) { return attention(x[0], x[1], x[2], scale); }, {q, k, v});
    CHECK(message_of<ShapeError>([&] { attention(q, k, leaf({3, 4, 6}, 4), scale); }).find("attention") != std::string::npos);
}

TEST_CASE("nn: gradcheck of the attention, ResBlock and timestep-embedding modules") {
    Rng rng(3);
    for (int64_t heads : {1, 2}) {
        nn::Attention<double> attn(4, 2, rng, heads);
        auto params = attn.parameters();
        INFO("heads " << heads);
        check_gradients([&](const Inputs& v) { return attn.forward(v[0]); }, {leaf({2, 4, 3, 2}, 1), *params[2]});
    }
    Rng noise(4);
    for (int64_t cout : {4, 6}) {
        nn::ResBlock<double> block(4, cout, 8, 2, 0.0, rng, noise);
        INFO("cout " << cout);
        auto params = block.parameters();
        check_gradients([&](const Inputs& v) { return block.forward(v[0], v[1]); },
                        {leaf({2, 4, 3, 3}, 2), leaf({2, 8}, 3), *params[1], *params[3]});
    }
    nn::TimestepEmbedding<double> time(6, 8, rng);
    const Tensor<int64_t> t({3}, {0, 17, 999});
    check_gradients([&](const Inputs&) { return time.forward(t); }, {time.fc1.weight, time.fc2.bias});
}

TEST_CASE("nn: gradcheck of a tiny U-Net, class-conditional, with attention at two resolutions") {
    nn::UNetConfig c;
    c.ch = 4;
    c.mult = {1, 2};
    c.blocks = 1;
    c.attn = {4, 8};
    c.groups = 2;
    c.res = 8;
    c.num_classes = 3;
    nn::UNet<double> model(c, 5);
    const Tensor<int64_t> t({2}, {3, 500}), y({2}, {1, 3});
    auto named = model.named_parameters();
    std::vector<VarD> checked = {leaf({2, 1, 8, 8}, 1)};
    for (auto& [name, p] : named)
        if (name == "conv_in.weight" || name == "down.1.qkv.weight" || name == "mid.0.temb.weight" || name == "up.4.1.weight" ||
            name == "class_emb.weight" || name == "conv_out.bias")
            checked.push_back(*p);
    CHECK(checked.size() == 7);
    check_gradients([&](const Inputs& v) { return model.forward(v[0], t, {y, {}}); }, checked);
}

TEST_CASE("nn: gradcheck of the MLP denoiser for vectors, class-conditional; its shape and condition errors") {
    nn::MlpConfig c;
    c.dim = 3;
    c.hidden = 8;
    c.layers = 3;
    c.emb = 6;
    c.num_classes = 2;
    nn::MlpDenoiser<double> model(c, 4);
    // The time embedding's 2 linears, the class embedding, 3 linears and 2 projections of the embedding.
    CHECK(model.named_parameters().size() == 2 * 2 + 1 + 3 * 2 + 2 * 2);
    const Tensor<int64_t> t({2}, {3, 700}), y({2}, {1, 2});
    std::vector<VarD> checked = {leaf({2, 3}, 1)};
    for (auto& [name, p] : model.named_parameters())
        if (name == "linear0.weight" || name == "class_emb.weight" || name == "time.2.bias" || name == "linear2.bias") checked.push_back(*p);
    CHECK(checked.size() == 5);
    check_gradients([&](const Inputs& v) { return model.forward(v[0], t, {y, {}}); }, checked);

    CHECK(model.forward(VarD(TensorD({2, 3})), t, {y, {}}).shape() == Shape{2, 3});
    CHECK(message_of<std::exception>([&] { model.forward(VarD(TensorD({2, 4})), t, {y, {}}); }).find("is not [B, 3]") != std::string::npos);
    CHECK(message_of<std::exception>([&] { model.forward(VarD(TensorD({2, 3})), t); }).find("needs labels") != std::string::npos);
    CHECK(message_of<std::exception>([&] { nn::MlpDenoiser<double>(nn::MlpConfig{2, 8, 1, 6, 0}, 0); }).find("layers >= 2") != std::string::npos);
}

TEST_CASE("nn: gradcheck of a tiny U-Net conditioned on an image concatenated to x, and on labels") {
    nn::UNetConfig c;
    c.ch = 4;
    c.mult = {1, 2};
    c.blocks = 1;
    c.attn = {};
    c.groups = 2;
    c.res = 4;
    c.cond_ch = 2;
    c.num_classes = 2;
    nn::UNet<double> model(c, 6);
    for (const auto& [name, param] : model.named_parameters())
        if (name == "conv_in.weight") CHECK(param->shape() == Shape{4, 3, 3, 3});  // x and the image, 1 + 2 channels
    const Tensor<int64_t> t({2}, {7, 300}), y({2}, {0, 2});
    const VarD image = leaf({2, 2, 4, 4}, 3);
    std::vector<VarD> checked = {leaf({2, 1, 4, 4}, 2)};
    for (auto& [name, param] : model.named_parameters())
        if (name == "conv_in.weight" || name == "class_emb.weight") checked.push_back(*param);
    check_gradients([&](const Inputs& v) { return model.forward(v[0], t, {y, image.value()}); }, checked);
    // The image is an input beside x (a constant to the graph): the output changes with it, and
    // label 2 (no class) differs from label 0.
    const VarD x = leaf({2, 1, 4, 4}, 2);
    const TensorD base = model.forward(x, t, {y, image.value()}).value();
    const TensorD other_image = model.forward(x, t, {y, (image.value() * 2.0)}).value();
    const TensorD other_label = model.forward(x, t, {Tensor<int64_t>({2}, {0, 0}), image.value()}).value();
    double image_gap = 0, label_gap = 0;
    for (int64_t i = 16; i < 32; ++i) {  // the second image
        image_gap = std::max(image_gap, std::abs(base.data()[i] - other_image.data()[i]));
        label_gap = std::max(label_gap, std::abs(base.data()[i] - other_label.data()[i]));
    }
    CHECK(image_gap > 1e-6);
    CHECK(label_gap > 1e-6);
    // A conditional model requires what its config names, in the right shape and range.
    auto error = [&](const nn::Condition<double>& cond) { return message_of<std::exception>([&] { model.forward(x, t, cond); }); };
    CHECK(error({{}, image.value()}).find("a class-conditional model (2 classes) needs labels; label 2 means \"no class\"") != std::string::npos);
    CHECK(error({y, {}}).find("conditioned on an image of 2 channels, and none was given") != std::string::npos);
    CHECK(error({Tensor<int64_t>({2}, {0, 3}), image.value()}).find("label 3 of image 1 is outside [0, 2]") != std::string::npos);
    CHECK(error({Tensor<int64_t>({3}, {0, 1, 1}), image.value()}).find("one label per image") != std::string::npos);
    CHECK(error({y, TensorD({2, 2, 8, 8})}).find("is not the conditioning image [2,2,4,4]") != std::string::npos);
    // The config round-trips through checkpoint metadata.
    const nn::UNetConfig back = nn::UNetConfig::from_metadata(c.to_metadata());
    CHECK(back.cond_ch == 2);
    CHECK(back.num_classes == 2);
}

TEST_CASE("nn: timestep embedding is sin then cos of t exp(-ln(10000) i / half)") {
    const Tensor<int64_t> t({2}, {0, 10});
    const TensorD e = nn::timestep_embedding<double>(t, 8);
    CHECK(e(0, 0) == 0.0);
    CHECK(e(0, 4) == 1.0);
    CHECK(e(1, 1) == doctest::Approx(std::sin(10.0 * std::exp(-std::log(10000.0) / 4))).epsilon(1e-6));
    CHECK(e(1, 7) == doctest::Approx(std::cos(10.0 * std::exp(-std::log(10000.0) * 3 / 4))).epsilon(1e-6));
}

TEST_CASE("nn: the default U-Net has the reference's 1,623,169 parameters under its names") {
    nn::UNet<float> model(nn::UNetConfig{});
    CHECK(model.num_parameters() == 1623169);
    const safetensors::File golden = safetensors::File::read(kGolden);
    nn::UNet<float> small(nn::UNetConfig::from_metadata(golden.metadata()));
    std::set<std::string> ours, theirs;
    for (auto& [name, p] : small.named_parameters()) ours.insert(name);
    for (const std::string& name : golden.names())
        if (name.rfind("grad.", 0) != 0 && name.rfind("input.", 0) != 0 && name != "output.eps" && name != "loss")
            theirs.insert(name);
    CHECK(ours == theirs);
    CHECK(ours.count("up.4.1.weight") == 1);  // the Upsample's conv, as nn.Sequential index 1
}

TEST_CASE("nn: golden U-Net: output, loss and every gradient match PyTorch") {
    const golden::Report r = golden::compare(kGolden);
    CHECK(r.batch == 2);
    for (const golden::Difference& d : r.rows) {
        INFO(d.name << ": error " << d.error << " allowed " << d.allowed);
        CHECK(d.ok());
    }
    size_t grads = 0;
    for (const std::string& name : safetensors::File::read(kGolden).names()) grads += name.rfind("grad.", 0) == 0;
    CHECK(r.rows.size() == 2 + grads);  // the output, the loss and every gradient were compared
}

TEST_CASE("nn: save and load round-trip; load names what is missing, unexpected or mis-shaped") {
    nn::UNetConfig c;
    c.ch = 8;
    c.mult = {1, 2};
    c.blocks = 1;
    c.attn = {};
    c.groups = 4;
    c.res = 8;
    nn::UNet<float> a(c, 1), b(c, 2);
    const std::string path = "nn_roundtrip_test.safetensors";
    a.save(path);
    b.load(path);
    auto pa = a.named_parameters(), pb = b.named_parameters();
    for (size_t i = 0; i < pa.size(); ++i)
        CHECK(std::memcmp(pa[i].second->value().data(), pb[i].second->value().data(), sizeof(float) * pa[i].second->numel()) == 0);
    nn::UNetConfig wider = c;
    wider.ch = 12;
    wider.groups = 4;
    nn::UNet<float> w(wider);
    try {
        w.load(path);
        FAIL("load accepted a state of another width");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()).find("mis-shaped") != std::string::npos);
        CHECK(std::string(e.what()).find("conv_in.weight (file [8,1,3,3], model [12,1,3,3])") != std::string::npos);
    }
    nn::UNetConfig conditional = c;
    conditional.num_classes = 10;
    nn::UNet<float> cond(conditional);
    try {
        cond.load(path);
        FAIL("load accepted a state without the class embedding");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()).find("missing 1 [class_emb.weight]") != std::string::npos);
    }
    cond.save(path);
    try {
        a.load(path);
        FAIL("load accepted a state with an extra tensor");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()).find("unexpected 1 [class_emb.weight]") != std::string::npos);
    }
    std::remove(path.c_str());
}

TEST_CASE("nn: gradcheck of dropout with a fixed mask") {
    check_gradients(
        [](const Inputs& v) {
            Rng rng(3);  // the same mask on every call of the finite differences
            return dropout(v[0], 0.5, rng);
        },
        {leaf({4, 5}, 1)});
}

TEST_CASE("nn: dropout keeps the mean in training and is the identity in evaluation") {
    Rng rng(6);
    nn::Dropout<float> drop(0.25, rng);
    const VarF x(TensorF::ones({20000}));
    const VarF y = drop.forward(x);
    int64_t zeros = 0;
    for (int64_t i = 0; i < 20000; ++i) zeros += y.value()(i) == 0.0f;
    CHECK(std::abs(zeros - 5000) < 5 * std::sqrt(20000 * 0.25 * 0.75));
    CHECK(mean(y).item() == doctest::Approx(1.0).epsilon(0.02));
    drop.eval();
    CHECK(drop.forward(x).value().shares_storage_with(x.value()));
}

TEST_CASE("nn: dropout on a part of the batch takes that part of the whole batch's mask") {
    Rng rng(12);
    const VarF x(TensorF::ones({6, 3, 5}));
    const Rng start = rng;
    const TensorF whole = dropout(x, 0.4, rng).value();
    for (const std::pair<int64_t, int64_t>& rows : std::vector<std::pair<int64_t, int64_t>>{{0, 6}, {1, 2}, {5, 1}}) {
        const int64_t first = rows.first, count = rows.second;  // not a structured binding: CAPTURE's lambda takes it
        CAPTURE(first);
        Rng part_rng = start;
        const BatchPartGuard part(first, count, 6);
        const TensorF got = dropout(VarF(TensorF::ones({count, 3, 5})), 0.4, part_rng).value();
        CHECK(std::equal(got.data(), got.data() + got.numel(), whole.data() + first * 15));
        CHECK(part_rng.counter() == rng.counter());
    }
    const BatchPartGuard part(0, 2, 6);
    CHECK(test::message_of<ShapeError>([&] { dropout(x, 0.4, rng); }).find("does not hold the 2 rows of the batch part") != std::string::npos);
}

TEST_CASE("nn: bad configurations and inputs are named") {
    nn::UNetConfig c;
    c.groups = 5;
    CHECK_THROWS_WITH_AS(nn::UNet<float>{c}, doctest::Contains("do not split into 5 groups"), std::invalid_argument);
    c = nn::UNetConfig{};
    c.res = 30;
    CHECK_THROWS_WITH_AS(nn::UNet<float>{c}, doctest::Contains("res 30 is not divisible by 2^2"), std::invalid_argument);
    // Limits, checked before anything is allocated (a corrupt checkpoint or a mistyped flag).
    auto refused = [](auto change, const char* message) {
        nn::UNetConfig bad;
        change(bad);
        CHECK_THROWS_WITH_AS(bad.validate(), message, std::invalid_argument);
    };
    refused([](nn::UNetConfig& b) { b.ch = 1073741824; }, "UNetConfig: ch 1073741824 is above the limit of 4096");
    refused([](nn::UNetConfig& b) { b.blocks = 100000000; }, "UNetConfig: blocks 100000000 is above the limit of 64");
    refused([](nn::UNetConfig& b) { b.mult = {1, 2, 1000000}; }, "UNetConfig: ch x mult = 32 x 1000000 is above the limit of 4096 channels");
    refused([](nn::UNetConfig& b) { b.mult = std::vector<int64_t>(9, 1); }, "UNetConfig: the number of levels (mult's length) 9 is above the limit of 8");
    refused([](nn::UNetConfig& b) { b.attn = {-7}; }, "UNetConfig: attn has a non-positive side length -7");
    refused([](nn::UNetConfig& b) { b.ch = 1024, b.mult = {1, 2, 4}, b.blocks = 8, b.res = 32; },
            "UNetConfig: a model of up to 42807089152 parameters is above the limit of 10^9");
    nn::UNetConfig small;
    small.ch = 8;
    small.mult = {1};
    small.groups = 4;
    small.attn = {};
    nn::UNet<float> model(small);
    const Tensor<int64_t> t({2}, {1, 2});
    CHECK_THROWS_WITH_AS(model.forward(VarF(TensorF({2, 3, 28, 28})), t), doctest::Contains("is not [B, 1, 28, 28]"), ShapeError);
    CHECK_THROWS_WITH_AS(model.forward(VarF(TensorF({3, 1, 28, 28})), t), doctest::Contains("one timestep per image"), ShapeError);
    CHECK_THROWS_WITH_AS(model.forward(VarF(TensorF({2, 1, 28, 28})), t, {t, {}}), doctest::Contains("labels given to a model without classes"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(model.forward(VarF(TensorF({2, 1, 28, 28})), t, {{}, TensorF({2, 1, 28, 28})}),
                         doctest::Contains("a conditioning image given to a model that takes none"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(conv2d(VarF(TensorF({1, 2, 5, 5})), VarF(TensorF({4, 3, 3, 3})), VarF()), doctest::Contains("conv2d: shapes [1,2,5,5] and [4,3,3,3]"), ShapeError);
}

TEST_CASE("nn: gradcheck of the fused group_norm_silu, and it equals silu(group_norm)") {
    for (int64_t groups : {1, 2}) {
        INFO("groups " << groups);
        check_gradients([&](const Inputs& v) { return group_norm_silu(v[0], v[1], v[2], groups); },
                        {leaf({2, 4, 3, 3}, 1), leaf({4}, 2), leaf({4}, 3)});
    }
    Rng rng(9);
    const VarF x(TensorF::randn({3, 32, 7, 7}, rng), true), gamma(TensorF::rand({32}, rng, 0.5, 1.5), true),
        beta(TensorF::randn({32}, rng), true);
    const VarF fused = group_norm_silu(x, gamma, beta, 8), plain = silu(group_norm(x, gamma, beta, 8));
    const TensorF seed = TensorF::randn({3, 32, 7, 7}, rng);
    fused.backward(seed);
    const TensorF gx = x.grad().clone(), gg = gamma.grad().clone(), gb = beta.grad().clone();
    VarF x2 = x, g2 = gamma, b2 = beta;
    x2.zero_grad();
    g2.zero_grad();
    b2.zero_grad();
    plain.backward(seed);
    // max |fused - plain| relative to max |plain|, as the golden test measures
    auto rel = [](const TensorF& a, const TensorF& b) {
        double e = 0, m = 0;
        for (int64_t i = 0; i < a.numel(); ++i) {
            e = std::max(e, double(std::abs(a.data()[i] - b.data()[i])));
            m = std::max(m, double(std::abs(b.data()[i])));
        }
        return e / m;
    };
    CHECK(rel(fused.value(), plain.value()) < 1e-5);
    CHECK(rel(gx, x.grad()) < 1e-5);
    CHECK(rel(gg, gamma.grad()) < 1e-5);
    CHECK(rel(gb, beta.grad()) < 1e-5);
}

TEST_CASE("nn: gradcheck of group_norm_silu with a shift, and it equals group_norm_silu(x + shift)") {
    check_gradients([](const Inputs& v) { return group_norm_silu(v[0], v[1], v[2], 2, 1e-5, v[3]); },
                    {leaf({2, 4, 3, 3}, 1), leaf({4}, 2), leaf({4}, 3), leaf({2, 4}, 4)});
    Rng rng(11);
    const VarF x(TensorF::randn({3, 32, 7, 7}, rng), true), gamma(TensorF::rand({32}, rng, 0.5, 1.5), true),
        beta(TensorF::randn({32}, rng), true), shift(TensorF::randn({3, 32}, rng), true);
    const VarF fused = group_norm_silu(x, gamma, beta, 8, 1e-5, shift),
               plain = group_norm_silu(x + reshape(shift, {3, 32, 1, 1}), gamma, beta, 8);
    const TensorF seed = TensorF::randn({3, 32, 7, 7}, rng);
    fused.backward(seed);
    const TensorF gx = x.grad().clone(), gs = shift.grad().clone();
    VarF x2 = x, s2 = shift;
    x2.zero_grad();
    s2.zero_grad();
    plain.backward(seed);
    for (const auto& [got, want] : {std::pair{fused.value(), plain.value()}, {gx, x.grad()}, {gs, shift.grad()}})
        for (int64_t i = 0; i < got.numel(); ++i) CHECK(got.data()[i] == doctest::Approx(want.data()[i]).epsilon(1e-4).scale(1));
    CHECK_THROWS_WITH_AS(group_norm_silu(x, gamma, beta, 8, 1e-5, VarF(TensorF({3, 16}))),
                         doctest::Contains("(input, shift) do not fit"), ShapeError);
}

TEST_CASE("nn: gradcheck of group_norm_silu_conv2d, with a shift, bias and residual") {
    check_gradients(
        [](const Inputs& v) { return group_norm_silu_conv2d(v[0], v[1], v[2], 2, 1e-5, v[3], v[4], v[5], 1, 1, v[6]); },
        {leaf({2, 4, 5, 5}, 1), leaf({4}, 2), leaf({4}, 3), leaf({2, 4}, 4), leaf({3, 4, 3, 3}, 5), leaf({3}, 6),
         leaf({2, 3, 5, 5}, 7)});
    check_gradients([](const Inputs& v) { return group_norm_silu_conv2d(v[0], v[1], v[2], 1, 1e-5, VarD(), v[3], VarD(), 2, 0); },
                    {leaf({2, 2, 5, 5}, 8), leaf({2}, 9), leaf({2}, 10), leaf({3, 2, 3, 3}, 11)});
}

TEST_CASE("nn: group_norm_silu_conv2d equals conv2d of group_norm_silu bit for bit, its activation made as convolved") {
    // 16 channels take the Winograd path, which makes the activation a few images at a time (at
    // 28x28 its F(4x4) tiles, at 7x7 F(2x2)); 8 channels the im2col path, which makes it whole.
    struct Case {
        int64_t B, C, side, O;
    };
    for (const Case& c : {Case{5, 16, 28, 8}, Case{9, 32, 7, 16}, Case{3, 8, 9, 4}}) {
        INFO("B " << c.B << " C " << c.C << " side " << c.side);
        Rng rng(21);
        const Shape sx{c.B, c.C, c.side, c.side};
        const std::vector<TensorF> leaves = {  // x, gamma, beta, shift, w, b, residual
            TensorF::randn(sx, rng),          TensorF::rand({c.C}, rng, 0.5f, 1.5f),
            TensorF::randn({c.C}, rng),       TensorF::randn({c.B, c.C}, rng),
            TensorF::randn({c.O, c.C, 3, 3}, rng), TensorF::randn({c.O}, rng),
            TensorF::randn({c.B, c.O, c.side, c.side}, rng)};
        const TensorF seed = TensorF::randn({c.B, c.O, c.side, c.side}, rng);
        // trained: which leaves require gradients (the backward pass of the fused op runs the
        // norm's backward as the weight gradient makes its input, or alone when w is frozen)
        auto run = [&](bool fused, const std::vector<bool>& trained) {
            std::vector<VarF> in;
            for (size_t i = 0; i < leaves.size(); ++i) in.emplace_back(leaves[i], trained[i]);
            VarF y;
            if (fused) {
                y = group_norm_silu_conv2d(in[0], in[1], in[2], 4, 1e-5, in[3], in[4], in[5], 1, 1, in[6]);
            } else {
                const VarF a = group_norm_silu(in[0], in[1], in[2], 4, 1e-5, in[3]);
                y = conv2d(a, in[4], in[5], 1, 1, in[6]);
            }
            y.backward(seed);
            std::vector<TensorF> out = {y.value().clone()};
            for (const VarF& v : in) out.push_back(v.requires_grad() ? v.grad().clone() : TensorF());
            return out;
        };
        const std::vector<bool> all(7, true), w_frozen = {true, true, true, true, false, false, true},
                                only_w = {false, false, false, false, true, true, false};
        const std::vector<TensorF> plain = run(false, all);
        for (const std::vector<bool>& trained : {all, w_frozen, only_w}) {
            const std::vector<TensorF> fused = run(true, trained);
            for (size_t i = 0; i < fused.size(); ++i) {
                if (i > 0 && !trained[i - 1]) continue;
                INFO("tensor " << i << " (0: y, then the gradients of x, gamma, beta, shift, w, b, residual); w trained "
                               << trained[4] << ", x trained " << trained[0]);
                REQUIRE(fused[i].shape() == plain[i].shape());
                CHECK(std::memcmp(fused[i].data(), plain[i].data(), sizeof(float) * static_cast<size_t>(fused[i].numel())) == 0);
            }
        }
        CHECK(std::any_of(plain[1].data(), plain[1].data() + plain[1].numel(), [](float g) { return g != 0.0f; }));
    }
    Rng rng(3);
    const VarF x(TensorF::randn({2, 4, 5, 5}, rng)), gamma(TensorF::ones({4})), beta(TensorF::zeros({4}));
    CHECK_THROWS_WITH_AS(group_norm_silu_conv2d(x, gamma, beta, 3, 1e-5, VarF(), VarF(TensorF({2, 4, 3, 3})), VarF()),
                         doctest::Contains("group_norm_silu_conv2d"), ShapeError);
    CHECK_THROWS_WITH_AS(group_norm_silu_conv2d(x, gamma, beta, 2, 1e-5, VarF(), VarF(TensorF({2, 3, 3, 3})), VarF()),
                         doctest::Contains("(input, weight) do not fit x [B, C, H, W]"), ShapeError);
}
