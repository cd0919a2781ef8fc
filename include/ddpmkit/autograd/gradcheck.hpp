// ddpmkit — gradcheck: compares backward() with central finite differences, in double.
//
// The function's output is contracted with fixed random weights w (loss = sum(w * f)),
// so every output element's gradient is checked, as torch.autograd.gradcheck does.
// An element passes when |analytic - numeric| <= atol + rtol |numeric|.
#pragma once

#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "ddpmkit/autograd/ops.hpp"
#include "ddpmkit/autograd/var.hpp"
#include "ddpmkit/config.hpp"

DDPMKIT_BEGIN_NAMESPACE

struct GradcheckOptions {
    double eps = 1e-6;
    double atol = 1e-5;
    double rtol = 1e-3;
    uint64_t seed = 0;  // of the output weights
};

struct GradcheckResult {
    bool ok = true;
    double max_abs_error = 0.0;  // over every checked element
    std::string message;         // the first failing element, with both values
};

// f maps the inputs to a Var of any shape. Inputs that require grad are checked.
inline GradcheckResult gradcheck(const std::function<VarD(const std::vector<VarD>&)>& f, const std::vector<VarD>& inputs,
                                 const GradcheckOptions& opt = {}) {
    Rng rng(opt.seed);
    VarD weights;
    auto loss_of = [&](const std::vector<VarD>& in) {
        VarD out = f(in);
        if (!weights.defined()) weights = VarD(TensorD::randn(out.shape(), rng));
        return sum(out * weights);
    };
    for (VarD x : inputs) x.zero_grad();  // copies share the node
    loss_of(inputs).backward();

    GradcheckResult result;
    NoGradGuard no_grad;
    for (size_t k = 0; k < inputs.size(); ++k) {
        VarD x = inputs[k];
        if (!x.requires_grad()) continue;
        TensorD& value = x.value();
        for (int64_t i = 0; i < value.numel(); ++i) {
            const double saved = value.data()[i];
            value.data()[i] = saved + opt.eps;
            const double plus = loss_of(inputs).item();
            value.data()[i] = saved - opt.eps;
            const double minus = loss_of(inputs).item();
            value.data()[i] = saved;
            const double numeric = (plus - minus) / (2.0 * opt.eps);
            const double analytic = x.grad().defined() ? x.grad().data()[i] : 0.0;
            const double err = std::abs(analytic - numeric);
            result.max_abs_error = std::max(result.max_abs_error, err);
            if (result.ok && !(err <= opt.atol + opt.rtol * std::abs(numeric))) {
                std::ostringstream os;
                os << "gradcheck: input " << k << " " << value.shape() << " element " << i << ": analytic " << analytic
                   << ", numeric " << numeric << ", error " << err;
                result.ok = false;
                result.message = os.str();
            }
        }
    }
    return result;
}

DDPMKIT_END_NAMESPACE
