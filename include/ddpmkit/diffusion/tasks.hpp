// ddpmkit — the tasks, built on the open core: classifier-free guidance (Ho & Salimans 2022)
// is a denoiser wrapping a denoiser; inpainting by replacement and RePaint (Lugmayr et al.
// 2022), denoising and image-to-image by SDEdit (Meng et al. 2021) are loops over the
// steppers of samplers.hpp; super-resolution (SR3, Saharia et al. 2021) is a model
// conditioned on the upsampled low-resolution image, made here by resizing.
#pragma once

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "ddpmkit/config.hpp"
#include "ddpmkit/diffusion/samplers.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace diffusion {

// ---- classifier-free guidance ----

// eps = (1 + w) eps(x, y) - w eps(x, null), both halves from one model call on the doubled
// batch (Ho & Salimans 2022, eq. 6). The same combination of x_0 or v predictions is the
// same guidance (each is affine in eps with weights summing to 1); a learned variance (the
// second half of the channels) is the conditional one's. w = 0 is the conditional model.
template <class T>
Denoiser<T> classifier_free_guidance(Denoiser<T> model, double w, int64_t null_label) {
    if (!(w >= 0) || !std::isfinite(w)) throw std::invalid_argument("classifier_free_guidance: the scale w must be >= 0, not " + std::to_string(w));
    return [model = std::move(model), w, null_label](const Tensor<T>& x, const Tensor<int64_t>& t, const nn::Condition<T>& c) {
        if (!c.labels.defined()) throw std::invalid_argument("classifier_free_guidance: no labels to guide towards");
        if (w == 0) return model(x, t, c);
        nn::Condition<T> unconditional = c;
        unconditional.labels = Tensor<int64_t>(c.labels.shape(), null_label);
        const Tensor<T> both = model(concat_rows(x, x), concat_rows(t, t), nn::concat_rows(c, unconditional));
        const int64_t B = x.size(0), per_image = both.numel() / (2 * B), combined = x.numel() / B;  // the mean channels
        if (both.size(0) != 2 * B || both.size(1) % x.size(1) != 0)
            throw shape_error("classifier_free_guidance", both.shape(), x.shape(), "(model output, x) do not match");
        Tensor<T> out = both.slice(0, B).clone();
        const T* u = both.data() + B * per_image;
        for (int64_t b = 0; b < B; ++b)
            for (int64_t i = b * per_image; i < b * per_image + combined; ++i) out.data()[i] = T((1 + w) * out.data()[i] - w * u[i]);
        return out;
    };
}

// ---- from x_t at any timestep: denoising and image-to-image (SDEdit) ----

// Runs the sampler from x_t at timestep t to x_0 on as many timesteps as its grid has (at
// most t + 1), evenly spaced from t down to 0: --steps keep their meaning, model calls, on the
// shorter way. The sampler's grid is restored for the next call.
template <class T>
Tensor<T> sample_from(ProcessSampler<T>& sampler, const NoDeduce<Denoiser<T>>& model, const Tensor<T>& x_t, int64_t t,
                      const NoDeduce<nn::Condition<T>>& c = {}, const NoDeduce<StepCallback<T>>& on_step = {}) {
    const std::vector<int64_t> grid = sampler.grid();
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(grid.size()), t + 1);
    std::vector<int64_t> rest = {t};  // spaced at least 1 apart, so rounding keeps them distinct
    for (int64_t k = 1; k < n; ++k) rest.push_back(std::llround(double(t) * (1.0 - double(k) / double(n - 1))));
    sampler.set_timesteps(rest);
    const Tensor<T> x0 = sample(sampler, model, x_t, c, on_step);
    sampler.set_timesteps(grid);
    return x0;
}

// The first timestep whose noise level sqrt((1 - abar_t) / abar_t) reaches sigma: the t of
// SDEdit for an image with Gaussian noise of standard deviation sigma.
inline int64_t timestep_for_sigma(const Schedule& s, double sigma) {
    if (!(sigma > 0)) throw std::invalid_argument("timestep_for_sigma: sigma must be > 0, not " + std::to_string(sigma));
    for (int64_t t = 0; t < s.num_steps(); ++t)
        if (std::sqrt((1 - s.alphas_cumprod[static_cast<size_t>(t)]) / s.alphas_cumprod[static_cast<size_t>(t)]) >= sigma) return t;
    throw std::invalid_argument("timestep_for_sigma: sigma " + std::to_string(sigma) + " is above the schedule's largest noise level " +
                                std::to_string(std::sqrt(1 / s.alphas_cumprod.back() - 1)));
}

// y = x_0 + sigma z as a draw of x_t at t = timestep_for_sigma(sigma): the missing noise
// sqrt(sigma_t^2 - sigma^2) z' is added (sigma_t >= sigma) and the sum scaled by
// sqrt(abar_t), so x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps exactly, as eq. 4.
template <class T>
Tensor<T> noisy_to_xt(const Schedule& s, const Tensor<T>& y, double sigma, Rng& rng) {
    const int64_t t = timestep_for_sigma(s, sigma);
    const double abar = s.alphas_cumprod[static_cast<size_t>(t)], sigma_t = std::sqrt((1 - abar) / abar);
    return std::sqrt(abar) * (y + std::sqrt(std::max(0.0, sigma_t * sigma_t - sigma * sigma)) * Tensor<T>::randn(y.shape(), rng));
}

// Denoising by SDEdit: y holds images with Gaussian noise of known sigma; the reverse chain
// starts at the matching timestep.
template <class T>
Tensor<T> denoise(ProcessSampler<T>& sampler, const NoDeduce<Denoiser<T>>& model, const Tensor<T>& y, double sigma, Rng& rng,
                  const NoDeduce<nn::Condition<T>>& c = {}) {
    return sample_from(sampler, model, noisy_to_xt(sampler.schedule(), y, sigma, rng), timestep_for_sigma(sampler.schedule(), sigma), c);
}

// Tweedie's formula: E[x_0 | x_t] = (x_t - sqrt(1 - abar_t) E[eps | x_t]) / sqrt(abar_t), one
// model call; for y = x_0 + sigma z it is the posterior mean (the least-squares estimate).
template <class T>
Tensor<T> tweedie_denoise(const Schedule& s, const Parametrization& p, const NoDeduce<Denoiser<T>>& model, const Tensor<T>& y, double sigma,
                          Rng& rng, const NoDeduce<nn::Condition<T>>& c = {}) {
    NoGradGuard no_grad;
    const Tensor<int64_t> t(Shape{y.size(0)}, timestep_for_sigma(s, sigma));
    const Tensor<T> x_t = noisy_to_xt(s, y, sigma, rng);
    return p_mean_variance(s, p, Var<T>(model(x_t, t, c)), Var<T>(x_t), t).pred_x0.value();
}

// Image-to-image (SDEdit): the image noised to timestep round(strength (T - 1)) by eq. 4,
// then the reverse chain; strength in (0, 1], 1 ignores the image.
template <class T>
Tensor<T> image_to_image(ProcessSampler<T>& sampler, const NoDeduce<Denoiser<T>>& model, const Tensor<T>& image, double strength, Rng& rng,
                         const NoDeduce<nn::Condition<T>>& c = {}) {
    if (!(strength > 0 && strength <= 1)) throw std::invalid_argument("image_to_image: strength must be in (0, 1], not " + std::to_string(strength));
    const int64_t t = std::llround(strength * double(sampler.schedule().num_steps() - 1));
    const Tensor<T> x_t = q_sample(sampler.schedule(), image, Tensor<int64_t>(Shape{image.size(0)}, t), Tensor<T>::randn(image.shape(), rng));
    return sample_from(sampler, model, x_t, t, c);
}

// ---- inpainting ----

struct InpaintOptions {
    int64_t jump_length = 0;  // RePaint: grid steps jumped back up (0: the replacement method)
    int64_t jump_count = 0;   // RePaint: jumps per window, so each window is sampled jump_count + 1 times
};

// Fills where mask is 0 (1: keep `known`; the mask broadcasts, as [1, 1, H, W]). After each
// step the known pixels are put back, noised to the next call's timestep by eq. 4 (the
// replacement method); with jumps (RePaint), every jump_length grid steps from the end x is
// noised back up jump_length grid steps (q_jump) and sampled down again, jump_count times,
// which lets the known pixels steer the rest. RePaint needs one model call per grid step
// (ddpm, ddim, dpm, euler). The sampler's grid is restored for the next call.
template <class T>
Tensor<T> inpaint(ProcessSampler<T>& sampler, const NoDeduce<Denoiser<T>>& model, const Tensor<T>& known, const Tensor<T>& mask, Rng& rng,
                  const InpaintOptions& o = {}, const NoDeduce<nn::Condition<T>>& c = {}) {
    if (o.jump_length < 0 || o.jump_count < 0 || (o.jump_count > 0 && o.jump_length == 0))
        throw std::invalid_argument("inpaint: jumps need jump_length > 0 and jump_count >= 0");
    const std::vector<int64_t> grid = sampler.grid();
    const int64_t n = static_cast<int64_t>(grid.size());
    if (o.jump_count > 0 && sampler.total_calls() != n)
        throw std::invalid_argument("inpaint: RePaint's jumps need a sampler with one model call per grid step (not " +
                                    std::to_string(sampler.total_calls()) + " calls on " + std::to_string(n) + " steps)");
    const Tensor<T> keep = mask * Tensor<T>::ones(known.shape()), fill = 1.0 - keep;
    if (keep.shape() != known.shape()) throw shape_error("inpaint", mask.shape(), known.shape(), "(mask, known): the mask must broadcast to the images");
    auto known_at = [&](int64_t t) {
        return q_sample(sampler.schedule(), known, Tensor<int64_t>(Shape{known.size(0)}, t), Tensor<T>::randn(known.shape(), rng));
    };
    std::vector<int64_t> jumps_left(static_cast<size_t>(n), o.jump_count);
    sampler.set_timesteps(grid);
    NoGradGuard no_grad;
    Tensor<T> x = keep * known_at(grid[0]) + fill * Tensor<T>::randn(known.shape(), rng);
    while (true) {
        const int64_t t = sampler.timestep();
        x = sampler.step(x, t, model(x, Tensor<int64_t>(Shape{x.size(0)}, t), c));
        if (sampler.done()) break;
        const int64_t next = sampler.timestep();
        x = keep * known_at(next) + fill * x;
        const int64_t k = static_cast<int64_t>(std::find(grid.begin(), grid.end(), next) - grid.begin());
        if (o.jump_count > 0 && k >= o.jump_length && (n - 1 - k) % o.jump_length == 0 && jumps_left[static_cast<size_t>(k)] > 0) {
            --jumps_left[static_cast<size_t>(k)];
            const int64_t up = grid[static_cast<size_t>(k - o.jump_length)];
            x = q_jump(sampler.schedule(), x, next, up, Tensor<T>::randn(x.shape(), rng));
            sampler.set_timesteps(std::vector<int64_t>(grid.begin() + (k - o.jump_length), grid.end()));
        }
    }
    sampler.set_timesteps(grid);
    return keep * known + fill * x;
}

// ---- resizing, for super-resolution and its baselines ----

// The mean of each factor x factor block: [B, C, H, W] -> [B, C, H / factor, W / factor].
template <class T>
Tensor<T> downsample_area(const Tensor<T>& x, int64_t factor) {
    if (x.dim() != 4 || factor < 1 || x.size(2) % factor != 0 || x.size(3) % factor != 0)
        throw shape_error("downsample_area", x.shape(), "is not [B, C, H, W] with H and W multiples of the factor " + std::to_string(factor));
    const int64_t BC = x.size(0) * x.size(1), H = x.size(2), W = x.size(3), h = H / factor, w = W / factor;
    Tensor<T> out({x.size(0), x.size(1), h, w});
    for (int64_t p = 0; p < BC; ++p)
        for (int64_t i = 0; i < h; ++i)
            for (int64_t j = 0; j < w; ++j) {
                double sum = 0;
                for (int64_t di = 0; di < factor; ++di)
                    for (int64_t dj = 0; dj < factor; ++dj) sum += x.data()[(p * H + i * factor + di) * W + j * factor + dj];
                out.data()[(p * h + i) * w + j] = static_cast<T>(sum / double(factor * factor));
            }
    return out;
}

enum class Interpolation {
    Bilinear,  // the triangle kernel
    Bicubic    // Keys' cubic convolution, a = -0.75 (as PyTorch)
};

// Resizes [B, C, h, w] to [B, C, H, W] with half-pixel centres and edge pixels repeated (as
// PyTorch's interpolate with align_corners=False): separable, rows then columns.
template <class T>
Tensor<T> resize(const Tensor<T>& x, int64_t H, int64_t W, Interpolation kind) {
    if (x.dim() != 4 || H < 1 || W < 1) throw shape_error("resize", x.shape(), "is not [B, C, H, W]");
    const int64_t BC = x.size(0) * x.size(1), h = x.size(2), w = x.size(3);
    // The taps and weights of each output position along one axis.
    auto taps = [kind](int64_t in, int64_t out) {
        std::vector<std::vector<std::pair<int64_t, double>>> result(static_cast<size_t>(out));
        const double scale = double(in) / double(out);
        for (int64_t o = 0; o < out; ++o) {
            const double src = (double(o) + 0.5) * scale - 0.5;
            const int64_t base = static_cast<int64_t>(std::floor(src));
            const double f = src - double(base);
            std::vector<std::pair<int64_t, double>>& r = result[static_cast<size_t>(o)];
            if (kind == Interpolation::Bilinear) {
                r = {{base, 1 - f}, {base + 1, f}};
                if (src < 0) r = {{0, 1.0}};  // PyTorch clamps the source coordinate at 0
            } else {
                const double a = -0.75;
                auto near = [a](double d) { return ((a + 2) * d - (a + 3)) * d * d + 1; };             // |d| <= 1
                auto far = [a](double d) { return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a; };      // 1 < |d| < 2
                r = {{base - 1, far(f + 1)}, {base, near(f)}, {base + 1, near(1 - f)}, {base + 2, far(2 - f)}};
            }
            for (auto& [i, weight] : r) i = std::clamp<int64_t>(i, 0, in - 1);
        }
        return result;
    };
    const auto rows = taps(h, H), cols = taps(w, W);
    Tensor<T> out({x.size(0), x.size(1), H, W});
    std::vector<double> row(static_cast<size_t>(w));
    for (int64_t p = 0; p < BC; ++p)
        for (int64_t i = 0; i < H; ++i) {
            std::fill(row.begin(), row.end(), 0.0);
            for (const auto& [r, weight] : rows[static_cast<size_t>(i)])
                for (int64_t j = 0; j < w; ++j) row[static_cast<size_t>(j)] += weight * x.data()[(p * h + r) * w + j];
            for (int64_t j = 0; j < W; ++j) {
                double v = 0;
                for (const auto& [col, weight] : cols[static_cast<size_t>(j)]) v += weight * row[static_cast<size_t>(col)];
                out.data()[(p * H + i) * W + j] = static_cast<T>(v);
            }
        }
    return out;
}

// SR3's condition: the low-resolution images upsampled bilinearly to the model's size.
template <class T>
Tensor<T> superres_condition(const Tensor<T>& low, int64_t res) {
    return resize(low, res, res, Interpolation::Bilinear);
}

// Gaussian blur of standard deviation sd pixels, edge pixels repeated (the baseline that
// denoising is measured against): separable, rows then columns, of [B, C, H, W].
template <class T>
Tensor<T> gaussian_blur(const Tensor<T>& x, double sd) {
    if (x.dim() != 4) throw shape_error("gaussian_blur", x.shape(), "is not [B, C, H, W]");
    if (!(sd > 0)) throw std::invalid_argument("gaussian_blur: the width must be > 0 pixels, not " + std::to_string(sd));
    const int64_t radius = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(3 * sd))), BC = x.size(0) * x.size(1), H = x.size(2),
                  W = x.size(3);
    std::vector<double> kernel(static_cast<size_t>(2 * radius + 1));
    double sum = 0;
    for (int64_t i = -radius; i <= radius; ++i) sum += kernel[static_cast<size_t>(i + radius)] = std::exp(-0.5 * double(i * i) / (sd * sd));
    // One pass along an axis: `stride` apart, `n` long, at every position of the other axis.
    auto pass = [&](const Tensor<T>& in, int64_t n, int64_t stride) {
        Tensor<T> out(in.shape());
        for (int64_t p = 0; p < BC; ++p)
            for (int64_t q = 0; q < H * W; ++q) {
                const int64_t at = (q / stride) % n, base = p * H * W + q - at * stride;
                double v = 0;
                for (int64_t i = -radius; i <= radius; ++i)
                    v += kernel[static_cast<size_t>(i + radius)] * double(in.data()[base + std::clamp<int64_t>(at + i, 0, n - 1) * stride]);
                out.data()[p * H * W + q] = static_cast<T>(v / sum);
            }
        return out;
    };
    return pass(pass(x, W, 1), H, W);
}

}  // namespace diffusion
DDPMKIT_END_NAMESPACE
