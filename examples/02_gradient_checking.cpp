// 02 — gradient checking: how to know a backward pass is right.
//
// Every op of the autograd records how to turn the gradient of its output into gradients of
// its inputs (the chain rule: dL/dx = dL/dy dy/dx). A mistake there trains a network a little
// worse, silently. gradcheck catches it: it compares each analytic dL/dx of
// L = sum(w * f(x)), w random, with the central difference (L(x + e) - L(x - e)) / 2e,
// computed in double (e = 1e-6), where the two agree to about 1e-9.
//
// Here one new op, softplus(x) = log(1 + e^x), is written three times with Var::make: with its
// right derivative sigmoid(x); with a classic mix-up, the derivative of the sigmoid,
// sigmoid(x) (1 - sigmoid(x)); and with the right formula but the incoming gradient dL/dy
// forgotten. The last one agrees with finite differences whenever dL/dy = 1, which is why
// gradcheck weighs the outputs with random w. Prints gradcheck's verdict on each and writes
// 02_derivatives.png: dy/dx from each backward against the finite difference.
// PNG output: one .cpp file of a program compiles stb_image_write, by defining this first.
#define DDPMKIT_STB_IMPLEMENTATION

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <ddpmkit/ddpmkit.hpp>

using namespace ddpmkit;

enum class Backward { Right, SigmoidDerivative, ForgetsIncoming };

// softplus(x) = log(1 + e^x), elementwise, with the chosen backward.
VarD softplus(const VarD& x, Backward kind) {
    TensorD y(x.shape());
    for (int64_t i = 0; i < y.numel(); ++i) y.data()[i] = std::log1p(std::exp(x.value().data()[i]));
    return VarD::make(y, "softplus", {x}, [kind](autograd::Node<double>& self) {
        autograd::Node<double>& input = *self.parents[0];
        double* dx = input.grad_buffer().data();
        for (int64_t i = 0; i < self.value.numel(); ++i) {
            const double s = 1 / (1 + std::exp(-input.value.data()[i]));  // sigmoid(x)
            const double dy = self.grad.data()[i];                          // dL/dy, coming in
            if (kind == Backward::Right) dx[i] += dy * s;
            if (kind == Backward::SigmoidDerivative) dx[i] += dy * s * (1 - s);
            if (kind == Backward::ForgetsIncoming) dx[i] += s;
        }
    });
}

int main() {
    const std::vector<std::pair<Backward, std::string>> kinds = {{Backward::Right, "right: sigmoid(x)"},
                                                                 {Backward::SigmoidDerivative, "mix-up: sigmoid(x)(1 - sigmoid(x))"},
                                                                 {Backward::ForgetsIncoming, "forgets dL/dy"}};
    Rng rng(0);
    const TensorD x0 = TensorD::randn({6}, rng, 0.0, 2.0);
    int wrong_verdicts = 0;
    for (const auto& [kind, name] : kinds) {
        const GradcheckResult r = gradcheck([kind = kind](const std::vector<VarD>& in) { return softplus(in[0], kind); }, {VarD(x0, true)});
        std::printf("%-38s gradcheck %s (largest difference %.1e)\n", name.c_str(), r.ok ? "passes" : "FAILS", r.max_abs_error);
        if (!r.ok) std::printf("    %s\n", r.message.c_str());
        wrong_verdicts += r.ok != (kind == Backward::Right);
    }

    // dy/dx on a grid: each backward with dL/dy = 1, and the central difference.
    std::vector<double> xs, numeric;
    for (double u = -5; u <= 5.0001; u += 0.05) {
        xs.push_back(u);
        numeric.push_back((std::log1p(std::exp(u + 1e-6)) - std::log1p(std::exp(u - 1e-6))) / 2e-6);
    }
    PlotOptions o;
    o.title = "d softplus / dx: three backward passes, dL/dy = 1";
    o.x_label = "x";
    Plot plot(o);
    plot.line(xs, numeric, "finite difference", 5.0, Plot::Rgb{200, 200, 200});
    for (const auto& [kind, name] : kinds) {
        VarD x(TensorD(Shape{int64_t(xs.size())}, xs), true);
        sum(softplus(x, kind)).backward();
        plot.line(xs, std::vector<double>(x.grad().data(), x.grad().data() + x.numel()), name, 1.6);
    }
    write_png("02_derivatives.png", plot.render());
    std::printf("With dL/dy = 1 the forgetful backward draws the right curve (under the finite difference): only\n"
                "gradcheck's random weights w expose it.\nwrote 02_derivatives.png\n");
    return wrong_verdicts == 0 ? 0 : 1;
}
