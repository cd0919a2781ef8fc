// ddpmkit — Tensor arithmetic outside the graph: x + y, x - y, x * y, x / y with numpy
// broadcasting (as the autograd ops), a scalar on either side, the in-place forms, all on
// the elementwise kernels. For code that needs no gradients: samplers, tasks, metrics.
#pragma once

#include <type_traits>

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/tensor.hpp"
#include "ddpmkit/kernels/elementwise.hpp"

DDPMKIT_BEGIN_NAMESPACE

// a op b, broadcast; `name` goes into the error when the shapes do not broadcast.
template <class T>
Tensor<T> binary(kernels::BinaryOp op, const Tensor<T>& a, const Tensor<T>& b, const char* name) {
    static_assert(std::is_floating_point<T>::value, "Tensor arithmetic: float or double tensors");
    Tensor<T> out = Tensor<T>::empty(broadcast_shapes(name, a.shape(), b.shape()));
    kernels::broadcast_binary(op, a.data(), a.shape(), b.data(), b.shape(), out.data(), out.shape());
    return out;
}

// a op= b: b broadcasts to a's shape, which does not change.
template <class T>
Tensor<T>& binary_inplace(kernels::BinaryOp op, Tensor<T>& a, const Tensor<T>& b, const char* name) {
    static_assert(std::is_floating_point<T>::value, "Tensor arithmetic: float or double tensors");
    if (broadcast_shapes(name, a.shape(), b.shape()) != a.shape())
        throw shape_error(name, a.shape(), b.shape(), "(the right side must broadcast to the left's shape)");
    kernels::broadcast_binary(op, a.data(), a.shape(), b.data(), b.shape(), a.data(), a.shape());
    return a;
}

#define DDPMKIT_TENSOR_OPERATOR(sym, op, name)                                                              \
    template <class T>                                                                                      \
    Tensor<T> operator sym(const Tensor<T>& a, const Tensor<T>& b) {                                        \
        return binary(kernels::BinaryOp::op, a, b, name);                                                   \
    }                                                                                                       \
    template <class T>                                                                                      \
    Tensor<T> operator sym(const Tensor<T>& a, double b) {                                                  \
        return binary(kernels::BinaryOp::op, a, Tensor<T>::scalar(static_cast<T>(b)), name);                \
    }                                                                                                       \
    template <class T>                                                                                      \
    Tensor<T> operator sym(double a, const Tensor<T>& b) {                                                  \
        return binary(kernels::BinaryOp::op, Tensor<T>::scalar(static_cast<T>(a)), b, name);                \
    }                                                                                                       \
    template <class T>                                                                                      \
    Tensor<T>& operator sym##=(Tensor<T>& a, const Tensor<T>& b) {                                          \
        return binary_inplace(kernels::BinaryOp::op, a, b, name "=");                                       \
    }                                                                                                       \
    template <class T>                                                                                      \
    Tensor<T>& operator sym##=(Tensor<T>& a, double b) {                                                    \
        return binary_inplace(kernels::BinaryOp::op, a, Tensor<T>::scalar(static_cast<T>(b)), name "=");    \
    }
DDPMKIT_TENSOR_OPERATOR(+, Add, "operator+")
DDPMKIT_TENSOR_OPERATOR(-, Sub, "operator-")
DDPMKIT_TENSOR_OPERATOR(*, Mul, "operator*")
DDPMKIT_TENSOR_OPERATOR(/, Div, "operator/")
#undef DDPMKIT_TENSOR_OPERATOR

template <class T>
Tensor<T> operator-(const Tensor<T>& a) {
    return T(-1) * a;
}

DDPMKIT_END_NAMESPACE
