// ddpmkit — differentiable ops on Var: forward and backward side by side, the local
// derivative as a one-line comment. Gradients accumulate (+=) into the parents.
// Shape letters: a binary op broadcasts numpy-style; matmul is [..., M, K] x [..., K, N].
#pragma once

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "ddpmkit/autograd/var.hpp"
#include "ddpmkit/config.hpp"
#include "ddpmkit/core/parallel.hpp"
#include "ddpmkit/core/tensor.hpp"
#include "ddpmkit/kernels/arithmetic.hpp"
#include "ddpmkit/kernels/elementwise.hpp"
#include "ddpmkit/kernels/gemm.hpp"
#include "ddpmkit/kernels/layout.hpp"
#include "ddpmkit/kernels/reduce.hpp"
#include "ddpmkit/kernels/softmax.hpp"

DDPMKIT_BEGIN_NAMESPACE

namespace autograd {

// Sums g over the axes along which a tensor of shape `target` was broadcast to g's shape.
template <class T>
Tensor<T> sum_to_shape(const Tensor<T>& g, const Shape& target) {
    if (g.shape() == target) return g;
    Tensor<T> cur = g;
    const int r = g.dim(), offset = r - target.rank();
    for (int d = 0; d < r; ++d) {
        const int64_t want = d >= offset ? target[d - offset] : 1;
        if (cur.shape()[d] == want) continue;
        Shape reduced = cur.shape();
        reduced[d] = 1;
        Tensor<T> next = Tensor<T>::empty(reduced);
        kernels::sum_axis(cur.data(), cur.shape().numel(0, d), cur.shape()[d], cur.shape().numel(d + 1, r), next.data());
        cur = next;
    }
    return cur.reshape(target);
}

// node.grad += alpha g (g has the node's number of elements). The first contribution of
// alpha = 1 is a copy, or g itself when `last_use` says nothing writes g afterwards.
template <class T>
void accumulate(Node<T>& node, const Tensor<T>& g, T alpha = T(1), bool last_use = false) {
    if (!node.grad.defined() && alpha == T(1)) {
        node.grad = (last_use ? g : g.clone()).reshape(node.value.shape());
        return;
    }
    kernels::axpy(g.numel(), alpha, g.data(), node.grad_buffer().data());
}

template <class T>
Var<T> binary(kernels::BinaryOp op, const char* name, const Var<T>& a, const Var<T>& b) {
    using kernels::BinaryOp;
    return Var<T>::make(ddpmkit::binary(op, a.value(), b.value(), name), name, {a, b}, [op, name](Node<T>& self) {
        Node<T>& pa = *self.parents[0];
        Node<T>& pb = *self.parents[1];
        const Tensor<T>& g = self.grad;
        switch (op) {
            case BinaryOp::Add:  // d(a+b) = da + db; self.grad is dropped after this function
                if (pa.requires_grad) accumulate(pa, sum_to_shape(g, pa.value.shape()));
                if (pb.requires_grad) accumulate(pb, sum_to_shape(g, pb.value.shape()), T(1), true);
                break;
            case BinaryOp::Sub:  // d(a-b) = da - db
                if (pa.requires_grad) accumulate(pa, sum_to_shape(g, pa.value.shape()));
                if (pb.requires_grad) accumulate(pb, sum_to_shape(g, pb.value.shape()), T(-1));
                break;
            case BinaryOp::Mul:  // d(ab) = b da + a db
                if (pa.requires_grad) accumulate(pa, sum_to_shape(ddpmkit::binary(BinaryOp::Mul, g, pb.value, name), pa.value.shape()));
                if (pb.requires_grad) accumulate(pb, sum_to_shape(ddpmkit::binary(BinaryOp::Mul, g, pa.value, name), pb.value.shape()));
                break;
            case BinaryOp::Div:  // d(a/b) = da / b - (a/b) db / b
                if (pa.requires_grad) accumulate(pa, sum_to_shape(ddpmkit::binary(BinaryOp::Div, g, pb.value, name), pa.value.shape()));
                if (pb.requires_grad) {
                    const Tensor<T> gy = ddpmkit::binary(BinaryOp::Mul, g, self.value, name);
                    accumulate(pb, sum_to_shape(ddpmkit::binary(BinaryOp::Div, gy, pb.value, name), pb.value.shape()), T(-1));
                }
                break;
        }
    });
}

template <class T>
Var<T> unary(kernels::UnaryOp op, const char* name, const Var<T>& x) {
    Tensor<T> y = Tensor<T>::empty(x.shape());
    kernels::unary(op, x.value().data(), y.data(), y.numel());
    return Var<T>::make(y, name, {x}, [op](Node<T>& self) {  // dx += dy f'(x)
        Node<T>& px = *self.parents[0];
        kernels::unary_backward(op, px.value.data(), self.value.data(), self.grad.data(), px.grad_buffer().data(),
                                self.value.numel());
    });
}

// Sum over `axes` (all when empty) times `scale`: the body of sum and mean.
template <class T>
Var<T> scaled_sum(const Var<T>& x, std::vector<int> axes, bool keepdim, bool mean, const char* name) {
    const Shape& s = x.shape();
    if (axes.empty()) {
        axes.resize(static_cast<size_t>(s.rank()));
        std::iota(axes.begin(), axes.end(), 0);
    }
    for (int& a : axes) a = normalize_axis(name, a, s);
    std::sort(axes.begin(), axes.end());
    if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) throw shape_error(name, s, "has a repeated axis");
    Tensor<T> cur = x.value();
    int64_t count = 1;
    for (int a : axes) {
        Shape reduced = cur.shape();
        reduced[a] = 1;
        Tensor<T> next = Tensor<T>::empty(reduced);
        kernels::sum_axis(cur.data(), cur.shape().numel(0, a), cur.shape()[a], cur.shape().numel(a + 1, s.rank()), next.data());
        count *= s[a];
        cur = next;
    }
    if (axes.empty()) cur = cur.clone();  // a rank-0 input: the sum is a copy, never the input itself
    const T scale = mean ? T(1) / static_cast<T>(count) : T(1);  // an empty mean is NaN, as in PyTorch
    if (mean)
        for (int64_t i = 0; i < cur.numel(); ++i) cur.data()[i] *= scale;
    const Shape kept = cur.shape();
    Shape out_shape;
    for (int d = 0; d < s.rank(); ++d) {
        const bool reduced = std::binary_search(axes.begin(), axes.end(), d);
        if (keepdim || !reduced) out_shape.push_back(reduced ? 1 : s[d]);
    }
    return Var<T>::make(cur.reshape(out_shape), name, {x}, [kept, scale](Node<T>& self) {  // dx_i += scale dy
        Node<T>& px = *self.parents[0];
        Tensor<T>& gx = px.grad_buffer();
        Tensor<T> g = self.grad.reshape(kept);
        if (scale != T(1)) {
            g = g.clone();
            for (int64_t i = 0; i < g.numel(); ++i) g.data()[i] *= scale;
        }
        kernels::broadcast_binary(kernels::BinaryOp::Add, gx.data(), gx.shape(), g.data(), kept, gx.data(), gx.shape());
    });
}

}  // namespace autograd

// ---- arithmetic, with numpy broadcasting ----

template <class T>
Var<T> add(const Var<T>& a, const Var<T>& b) {
    return autograd::binary(kernels::BinaryOp::Add, "add", a, b);
}
template <class T>
Var<T> sub(const Var<T>& a, const Var<T>& b) {
    return autograd::binary(kernels::BinaryOp::Sub, "sub", a, b);
}
template <class T>
Var<T> mul(const Var<T>& a, const Var<T>& b) {
    return autograd::binary(kernels::BinaryOp::Mul, "mul", a, b);
}
template <class T>
Var<T> div(const Var<T>& a, const Var<T>& b) {
    return autograd::binary(kernels::BinaryOp::Div, "div", a, b);
}
template <class T>
Var<T> operator+(const Var<T>& a, const Var<T>& b) { return add(a, b); }
template <class T>
Var<T> operator-(const Var<T>& a, const Var<T>& b) { return sub(a, b); }
template <class T>
Var<T> operator*(const Var<T>& a, const Var<T>& b) { return mul(a, b); }
template <class T>
Var<T> operator/(const Var<T>& a, const Var<T>& b) { return div(a, b); }
// With a constant: the scalar broadcasts.
template <class T>
Var<T> operator+(const Var<T>& a, T s) { return add(a, Var<T>(Tensor<T>::scalar(s))); }
template <class T>
Var<T> operator-(const Var<T>& a, T s) { return sub(a, Var<T>(Tensor<T>::scalar(s))); }
template <class T>
Var<T> operator*(const Var<T>& a, T s) { return mul(a, Var<T>(Tensor<T>::scalar(s))); }
template <class T>
Var<T> operator/(const Var<T>& a, T s) { return div(a, Var<T>(Tensor<T>::scalar(s))); }
template <class T>
Var<T> operator*(T s, const Var<T>& a) { return mul(Var<T>(Tensor<T>::scalar(s)), a); }
template <class T>
Var<T> operator+(T s, const Var<T>& a) { return add(Var<T>(Tensor<T>::scalar(s)), a); }
template <class T>
Var<T> operator-(T s, const Var<T>& a) { return sub(Var<T>(Tensor<T>::scalar(s)), a); }
template <class T>
Var<T> operator/(T s, const Var<T>& a) { return div(Var<T>(Tensor<T>::scalar(s)), a); }
template <class T>
Var<T> operator-(const Var<T>& a) { return mul(a, Var<T>(Tensor<T>::scalar(T(-1)))); }

// ---- unary math ----

template <class T>
Var<T> exp(const Var<T>& x) { return autograd::unary(kernels::UnaryOp::Exp, "exp", x); }
template <class T>
Var<T> log(const Var<T>& x) { return autograd::unary(kernels::UnaryOp::Log, "log", x); }
template <class T>
Var<T> sqrt(const Var<T>& x) { return autograd::unary(kernels::UnaryOp::Sqrt, "sqrt", x); }
template <class T>
Var<T> tanh(const Var<T>& x) { return autograd::unary(kernels::UnaryOp::Tanh, "tanh", x); }
template <class T>
Var<T> sigmoid(const Var<T>& x) { return autograd::unary(kernels::UnaryOp::Sigmoid, "sigmoid", x); }
template <class T>
Var<T> relu(const Var<T>& x) { return autograd::unary(kernels::UnaryOp::Relu, "relu", x); }
// SiLU(x) = x sigmoid(x) (Elfwing et al. 2018), the U-Net's nonlinearity.
template <class T>
Var<T> silu(const Var<T>& x) { return autograd::unary(kernels::UnaryOp::Silu, "silu", x); }

// x^p, elementwise, for a constant exponent p.
template <class T>
Var<T> pow(const Var<T>& x, T p) {
    Tensor<T> y = Tensor<T>::empty(x.shape());
    for (int64_t i = 0; i < y.numel(); ++i) y.data()[i] = std::pow(x.value().data()[i], p);
    return Var<T>::make(y, "pow", {x}, [p](autograd::Node<T>& self) {  // (x^p)' = p x^(p-1)
        autograd::Node<T>& px = *self.parents[0];
        T* gx = px.grad_buffer().data();
        for (int64_t i = 0; i < self.value.numel(); ++i)
            gx[i] += self.grad.data()[i] * p * std::pow(px.value.data()[i], p - T(1));
    });
}

// ---- reductions ----

// Sum over `axes` (every axis when empty); keepdim keeps them with extent 1.
template <class T>
Var<T> sum(const Var<T>& x, std::vector<int> axes = {}, bool keepdim = false) {
    return autograd::scaled_sum(x, std::move(axes), keepdim, false, "sum");
}
template <class T>
Var<T> mean(const Var<T>& x, std::vector<int> axes = {}, bool keepdim = false) {
    return autograd::scaled_sum(x, std::move(axes), keepdim, true, "mean");
}

// Mean squared error mean((a - b)^2) over all elements; a and b have the same shape.
template <class T>
Var<T> mse(const Var<T>& a, const Var<T>& b) {
    if (a.shape() != b.shape()) throw shape_error("mse", a.shape(), b.shape(), "differ (mse does not broadcast)");
    const int64_t n = a.numel();
    const T* pa = a.value().data();
    const T* pb = b.value().data();
    const T total = deterministic_sum<T>(n, 4096, [&](int64_t i0, int64_t i1) {
        T s = 0;
        for (int64_t i = i0; i < i1; ++i) s += (pa[i] - pb[i]) * (pa[i] - pb[i]);
        return s;
    });
    return Var<T>::make(Tensor<T>::scalar(total / static_cast<T>(n)), "mse", {a, b}, [n](autograd::Node<T>& self) {
        autograd::Node<T>& na = *self.parents[0];
        autograd::Node<T>& nb = *self.parents[1];
        const T c = T(2) * self.grad.data()[0] / static_cast<T>(n);  // d/da = 2 (a - b) / n = -d/db
        const T *va = na.value.data(), *vb = nb.value.data();
        if (na.requires_grad) {
            T* g = na.grad_buffer().data();
            for (int64_t i = 0; i < n; ++i) g[i] += c * (va[i] - vb[i]);
        }
        if (nb.requires_grad) {
            T* g = nb.grad_buffer().data();
            for (int64_t i = 0; i < n; ++i) g[i] -= c * (va[i] - vb[i]);
        }
    });
}

// ---- linear algebra ----

// a [..., M, K] x b [..., K, N] -> [..., M, N]; the leading (batch) axes of a and b match.
template <class T>
Var<T> matmul(const Var<T>& a, const Var<T>& b) {
    const Shape &sa = a.shape(), &sb = b.shape();
    const int r = sa.rank();
    bool ok = r >= 2 && sb.rank() == r && sa[r - 1] == sb[r - 2];
    for (int d = 0; ok && d < r - 2; ++d) ok = sa[d] == sb[d];
    if (!ok) throw shape_error("matmul", sa, sb, "do not multiply ([..., M, K] x [..., K, N])");
    const int64_t M = sa[r - 2], K = sa[r - 1], N = sb[r - 1], batch = sa.numel(0, r - 2);
    Shape so = sa;
    so[r - 1] = N;
    Tensor<T> out = Tensor<T>::empty(so);
    kernels::gemm_batched<T>(batch, false, false, M, N, K, T(1), a.value().data(), K, M * K, b.value().data(), N, K * N,
                             T(0), out.data(), N, M * N);
    return Var<T>::make(out, "matmul", {a, b}, [M, N, K, batch](autograd::Node<T>& self) {
        autograd::Node<T>& na = *self.parents[0];
        autograd::Node<T>& nb = *self.parents[1];
        const T* g = self.grad.data();
        if (na.requires_grad)  // dA += dC B^T
            kernels::gemm_batched<T>(batch, false, true, M, K, N, T(1), g, N, M * N, nb.value.data(), N, K * N, T(1),
                                     na.grad_buffer().data(), K, M * K);
        if (nb.requires_grad)  // dB += A^T dC
            kernels::gemm_batched<T>(batch, true, false, K, N, M, T(1), na.value.data(), K, M * K, g, N, M * N, T(1),
                                     nb.grad_buffer().data(), N, K * N);
    });
}

// ---- shape and layout ----

// The same elements with another shape of equal size.
template <class T>
Var<T> reshape(const Var<T>& x, const Shape& shape) {
    return Var<T>::make(x.value().reshape(shape), "reshape", {x}, [](autograd::Node<T>& self) {  // a relabeling: dx += dy
        autograd::accumulate(*self.parents[0], self.grad, T(1), true);
    });
}

// Output axis i is input axis perm[i] (as torch.permute).
template <class T>
Var<T> permute(const Var<T>& x, const std::vector<int>& perm) {
    const Shape& s = x.shape();
    std::vector<int> inverse(perm.size(), -1);
    bool ok = static_cast<int>(perm.size()) == s.rank();
    for (size_t i = 0; ok && i < perm.size(); ++i) {
        ok = perm[i] >= 0 && perm[i] < s.rank() && inverse[static_cast<size_t>(perm[i])] < 0;
        if (ok) inverse[static_cast<size_t>(perm[i])] = static_cast<int>(i);
    }
    if (!ok) throw shape_error("permute", s, "needs a permutation of its " + std::to_string(s.rank()) + " axes");
    Shape so;
    for (int p : perm) so.push_back(s[p]);
    Tensor<T> out = Tensor<T>::empty(so);
    kernels::permute(x.value().data(), s, perm.data(), out.data());
    return Var<T>::make(out, "permute", {x}, [inverse](autograd::Node<T>& self) {  // dx += dy permuted back
        Tensor<T> back = Tensor<T>::empty(self.parents[0]->value.shape());
        kernels::permute(self.grad.data(), self.grad.shape(), inverse.data(), back.data());
        autograd::accumulate(*self.parents[0], back, T(1), true);
    });
}

// Swaps two axes.
template <class T>
Var<T> transpose(const Var<T>& x, int axis0, int axis1) {
    std::vector<int> perm(static_cast<size_t>(x.dim()));
    std::iota(perm.begin(), perm.end(), 0);
    std::swap(perm[static_cast<size_t>(normalize_axis("transpose", axis0, x.shape()))],
              perm[static_cast<size_t>(normalize_axis("transpose", axis1, x.shape()))]);
    return permute(x, perm);
}

// Joins tensors along `axis`; all other extents match.
template <class T>
Var<T> concat(const std::vector<Var<T>>& xs, int axis) {
    if (xs.empty()) throw ShapeError("concat: no tensors to join");
    const Shape& s0 = xs[0].shape();
    const int a = normalize_axis("concat", axis, s0);
    Shape so = s0;
    so[a] = 0;
    for (const Var<T>& x : xs) {
        Shape probe = x.shape();
        if (probe.rank() == s0.rank()) probe[a] = s0[a];
        if (probe != s0) throw shape_error("concat", s0, x.shape(), "differ off axis " + std::to_string(a));
        so[a] += x.shape()[a];
    }
    const int64_t outer = s0.numel(0, a), inner = s0.numel(a + 1, s0.rank()), row = so[a] * inner;
    const auto join = [so, a, outer, inner, row](const std::vector<const Tensor<T>*>& parts) {  // also remakes a released value
        Tensor<T> out = Tensor<T>::empty(so);
        int64_t offset = 0;
        for (const Tensor<T>* x : parts) {
            const int64_t len = x->shape()[a] * inner;
            kernels::copy_rows(outer, len, x->data(), len, out.data() + offset, row, false);
            offset += len;
        }
        return out;
    };
    std::vector<const Tensor<T>*> parts;
    for (const Var<T>& x : xs) parts.push_back(&x.value());
    return Var<T>::make(
        join(parts), "concat", xs,
        [inner, row, a, outer](autograd::Node<T>& self) {  // each dx_i += its block of dy
            int64_t offset = 0;
            for (auto& p : self.parents) {
                const int64_t len = p->value.shape()[a] * inner;
                if (p->requires_grad) {
                    bool add = true;
                    T* dx = p->grad_buffer(add).data();
                    kernels::copy_rows(outer, len, self.grad.data() + offset, row, dx, len, add);
                }
                offset += len;
            }
        },
        [join](const autograd::Node<T>& self) {
            std::vector<const Tensor<T>*> parts;
            for (const auto& p : self.parents) parts.push_back(&p->value);
            return join(parts);
        });
}

// Cuts x along `axis` into pieces of the given extents (summing to x's extent).
template <class T>
std::vector<Var<T>> split(const Var<T>& x, const std::vector<int64_t>& sizes, int axis) {
    const Shape& s = x.shape();
    const int a = normalize_axis("split", axis, s);
    if (std::accumulate(sizes.begin(), sizes.end(), int64_t(0)) != s[a] ||
        std::any_of(sizes.begin(), sizes.end(), [](int64_t n) { return n < 0; }))
        throw shape_error("split", s, "cannot be cut into the given sizes along axis " + std::to_string(a));
    const int64_t outer = s.numel(0, a), inner = s.numel(a + 1, s.rank()), row = s[a] * inner;
    std::vector<Var<T>> out;
    int64_t offset = 0;
    for (int64_t n : sizes) {
        Shape piece = s;
        piece[a] = n;
        Tensor<T> v = Tensor<T>::empty(piece);
        const int64_t len = n * inner;
        kernels::copy_rows(outer, len, x.value().data() + offset, row, v.data(), len, false);
        out.push_back(Var<T>::make(v, "split", {x}, [outer, len, row, offset](autograd::Node<T>& self) {  // dx block += dy
            kernels::copy_rows(outer, len, self.grad.data(), len, self.parents[0]->grad_buffer().data() + offset, row, true);
        }));
        offset += len;
    }
    return out;
}

// ---- softmax ----

// exp(x_i) / sum_j exp(x_j) along `axis` (the last by default).
template <class T>
Var<T> softmax(const Var<T>& x, int axis = -1) {
    const int a = normalize_axis("softmax", axis, x.shape());
    if (a != x.dim() - 1) return transpose(softmax(transpose(x, a, -1), -1), a, -1);
    const int64_t n = x.dim() == 0 ? 1 : x.shape()[a], rows = x.numel() / std::max<int64_t>(n, 1);
    Tensor<T> y = Tensor<T>::empty(x.shape());
    kernels::softmax(x.value().data(), rows, n, y.data());
    return Var<T>::make(y, "softmax", {x}, [rows, n](autograd::Node<T>& self) {  // dx = y (dy - <dy, y>)
        kernels::softmax_backward(self.value.data(), self.grad.data(), rows, n, self.parents[0]->grad_buffer().data());
    });
}

DDPMKIT_END_NAMESPACE
