// The tasks on data whose answers are known in closed form: Gaussian data, where
// E[eps | x_t] is exact, so inpainting, denoising and guidance can be checked against the
// true conditional distributions; resizing against PyTorch's values.
// Eigen's AVX-512 code makes GCC 12 warn inside its intrinsics header (_mm512_extractf64x4_pd):
// a false positive, silenced before anything includes that header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <doctest/doctest.h>

#include <Eigen/Dense>

#include <cmath>
#include <vector>

#include "ddpmkit/diffusion/mixture.hpp"
#include "ddpmkit/diffusion/tasks.hpp"
#include "helpers.hpp"

using namespace ddpmkit;
using namespace ddpmkit::diffusion;
using test::message_of;

namespace {

using Vec = Eigen::VectorXd;
using Mat = Eigen::MatrixXd;

// x_0 ~ N(mu, Sigma) in D dimensions, and its exact denoiser: with a = sqrt(abar_t),
// b = sqrt(1 - abar_t), x_t ~ N(a mu, a^2 Sigma + b^2 I), so
// E[eps | x_t] = b (a^2 Sigma + b^2 I)^-1 (x_t - a mu).
struct GaussianData {
    Vec mu;
    Mat sigma;

    Denoiser<double> denoiser(const Schedule& s) const {
        const GaussianData g = *this;
        return [g, s](const TensorD& x, const Tensor<int64_t>& t) {
            const int64_t D = g.mu.size();
            TensorD eps(x.shape());
            Mat gain;  // b (a^2 Sigma + b^2 I)^-1 at the timestep of the last example
            int64_t gain_t = -1;
            for (int64_t i = 0; i < x.size(0); ++i) {
                const double abar = s.alphas_cumprod[size_t(t(i))], a = std::sqrt(abar), b = std::sqrt(1 - abar);
                if (t(i) != gain_t) gain = b * (a * a * g.sigma + b * b * Mat::Identity(D, D)).inverse(), gain_t = t(i);
                Eigen::Map<Vec>(eps.data() + i * D, D) = gain * (Eigen::Map<const Vec>(x.data() + i * D, D) - a * g.mu);
            }
            return eps;
        };
    }
    // The distribution of the dimensions `missing` given the others at `value`.
    std::pair<Vec, Mat> conditional(const std::vector<int>& known, const std::vector<int>& missing, const Vec& value) const {
        auto block = [&](const std::vector<int>& rows, const std::vector<int>& cols) {
            Mat m(rows.size(), cols.size());
            for (size_t i = 0; i < rows.size(); ++i)
                for (size_t j = 0; j < cols.size(); ++j) m(i, j) = sigma(rows[i], cols[j]);
            return m;
        };
        Vec dk(known.size()), mm(missing.size());
        for (size_t i = 0; i < known.size(); ++i) dk(i) = value(known[i]) - mu(known[i]);
        for (size_t i = 0; i < missing.size(); ++i) mm(i) = mu(missing[i]);
        const Mat gain = block(missing, known) * block(known, known).inverse();
        return {mm + gain * dk, block(missing, missing) - gain * block(known, missing)};
    }
};

// Four correlated pixels of standard deviation about 0.4, pixels 0 and 1 strongly tied to 2 and 3.
GaussianData four_pixels() {
    GaussianData g;
    g.mu = Vec(4);
    g.mu << 0.1, -0.2, 0.0, 0.2;
    Vec u(4), v(4);
    u << 0.3, 0.3, 0.3, 0.3;
    v << 0.2, -0.2, 0.2, -0.2;
    g.sigma = 0.01 * Mat::Identity(4, 4) + u * u.transpose() + v * v.transpose();
    return g;
}

// Checks that the dimensions `dims` of the rows of x have this mean and covariance's
// diagonal, within 5 standard errors plus a discretization bias `bias`.
void check_moments(const TensorD& x, const std::vector<int>& dims, const Vec& mean, const Mat& cov, double bias) {
    const int64_t N = x.size(0), D = x.numel() / N;
    for (size_t k = 0; k < dims.size(); ++k) {
        double m = 0, v = 0;
        for (int64_t i = 0; i < N; ++i) m += x.data()[i * D + dims[k]] / double(N);
        for (int64_t i = 0; i < N; ++i) v += std::pow(x.data()[i * D + dims[k]] - m, 2) / double(N - 1);
        const double var = cov(k, k);
        INFO("dimension " << dims[k] << ": mean " << m << " (want " << mean(k) << "), variance " << v << " (want " << var << ")");
        CHECK(std::abs(m - mean(k)) < 5 * std::sqrt(var / double(N)) + bias);
        CHECK(std::abs(v - var) < 5 * var * std::sqrt(2.0 / double(N)) + bias * bias);
    }
}

SamplerOptions options(int64_t steps, double eta, uint64_t seed) {
    SamplerOptions o;
    o.steps = steps;
    o.eta = eta;
    o.clip_x0 = false;
    o.rng = Rng(seed);
    return o;
}

}  // namespace

TEST_CASE("tasks: RePaint draws the missing pixels from their true conditional; replacement is biased") {
    const Schedule s = Schedule::linear(1000);
    const GaussianData g = four_pixels();
    const int64_t N = 1000;
    Vec value = g.mu;
    value(0) += 0.5, value(1) += 0.1;  // the known pixels, away from their mean
    const auto conditional = g.conditional({0, 1}, {2, 3}, value);
    const Vec& mean = conditional.first;  // not a structured binding: INFO captures it
    const Mat& cov = conditional.second;
    TensorD known({N, 4});
    for (int64_t i = 0; i < N; ++i)
        for (int j = 0; j < 4; ++j) known(i, j) = j < 2 ? value(j) : 0.0;
    const TensorD mask({1, 4}, {1, 1, 0, 0});

    // RePaint's loop reaches the true conditional as its reverse steps approach the true
    // reverse kernels: at 500 ancestral steps of 1000 the bias left is under 0.01; with 100
    // steps it is 0.08 on pixel 2, and longer jumps are worse.
    Rng rng(3);
    const auto sampler = make_sampler<double>("ddim", s, Parametrization{}, options(500, 1.0, 4));
    InpaintOptions repaint;
    repaint.jump_length = 10;
    repaint.jump_count = 9;
    const TensorD x = inpaint(*sampler, g.denoiser(s), known, mask, rng, repaint);
    for (int64_t i = 0; i < N; ++i) CHECK(x(i, 0) == value(0));  // the known pixels come back exactly
    check_moments(x, {2, 3}, mean, cov, 0.01);

    // Replacement lets the known pixels steer the rest only weakly: the mean of pixel 2 stays
    // far from the conditional one, toward the prior's.
    const TensorD replaced = inpaint(*sampler, g.denoiser(s), known, mask, rng);
    double m2 = 0;
    for (int64_t i = 0; i < N; ++i) m2 += replaced(i, 2) / double(N);
    INFO("replacement: mean of pixel 2 " << m2 << ", conditional " << mean(0) << ", prior " << g.mu(2));
    CHECK(std::abs(m2 - mean(0)) > 10 * std::sqrt(cov(0, 0) / double(N)));
    CHECK(sampler->grid() == timestep_grid(s, 500, Spacing::Uniform));  // restored for the next batch
}

TEST_CASE("tasks: inpainting's errors name what is wrong") {
    const Schedule s = Schedule::linear(100);
    const GaussianData g = four_pixels();
    Rng rng(0);
    const TensorD known({2, 4});
    const auto heun = make_sampler<double>("heun", s, Parametrization{}, options(10, 0, 0));
    InpaintOptions jumps;
    jumps.jump_length = 2;
    jumps.jump_count = 1;
    CHECK(message_of<std::invalid_argument>([&] { inpaint(*heun, g.denoiser(s), known, TensorD({1, 4}), rng, jumps); })
              .find("one model call per grid step") != std::string::npos);
    const auto ddim = make_sampler<double>("ddim", s, Parametrization{}, options(10, 0, 0));
    CHECK(message_of<std::exception>([&] { inpaint(*ddim, g.denoiser(s), known, TensorD({3, 4}), rng); }).find("broadcast") != std::string::npos);
    jumps.jump_length = 0;
    CHECK(message_of<std::invalid_argument>([&] { inpaint(*ddim, g.denoiser(s), known, TensorD({1, 4}), rng, jumps); }).find("jump_length") !=
          std::string::npos);
}

TEST_CASE("tasks: Tweedie's one-step denoiser is the posterior mean; SDEdit samples the posterior") {
    const Schedule s = Schedule::linear(1000);
    const GaussianData g = four_pixels();
    const Mat I = Mat::Identity(4, 4);

    // sigma at a timestep's own noise level: no noise is added, and E[x_0 | y] =
    // mu + Sigma (Sigma + sigma^2 I)^-1 (y - mu) exactly.
    const double sigma = std::sqrt((1 - s.alphas_cumprod[150]) / s.alphas_cumprod[150]);
    CHECK(timestep_for_sigma(s, sigma) == 150);
    const TensorD y({3, 4}, {0.5, 0.2, -0.3, 0.1, -0.4, -0.6, 0.0, 0.9, 0.1, 0.1, 0.1, 0.1});
    Rng rng(1);
    const TensorD x0 = tweedie_denoise(s, Parametrization{}, g.denoiser(s), y, sigma, rng);
    for (int64_t i = 0; i < 3; ++i) {
        const Vec want = g.mu + g.sigma * (g.sigma + sigma * sigma * I).ldlt().solve(Eigen::Map<const Vec>(y.data() + 4 * i, 4) - g.mu);
        for (int j = 0; j < 4; ++j) CHECK(x0(i, j) == doctest::Approx(want(j)).epsilon(1e-9));
    }

    // Between two timesteps' levels the missing noise is added: x_t has the variance of eq. 4.
    const double between = 0.5 * (sigma + std::sqrt((1 - s.alphas_cumprod[151]) / s.alphas_cumprod[151]));
    CHECK(timestep_for_sigma(s, between) == 151);
    const int64_t N = 20000;
    const TensorD xt = noisy_to_xt(s, TensorD::randn({N}, rng, 0.0, between), between, rng);
    double v = 0;
    for (int64_t i = 0; i < N; ++i) v += xt(i) * xt(i) / double(N);
    CHECK(std::abs(v - (1 - s.alphas_cumprod[151])) < 5 * (1 - s.alphas_cumprod[151]) * std::sqrt(2.0 / N));

    // SDEdit from one noisy image: the ancestral chain from the matching timestep draws from
    // p(x_0 | y) = N(mu + Sigma (Sigma + s^2 I)^-1 (y - mu), Sigma - Sigma (Sigma + s^2 I)^-1 Sigma).
    const double noise = 0.3;
    const int64_t M = 2000;
    Vec y0(4);
    y0 << 0.6, 0.3, -0.2, 0.4;
    TensorD noisy({M, 4});
    for (int64_t i = 0; i < M; ++i)
        for (int j = 0; j < 4; ++j) noisy(i, j) = y0(j);
    const Mat gain = g.sigma * (g.sigma + noise * noise * I).inverse();
    const Vec post_mean = g.mu + gain * (y0 - g.mu);
    const Mat post_cov = g.sigma - gain * g.sigma;
    const auto ddpm = make_sampler<double>("ddpm", s, Parametrization{}, options(10, 0, 2));
    const TensorD x = denoise(*ddpm, g.denoiser(s), noisy, noise, rng);
    check_moments(x, {0, 1, 2, 3}, post_mean, post_cov, 0.01);

    // Image-to-image at a small strength keeps an image of the data close to itself.
    const Mat L = g.sigma.llt().matrixL();
    TensorD images({8, 4});
    for (int64_t i = 0; i < 8; ++i) {
        const Vec z = Eigen::Map<const Vec>(TensorD::randn({4}, rng).data(), 4);
        Eigen::Map<Vec>(images.data() + 4 * i, 4) = g.mu + L * z;
    }
    const auto ddim = make_sampler<double>("ddim", s, Parametrization{}, options(50, 0, 2));
    const TensorD edited = image_to_image(*ddim, g.denoiser(s), images, 0.02, rng);
    double edit = 0, apart = 0;  // mean squared change, and mean squared distance between two images
    for (int64_t i = 0; i < images.numel(); ++i) {
        edit += std::pow(edited.data()[i] - images.data()[i], 2) / double(images.numel());
        apart += std::pow(images.data()[i] - images.data()[(i + 4) % images.numel()], 2) / double(images.numel());
    }
    INFO("mean squared change " << edit << ", between images " << apart);
    CHECK(edit < 0.05 * apart);
    CHECK(ddim->grid() == timestep_grid(s, 50, Spacing::Uniform));

    // From timestep 45 a 10-step sampler calls the model at 45, 40, ..., 0.
    std::vector<int64_t> calls;
    const Denoiser<double> exact = g.denoiser(s);
    const Denoiser<double> counted = [&](const TensorD& x, const Tensor<int64_t>& t) {
        calls.push_back(t(0));
        return exact(x, t);
    };
    const auto ddim10 = make_sampler<double>("ddim", s, Parametrization{}, options(10, 0, 2));
    sample_from(*ddim10, counted, images, 45);
    CHECK(calls == std::vector<int64_t>{45, 40, 35, 30, 25, 20, 15, 10, 5, 0});

    CHECK(message_of<std::invalid_argument>([&] { timestep_for_sigma(s, 1e4); }).find("largest noise level") != std::string::npos);
    CHECK(message_of<std::invalid_argument>([&] { image_to_image(*ddim, g.denoiser(s), images, 0.0, rng); }).find("(0, 1]") != std::string::npos);
}

TEST_CASE("tasks: classifier-free guidance: w = 0 is the class's distribution, larger w moves away from the other class") {
    // Two classes N(-/+ (0.5, 0), 0.2^2 I) with equal weights; label 2 is "no class" (the mixture).
    const Schedule s = Schedule::linear(1000);
    const double sd = 0.2;
    const Denoiser<double> exact = GaussianMixture<double>{TensorD({2, 2}, {-0.5, 0.0, 0.5, 0.0}), sd, Tensor<int64_t>({2}, {0, 1})}.denoiser(s);
    int64_t calls = 0, batch = 0;
    const Denoiser<double> model = [&](const TensorD& x, const Tensor<int64_t>& t, const nn::Condition<double>& c) {
        ++calls;
        batch = x.size(0);
        return exact(x, t, c);
    };
    const int64_t N = 2000;
    nn::Condition<double> class0;
    class0.labels = Tensor<int64_t>(Shape{N}, 0);
    Rng rng(5);
    const TensorD xT = TensorD::randn({N, 2}, rng);
    std::vector<double> mean_x;
    for (double w : {0.0, 1.0, 3.0}) {
        const auto ddim = make_sampler<double>("ddim", s, Parametrization{}, options(100, 0, 0));
        calls = 0;
        const TensorD x = sample(*ddim, classifier_free_guidance(model, w, 2), xT, class0);
        CHECK(calls == 100);  // one model call per step, on both halves at once
        CHECK(batch == (w == 0 ? N : 2 * N));
        double m = 0;
        for (int64_t i = 0; i < N; ++i) m += x(i, 0) / double(N);
        mean_x.push_back(m);
        if (w == 0) {
            Vec mu(2);
            mu << -0.5, 0.0;
            check_moments(x, {0, 1}, mu, sd * sd * Mat::Identity(2, 2), 0.01);
        }
    }
    INFO("mean of x for w = 0, 1, 3: " << mean_x[0] << ", " << mean_x[1] << ", " << mean_x[2]);
    CHECK(mean_x[1] < mean_x[0] - 0.05);
    CHECK(mean_x[2] < mean_x[1] - 0.05);

    CHECK(message_of<std::invalid_argument>([&] { classifier_free_guidance(model, 1.0, 2)(xT, Tensor<int64_t>(Shape{N}, 5)); })
              .find("no labels") != std::string::npos);
    CHECK(message_of<std::invalid_argument>([&] { classifier_free_guidance(model, -1.0, 2); }).find(">= 0") != std::string::npos);
}

TEST_CASE("tasks: the exact mixture model: one component is the Gaussian's denoiser; a label picks its components") {
    const Schedule s = Schedule::linear(1000);
    GaussianData g;
    g.mu = Vec(3);
    g.mu << 0.3, -0.1, 0.5;
    g.sigma = 0.04 * Mat::Identity(3, 3);
    const Tensor<int64_t> t({3}, {0, 300, 999});
    Rng rng(2);
    const TensorD x = TensorD::randn({3, 3}, rng);
    const TensorD one = GaussianMixture<double>{TensorD({1, 3}, {0.3, -0.1, 0.5}), 0.2, {}}.denoiser(s)(x, t);
    const TensorD want = g.denoiser(s)(x, t);
    for (int64_t i = 0; i < x.numel(); ++i) CHECK(one.data()[i] == doctest::Approx(want.data()[i]).epsilon(1e-12));

    // Components 0 and 2 are class 1: asked for class 1 the model is their two-component
    // mixture; a label no component has (5) is the whole mixture.
    const TensorD centres({3, 3}, {0.3, -0.1, 0.5, -0.6, 0.2, 0.0, 0.1, 0.1, -0.4});
    const GaussianMixture<double> labelled{centres, 0.2, Tensor<int64_t>({3}, {1, 0, 1})};
    const GaussianMixture<double> class1{TensorD({2, 3}, {0.3, -0.1, 0.5, 0.1, 0.1, -0.4}), 0.2, {}};
    nn::Condition<double> c;
    c.labels = Tensor<int64_t>({3}, {1, 1, 1});
    const TensorD picked = labelled.denoiser(s)(x, t, c), two = class1.denoiser(s)(x, t);
    c.labels = Tensor<int64_t>({3}, {5, 5, 5});
    const TensorD none = labelled.denoiser(s)(x, t, c), all = GaussianMixture<double>{centres, 0.2, {}}.denoiser(s)(x, t);
    for (int64_t i = 0; i < x.numel(); ++i) {
        CHECK(picked.data()[i] == doctest::Approx(two.data()[i]).epsilon(1e-12));
        CHECK(none.data()[i] == doctest::Approx(all.data()[i]).epsilon(1e-12));
    }

    CHECK(message_of<std::invalid_argument>([&] { GaussianMixture<double>{centres, 0.0, {}}.denoiser(s); }).find("> 0") != std::string::npos);
    CHECK(message_of<std::invalid_argument>([&] { GaussianMixture<double>{centres, 0.2, {}}.denoiser(s)(TensorD({2, 4}), Tensor<int64_t>({2}, {1, 1})); })
              .find("not the size of a centre") != std::string::npos);
    CHECK(message_of<std::invalid_argument>([&] { GaussianMixture<double>{centres, 0.2, {}}.denoiser(s)(x, t, c); }).find("no condition") !=
          std::string::npos);
}

TEST_CASE("tasks: the Gaussian blur of a point is the normalized kernel, of a constant the constant") {
    TensorD point({1, 1, 9, 9});
    point(0, 0, 4, 4) = 1;
    const TensorD b = gaussian_blur(point, 1.0);
    double z = 0;  // the kernel's sum over its radius of 3 sd
    for (int i = -3; i <= 3; ++i) z += std::exp(-0.5 * i * i);
    for (int r = 0; r < 9; ++r)
        for (int c = 0; c < 9; ++c) {
            const int dr = r - 4, dc = c - 4;
            const double want = std::abs(dr) <= 3 && std::abs(dc) <= 3 ? std::exp(-0.5 * (dr * dr + dc * dc)) / (z * z) : 0.0;
            CHECK(b(0, 0, r, c) == doctest::Approx(want).epsilon(1e-12));
        }
    const TensorD flat = gaussian_blur(TensorD({2, 1, 5, 7}, 0.25), 2.0);  // the edges repeated
    for (int64_t i = 0; i < flat.numel(); ++i) CHECK(flat.data()[i] == doctest::Approx(0.25).epsilon(1e-12));
    CHECK(message_of<std::invalid_argument>([&] { gaussian_blur(point, 0.0); }).find("> 0 pixels") != std::string::npos);
}

TEST_CASE("tasks: guidance combines the mean channels and keeps the conditional variance channels") {
    // A model with a learned variance: 2 channels for 1, the mean channel 10 + label, the
    // variance channel the label; guided with w: mean 10 + (1 + w) y - w null, variance y.
    const Denoiser<double> model = [](const TensorD& x, const Tensor<int64_t>&, const nn::Condition<double>& c) {
        TensorD out({x.size(0), 2, x.size(2), x.size(3)});
        for (int64_t i = 0; i < x.size(0); ++i)
            for (int64_t k = 0; k < x.size(2) * x.size(3); ++k) {
                out.data()[(2 * i) * 4 + k] = 10.0 + double(c.labels(i));
                out.data()[(2 * i + 1) * 4 + k] = double(c.labels(i));
            }
        return out;
    };
    nn::Condition<double> c;
    c.labels = Tensor<int64_t>(Shape{2}, std::vector<int64_t>{0, 1});
    const TensorD out = classifier_free_guidance(model, 2.0, 3)(TensorD({2, 1, 2, 2}), Tensor<int64_t>(Shape{2}, 5), c);
    REQUIRE(out.shape() == Shape{2, 2, 2, 2});
    for (int64_t k = 0; k < 2; ++k) {
        CHECK(out(0, 0, k, 1) == 10.0 + 3 * 0 - 2 * 3);
        CHECK(out(1, 0, k, 1) == 10.0 + 3 * 1 - 2 * 3);
        CHECK(out(0, 1, k, 0) == 0.0);
        CHECK(out(1, 1, k, 0) == 1.0);
    }
}

TEST_CASE("tasks: conditions and tensors stack along the batch") {
    nn::Condition<float> a, b;
    a.labels = Tensor<int64_t>(Shape{2}, std::vector<int64_t>{1, 2});
    b.labels = Tensor<int64_t>(Shape{1}, std::vector<int64_t>{7});
    a.image = TensorF({2, 1, 1, 2}, {1, 2, 3, 4});
    b.image = TensorF({1, 1, 1, 2}, {5, 6});
    const nn::Condition<float> c = nn::concat_rows(a, b);
    CHECK(c.labels.data()[2] == 7);
    CHECK(c.image.shape() == Shape{3, 1, 1, 2});
    CHECK(c.image(2, 0, 0, 1) == 6.0f);
    CHECK(message_of<std::exception>([&] { concat_rows(a.image, TensorF({1, 2, 1, 1})); }).find("first axis") != std::string::npos);
    b.image = TensorF();
    CHECK(message_of<std::invalid_argument>([&] { nn::concat_rows(a, b); }).find("different parts") != std::string::npos);
}

TEST_CASE("tasks: resizing matches PyTorch's interpolate; area downsampling averages blocks") {
    const TensorD x({1, 1, 2, 3}, {0.0, 1.0, 4.0, -2.0, 0.5, 3.0});
    const TensorD bilinear = resize(x, 5, 4, Interpolation::Bilinear), bicubic = resize(x, 5, 4, Interpolation::Bicubic);
    // torch.nn.functional.interpolate(x, size=(5, 4), mode=..., align_corners=False)
    const std::vector<double> want_bilinear = {0.0,    0.625,    2.125,   4.0, -0.2, 0.51875, 2.05625, 3.9, -1.0, 0.09375, 1.78125, 3.5,
                                               -1.8, -0.33125, 1.50625, 3.1, -2.0, -0.4375, 1.4375,  3.0};
    const std::vector<double> want_bicubic = {0.16059283447265665, 0.4187205200195314,   2.2477387084960934, 4.329538757324219,
                                              -0.24460595703125163, 0.22923974609374947, 2.148656738281251,  4.130389160156252,
                                              -1.1256103515625,     -0.1827392578125,    1.9332275390625,    3.6973876953125,
                                              -2.006614746093751,   -0.5947182617187505, 1.7177983398437486, 3.264386230468748,
                                              -2.4118135375976566,  -0.7841990356445314, 1.618716369628906,  3.0652366333007808};
    for (int64_t i = 0; i < 20; ++i) {
        CHECK(bilinear.data()[i] == doctest::Approx(want_bilinear[size_t(i)]).epsilon(1e-6));
        CHECK(bicubic.data()[i] == doctest::Approx(want_bicubic[size_t(i)]).epsilon(1e-6));
    }
    const TensorD down = downsample_area(TensorD({1, 1, 2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}), 2);
    CHECK(down.shape() == Shape{1, 1, 1, 2});
    CHECK(down(0, 0, 0, 0) == 3.5);
    CHECK(down(0, 0, 0, 1) == 5.5);
    CHECK(message_of<std::exception>([&] { downsample_area(TensorD({1, 1, 3, 4}), 2); }).find("multiples") != std::string::npos);
    // Upsampling a constant image changes nothing; SR3's condition is the bilinear upsampling.
    const TensorD flat = superres_condition(TensorD({2, 1, 7, 7}, 0.25), 28);
    for (int64_t i = 0; i < flat.numel(); ++i) CHECK(flat.data()[i] == doctest::Approx(0.25));
}
