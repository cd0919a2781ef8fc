// ddpmkit — what a diffusion model is conditioned on, beside x_t and t: class labels (with
// the null label of classifier-free guidance, Ho & Salimans 2022) and an image concatenated
// to x_t along the channels (SR3, Saharia et al. 2021). An unconditional model gets an empty
// Condition; every model the samplers and the trainer take has the form (x_t, t, condition).
#pragma once

#include <string>

#include "ddpmkit/autograd/ops.hpp"
#include "ddpmkit/config.hpp"
#include "ddpmkit/core/tensor.hpp"
#include "ddpmkit/nn/module.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace nn {

template <class T>
struct Condition {
    Tensor<int64_t> labels;  // [B] class labels in [0, num_classes]; num_classes is the null label
    Tensor<T> image;         // [B, C', H, W], concatenated to x_t (undefined: none)

    bool empty() const { return !labels.defined() && !image.defined(); }
    // The condition of examples [begin, end) (shares storage).
    Condition rows(int64_t begin, int64_t end) const {
        return {labels.defined() ? labels.slice(begin, end) : labels, image.defined() ? image.slice(begin, end) : image};
    }
};

// Two conditions of the same kind stacked along the batch (a's examples, then b's).
template <class T>
Condition<T> concat_rows(const Condition<T>& a, const Condition<T>& b) {
    if (a.labels.defined() != b.labels.defined() || a.image.defined() != b.image.defined())
        throw std::invalid_argument("Condition: concat_rows of conditions with different parts");
    Condition<T> c;
    if (a.labels.defined()) c.labels = ddpmkit::concat_rows(a.labels, b.labels);
    if (a.image.defined()) c.image = ddpmkit::concat_rows(a.image, b.image);
    return c;
}

// What a model is conditioned on, from its config: the checks every model applies.
struct ConditionSpec {
    int64_t num_classes = 0;  // > 0: labels [B] in [0, num_classes] are required
    int64_t image_ch = 0;     // > 0: an image [B, image_ch, H, W] is required

    // Throws std::invalid_argument naming what is missing, unexpected or mis-shaped.
    template <class T>
    void check(const std::string& where, const Condition<T>& c, int64_t batch, int64_t height, int64_t width) const {
        if (num_classes > 0 && !c.labels.defined())
            throw std::invalid_argument(where + ": a class-conditional model (" + std::to_string(num_classes) +
                                        " classes) needs labels; label " + std::to_string(num_classes) + " means \"no class\"");
        if (num_classes == 0 && c.labels.defined())
            throw std::invalid_argument(where + ": labels given to a model without classes");
        if (c.labels.defined()) {
            if (c.labels.dim() != 1 || c.labels.numel() != batch)
                throw shape_error(where, c.labels.shape(), "is not [" + std::to_string(batch) + "]: one label per image is needed");
            for (int64_t b = 0; b < batch; ++b)
                if (c.labels.data()[b] < 0 || c.labels.data()[b] > num_classes)
                    throw std::out_of_range(where + ": label " + std::to_string(c.labels.data()[b]) + " of image " + std::to_string(b) +
                                            " is outside [0, " + std::to_string(num_classes) + "]");
        }
        if (image_ch > 0 && !c.image.defined())
            throw std::invalid_argument(where + ": the model is conditioned on an image of " + std::to_string(image_ch) +
                                        " channels, and none was given");
        if (image_ch == 0 && c.image.defined())
            throw std::invalid_argument(where + ": a conditioning image given to a model that takes none");
        if (c.image.defined()) {
            const Shape want{batch, image_ch, height, width};
            if (c.image.shape() != want) throw shape_error(where, c.image.shape(), "is not the conditioning image " + want.str());
        }
    }
};

// Every diffusion model: (x_t, t, condition) -> output. The U-Net is one; the Trainer and
// train::denoiser take any.
template <class T>
class DiffusionModule : public Module<T> {
public:
    virtual Var<T> forward(const Var<T>& x, const Tensor<int64_t>& t, const Condition<T>& c) const = 0;
    // The generator of its dropout masks, if any (a checkpoint saves its state).
    virtual Rng* dropout_rng() { return nullptr; }
};

}  // namespace nn
DDPMKIT_END_NAMESPACE
