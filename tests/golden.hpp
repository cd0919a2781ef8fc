// The golden comparison against PyTorch (docs/testing.md, golden files), shared by the test suite
// and the golden_check program: load a file written by torch_unet.py --export, rebuild the
// U-Net from its metadata, run forward and backward, and measure every difference.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "ddpmkit/ddpmkit.hpp"

namespace golden {

struct Difference {
    std::string name;
    double error;    // max |ours - torch| / max |torch| (relative error for the loss)
    double allowed;  // docs/testing.md: output and loss 1e-4, gradients 1e-3
    bool ok() const { return error <= allowed; }
};

struct Report {
    ddpmkit::nn::UNetConfig config;
    int64_t batch = 0, params = 0;
    std::vector<Difference> rows;  // output, loss, then every gradient
    bool ok() const {
        return std::all_of(rows.begin(), rows.end(), [](const Difference& d) { return d.ok(); });
    }
};

inline double max_abs(const ddpmkit::TensorF& t) {
    double m = 0;
    for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, std::abs(double(t.data()[i])));
    return m;
}
inline double relative_max_error(const ddpmkit::TensorF& ours, const ddpmkit::TensorF& ref) {
    if (ours.shape() != ref.shape()) throw ddpmkit::shape_error("golden", ours.shape(), ref.shape(), "(ours, torch) differ");
    double e = 0;
    for (int64_t i = 0; i < ref.numel(); ++i) e = std::max(e, std::abs(double(ours.data()[i]) - double(ref.data()[i])));
    return e / std::max(max_abs(ref), 1e-30);
}

inline Report compare(const std::string& path) {
    using namespace ddpmkit;
    const safetensors::File file = safetensors::File::read(path);
    Report r;
    r.config = nn::UNetConfig::from_metadata(file.metadata());
    nn::UNet<float> model(r.config);
    model.load(file, true);  // the file also holds inputs, output and gradients
    r.params = model.num_parameters();
    const TensorF x = file.get<float>("input.x"), target = file.get<float>("input.target");
    const Tensor<int64_t> t = file.get<int64_t>("input.t");
    r.batch = x.size(0);
    const VarF eps = model.forward(VarF(x), t);
    const VarF loss = mse(eps, VarF(target));
    loss.backward();
    r.rows.push_back({"output.eps", relative_max_error(eps.value(), file.get<float>("output.eps")), 1e-4});
    const double torch_loss = file.get<float>("loss").data()[0];
    r.rows.push_back({"loss", std::abs(loss.item() - torch_loss) / std::abs(torch_loss), 1e-4});
    for (auto& [name, p] : model.named_parameters())
        r.rows.push_back({"grad." + name, relative_max_error(p->grad(), file.get<float>("grad." + name)), 1e-3});
    return r;
}

}  // namespace golden
