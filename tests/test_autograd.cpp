// Tests of autograd/: every op against central differences in double (gradcheck: eps 1e-6,
// atol 1e-5, rtol 1e-3), forward values against closed forms, the graph machinery.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "ddpmkit/ddpmkit.hpp"
#include "helpers.hpp"

using namespace ddpmkit;
using test::message_of;
using Inputs = std::vector<VarD>;

namespace {

// A leaf of the given shape with N(0, 1) entries (shifted by `offset`) that requires grad.
VarD leaf(const Shape& s, uint64_t seed, double offset = 0.0) {
    Rng rng(seed);
    return VarD(TensorD::randn(s, rng, offset, 1.0), true);
}
// A leaf with entries uniform in [lo, hi): keeps log, sqrt, pow, div away from 0 and relu from its kink.
VarD positive_leaf(const Shape& s, uint64_t seed, double lo = 0.5, double hi = 2.0) {
    Rng rng(seed);
    return VarD(TensorD::rand(s, rng, lo, hi), true);
}

void check_gradients(const std::function<VarD(const Inputs&)>& f, const Inputs& inputs) {
    test::check_gradients(f, inputs, 1e-5);
}


}  // namespace

TEST_CASE("autograd: gradcheck of add, sub, mul, div with broadcasting") {
    const std::vector<std::pair<Shape, Shape>> shapes = {{{2, 3, 4}, {2, 3, 4}}, {{2, 3, 4}, {3, 1}}, {{1, 4}, {3, 1}}, {{}, {2, 2}}};
    for (const auto& pair : shapes) {
        const Shape &sa = pair.first, &sb = pair.second;  // not a structured binding: INFO captures them
        INFO(sa << " with " << sb);
        check_gradients([](const Inputs& v) { return v[0] + v[1]; }, {leaf(sa, 1), leaf(sb, 2)});
        check_gradients([](const Inputs& v) { return v[0] - v[1]; }, {leaf(sa, 1), leaf(sb, 2)});
        check_gradients([](const Inputs& v) { return v[0] * v[1]; }, {leaf(sa, 1), leaf(sb, 2)});
        check_gradients([](const Inputs& v) { return v[0] / v[1]; }, {leaf(sa, 1), positive_leaf(sb, 2)});
    }
    // One operand constant: only the other gets a gradient.
    check_gradients([](const Inputs& v) { return v[0] * 3.0 - 1.0 + 2.0 * (-v[0]) / 4.0; }, {leaf({5}, 3)});
}

TEST_CASE("autograd: gradcheck of unary math") {
    check_gradients([](const Inputs& v) { return exp(v[0]); }, {leaf({3, 5}, 1)});
    check_gradients([](const Inputs& v) { return log(v[0]); }, {positive_leaf({3, 5}, 2)});
    check_gradients([](const Inputs& v) { return sqrt(v[0]); }, {positive_leaf({3, 5}, 3)});
    check_gradients([](const Inputs& v) { return tanh(v[0]); }, {leaf({3, 5}, 4)});
    check_gradients([](const Inputs& v) { return sigmoid(v[0]); }, {leaf({3, 5}, 5)});
    check_gradients([](const Inputs& v) { return silu(v[0]); }, {leaf({3, 5}, 6)});
    check_gradients([](const Inputs& v) { return relu(v[0]); }, {positive_leaf({3, 5}, 7, 0.1, 1.0)});
    check_gradients([](const Inputs& v) { return relu(v[0]); }, {positive_leaf({3, 5}, 8, -1.0, -0.1)});
    check_gradients([](const Inputs& v) { return pow(v[0], 2.5); }, {positive_leaf({3, 5}, 9)});
    check_gradients([](const Inputs& v) { return pow(v[0], 3.0); }, {leaf({3, 5}, 10)});
}

TEST_CASE("autograd: gradcheck of sum, mean and mse") {
    const VarD x = leaf({2, 3, 4}, 1);
    check_gradients([](const Inputs& v) { return sum(v[0]); }, {x});
    check_gradients([](const Inputs& v) { return mean(v[0]); }, {x});
    check_gradients([](const Inputs& v) { return sum(v[0], {1}); }, {x});
    check_gradients([](const Inputs& v) { return sum(v[0], {0, 2}, true); }, {x});
    check_gradients([](const Inputs& v) { return mean(v[0], {-1}); }, {x});
    check_gradients([](const Inputs& v) { return mean(v[0], {2, 0}, true); }, {x});
    check_gradients([](const Inputs& v) { return mse(v[0], v[1]); }, {x, leaf({2, 3, 4}, 2)});
}

TEST_CASE("autograd: gradcheck of matmul, 2-D and batched") {
    check_gradients([](const Inputs& v) { return matmul(v[0], v[1]); }, {leaf({3, 4}, 1), leaf({4, 5}, 2)});
    check_gradients([](const Inputs& v) { return matmul(v[0], v[1]); }, {leaf({2, 3, 3, 4}, 1), leaf({2, 3, 4, 2}, 2)});
    check_gradients([](const Inputs& v) { return matmul(v[0], v[0]); }, {leaf({4, 4}, 3)});  // one input used twice
}

TEST_CASE("autograd: gradcheck of reshape, permute, transpose, concat, split") {
    const VarD x = leaf({2, 3, 4}, 1);
    check_gradients([](const Inputs& v) { return reshape(v[0], {4, 6}) * reshape(v[0], {4, 6}); }, {x});
    check_gradients([](const Inputs& v) { return permute(v[0], {2, 0, 1}); }, {x});
    check_gradients([](const Inputs& v) { return transpose(v[0], 0, -1); }, {x});
    check_gradients([](const Inputs& v) { return concat<double>({v[0], v[1], v[0]}, 1); }, {x, leaf({2, 5, 4}, 2)});
    check_gradients([](const Inputs& v) { return concat<double>({v[0], v[1]}, -1); }, {x, leaf({2, 3, 1}, 3)});
    check_gradients(
        [](const Inputs& v) {
            auto parts = split(v[0], {1, 2, 1}, 2);
            return parts[0] * parts[2] + sum(parts[1], {2}, true);
        },
        {x});
}

TEST_CASE("autograd: gradcheck of softmax along any axis") {
    check_gradients([](const Inputs& v) { return softmax(v[0]); }, {leaf({3, 7}, 1)});
    check_gradients([](const Inputs& v) { return softmax(v[0], 1); }, {leaf({2, 5, 3}, 2)});
    check_gradients([](const Inputs& v) { return softmax(v[0], 0); }, {leaf({4}, 3)});
}

TEST_CASE("autograd: gradcheck catches a wrong gradient") {
    auto wrong_square = [](const Inputs& v) {  // claims d(x^2)/dx = x instead of 2x
        const TensorD& x = v[0].value();
        TensorD y(x.shape());
        for (int64_t i = 0; i < x.numel(); ++i) y.data()[i] = x.data()[i] * x.data()[i];
        return VarD::make(y, "wrong_square", {v[0]}, [](autograd::Node<double>& self) {
            autograd::accumulate(*self.parents[0], self.grad * self.parents[0]->value);
        });
    };
    const GradcheckResult r = gradcheck(wrong_square, {leaf({3}, 1, 2.0)});
    CHECK(!r.ok);
    CHECK(r.message.find("input 0") != std::string::npos);
    CHECK(r.max_abs_error > 0.1);
}

TEST_CASE("autograd: forward values equal closed forms") {
    VarD x(TensorD({2}, {0.0, std::log(2.0)}));
    const VarD s = softmax(x);
    CHECK(s.value()(0) == doctest::Approx(1.0 / 3.0).epsilon(1e-15));
    CHECK(s.value()(1) == doctest::Approx(2.0 / 3.0).epsilon(1e-15));
    VarF a(TensorF({2, 2}, {1, 2, 3, 4})), b(TensorF({2, 2}, {5, 6, 7, 8}));
    const VarF c = matmul(a, b);
    CHECK(c.value()(0, 0) == 19.0f);
    CHECK(c.value()(1, 1) == 50.0f);
    CHECK(mse(a, b).item() == 16.0f);
    CHECK(sum(a, {0}).value()(1) == 6.0f);
    CHECK(mean(a).item() == 2.5f);
    CHECK(sum(a).shape() == Shape{});
    CHECK(sum(a, {1}, true).shape() == Shape{2, 1});
    CHECK(silu(VarF(TensorF::scalar(1.0f))).item() == doctest::Approx(1.0 / (1.0 + std::exp(-1.0))).epsilon(1e-6));
    auto parts = split(a, {1, 1}, 0);
    CHECK(parts[1].value()(0, 1) == 4.0f);
    CHECK(concat<float>({a, b}, 1).value()(1, 3) == 8.0f);
    CHECK(permute(VarF(TensorF({2, 3}, {1, 2, 3, 4, 5, 6})), {1, 0}).value()(2, 1) == 6.0f);
}

TEST_CASE("autograd: float ops agree with double ops") {
    Rng rng(4);
    const TensorD xd = TensorD::randn({4, 33}, rng), wd = TensorD::randn({33, 17}, rng);
    auto net = [](auto x, auto w) { return mean(softmax(silu(matmul(x, w))) * tanh(matmul(x, w))); };
    VarD vx(xd, true), vw(wd, true);
    VarF fx(xd.cast<float>(), true), fw(wd.cast<float>(), true);
    const VarD ld = net(vx, vw);
    const VarF lf = net(fx, fw);
    ld.backward();
    lf.backward();
    CHECK(lf.item() == doctest::Approx(ld.item()).epsilon(1e-5));
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < wd.numel(); ++i) {
        worst = std::max(worst, std::abs(fw.grad().data()[i] - vw.grad().data()[i]));
        scale = std::max(scale, std::abs(vw.grad().data()[i]));
    }
    CHECK(worst <= 1e-3 * scale);  // the golden gradient tolerance (docs/testing.md)
}

TEST_CASE("autograd: shape errors name the op and both shapes") {
    VarF a(TensorF({2, 3})), b(TensorF({4}));
    std::string msg = message_of<ShapeError>([&] { add(a, b); });
    CHECK(msg.find("add") != std::string::npos);
    CHECK(msg.find("[2,3]") != std::string::npos);
    CHECK(msg.find("[4]") != std::string::npos);
    msg = message_of<ShapeError>([&] { matmul(a, a); });
    CHECK(msg.find("matmul: shapes [2,3] and [2,3]") != std::string::npos);
    CHECK(message_of<ShapeError>([&] { concat<float>({a, b}, 0); }).find("concat") != std::string::npos);
    CHECK(message_of<ShapeError>([&] { split(a, {1, 1}, 1); }).find("split") != std::string::npos);
    CHECK(message_of<ShapeError>([&] { permute(a, {0, 0}); }).find("permute") != std::string::npos);
    CHECK(message_of<ShapeError>([&] { mse(a, VarF(TensorF({3, 2}))); }).find("mse") != std::string::npos);
    CHECK(message_of<ShapeError>([&] { VarF(a.value(), true).backward(); }).find("not a scalar") != std::string::npos);
}

TEST_CASE("autograd: a chain of 100,000 ops neither overflows the stack in backward nor in its destruction") {
    const int n = 100000;
    const double c = 1.00001;
    VarD x(TensorD::scalar(1.0), true);
    {
        VarD y = x;
        const VarD k(TensorD::scalar(c));
        for (int i = 0; i < n; ++i) y = y * k;
        y.backward();
    }  // the chain is freed here
    CHECK(x.grad().item() == doctest::Approx(std::pow(c, n)).epsilon(1e-9));  // d(x c^n)/dx = c^n
}

TEST_CASE("autograd: gradients accumulate, zero_grad clears them, backward repeats bitwise") {
    Rng rng(5);
    VarF w(TensorF::randn({64, 48}, rng), true), b(TensorF::randn({48}, rng), true);
    const VarF x(TensorF::randn({32, 64}, rng)), target(TensorF::randn({32, 48}, rng));
    auto loss_fn = [&] { return mse(softmax(silu(matmul(x, w) + b)) * 10.0f, target); };
    const VarF loss = loss_fn();
    loss.backward();
    const TensorF first = w.grad().clone();
    loss.backward();  // no zero_grad: the gradient doubles
    for (int64_t i = 0; i < first.numel(); ++i) REQUIRE(w.grad().data()[i] == 2.0f * first.data()[i]);
    w.zero_grad();
    b.zero_grad();
    CHECK(w.grad().data()[7] == 0.0f);
    loss.backward();
    CHECK(std::memcmp(w.grad().data(), first.data(), sizeof(float) * static_cast<size_t>(first.numel())) == 0);
    // A rebuilt graph with one thread gives the same bits as two threads.
    set_num_threads(1);
    w.zero_grad();
    loss_fn().backward();
    set_num_threads(2);
    CHECK(std::memcmp(w.grad().data(), first.data(), sizeof(float) * static_cast<size_t>(first.numel())) == 0);
}

TEST_CASE("autograd: backward tells each leaf's gradient the moment it is complete") {
    // w1 is read twice (both ops must have passed theirs on first), w2 once, late in the forward
    // pass (so early in the backward one); x needs no gradient and is never reported.
    Rng rng(8);
    VarD w1(TensorD::randn({4, 4}, rng), true), w2(TensorD::randn({4}, rng), true);
    const VarD x(TensorD::randn({3, 4}, rng));
    const VarD h = tanh(matmul(x, w1)) * matmul(x, w1);
    const VarD loss = sum(silu(h + w2));
    std::vector<std::pair<const VarD::Node*, TensorD>> seen;  // each leaf, and its gradient then
    loss.backward([&](const VarD::Node& leaf) { seen.push_back({&leaf, leaf.grad.clone()}); });
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].first == w2.node().get());  // the backward pass reaches w2 first
    CHECK(seen[1].first == w1.node().get());
    // What each leaf had then is its whole gradient: the same as after a plain backward.
    for (VarD* w : {&w1, &w2}) w->zero_grad();
    loss.backward();
    CHECK(std::memcmp(seen[0].second.data(), w2.grad().data(), sizeof(double) * 4) == 0);
    CHECK(std::memcmp(seen[1].second.data(), w1.grad().data(), sizeof(double) * 16) == 0);
}

TEST_CASE("autograd: the no-grad guard records nothing; detach cuts the graph") {
    VarF w(TensorF({3}, 1.0f), true);
    {
        NoGradGuard guard;
        const VarF y = w * w;
        CHECK(!y.requires_grad());
        CHECK(y.node()->parents.empty());
    }
    const VarF z = w * w;
    CHECK(z.requires_grad());
    CHECK(std::string(z.op()) == "mul");
    CHECK(!z.detach().requires_grad());
    const VarF u = sum(z.detach() * w);  // d/dw of (w^2 held constant) * w = w^2
    u.backward();
    CHECK(w.grad()(0) == 1.0f);
    CHECK_THROWS_AS(VarF(TensorF::scalar(1.0f)).backward(), std::logic_error);
}

TEST_CASE("autograd: a released value is remade by the backward pass, with the same gradients bitwise") {
    // concat -> group_norm_silu -> conv2d -> upsample -> conv2d with a residual: every kind of op
    // that can release, one released value made from another (the concat).
    Rng rng(12);
    VarF x(TensorF::randn({2, 4, 6, 6}, rng), true), skip(TensorF::randn({2, 4, 6, 6}, rng), true);
    VarF gamma(TensorF::rand({8}, rng, 0.5f, 1.5f), true), beta(TensorF::randn({8}, rng), true);
    VarF w1(TensorF::randn({6, 8, 3, 3}, rng), true), w2(TensorF::randn({6, 6, 3, 3}, rng), true);
    const VarF residual(TensorF::randn({2, 6, 12, 12}, rng), true);
    const std::vector<VarF*> leaves = {&x, &skip, &gamma, &beta, &w1, &w2};
    auto run = [&](bool release) {
        for (VarF* v : leaves) v->zero_grad();
        const VarF joined = concat<float>({x, skip}, 1);
        const VarF a = group_norm_silu(joined, gamma, beta, 4);
        const VarF h = conv2d(a, w1, VarF(), 1, 1);
        const VarF up = upsample_nearest2x(h);
        const VarF y = conv2d(up, w2, VarF(), 1, 1, residual);
        const VarF loss = sum(y * y);
        if (release) {
            for (const VarF* v : {&joined, &a, &up}) v->release();
            for (const VarF* v : {&joined, &a, &up}) CHECK(v->released());
            const std::string read = message_of<std::logic_error>([&] { (void)a.value(); });
            CHECK_MESSAGE(read.find("group_norm_silu was read after release()") != std::string::npos, read);
            h.release();  // a convolution's value cannot be remade: kept
            CHECK(!h.released());
        }
        loss.backward();
        CHECK(a.released() == release);  // still released after the pass: remade for a step, then freed
        std::vector<TensorF> grads;
        for (VarF* v : leaves) grads.push_back(v->grad().clone());
        return grads;
    };
    const std::vector<TensorF> kept = run(false), released = run(true);
    for (size_t i = 0; i < kept.size(); ++i)
        CHECK(std::memcmp(kept[i].data(), released[i].data(), sizeof(float) * static_cast<size_t>(kept[i].numel())) == 0);
    CHECK(std::any_of(kept[0].data(), kept[0].data() + kept[0].numel(), [](float g) { return g != 0.0f; }));
}

TEST_CASE("autograd: a released value read by several steps is remade once, then freed") {
    // As in a U-Net's up path: the joined skip feeds GroupNorm + SiLU (itself released: its remake
    // reads the join) and a 1x1 convolution whose output is the next convolution's residual.
    Rng rng(13);
    const VarF x(TensorF::randn({2, 4, 5, 5}, rng), true), skip(TensorF::randn({2, 4, 5, 5}, rng), true);
    const VarF gamma(TensorF::rand({8}, rng, 0.5f, 1.5f), true), beta(TensorF::randn({8}, rng), true);
    const VarF w(TensorF::randn({6, 8, 3, 3}, rng), true), w_skip(TensorF::randn({6, 8, 1, 1}, rng), true);
    const VarF joined = concat<float>({x, skip}, 1);
    const VarF a = group_norm_silu(joined, gamma, beta, 4);
    const VarF y = conv2d(a, w, VarF(), 1, 1, conv2d(joined, w_skip, VarF(), 1, 0));
    a.release();
    joined.release();
    int remakes = 0;
    autograd::Node<float>& node = *joined.node();
    node.recompute = [&remakes, join = node.recompute](const autograd::Node<float>& n) {
        ++remakes;
        return join(n);
    };
    sum(y * y).backward();
    CHECK(remakes == 1);                   // three steps read it: the 1x1 convolution, a's remake, a's own
    CHECK(!joined.node()->value.defined());  // freed after the last
    CHECK(!a.node()->value.defined());
    CHECK(std::any_of(skip.grad().data(), skip.grad().data() + skip.grad().numel(), [](float g) { return g != 0.0f; }));
}

TEST_CASE("autograd: graph_memory lists what a graph keeps by op, released values not") {
    const VarF x(TensorF({2, 3}, 1.0f), true);
    const VarF y = x * x;                       // 6 floats
    const VarF z = concat<float>({y, x}, 0);    // 12 floats
    const VarF loss = sum(z);                   // 1 float
    const auto kept = graph_memory(loss);
    REQUIRE(kept.size() == 4);
    CHECK(kept[0].op == "concat");
    CHECK(kept[0].bytes == 48);
    CHECK((kept[1].op == "leaf" && kept[1].bytes == 24 && kept[1].values == 1));  // ties in the order of the names
    CHECK((kept[2].op == "mul" && kept[2].bytes == 24));
    CHECK((kept[3].op == "sum" && kept[3].bytes == 4));
    z.release();
    const auto after = graph_memory(loss);
    REQUIRE(after.size() == 3);
    CHECK(after[0].op == "leaf");
}

TEST_CASE("autograd: graph_dot writes the graph with names, shapes and which values need gradients") {
    const VarD w(TensorD({2}, {1.0, 2.0}), true), x(TensorD({2}, {3.0, 4.0}));
    const VarD y = w * x + w;
    const std::string expected =
        "digraph autograd {\n"
        "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n"
        "  n0 [label=\"w \\\"weight\\\"\\n[2]\\nrequires grad\", fillcolor=\"#c6dbef\"];\n"
        "  n1 [label=\"leaf\\n[2]\\nconstant\", fillcolor=\"#eeeeee\", style=\"rounded,filled,dashed\"];\n"
        "  n2 [label=\"mul\\n[2]\\nrequires grad\", fillcolor=\"#fdd0a2\"];\n"
        "  n3 [label=\"y = add\\n[2]\\nrequires grad\", fillcolor=\"#fdd0a2\", peripheries=2];\n"
        "  n0 -> n2;\n"
        "  n1 -> n2;\n"
        "  n2 -> n3;\n"
        "  n0 -> n3;\n"
        "}\n";
    CHECK(graph_dot(y, {{"w \"weight\"", w}, {"y", y}}) == expected);
    CHECK_THROWS_AS(graph_dot(VarD()), std::invalid_argument);
}

TEST_CASE("autograd: AnomalyGuard names the first op whose value or gradient is not finite") {
    const VarD x(TensorD({3}, {4.0, -1.0, 9.0}), true);
    CHECK(std::isnan(log(x).value()(1)));  // off: NaN flows on silently
    {
        AnomalyGuard guard;
        CHECK_THROWS_WITH_AS(log(x), "anomaly: the forward value of log [3] has NaN at element 1", autograd::AnomalyError);
        // sqrt(0) is finite, its derivative 1 / (2 sqrt(0)) is not.
        const VarD w(TensorD({2}, {0.0, 4.0}), true);
        guard.name_leaves(std::vector<std::pair<std::string, VarD*>>{{"layer.weight", const_cast<VarD*>(&w)}});
        const VarD y = sum(sqrt(w));
        CHECK_THROWS_WITH_AS(y.backward(),
                             "anomaly: the gradient that the backward of sqrt passed to its input 0 (parameter layer.weight), [2] has an "
                             "infinity at element 0",
                             autograd::AnomalyError);
        // Inside a model, an op is placed by the nearest named parameter upstream of it.
        const VarD w2(TensorD({2}, {1.0, -1.0}), true), input(TensorD({2}, {2.0, 3.0}), false);
        const VarD w3(TensorD({2}, {0.0, 1.0}), true);
        guard.name_leaves(std::vector<std::pair<std::string, VarD*>>{{"block.1.conv.weight", const_cast<VarD*>(&w2)},
                                                                     {"block.2.weight", const_cast<VarD*>(&w3)}});
        CHECK_THROWS_WITH_AS(log(w2 * input),
                             "anomaly: the forward value of log [2] has NaN at element 1 (nearest parameter upstream: block.1.conv.weight)",
                             autograd::AnomalyError);
        const VarD z = sum(sqrt(w3 * input));
        CHECK_THROWS_WITH_AS(z.backward(),
                             "anomaly: the gradient that the backward of sqrt passed to its input 0 (the output of mul), [2] has an "
                             "infinity at element 0 (nearest parameter upstream: block.2.weight)",
                             autograd::AnomalyError);
    }
    CHECK(std::isnan(log(x).value()(1)));  // off again when the guard ends
}
