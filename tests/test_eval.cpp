// Tests of eval/: the Frechet distance against its closed forms, the cross-entropy op, the
// classifier (shapes, a short training run on the embedded shapes, save and load).
// Shape letters: N samples, D feature dimensions, B batch, K classes.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "ddpmkit/ddpmkit.hpp"
#include "helpers.hpp"
#include "ddpmkit/eval/classifier.hpp"
#include "ddpmkit/eval/frechet.hpp"

using namespace ddpmkit;
using test::message_of;

namespace {

// The statistics of N(mean, covariance) themselves (not estimated from samples).
eval::FeatureStatistics gaussian(const std::vector<double>& mean, const std::vector<double>& covariance) {
    const int64_t D = static_cast<int64_t>(mean.size());
    return {TensorD({D}, mean), TensorD({D, D}, covariance), 1000};
}

std::vector<double> diagonal(const std::vector<double>& d) {
    const size_t D = d.size();
    std::vector<double> m(D * D, 0.0);
    for (size_t i = 0; i < D; ++i) m[i * D + i] = d[i];
    return m;
}

// N samples of N(shift, diag(sd^2)) (the same shift in every coordinate): [N, D].
TensorD samples(int64_t N, const std::vector<double>& sd, double shift, uint64_t seed) {
    const int64_t D = static_cast<int64_t>(sd.size());
    Rng rng(seed);
    TensorD x = TensorD::randn({N, D}, rng);
    for (int64_t i = 0; i < N; ++i)
        for (int64_t j = 0; j < D; ++j) x(i, j) = shift + sd[static_cast<size_t>(j)] * x(i, j);
    return x;
}


}  // namespace

TEST_CASE("eval: Frechet distance of identical statistics is 0") {
    const auto a = gaussian({1, -2, 3}, {2.0, 0.3, 0.1, 0.3, 1.0, -0.2, 0.1, -0.2, 0.5});
    CHECK(eval::frechet_distance(a, a) < 1e-12);
    // A singular covariance (features on a line): its zero eigenvalues must not turn into NaN.
    const auto line = gaussian({0, 0}, {1.0, 1.0, 1.0, 1.0});
    const double d = eval::frechet_distance(line, line);
    CHECK(std::isfinite(d));
    CHECK(d < 1e-12);
}

TEST_CASE("eval: Frechet distance of isotropic Gaussians is |m1 - m2|^2 + D (a - b)^2") {
    const int64_t D = 6;
    const double a = 0.5, b = 2.0;
    const std::vector<double> m1 = {1, 2, 3, 4, 5, 6}, m2 = {0, 2, 1, 4, 5, 9};  // |m1 - m2|^2 = 1 + 4 + 9
    const auto p = gaussian(m1, diagonal(std::vector<double>(D, a * a)));
    const auto q = gaussian(m2, diagonal(std::vector<double>(D, b * b)));
    CHECK(eval::frechet_distance(p, q) == doctest::Approx(14.0 + D * (a - b) * (a - b)).epsilon(1e-12));
}

TEST_CASE("eval: Frechet distance of diagonal covariances is the mean term plus sum (sqrt s1 - sqrt s2)^2") {
    const std::vector<double> s1 = {0.25, 1.0, 4.0, 9.0}, s2 = {1.0, 1.0, 0.5, 16.0};
    double expected = 0.5 * 0.5 * 4;  // means differ by 0.5 in each of 4 coordinates
    for (size_t i = 0; i < s1.size(); ++i) expected += std::pow(std::sqrt(s1[i]) - std::sqrt(s2[i]), 2);
    const auto p = gaussian({0, 0, 0, 0}, diagonal(s1)), q = gaussian({0.5, 0.5, 0.5, 0.5}, diagonal(s2));
    CHECK(eval::frechet_distance(p, q) == doctest::Approx(expected).epsilon(1e-12));

    // A common rotation Q of both covariances leaves the distance unchanged: Q S Q^T for a
    // Givens rotation in the (0, 2) and (1, 3) planes makes them non-diagonal.
    const double c = std::cos(0.7), s = std::sin(0.7);
    const std::vector<double> q_rot = {c, 0, -s, 0, 0, c, 0, -s, s, 0, c, 0, 0, s, 0, c};
    auto rotate = [&](const std::vector<double>& d) {
        std::vector<double> out(16, 0.0);
        for (int i = 0; i < 4; ++i)
            for (int j = 0; j < 4; ++j)
                for (int k = 0; k < 4; ++k) out[i * 4 + j] += q_rot[i * 4 + k] * d[static_cast<size_t>(k)] * q_rot[j * 4 + k];
        return out;
    };
    const auto pr = gaussian({0, 0, 0, 0}, rotate(s1)), qr = gaussian({0.5, 0.5, 0.5, 0.5}, rotate(s2));
    CHECK(eval::frechet_distance(pr, qr) == doctest::Approx(expected).epsilon(1e-10));
}

TEST_CASE("eval: Frechet distance of non-commuting 2x2 covariances, and symmetry") {
    // For a 2x2 symmetric positive semi-definite M, tr M^1/2 = sqrt(tr M + 2 sqrt(det M)); with
    // M = S1^1/2 S2 S1^1/2: tr M = tr(S1 S2), det M = det S1 det S2.
    const std::vector<double> s1 = {2.0, 0.8, 0.8, 1.0}, s2 = {0.5, -0.3, -0.3, 3.0};
    const double tr_s1s2 = s1[0] * s2[0] + s1[1] * s2[2] + s1[2] * s2[1] + s1[3] * s2[3];
    const double det1 = s1[0] * s1[3] - s1[1] * s1[2], det2 = s2[0] * s2[3] - s2[1] * s2[2];
    const double expected = 1.0 + 4.0 + (s1[0] + s1[3]) + (s2[0] + s2[3]) - 2.0 * std::sqrt(tr_s1s2 + 2.0 * std::sqrt(det1 * det2));
    const auto p = gaussian({1, 0}, s1), q = gaussian({0, 2}, s2);
    CHECK(eval::frechet_distance(p, q) == doctest::Approx(expected).epsilon(1e-12));
    CHECK(eval::frechet_distance(q, p) == doctest::Approx(expected).epsilon(1e-12));
}

TEST_CASE("eval: feature statistics are the sample mean and the unbiased covariance") {
    const TensorF x({3, 2}, {1.f, 2.f, 3.f, 6.f, 5.f, 4.f});  // mean (3, 4)
    const eval::FeatureStatistics s = eval::feature_statistics(x);
    CHECK(s.count == 3);
    CHECK(s.mean(0) == 3.0);
    CHECK(s.mean(1) == 4.0);
    // centred rows (-2, -2), (0, 2), (2, 0); sums of products / (N - 1 = 2)
    CHECK(s.covariance(0, 0) == doctest::Approx(4.0));
    CHECK(s.covariance(0, 1) == doctest::Approx(2.0));
    CHECK(s.covariance(1, 0) == doctest::Approx(2.0));
    CHECK(s.covariance(1, 1) == doctest::Approx(4.0));
}

TEST_CASE("eval: Frechet distance estimated from samples approaches the closed form") {
    const std::vector<double> sd_a = {1.0, 1.0, 2.0, 0.5, 1.0, 1.5, 1.0, 3.0};
    const std::vector<double> sd_b = {1.0, 2.0, 1.0, 0.5, 2.0, 1.5, 0.5, 1.0};
    double expected = 8 * 0.3 * 0.3;  // shifted by 0.3 in each of 8 coordinates
    for (size_t i = 0; i < sd_a.size(); ++i) expected += std::pow(sd_a[i] - sd_b[i], 2);  // = 9.72
    const double estimate = eval::frechet_distance(samples(40000, sd_a, 0.0, 1), samples(40000, sd_b, 0.3, 2));
    INFO("estimate " << estimate << ", closed form " << expected);
    CHECK(estimate == doctest::Approx(expected).epsilon(0.02));
    // Two samples of one distribution: a small positive bias of order D^2 / N only.
    const double same = eval::frechet_distance(samples(40000, sd_a, 0.0, 3), samples(40000, sd_a, 0.0, 4));
    CHECK(same < 0.01);
}

TEST_CASE("eval: Frechet distance errors name what is wrong") {
    const auto p = gaussian({0, 0}, diagonal({1, 1})), q = gaussian({0, 0, 0}, diagonal({1, 1, 1}));
    CHECK(message_of<std::invalid_argument>([&] { eval::frechet_distance(p, q); }).find("2-d and 3-d") != std::string::npos);
    CHECK(message_of<std::invalid_argument>([] { eval::feature_statistics(TensorF({1, 4})); }).find("1 sample(s)") !=
          std::string::npos);
    CHECK(message_of<std::invalid_argument>([] { eval::feature_statistics(TensorF({4})); }).find("not [N, D]") !=
          std::string::npos);
    TensorD bad({3, 2}, 1.0);
    bad(2, 1) = std::nan("");
    CHECK(message_of<std::invalid_argument>([&] { eval::feature_statistics(bad); }).find("feature 1 of sample 2") !=
          std::string::npos);
    auto broken = p;
    broken.covariance = TensorD({2, 2}, {1.0, INFINITY, 0.0, 1.0});
    CHECK(message_of<std::invalid_argument>([&] { eval::frechet_distance(broken, p); }).find("non-finite covariance") !=
          std::string::npos);
    broken.covariance = TensorD({2, 2}, {1.0, 0.5, 0.4, 1.0});
    CHECK(message_of<std::invalid_argument>([&] { eval::frechet_distance(p, broken); }).find("not symmetric: entry (1, 0) is 0.4") !=
          std::string::npos);
    broken.covariance = TensorD({3, 2});
    CHECK(message_of<std::invalid_argument>([&] { eval::frechet_distance(p, broken); }).find("[D, D]") != std::string::npos);
}

TEST_CASE("eval: cross_entropy value by hand, its gradient in double, stable for large logits") {
    // Row 0: -log(e^3 / (e^1 + e^2 + e^3)) = log(1 + e^-1 + e^-2); row 1: logit 0 against 1000.
    const VarD logits(TensorD({2, 3}, {1, 2, 3, 1000, 0, -1000}));
    const Tensor<int64_t> labels({2}, {2, 1});
    const double row0 = std::log(1 + std::exp(-1.0) + std::exp(-2.0)), row1 = 1000.0;
    CHECK(eval::cross_entropy(logits, labels).item() == doctest::Approx((row0 + row1) / 2).epsilon(1e-14));
    CHECK(eval::cross_entropy(VarF(logits.value().cast<float>()), labels).item() == doctest::Approx((row0 + row1) / 2));

    Rng rng(5);
    const VarD x(TensorD::randn({4, 5}, rng, 0.0, 2.0), true);
    const Tensor<int64_t> y({4}, {0, 4, 2, 2});
    const GradcheckResult r = gradcheck([&](const std::vector<VarD>& v) { return eval::cross_entropy(v[0], y); }, {x});
    INFO(r.message);
    CHECK(r.ok);
    // Its gradient, directly: (softmax - one_hot) / B sums to 0 along each row.
    VarD z(x.value(), true);
    eval::cross_entropy(z, y).backward();
    for (int64_t i = 0; i < 4; ++i) {
        double row = 0;
        for (int64_t j = 0; j < 5; ++j) row += z.grad()(i, j);
        CHECK(std::abs(row) < 1e-15);
    }
    CHECK(message_of<std::out_of_range>([&] { eval::cross_entropy(x, Tensor<int64_t>({4}, {0, 5, 0, 0})); })
              .find("label 5 of row 1") != std::string::npos);
    CHECK_THROWS_AS(eval::cross_entropy(x, Tensor<int64_t>({3}, {0, 1, 2})), ShapeError);
}

TEST_CASE("eval: classifier shapes, parameter names, and its refusal of other images") {
    eval::Classifier model(1);
    Rng rng(2);
    const VarF x(TensorF::rand({3, 1, 28, 28}, rng, -1, 1));
    CHECK(model.features(x).shape() == Shape{3, eval::Classifier::kFeatures});
    CHECK(model.forward(x).shape() == Shape{3, eval::Classifier::kClasses});
    const auto names = model.named_parameters();
    CHECK(names.front().first == "conv_in.weight");
    CHECK(names.back().first == "head.bias");
    CHECK(model.num_parameters() == 32 * 9 + 32 + 64 * 32 * 9 + 64 + 128 * 64 * 9 + 128 + 128 * 128 * 9 + 128 +
                                        2 * (32 + 64 + 128 + 128) + 128 * 128 + 128 + 10 * 128 + 10);
    CHECK_THROWS_AS(model.forward(VarF(TensorF({2, 3, 32, 32}))), ShapeError);
    ImageDataset cifar_like{TensorF({4, 3, 32, 32}), Tensor<int64_t>({4}), 10, "cifar-like"};
    CHECK(message_of<std::invalid_argument>([&] { eval::classifier_accuracy(model, cifar_like); })
              .find("cifar-like holds images [4,3,32,32]") != std::string::npos);
    // Batched features equal the features of the whole batch at once.
    const TensorF batched = eval::classifier_features(model, x.value(), 2);
    const TensorF whole = model.features(x).value();
    CHECK(std::equal(whole.data(), whole.data() + whole.numel(), batched.data()));
    CHECK_THROWS_WITH_AS(eval::classifier_features(model, x.value(), 0), "Classifier: batch size 0 < 1", std::invalid_argument);
}

TEST_CASE("eval: the classifier learns the embedded shapes, and saves and loads with its kind") {
    const ImageDataset train_set = make_shapes_dataset(3000, 11), test_set = make_shapes_dataset(500, 12);
    eval::Classifier model(3);
    eval::ClassifierTrainOptions options;
    options.max_steps = 300;  // 3.2 epochs; the accuracy was 0.93 (0.90 and 0.99 with model seeds 2 and 1)
    options.batch_size = 32;
    int64_t calls = 0;
    double last_loss = 0;
    const auto start = std::chrono::steady_clock::now();
    const double accuracy = eval::train_classifier(model, train_set, test_set, options, [&](const eval::ClassifierProgress& p) {
        ++calls;
        last_loss = p.loss;
        CHECK(p.total_steps == 300);
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    MESSAGE("shapes: held-out accuracy " << accuracy << " after 300 steps of 32 (" << seconds << " s), last loss " << last_loss);
    CHECK(calls == 300);
    CHECK(accuracy >= 0.85);  // chance is 0.1
    CHECK(eval::classifier_accuracy(model, test_set) == accuracy);

    const std::string path = "test_eval_classifier.safetensors";
    eval::save_classifier(model, path, {{"test_accuracy", std::to_string(accuracy)}, {"kind", "something else"}});
    eval::Classifier loaded(99);
    const auto meta = eval::load_classifier(loaded, path);
    CHECK(meta.at("kind") == eval::kClassifierKind);
    CHECK(meta.at("test_accuracy") == std::to_string(accuracy));
    const TensorF a = eval::classifier_features(model, test_set.images), b = eval::classifier_features(loaded, test_set.images);
    CHECK(std::equal(a.data(), a.data() + a.numel(), b.data()));

    // The same tensors without the marker (as Module::save writes them) are refused.
    model.save(path);
    CHECK(message_of<std::runtime_error>([&] { eval::load_classifier(loaded, path); }).find("not a ddpmkit classifier") !=
          std::string::npos);
    std::remove(path.c_str());
}
