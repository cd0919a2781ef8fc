// ddpmkit — data movement: axis permutation and strided 2-D block copies (for concat,
// split and their gradients).
#pragma once

#include <algorithm>
#include <cstdint>

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/parallel.hpp"
#include "ddpmkit/core/shape.hpp"
#include "ddpmkit/kernels/elementwise.hpp"

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

}  // namespace kernels
DDPMKIT_END_NAMESPACE
