// ddpmkit — data movement: axis permutation, strided 2-D block copies (for concat, split
// and their gradients), nearest-neighbour upsampling. Row by row, bitwise the reference's
// results (kernels/reference.hpp), for every type.
#pragma once

#include <algorithm>
#include <cstdint>

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/parallel.hpp"
#include "ddpmkit/core/shape.hpp"
#include "ddpmkit/kernels/elementwise.hpp"
#include "ddpmkit/kernels/reference.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace kernels {

// y = x with its axes permuted: y's axis i is x's axis perm[i] (as torch.permute).
template <class T>
void permute(const T* x, const Shape& shape, const int* perm, T* y) {
    const int r = shape.rank();
    if (r == 0) {
        y[0] = x[0];
        return;
    }
    const Shape in_strides = shape.strides();
    int64_t out_size[Shape::kMaxRank] = {}, step[Shape::kMaxRank] = {};
    for (int i = 0; i < r; ++i) {
        out_size[i] = shape[perm[i]];
        step[i] = in_strides[perm[i]];
    }
    const int64_t run = out_size[r - 1], rows = run == 0 ? 0 : shape.numel() / run, last = step[r - 1];
    parallel_for(0, rows, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(run, 1)), [&](int64_t r0, int64_t r1) {
        for (int64_t row = r0; row < r1; ++row) {
            int64_t rest = row, off = 0;
            for (int d = r - 2; d >= 0; --d) {
                off += rest % out_size[d] * step[d];
                rest /= out_size[d];
            }
            T* dst = y + row * run;
            for (int64_t j = 0; j < run; ++j) dst[j] = x[off + j * last];
        }
    });
}

// For o < rows: dst[o dst_stride + j] (=, or += when accumulate) src[o src_stride + j], j < len.
template <class T>
void copy_rows(int64_t rows, int64_t len, const T* src, int64_t src_stride, T* dst, int64_t dst_stride, bool accumulate) {
    parallel_for(0, rows, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(len, 1)), [&](int64_t r0, int64_t r1) {
        for (int64_t o = r0; o < r1; ++o) {
            if (accumulate)
                axpy(len, T(1), src + o * src_stride, dst + o * dst_stride);
            else
                std::copy(src + o * src_stride, src + o * src_stride + len, dst + o * dst_stride);
        }
    });
}

// Nearest-neighbour upsampling by 2 of `planes` H x W planes: y[p, i, j] = x[p, i / 2, j / 2].
// Each input row is widened once into the first of its two output rows, then copied.
template <class T>
void upsample_nearest2x(const T* x, int64_t planes, int64_t H, int64_t W, T* y) {
    parallel_for(0, planes * H, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(4 * W, 1)), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {  // input row r (of all planes' rows) gives output rows 2r, 2r + 1
            const T* src = x + r * W;
            T* top = y + 2 * r * 2 * W;
            for (int64_t j = 0; j < W; ++j) top[2 * j] = top[2 * j + 1] = src[j];
            std::copy(top, top + 2 * W, top + 2 * W);
        }
    });
}

// dx[p, i, j] (+)= the sum of dy's 2 x 2 block at (2i, 2j); with add false, dx is overwritten.
template <class T>
void upsample_nearest2x_backward(const T* dy, int64_t planes, int64_t H, int64_t W, T* dx, bool add) {
    parallel_for(0, planes * H, std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(4 * W, 1)), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const T *top = dy + 2 * r * 2 * W, *bottom = top + 2 * W;
            T* out = dx + r * W;
            for (int64_t j = 0; j < W; ++j) {
                const T block = top[2 * j] + top[2 * j + 1] + bottom[2 * j] + bottom[2 * j + 1];  // the reference's order
                out[j] = add ? out[j] + block : block;
            }
        }
    });
}

}  // namespace kernels
DDPMKIT_END_NAMESPACE
