// ddpmkit — Tensor<T>: an owning, contiguous, row-major array of float, double or int64_t.
//
// Storage is reference counted: copies and reshape() share the same elements (like a
// PyTorch view); clone() makes an independent copy. Storage is 64-byte aligned for SIMD.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <memory>
#include <new>
#include <ostream>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/random.hpp"
#include "ddpmkit/core/shape.hpp"
#include "ddpmkit/core/storage.hpp"

DDPMKIT_BEGIN_NAMESPACE

template <class T>
class Tensor {
    static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value || std::is_same<T, int64_t>::value,
                  "Tensor<T>: T is float, double or int64_t");

public:
    using value_type = T;

    // An undefined tensor: no storage, rank 0, numel() == 0.
    Tensor() = default;
    // Zeros of the given shape.
    explicit Tensor(const Shape& shape) : shape_(shape), storage_(aligned_storage_of<T>(shape.numel())) {
        data_ = storage_.get();
    }
    Tensor(const Shape& shape, T value) : Tensor(shape, Unset{}) { fill(value); }
    // A tensor holding `values` (row-major); their number must match the shape.
    Tensor(const Shape& shape, const std::vector<T>& values) : Tensor(shape, Unset{}) {
        if (static_cast<int64_t>(values.size()) != shape.numel())
            throw shape_error("Tensor", shape, "needs " + std::to_string(shape.numel()) + " values, got " +
                                                   std::to_string(values.size()));
        std::copy(values.begin(), values.end(), data_);
    }

    static Tensor zeros(const Shape& shape) { return Tensor(shape); }
    // Elements left unset: for outputs that a kernel overwrites completely.
    static Tensor empty(const Shape& shape) { return Tensor(shape, Unset{}); }
    static Tensor ones(const Shape& shape) { return Tensor(shape, T(1)); }
    static Tensor scalar(T value) { return Tensor(Shape{}, value); }
    // Independent N(mean, std^2) entries from the counter-based generator.
    static Tensor randn(const Shape& shape, Rng& rng, double mean = 0.0, double std = 1.0) {
        static_assert(std::is_floating_point<T>::value, "randn: floating-point tensors only");
        Tensor t = empty(shape);
        rng.normal(t.data_, t.numel(), mean, std);
        return t;
    }
    // Independent U[lo, hi) entries.
    static Tensor rand(const Shape& shape, Rng& rng, double lo = 0.0, double hi = 1.0) {
        static_assert(std::is_floating_point<T>::value, "rand: floating-point tensors only");
        Tensor t = empty(shape);
        rng.uniform(t.data_, t.numel(), lo, hi);
        return t;
    }

    bool defined() const { return storage_ != nullptr; }
    const Shape& shape() const { return shape_; }
    Shape strides() const { return shape_.strides(); }
    int dim() const { return shape_.rank(); }
    int64_t size(int axis) const { return shape_[normalize_axis("Tensor::size", axis, shape_)]; }
    int64_t numel() const { return defined() ? shape_.numel() : 0; }
    T* data() { return data_; }
    const T* data() const { return data_; }
    // True when both tensors read and write the same elements.
    bool shares_storage_with(const Tensor& o) const { return storage_ == o.storage_; }

    // Unchecked element access by indices, one per axis.
    template <class... I>
    T& operator()(I... idx) {
        return data_[offset_of(static_cast<int64_t>(idx)...)];
    }
    template <class... I>
    const T& operator()(I... idx) const {
        return data_[offset_of(static_cast<int64_t>(idx)...)];
    }
    // Checked element access: throws std::out_of_range naming the index and the shape.
    T& at(std::initializer_list<int64_t> idx) { return data_[checked_offset(idx)]; }
    const T& at(std::initializer_list<int64_t> idx) const { return data_[checked_offset(idx)]; }
    // The single element of a one-element tensor.
    T item() const {
        if (numel() != 1) throw shape_error("item", shape_, "has " + std::to_string(numel()) + " elements, not 1");
        return data_[0];
    }

    // The same elements seen with another shape of the same size (shares storage).
    Tensor reshape(const Shape& shape) const {
        if (shape.numel() != numel()) throw shape_error("reshape", shape_, shape, "differ in size");
        Tensor t = *this;
        t.shape_ = shape;
        return t;
    }
    // Rows [begin, end) along the first axis (shares storage).
    Tensor slice(int64_t begin, int64_t end) const {
        if (dim() == 0 || begin < 0 || end > shape_[0] || begin > end)
            throw shape_error("slice", shape_, "has no rows [" + std::to_string(begin) + ", " + std::to_string(end) + ")");
        Tensor t = *this;
        t.shape_[0] = end - begin;
        t.data_ = data_ + begin * shape_.numel(1, dim());
        return t;
    }
    Tensor clone() const {
        Tensor t = empty(shape_);
        std::copy(data_, data_ + numel(), t.data_);
        return t;
    }
    template <class U>
    Tensor<U> cast() const {
        Tensor<U> t = Tensor<U>::empty(shape_);
        for (int64_t i = 0; i < numel(); ++i) t.data()[i] = static_cast<U>(data_[i]);
        return t;
    }
    void fill(T value) { std::fill(data_, data_ + numel(), value); }
    // Copies the elements of a tensor of the same shape into this one.
    void copy_from(const Tensor& src) {
        if (src.shape_ != shape_) throw shape_error("copy_from", shape_, src.shape_, "differ");
        std::copy(src.data_, src.data_ + numel(), data_);
    }

    // PyTorch-style printing; long axes are elided to their first and last three entries.
    friend std::ostream& operator<<(std::ostream& os, const Tensor& t) {
        os << "Tensor" << t.shape_ << "\n";
        if (!t.defined()) return os << "(undefined)";
        std::ostringstream body;
        body << std::setprecision(5);
        t.print_axis(body, 0, 0, 1);
        return os << body.str();
    }
    std::string str() const {
        std::ostringstream os;
        os << *this;
        return os.str();
    }

private:
    struct Unset {};
    Tensor(const Shape& shape, Unset) : shape_(shape), storage_(aligned_storage_of<T>(shape.numel(), false)), data_(storage_.get()) {}
    int64_t offset_of() const { return 0; }
    template <class... I>
    int64_t offset_of(I... idx) const {
        const int64_t ids[] = {idx...};
        int64_t off = 0;
        for (int i = 0; i < static_cast<int>(sizeof...(I)); ++i) off = off * shape_[i] + ids[i];
        return off;
    }
    int64_t checked_offset(std::initializer_list<int64_t> idx) const {
        bool ok = static_cast<int>(idx.size()) == dim();
        int64_t off = 0;
        int i = 0;
        for (int64_t v : idx) {
            if (!ok || v < 0 || v >= shape_[i]) {
                ok = false;
                break;
            }
            off = off * shape_[i++] + v;
        }
        if (!ok) {
            std::string s = "[";
            for (int64_t v : idx) s += (s.size() > 1 ? "," : "") + std::to_string(v);
            throw std::out_of_range("Tensor::at: index " + s + "] outside shape " + shape_.str());
        }
        return off;
    }
    void print_axis(std::ostream& os, int axis, int64_t offset, int indent) const {
        if (axis == dim()) {
            os << +data_[offset];
            return;
        }
        const int64_t n = shape_[axis], inner = shape_.numel(axis + 1, dim());
        os << "[";
        for (int64_t i = 0; i < n; ++i) {
            if (n > 6 && i == 3) {
                os << (axis + 1 == dim() ? "..., " : "...,\n" + std::string(static_cast<size_t>(indent), ' '));
                i = n - 3;
            }
            print_axis(os, axis + 1, offset + i * inner, indent + 1);
            if (i + 1 < n) os << (axis + 1 == dim() ? ", " : ",\n" + std::string(static_cast<size_t>(indent), ' '));
        }
        os << "]";
    }

    Shape shape_;
    std::shared_ptr<T> storage_;
    T* data_ = nullptr;
};

// a and b stacked along the first axis: [m, ...] and [n, ...] -> [m + n, ...].
template <class T>
Tensor<T> concat_rows(const Tensor<T>& a, const Tensor<T>& b) {
    bool same_rest = a.dim() >= 1 && a.dim() == b.dim();
    for (int i = 1; same_rest && i < a.dim(); ++i) same_rest = a.size(i) == b.size(i);
    if (!same_rest)
        throw shape_error("concat_rows", a.shape(), b.shape(), "differ beyond the first axis");
    Shape s = a.shape();
    s[0] = a.size(0) + b.size(0);
    Tensor<T> out = Tensor<T>::empty(s);
    std::copy(a.data(), a.data() + a.numel(), out.data());
    std::copy(b.data(), b.data() + b.numel(), out.data() + a.numel());
    return out;
}

using TensorF = Tensor<float>;
using TensorD = Tensor<double>;

DDPMKIT_END_NAMESPACE
