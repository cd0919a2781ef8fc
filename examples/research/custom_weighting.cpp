// A researcher's own training loop: a small MLP as the diffusion model, the library's
// forward process, losses and samplers, and a loss weighting of our own — the P2 weighting
// of Choi et al. 2022, lambda_t = 1 / (k + SNR(t))^gamma, which spends less effort on the
// nearly clean timesteps (gamma = 0 is L_simple's uniform weighting). The data: a mixture of
// three 2-D blobs. The same model is trained with gamma = 0 and gamma = 1, and DPM-Solver++
// samples from each: the share of samples near each blob beside the true weights, and the
// share farther than 4 standard deviations from every blob (what the clean timesteps fix).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

#include <ddpmkit/diffusion/losses.hpp>
#include <ddpmkit/diffusion/samplers.hpp>
#include <ddpmkit/nn/layers.hpp>
#include <ddpmkit/train/optim.hpp>
#include <ddpmkit/train/trainer.hpp>

using namespace ddpmkit;

// eps_hat = MLP([x_t, emb(t)]): any nn::DiffusionModule trains and samples like the U-Net.
struct Mlp : nn::DiffusionModule<float> {
    Rng init{1};
    nn::TimestepEmbedding<float> time{16, 32, init};
    nn::Linear<float> in{2 + 32, 128, init}, hidden{128, 128, init}, out{128, 2, init};
    Mlp() {
        register_module("time", time);
        register_module("in", in);
        register_module("hidden", hidden);
        register_module("out", out);
    }
    VarF forward(const VarF& x, const Tensor<int64_t>& t, const nn::Condition<float>&) const override {
        const VarF h = silu(in.forward(concat<float>({x, time.forward(t)}, 1)));
        return out.forward(silu(hidden.forward(h)));
    }
};

namespace {

const double kCenters[3][2] = {{-0.6, -0.6}, {0.6, -0.5}, {0.0, 0.6}}, kWeights[3] = {0.5, 0.3, 0.2}, kSpread = 0.08;

// x_0 from the mixture.
TensorF draw_data(int64_t n, Rng& rng) {
    TensorF x({n, 2});
    std::vector<double> u(static_cast<size_t>(n));
    rng.uniform(u.data(), n);
    const TensorF z = TensorF::randn({n, 2}, rng);
    for (int64_t i = 0; i < n; ++i) {
        const int k = u[size_t(i)] < kWeights[0] ? 0 : u[size_t(i)] < kWeights[0] + kWeights[1] ? 1 : 2;
        for (int j = 0; j < 2; ++j) x(i, j) = static_cast<float>(kCenters[k][j] + kSpread * z(i, j));
    }
    return x;
}

struct Result {
    double share[3] = {0, 0, 0}, off = 0;
};

Result train_and_sample(double gamma, int64_t steps) {
    const diffusion::Schedule schedule = diffusion::Schedule::linear(1000);
    const diffusion::Parametrization param{};  // eps prediction
    Mlp model;
    train::Adam<float> adam(model.named_parameters(), 2e-3);
    const train::LrSchedule lr{2e-3, 100, steps, 1e-5};  // warmup, then cosine decay: the last weights settle
    const int64_t batch = 256;
    const double k = 1.0;
    Rng rng(0);
    for (int64_t step = 1; step <= steps; ++step) {
        // Algorithm 1 of Ho et al. 2020, with our weighting of each example's MSE.
        const VarF x0(draw_data(batch, rng)), noise(TensorF::randn({batch, 2}, rng));
        Tensor<int64_t> t({batch});
        for (int64_t b = 0; b < batch; ++b) t(b) = static_cast<int64_t>(rng.randint(schedule.num_steps()));
        const VarF xt = diffusion::q_sample(schedule, x0, t, noise);
        const diffusion::TrainingLoss<float> l =
            diffusion::training_losses(schedule, param, diffusion::LossType::Simple, model.forward(xt, t, {}), x0, xt, t, noise);
        TensorF w({batch});
        double total = 0;
        for (int64_t b = 0; b < batch; ++b) total += w(b) = static_cast<float>(1.0 / std::pow(k + schedule.snr(t(b)), gamma));
        w *= batch / total;  // mean weight 1: the learning rate keeps its meaning
        const VarF loss = mean(l.mse * VarF(w));
        model.zero_grad();
        loss.backward();
        adam.lr = lr.at(step - 1);
        adam.step();
        if (step % 1000 == 0)
            std::printf("  gamma %.0f, step %4lld: weighted loss %.4f, plain MSE %.4f\n", gamma, static_cast<long long>(step), loss.item(),
                        mean(l.mse).item());
    }
    // Sampling: any sampler of the registry, on the model as a denoiser.
    diffusion::SamplerOptions o;
    o.steps = 20;
    o.clip_x0 = false;  // the data is not an image in [-1, 1]
    const auto sampler = diffusion::make_sampler<float>("dpm", schedule, param, o);
    const int64_t n = 4000;
    const TensorF x = diffusion::sample(*sampler, train::denoiser(model), TensorF::randn({n, 2}, rng));
    Result r;
    for (int64_t i = 0; i < n; ++i) {
        int best = 0;
        double best_d = 1e9;
        for (int c = 0; c < 3; ++c) {
            const double d = std::hypot(x(i, 0) - kCenters[c][0], x(i, 1) - kCenters[c][1]);
            if (d < best_d) best_d = d, best = c;
        }
        r.share[best] += 1.0 / n;
        r.off += best_d > 4 * kSpread ? 1.0 / n : 0.0;
    }
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    const int64_t steps = argc > 1 ? std::atoll(argv[1]) : 3000;
    const Result uniform = train_and_sample(0.0, steps), p2 = train_and_sample(1.0, steps);
    std::printf("\nweighting         near each blob (true 0.50 0.30 0.20)   farther than 4 sd\n");
    for (const auto& [name, r] : {std::make_pair("uniform (L_simple)", uniform), std::make_pair("P2, gamma 1       ", p2)})
        std::printf("%s     %.2f %.2f %.2f                        %.3f\n", name, r.share[0], r.share[1], r.share[2], r.off);
    // The uniform weighting must recover the mixture's weights (within 10 points: a small model, 3000 steps).
    for (int c = 0; c < 3; ++c)
        if (std::abs(uniform.share[c] - kWeights[c]) > 0.1) return 1;
    return 0;
}
