// ddpmkit — Shape: the extents of a tensor (rank <= Shape::kMaxRank), and the errors
// that name the operation and the shapes involved.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "ddpmkit/config.hpp"

DDPMKIT_BEGIN_NAMESPACE

class Shape {
public:
    static constexpr int kMaxRank = 6;
    // The most elements a tensor may have, 2^48: beyond any memory, and small enough that its
    // byte count and any offset into it fit an int64_t. numel() refuses shapes beyond it
    // (a corrupt file or a wrong flag), so no size computation downstream can wrap around.
    static constexpr int64_t kMaxNumel = int64_t(1) << 48;

    Shape() = default;
    Shape(std::initializer_list<int64_t> dims) { assign(dims.begin(), dims.end()); }
    explicit Shape(const std::vector<int64_t>& dims) { assign(dims.begin(), dims.end()); }

    int rank() const { return rank_; }
    int64_t operator[](int i) const { return dims_[static_cast<size_t>(i)]; }
    int64_t& operator[](int i) { return dims_[static_cast<size_t>(i)]; }
    const int64_t* begin() const { return dims_.data(); }
    const int64_t* end() const { return dims_.data() + rank_; }

    // Number of elements; 1 for rank 0 (a scalar). std::length_error beyond kMaxNumel.
    int64_t numel() const { return numel(0, rank_); }
    // Product of the extents in [from, to).
    int64_t numel(int from, int to) const {
        for (int i = from; i < to; ++i)
            if (dims_[static_cast<size_t>(i)] == 0) return 0;  // empty, whatever the other extents
        int64_t n = 1;
        for (int i = from; i < to; ++i)
            if (__builtin_mul_overflow(n, dims_[static_cast<size_t>(i)], &n) || n > kMaxNumel)
                throw std::length_error("Shape " + str() + ": more than 2^48 elements");
        return n;
    }
    // Row-major strides, in elements. std::length_error for a stride beyond kMaxNumel, which
    // only an empty shape can reach (numel() refuses the others): [0, 2^40, 2^40] would wrap.
    Shape strides() const {
        Shape s;
        s.rank_ = rank_;
        int64_t stride = 1;
        for (int i = rank_ - 1; i >= 0; --i) {
            s.dims_[static_cast<size_t>(i)] = stride;
            if (i > 0 && (__builtin_mul_overflow(stride, dims_[static_cast<size_t>(i)], &stride) || stride > kMaxNumel))
                throw std::length_error("Shape " + str() + ": a stride beyond 2^48 elements");
        }
        return s;
    }
    void push_back(int64_t d) {
        if (rank_ == kMaxRank) throw std::length_error("Shape: rank above " + std::to_string(kMaxRank));
        if (d < 0) throw std::invalid_argument("Shape: negative extent " + std::to_string(d));
        dims_[static_cast<size_t>(rank_++)] = d;
    }
    std::vector<int64_t> to_vector() const { return {begin(), end()}; }

    friend bool operator==(const Shape& a, const Shape& b) {
        if (a.rank_ != b.rank_) return false;
        for (int i = 0; i < a.rank_; ++i)
            if (a[i] != b[i]) return false;
        return true;
    }
    friend bool operator!=(const Shape& a, const Shape& b) { return !(a == b); }

    std::string str() const {
        std::string s = "[";
        for (int i = 0; i < rank_; ++i) s += (i ? "," : "") + std::to_string(dims_[static_cast<size_t>(i)]);
        return s + "]";
    }
    friend std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

private:
    template <class It>
    void assign(It first, It last) {
        for (; first != last; ++first) push_back(*first);
    }
    std::array<int64_t, kMaxRank> dims_{};
    int rank_ = 0;
};

// Thrown for every shape mismatch: the message names the operation and the shapes.
class ShapeError : public std::invalid_argument {
public:
    explicit ShapeError(const std::string& what) : std::invalid_argument(what) {}
};

inline ShapeError shape_error(const std::string& op, const Shape& a, const std::string& detail = "") {
    return ShapeError(op + ": shape " + a.str() + (detail.empty() ? "" : " " + detail));
}
inline ShapeError shape_error(const std::string& op, const Shape& a, const Shape& b, const std::string& detail = "") {
    return ShapeError(op + ": shapes " + a.str() + " and " + b.str() + (detail.empty() ? "" : " " + detail));
}

// Resolves a possibly negative axis against a rank, as in PyTorch (-1 is the last axis).
inline int normalize_axis(const std::string& op, int axis, const Shape& s) {
    const int r = s.rank();
    if (axis < -r || axis >= r)
        throw shape_error(op, s, "has no axis " + std::to_string(axis));
    return axis < 0 ? axis + r : axis;
}

// The shape of a broadcast of a and b (numpy rules: align on the right, 1 stretches).
inline Shape broadcast_shapes(const std::string& op, const Shape& a, const Shape& b) {
    const int r = a.rank() > b.rank() ? a.rank() : b.rank();
    Shape out;
    for (int i = 0; i < r; ++i) {
        const int ia = i - (r - a.rank()), ib = i - (r - b.rank());
        const int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
        if (da != db && da != 1 && db != 1) throw shape_error(op, a, b, "do not broadcast");
        out.push_back(da == 1 ? db : da);
    }
    return out;
}

DDPMKIT_END_NAMESPACE
