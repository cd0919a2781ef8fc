// The README's first code: one DDPM training step (Ho et al. 2020, Algorithm 1) of the
// reference U-Net, then sampling with a sampler of the registry. README.md shows the lines
// between the markers verbatim (tests/readme_snippet.sh checks it); ctest runs the program.
// README begin
#include <ddpmkit/ddpmkit.hpp>
using namespace ddpmkit;

int main() {
    nn::UNet<float> model(nn::UNetConfig{});                  // the reference U-Net, 1,623,169 parameters
    const auto schedule = diffusion::Schedule::linear(1000);  // betas, alpha_bar, posterior coefficients
    train::Adam<float> adam(model.named_parameters(), 2e-4);
    Rng rng(0);

    // Algorithm 1: x_0 from the data, t ~ Uniform({0, ..., T-1}), eps ~ N(0, I).
    const TensorF x0 = make_shapes_dataset(8).images;  // a batch [8, 1, 28, 28] in [-1, 1]
    const diffusion::TimestepDraw t = diffusion::UniformSampler(1000).sample(8, rng);
    const VarF eps(TensorF::randn(x0.shape(), rng));
    const VarF xt = diffusion::q_sample(schedule, VarF(x0), t.t, eps);  // eq. 4
    const VarF loss = mse(model.forward(xt, t.t), eps);                 // L_simple, eq. 14
    model.zero_grad();
    loss.backward();
    adam.step();

    // Sampling: any sampler by name (dpm, ddim, ddpm, euler, heun, pc), stepped by sample().
    diffusion::SamplerOptions options;
    options.steps = 10;
    const auto sampler = diffusion::make_sampler<float>("dpm", schedule, diffusion::Parametrization{}, options);
    const TensorF samples = diffusion::sample(*sampler, train::denoiser(model), TensorF::randn({4, 1, 28, 28}, rng));
    std::printf("loss %.4f; %lld samples %s\n", loss.item(), static_cast<long long>(samples.size(0)), samples.shape().str().c_str());
}
// README end
