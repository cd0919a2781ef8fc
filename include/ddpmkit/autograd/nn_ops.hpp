// ddpmkit — the differentiable ops of neural-network layers, each with a hand-written
// backward on the kernels: linear, conv2d, group_norm, group_norm_silu, group_norm_silu_conv2d, attention,
// upsample_nearest2x, embedding, dropout. Shape letters: B batch, C channels, H W size, O out channels/features.
#pragma once

#include <string>
#include <vector>

#include "ddpmkit/autograd/ops.hpp"
#include "ddpmkit/autograd/var.hpp"
#include "ddpmkit/config.hpp"
#include "ddpmkit/kernels/conv2d.hpp"
#include "ddpmkit/kernels/gemm.hpp"
#include "ddpmkit/kernels/layout.hpp"
#include "ddpmkit/kernels/norm.hpp"
#include "ddpmkit/kernels/reduce.hpp"
#include "ddpmkit/kernels/softmax.hpp"

DDPMKIT_BEGIN_NAMESPACE

// y = x W^T + b: x [B, I], W [O, I], b [O] (or undefined) -> y [B, O].
template <class T>
Var<T> linear(const Var<T>& x, const Var<T>& w, const Var<T>& b) {
    const Shape &sx = x.shape(), &sw = w.shape();
    if (sx.rank() != 2 || sw.rank() != 2 || sx[1] != sw[1] || (b.defined() && b.shape() != Shape{sw[0]}))
        throw shape_error("linear", sx, sw, "(input, weight) do not fit x [B, I], W [O, I], b [O]");
    const int64_t B = sx[0], I = sx[1], O = sw[0];
    Tensor<T> y = Tensor<T>::empty({B, O});
    if (b.defined())
        for (int64_t i = 0; i < B; ++i) std::copy(b.value().data(), b.value().data() + O, y.data() + i * O);
    kernels::gemm<T>(false, true, B, O, I, T(1), x.value().data(), I, w.value().data(), I, b.defined() ? T(1) : T(0),
                     y.data(), O);
    std::vector<Var<T>> inputs = {x, w};
    if (b.defined()) inputs.push_back(b);
    return Var<T>::make(y, "linear", inputs, [B, I, O](autograd::Node<T>& self) {
        autograd::Node<T>& nx = *self.parents[0];
        autograd::Node<T>& nw = *self.parents[1];
        const T* dy = self.grad.data();
        if (nx.requires_grad)  // dx += dy W
            kernels::gemm<T>(false, false, B, I, O, T(1), dy, O, nw.value.data(), I, T(1), nx.grad_buffer().data(), I);
        if (nw.requires_grad)  // dW += dy^T x
            kernels::gemm<T>(true, false, O, I, B, T(1), dy, O, nx.value.data(), I, T(1), nw.grad_buffer().data(), I);
        if (self.parents.size() > 2 && self.parents[2]->requires_grad) {  // db += sum over rows of dy
            Tensor<T> col({O});
            kernels::sum_axis(dy, int64_t(1), B, O, col.data());
            autograd::accumulate(*self.parents[2], col, T(1), true);
        }
    });
}

// Cross-correlation of x [B, C, H, W] with w [O, C, kh, kw], plus b [O] (or undefined), plus
// `residual` [B, O, Ho, Wo] (or undefined): a residual connection added where the output is
// written, without a tensor for the convolution alone.
namespace detail {
// The geometry of op's convolution of x [B, C, H, W] with w [O, C, kh, kw], b [O] (or
// undefined) and a residual [B, O, Ho, Wo] (or undefined); throws shape_error on a misfit.
template <class T>
kernels::ConvGeometry conv_geometry(const char* op, const Shape& sx, const Var<T>& w, const Var<T>& b, int64_t stride,
                                    int64_t pad, const Var<T>& residual) {
    const Shape& sw = w.shape();
    if (sx.rank() != 4 || sw.rank() != 4 || sx[1] != sw[1] || (b.defined() && b.shape() != Shape{sw[0]}) || stride < 1 ||
        pad < 0 || sx[2] + 2 * pad < sw[2] || sx[3] + 2 * pad < sw[3])
        throw shape_error(op, sx, sw, "(input, weight) do not fit x [B, C, H, W], w [O, C, kh, kw], b [O]");
    const kernels::ConvGeometry g{sx[1], sx[2], sx[3], sw[0], sw[2], sw[3], stride, pad};
    const Shape so{sx[0], g.O, g.Ho(), g.Wo()};
    if (residual.defined() && residual.shape() != so) throw shape_error(op, so, residual.shape(), "(output, residual) differ");
    return g;
}

// Throws shape_error unless x [B, C, ...] splits into `groups` groups of channels with gamma,
// beta [C] and shift [B, C] (or undefined).
template <class T>
void check_group_norm(const char* op, const Shape& sx, const Var<T>& gamma, const Var<T>& beta, int64_t groups,
                      const Var<T>& shift) {
    if (sx.rank() < 2 || groups < 1 || sx[1] % groups != 0 || gamma.shape() != Shape{sx[1]} || beta.shape() != Shape{sx[1]})
        throw shape_error(op, sx, gamma.shape(),
                          "(input, weight) do not fit x [B, C, ...] with C divisible by " + std::to_string(groups) +
                              " groups, weight and bias [C]");
    if (shift.defined() && shift.shape() != Shape{sx[0], sx[1]})
        throw shape_error(op, sx, shift.shape(), "(input, shift) do not fit x [B, C, ...], shift [B, C]");
}
}  // namespace detail

template <class T>
Var<T> conv2d(const Var<T>& x, const Var<T>& w, const Var<T>& b, int64_t stride = 1, int64_t pad = 0,
              const Var<T>& residual = Var<T>()) {
    const Shape& sx = x.shape();
    const kernels::ConvGeometry g = detail::conv_geometry("conv2d", sx, w, b, stride, pad, residual);
    Tensor<T> y = Tensor<T>::empty({sx[0], g.O, g.Ho(), g.Wo()});
    kernels::conv2d_forward(x.value().data(), sx[0], w.value().data(), b.defined() ? b.value().data() : nullptr, g, y.data(),
                            residual.defined() ? residual.value().data() : nullptr);
    std::vector<Var<T>> inputs = {x, w};
    if (b.defined()) inputs.push_back(b);
    if (residual.defined()) inputs.push_back(residual);
    const bool has_b = b.defined(), has_residual = residual.defined();
    return Var<T>::make(y, "conv2d", inputs, [g, has_b, has_residual](autograd::Node<T>& self) {
        autograd::Node<T>& nx = *self.parents[0];
        autograd::Node<T>& nw = *self.parents[1];
        autograd::Node<T>* nb = has_b ? self.parents[2].get() : nullptr;
        autograd::Node<T>* nr = has_residual ? self.parents.back().get() : nullptr;
        bool add_dx = true;  // set before the call: argument order is unspecified
        T* dx = nx.requires_grad ? nx.grad_buffer(add_dx).data() : nullptr;
        kernels::conv2d_backward(nx.value.data(), nx.value.shape()[0], nw.value.data(), g, self.grad.data(), dx,
                                 nw.requires_grad ? nw.grad_buffer().data() : nullptr,
                                 nb && nb->requires_grad ? nb->grad_buffer().data() : nullptr, add_dx);
        // dresidual = dy: last, so that it can take self.grad itself (dropped after this function)
        if (nr && nr->requires_grad) autograd::accumulate(*nr, self.grad, T(1), true);
    });
}

// GroupNorm over x [B, C, ...] with `groups` groups and affine gamma, beta [C].
template <class T>
Var<T> group_norm(const Var<T>& x, const Var<T>& gamma, const Var<T>& beta, int64_t groups, double eps = 1e-5) {
    const Shape& sx = x.shape();
    detail::check_group_norm("group_norm", sx, gamma, beta, groups, Var<T>());
    const int64_t B = sx[0], C = sx[1], HW = sx.numel(2, sx.rank());
    // The normalized value, with its statistics computed, or, remaking a released value, given.
    const auto normalize = [B, C, HW, groups, eps](const Tensor<T>& xv, const T* gm, const T* bt, Tensor<T> mean, Tensor<T> rstd,
                                                   bool known_stats) {
        Tensor<T> y = Tensor<T>::empty(xv.shape());
        kernels::group_norm_forward(xv.data(), B, C, HW, groups, gm, bt, eps, y.data(), mean.data(), rstd.data(), known_stats);
        return y;
    };
    const Tensor<T> mean({B, groups}), rstd({B, groups});
    Tensor<T> y = normalize(x.value(), gamma.value().data(), beta.value().data(), mean, rstd, false);
    return Var<T>::make(
        y, "group_norm", {x, gamma, beta},
        [B, C, HW, groups, mean, rstd](autograd::Node<T>& self) {
            autograd::Node<T>& nx = *self.parents[0];
            autograd::Node<T>& ng = *self.parents[1];
            autograd::Node<T>& nb = *self.parents[2];
            bool add_dx = true;  // set before the call: argument order is unspecified
            T* dx = nx.requires_grad ? nx.grad_buffer(add_dx).data() : nullptr;
            kernels::group_norm_backward(nx.value.data(), self.grad.data(), B, C, HW, groups, ng.value.data(), mean.data(),
                                         rstd.data(), dx, ng.requires_grad ? ng.grad_buffer().data() : nullptr,
                                         nb.requires_grad ? nb.grad_buffer().data() : nullptr, add_dx);
        },
        [normalize, mean, rstd](const autograd::Node<T>& self) {
            return normalize(self.parents[0]->value, self.parents[1]->value.data(), self.parents[2]->value.data(), mean, rstd, true);
        });
}

// SiLU(GroupNorm(x)) in one op (the U-Net's norm-then-activation): the same value as
// silu(group_norm(x, gamma, beta, groups, eps)) without the intermediate tensor; the
// backward recomputes z = GroupNorm(x) from x and the saved statistics. With a shift [B, C],
// the op normalizes x + shift broadcast over the positions, without forming that sum.
template <class T>
Var<T> group_norm_silu(const Var<T>& x, const Var<T>& gamma, const Var<T>& beta, int64_t groups, double eps = 1e-5,
                       const Var<T>& shift = Var<T>()) {
    const Shape& sx = x.shape();
    detail::check_group_norm("group_norm_silu", sx, gamma, beta, groups, shift);
    const int64_t B = sx[0], C = sx[1], HW = sx.numel(2, sx.rank());
    // The value, with its statistics computed, or, remaking a released value, given.
    const auto normalize = [B, C, HW, groups, eps](const Tensor<T>& xv, const T* gm, const T* bt, const T* sh, Tensor<T> mean,
                                                   Tensor<T> rstd, bool known_stats) {
        Tensor<T> y = Tensor<T>::empty(xv.shape());
        kernels::group_norm_silu_forward(xv.data(), B, C, HW, groups, gm, bt, eps, y.data(), mean.data(), rstd.data(), sh,
                                         known_stats);
        return y;
    };
    const Tensor<T> mean({B, groups}), rstd({B, groups});
    Tensor<T> y = normalize(x.value(), gamma.value().data(), beta.value().data(), shift.defined() ? shift.value().data() : nullptr,
                            mean, rstd, false);
    std::vector<Var<T>> inputs = {x, gamma, beta};
    if (shift.defined()) inputs.push_back(shift);
    return Var<T>::make(
        y, "group_norm_silu", inputs,
        [B, C, HW, groups, mean, rstd](autograd::Node<T>& self) {
            autograd::Node<T>& nx = *self.parents[0];
            autograd::Node<T>& ng = *self.parents[1];
            autograd::Node<T>& nb = *self.parents[2];
            autograd::Node<T>* ns = self.parents.size() > 3 ? self.parents[3].get() : nullptr;
            // dz = dy SiLU'(z), then GroupNorm's backward of dz
            bool add_dx = true;  // set before the call: argument order is unspecified
            T* dx = nx.requires_grad ? nx.grad_buffer(add_dx).data() : nullptr;
            kernels::group_norm_silu_backward(nx.value.data(), self.grad.data(), B, C, HW, groups, ng.value.data(),
                                              nb.value.data(), mean.data(), rstd.data(), dx,
                                              ng.requires_grad ? ng.grad_buffer().data() : nullptr,
                                              nb.requires_grad ? nb.grad_buffer().data() : nullptr, add_dx,
                                              ns ? ns->value.data() : nullptr,
                                              ns && ns->requires_grad ? ns->grad_buffer().data() : nullptr);
        },
        [normalize, mean, rstd](const autograd::Node<T>& self) {
            const autograd::Node<T>* ns = self.parents.size() > 3 ? self.parents[3].get() : nullptr;
            return normalize(self.parents[0]->value, self.parents[1]->value.data(), self.parents[2]->value.data(),
                             ns ? ns->value.data() : nullptr, mean, rstd, true);
        });
}

// conv2d(group_norm_silu(x, gamma, beta, groups, eps, shift), w, b, stride, pad, residual) in
// one op: the U-Net's norm, activation and convolution. The activation a is never stored
// whole: the convolution makes it a few images at a time as it reads them
// (kernels::ConvInput), computing their GroupNorm statistics on the way. The backward pass
// first takes the convolution's input gradient da; then, as the weight gradient makes a
// again, chunk by chunk, group_norm_silu's backward of those images runs from the same
// sigmoid, while they are in cache. The values are those of the two ops (a released and
// remade) bit for bit. (Where the convolution is not Winograd's, a is made whole for it.)
template <class T>
Var<T> group_norm_silu_conv2d(const Var<T>& x, const Var<T>& gamma, const Var<T>& beta, int64_t groups, double eps,
                              const Var<T>& shift, const Var<T>& w, const Var<T>& b, int64_t stride = 1, int64_t pad = 0,
                              const Var<T>& residual = Var<T>()) {
    const Shape& sx = x.shape();
    detail::check_group_norm("group_norm_silu_conv2d", sx, gamma, beta, groups, shift);
    const kernels::ConvGeometry g = detail::conv_geometry("group_norm_silu_conv2d", sx, w, b, stride, pad, residual);
    const int64_t B = sx[0], C = sx[1], HW = sx.numel(2, sx.rank());
    Tensor<T> mean({B, groups}), rstd({B, groups});
    const T *xv = x.value().data(), *sh = shift.defined() ? shift.value().data() : nullptr;
    const kernels::ConvInput<T> activation([&](int64_t b0, int64_t n, T* a) {  // a of images [b0, b0 + n), and their statistics
        kernels::group_norm_silu_forward(xv + b0 * C * HW, n, C, HW, groups, gamma.value().data(), beta.value().data(), eps, a,
                                         mean.data() + b0 * groups, rstd.data() + b0 * groups, sh ? sh + b0 * C : nullptr);
    });
    Tensor<T> y = Tensor<T>::empty({B, g.O, g.Ho(), g.Wo()});
    kernels::conv2d_forward(activation, B, w.value().data(), b.defined() ? b.value().data() : nullptr, g, y.data(),
                            residual.defined() ? residual.value().data() : nullptr);
    std::vector<Var<T>> inputs = {x, gamma, beta, w};
    for (const Var<T>* v : {&shift, &b, &residual})
        if (v->defined()) inputs.push_back(*v);
    const bool has_shift = shift.defined(), has_b = b.defined(), has_residual = residual.defined();
    return Var<T>::make(
        y, "group_norm_silu_conv2d", inputs,
        // mutable: group_norm_silu_forward takes the statistics writable (it reads them here)
        [g, B, C, HW, groups, eps, mean, rstd, has_shift, has_b, has_residual](autograd::Node<T>& self) mutable {
            autograd::Node<T>& nx = *self.parents[0];
            autograd::Node<T>& ng = *self.parents[1];
            autograd::Node<T>& nbeta = *self.parents[2];
            autograd::Node<T>& nw = *self.parents[3];
            size_t next = 4;
            autograd::Node<T>* ns = has_shift ? self.parents[next++].get() : nullptr;
            autograd::Node<T>* nb = has_b ? self.parents[next++].get() : nullptr;
            autograd::Node<T>* nr = has_residual ? self.parents[next].get() : nullptr;
            const T *xv = nx.value.data(), *gm = ng.value.data(), *bt = nbeta.value.data();
            const T* sh = ns ? ns->value.data() : nullptr;
            const bool need_da = nx.requires_grad || ng.requires_grad || nbeta.requires_grad || (ns && ns->requires_grad);
            Tensor<T> da = need_da ? Tensor<T>::empty(nx.value.shape()) : Tensor<T>();
            bool add_dx = true;  // set before the call: argument order is unspecified
            T* dx = nx.requires_grad ? nx.grad_buffer(add_dx).data() : nullptr;
            T* dshift = ns && ns->requires_grad ? ns->grad_buffer().data() : nullptr;
            std::vector<double> sums(need_da ? static_cast<size_t>(2 * B * C) : 0);  // [B, 2, C]: for dgamma, dbeta
            // a of images [b0, b0 + n) (into a, unless null), and, with da, their share of the backward
            const auto remake = [&](int64_t b0, int64_t n, T* a) {
                if (need_da)
                    kernels::group_norm_silu_backward_images(xv, da.data(), b0, n, C, HW, groups, gm, bt, mean.data(), rstd.data(),
                                                             a, dx, add_dx, sh, dshift, sums.data());
                else
                    kernels::group_norm_silu_forward(xv + b0 * C * HW, n, C, HW, groups, gm, bt, eps, a, mean.data() + b0 * groups,
                                                     rstd.data() + b0 * groups, sh ? sh + b0 * C : nullptr, true);
            };
            kernels::conv2d_backward(kernels::ConvInput<T>(remake), B, nw.value.data(), g, self.grad.data(),
                                     need_da ? da.data() : nullptr, nw.requires_grad ? nw.grad_buffer().data() : nullptr,
                                     nb && nb->requires_grad ? nb->grad_buffer().data() : nullptr, false);
            if (need_da && !(nw.requires_grad && g.O > 0)) remake(0, B, nullptr);  // the convolution made no a
            if (need_da)
                kernels::group_norm_param_grads(sums.data(), B, C, ng.requires_grad ? ng.grad_buffer().data() : nullptr,
                                                nbeta.requires_grad ? nbeta.grad_buffer().data() : nullptr);
            // dresidual = dy: last, so that it can take self.grad itself (dropped after this function)
            if (nr && nr->requires_grad) autograd::accumulate(*nr, self.grad, T(1), true);
        });
}

// Scaled dot-product attention over positions (Vaswani et al. 2017, eq. 1) in one op, for
// q, k, v [N, d, P] (N = batch x heads, d channels per head, P positions):
//   a[n, i, :] = softmax_j(scale sum_c q[n, c, i] k[n, c, j]),  out[n, c, i] = sum_j v[n, c, j] a[n, i, j].
// Each n runs on one thread, its small products on the GEMM; the weights a [N, P, P] are kept
// for the backward:
//   dv = dout a,  da = dout^T v,  ds = a (da - rowsum(da a)),  dq = scale k ds^T,  dk = scale q ds.
template <class T>
Var<T> attention(const Var<T>& q, const Var<T>& k, const Var<T>& v, double scale) {
    const Shape& s = q.shape();
    if (s.rank() != 3 || k.shape() != s || v.shape() != s)
        throw shape_error("attention", s, k.shape(), "(q, k) are not both [N, d, P], or v differs from them");
    const int64_t N = s[0], d = s[1], P = s[2];
    const T sc = static_cast<T>(scale);
    Tensor<T> out = Tensor<T>::empty(s), a = Tensor<T>::empty({N, P, P});
    const T *pq = q.value().data(), *pk = k.value().data(), *pv = v.value().data();
    parallel_for(0, N, 1, [&](int64_t n0, int64_t n1) {
        for (int64_t n = n0; n < n1; ++n) {
            T* an = a.data() + n * P * P;
            kernels::gemm<T>(true, false, P, P, d, sc, pq + n * d * P, P, pk + n * d * P, P, T(0), an, P);
            kernels::softmax(an, P, P, an);
            kernels::gemm<T>(false, true, d, P, P, T(1), pv + n * d * P, P, an, P, T(0), out.data() + n * d * P, P);
        }
    });
    return Var<T>::make(out, "attention", {q, k, v}, [N, d, P, sc, a](autograd::Node<T>& self) {
        autograd::Node<T>& nq = *self.parents[0];
        autograd::Node<T>& nk = *self.parents[1];
        autograd::Node<T>& nv = *self.parents[2];
        T* dq = nq.requires_grad ? nq.grad_buffer().data() : nullptr;
        T* dk = nk.requires_grad ? nk.grad_buffer().data() : nullptr;
        T* dv = nv.requires_grad ? nv.grad_buffer().data() : nullptr;
        const T *pq = nq.value.data(), *pk = nk.value.data(), *pv = nv.value.data(), *dout = self.grad.data();
        parallel_for(0, N, 1, [&](int64_t n0, int64_t n1) {
            std::vector<T> da(static_cast<size_t>(P * P)), ds(static_cast<size_t>(P * P));
            for (int64_t n = n0; n < n1; ++n) {
                const int64_t o = n * d * P;
                const T* an = a.data() + n * P * P;
                if (dv) kernels::gemm<T>(false, false, d, P, P, T(1), dout + o, P, an, P, T(1), dv + o, P);
                if (!dq && !dk) continue;
                kernels::gemm<T>(true, false, P, P, d, T(1), dout + o, P, pv + o, P, T(0), da.data(), P);
                std::fill(ds.begin(), ds.end(), T(0));
                kernels::softmax_backward(an, da.data(), P, P, ds.data());
                if (dq) kernels::gemm<T>(false, true, d, P, P, sc, pk + o, P, ds.data(), P, T(1), dq + o, P);
                if (dk) kernels::gemm<T>(false, false, d, P, P, sc, pq + o, P, ds.data(), P, T(1), dk + o, P);
            }
        });
    });
}

// Nearest-neighbour upsampling by 2: [B, C, H, W] -> [B, C, 2H, 2W].
template <class T>
Var<T> upsample_nearest2x(const Var<T>& x) {
    const Shape& s = x.shape();
    if (s.rank() != 4) throw shape_error("upsample_nearest2x", s, "is not [B, C, H, W]");
    const int64_t planes = s[0] * s[1], H = s[2], W = s[3];
    const auto upsample = [planes, H, W](const Tensor<T>& xv) {  // also remakes a released value
        const Shape& s = xv.shape();
        Tensor<T> y = Tensor<T>::empty({s[0], s[1], 2 * H, 2 * W});
        kernels::upsample_nearest2x(xv.data(), planes, H, W, y.data());
        return y;
    };
    return Var<T>::make(
        upsample(x.value()), "upsample_nearest2x", {x},
        [planes, H, W](autograd::Node<T>& self) {  // dx = sum of its 2x2 block
            bool add = true;
            T* dx = self.parents[0]->grad_buffer(add).data();
            kernels::upsample_nearest2x_backward(self.grad.data(), planes, H, W, dx, add);
        },
        [upsample](const autograd::Node<T>& self) { return upsample(self.parents[0]->value); });
}

// Rows of `table` [N, D] picked by ids [B] -> [B, D]; the gradient is scattered back.
template <class T>
Var<T> embedding(const Var<T>& table, const Tensor<int64_t>& ids) {
    const Shape& s = table.shape();
    if (s.rank() != 2 || ids.dim() != 1) throw shape_error("embedding", s, ids.shape(), "(table, ids) are not [N, D], [B]");
    const int64_t B = ids.numel(), D = s[1];
    Tensor<T> y = Tensor<T>::empty({B, D});
    for (int64_t i = 0; i < B; ++i) {
        const int64_t id = ids.data()[i];
        if (id < 0 || id >= s[0])
            throw std::out_of_range("embedding: id " + std::to_string(id) + " at position " + std::to_string(i) +
                                    " outside the table's " + std::to_string(s[0]) + " rows");
        std::copy(table.value().data() + id * D, table.value().data() + (id + 1) * D, y.data() + i * D);
    }
    return Var<T>::make(y, "embedding", {table}, [ids, B, D](autograd::Node<T>& self) {  // d table[id] += dy[i]
        T* dt = self.parents[0]->grad_buffer().data();
        for (int64_t i = 0; i < B; ++i) kernels::axpy(D, T(1), self.grad.data() + i * D, dt + ids.data()[i] * D);
    });
}

// Inverted dropout: each element is zeroed with probability p, the others scaled by 1/(1-p).
// Under a BatchPartGuard, x holds rows of a larger batch and gets their part of its mask.
template <class T>
Var<T> dropout(const Var<T>& x, double p, Rng& rng) {
    if (p < 0.0 || p >= 1.0) throw std::invalid_argument("dropout: p = " + std::to_string(p) + " is outside [0, 1)");
    if (p == 0.0) return x;
    Tensor<T> mask = Tensor<T>::empty(x.shape());
    const BatchPart& part = batch_part();
    if (part.total > 0) {
        if (x.dim() == 0 || part.count < 1 || x.size(0) != part.count)
            throw shape_error("dropout", x.shape(), "does not hold the " + std::to_string(part.count) + " rows of the batch part its guard set");
        const int64_t row = mask.numel() / part.count;
        rng.uniform_part(mask.data(), part.total * row, part.first * row, (part.first + part.count) * row);
    } else {
        rng.uniform(mask.data(), mask.numel());
    }
    for (int64_t i = 0; i < mask.numel(); ++i) mask.data()[i] = mask.data()[i] < p ? T(0) : static_cast<T>(1.0 / (1.0 - p));
    return x * Var<T>(mask);
}

DDPMKIT_END_NAMESPACE
