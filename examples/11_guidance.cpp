// 11 — classifier-free guidance on a two-dimensional toy.
//
// A class-conditional model learns eps(x_t, y) and, trained with the label dropped now and
// then, the unconditional eps(x_t) as well. Guidance samples with
//     eps_w = (1 + w) eps(x_t, y) - w eps(x_t)                     (Ho & Salimans 2022, eq. 6)
// which, as a score, is grad log p(x_t | y) + w grad log p(y | x_t): the class-conditional
// density sharpened by an implicit classifier raised to the power w. Here the model is exact:
// 8 small Gaussians on a circle, the even ones class 0 and the odd ones class 1
// (diffusion::GaussianMixture with labels; label 2, which no component has, is "no class").
// With w = 0 the samples of class 0 are exactly its 4 Gaussians; larger w pushes them away
// from where class 1 could have been.
//
// Prints, for w = 0, 1, 3 and 8, the share of the samples of class 0 on its Gaussians (within
// 4 sd), their distance to the nearest class-0 centre and to the nearest class-1 centre; writes
// 11_guidance.png (the samples for w = 0 and w = 3, and the centres of both classes).
// PNG output: one .cpp file of a program compiles stb_image_write, by defining this first.
#define DDPMKIT_STB_IMPLEMENTATION

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <ddpmkit/ddpmkit.hpp>

using namespace ddpmkit;

int main() {
    const int64_t N = 1000, K = 8;
    const double pi = 3.14159265358979323846, sd = 0.2;
    TensorF centres({K, 2});
    Tensor<int64_t> labels({K});
    for (int64_t k = 0; k < K; ++k) {
        centres(k, 0) = float(0.8 * std::cos(2 * pi * k / K)), centres(k, 1) = float(0.8 * std::sin(2 * pi * k / K));
        labels(k) = k % 2;
    }
    const diffusion::Schedule s = diffusion::Schedule::linear(1000);
    const diffusion::Denoiser<float> model = diffusion::GaussianMixture<float>{centres, sd, labels}.denoiser(s);
    nn::Condition<float> class0;
    class0.labels = Tensor<int64_t>(Shape{N}, 0);
    Rng rng(4);
    const TensorF xT = TensorF::randn({N, 2}, rng);

    // The distance from x to the nearest centre of class c, in sd.
    auto nearest = [&](const TensorF& x, int64_t i, int64_t c) {
        double d = INFINITY;
        for (int64_t k = 0; k < K; ++k)
            if (labels(k) == c) d = std::min(d, std::hypot(double(x(i, 0)) - centres(k, 0), double(x(i, 1)) - centres(k, 1)) / sd);
        return d;
    };
    PlotOptions o;
    o.title = "samples of class 0, with and without guidance";
    o.width = o.height = 640;
    o.x_min = o.y_min = -1.4, o.x_max = o.y_max = 1.4;
    Plot plot(o);
    std::printf("samples of class 0 (ancestral sampling, 1,000 steps):\n");
    for (double w : {0.0, 1.0, 3.0, 8.0}) {
        diffusion::SamplerOptions so;
        so.clip_x0 = false;  // points, not images in [-1, 1]
        so.rng = Rng(5);
        const auto ddpm = diffusion::make_sampler<float>("ddpm", s, diffusion::Parametrization{}, so);
        const TensorF x = diffusion::sample(*ddpm, diffusion::classifier_free_guidance(model, w, 2), xT, class0);
        double on = 0, to0 = 0, to1 = 0;
        for (int64_t i = 0; i < N; ++i) {
            on += nearest(x, i, 0) < 4 ? 1.0 / N : 0.0;
            to0 += nearest(x, i, 0) / N, to1 += nearest(x, i, 1) / N;
        }
        std::printf("  w = %3.1f: %5.1f %% on class 0's Gaussians; distance to the nearest class-0 centre %5.2f sd, "
                    "to the nearest class-1 centre %5.2f sd\n",
                    w, 100 * on, to0, to1);
        if (w == 0 || w == 3) {
            std::vector<double> px, py;
            for (int64_t i = 0; i < N; ++i) px.push_back(x(i, 0)), py.push_back(x(i, 1));
            plot.points(px, py, "w = " + std::to_string(int(w)), 1.5);
        }
    }
    std::vector<double> cx[2], cy[2];
    for (int64_t k = 0; k < K; ++k) cx[labels(k)].push_back(centres(k, 0)), cy[labels(k)].push_back(centres(k, 1));
    plot.points(cx[0], cy[0], "class 0's centres", 5.0, Plot::Rgb{20, 20, 20}).points(cx[1], cy[1], "class 1's centres", 5.0, Plot::Rgb{214, 39, 40});
    write_png("11_guidance.png", plot.render());
    std::printf("Exact samples sit 1.25 sd from their centre on average (w = 0). Guidance moves them away from\n"
                "class 1 at every w, and first tightens them around class 0's centres: more surely class 0, less varied;\n"
                "at large w they spread again, outwards, as far from class 1 as they can get.\nwrote 11_guidance.png\n");
    return 0;
}
