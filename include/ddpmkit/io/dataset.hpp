// ddpmkit — image data sets in memory (MNIST, Fashion-MNIST, CIFAR-10, an embedded
// synthetic set) and a seeded, resumable DataLoader.
//
// Shape letters: N images in a set, B in a batch, C channels, H x W pixels.
// Pixels are stored as float in [-1, 1]: x = byte / 127.5 - 1 (Ho et al. 2020, section 3.3:
// "image data consists of integers in {0, 1, ..., 255} scaled linearly to [-1, 1]").
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <sys/stat.h>

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/parallel.hpp"
#include "ddpmkit/core/random.hpp"
#include "ddpmkit/core/tensor.hpp"
#include "ddpmkit/io/cifar.hpp"
#include "ddpmkit/io/idx.hpp"

DDPMKIT_BEGIN_NAMESPACE

struct ImageDataset {
    Tensor<float> images;    // [N, C, H, W] in [-1, 1]
    Tensor<int64_t> labels;  // [N], each in [0, num_classes)
    int num_classes = 0;
    std::string name;

    int64_t size() const { return images.defined() ? images.size(0) : 0; }

    // The identity of the data, as 16 hex digits: FNV-1a (64 bit) over the shapes, then the bytes
    // of the images and the labels, 8 at a time. A checkpoint records it, so that a resumed run
    // cannot continue on other data under the same name.
    std::string digest() const {
        uint64_t h = 0xcbf29ce484222325ULL;
        auto mix = [&h](uint64_t word) { h = (h ^ word) * 0x100000001b3ULL; };
        auto bytes = [&](const void* data, size_t n) {
            const auto* p = static_cast<const unsigned char*>(data);
            for (size_t i = 0; i < n; i += 8) {
                uint64_t word = 0;
                std::memcpy(&word, p + i, std::min<size_t>(8, n - i));
                mix(word);
            }
        };
        for (const auto* t : {&images.shape(), &labels.shape()}) {
            mix(static_cast<uint64_t>(t->rank()));
            for (int64_t d : *t) mix(static_cast<uint64_t>(d));
        }
        if (images.defined()) bytes(images.data(), static_cast<size_t>(images.numel()) * sizeof(float));
        if (labels.defined()) bytes(labels.data(), static_cast<size_t>(labels.numel()) * sizeof(int64_t));
        char hex[17];
        std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
        return hex;
    }
};

// Where Debian's package dataset-fashion-mnist installs the four gzipped IDX files.
constexpr const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// The classes of the embedded synthetic set, by label.
constexpr std::array<const char*, 10> kShapesClassNames = {
    "disk",             // 0
    "ring",             // 1
    "square",           // 2
    "frame",            // 3: a hollow square
    "plus",             // 4
    "cross",            // 5: the plus turned 45 degrees
    "horizontal bars",  // 6
    "vertical bars",    // 7
    "triangle",         // 8
    "hollow triangle",  // 9
};

namespace dataset_detail {

// Byte b -> b / 127.5 - 1: 0 -> -1 and 255 -> 1 exactly.
inline void bytes_to_unit_range(const uint8_t* in, float* out, int64_t n) {
    parallel_for(0, n, 1 << 16, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) out[i] = static_cast<float>(in[i]) / 127.5f - 1.0f;
    });
}

inline bool file_exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

inline std::string join_path(const std::string& dir, const std::string& name) {
    return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

// dir/base if it exists, else dir/base.gz if that exists, else "".
inline std::string find_idx_file(const std::string& dir, const std::string& base) {
    for (const std::string& candidate : {join_path(dir, base), join_path(dir, base + ".gz")})
        if (file_exists(candidate)) return candidate;
    return "";
}

inline std::string idx_file_or_throw(const std::string& dir, const std::string& base, const std::string& set_name) {
    const std::string path = find_idx_file(dir, base);
    if (path.empty())
        throw std::runtime_error(set_name + ": neither " + join_path(dir, base) + " nor " +
                                 join_path(dir, base + ".gz") + " exists");
    return path;
}

// An MNIST-style pair of IDX files: images [N, H, W] and labels [N] in [0, 10).
inline ImageDataset load_idx_pair(const std::string& dir, bool train, const std::string& set_name) {
    const std::string prefix = train ? "train" : "t10k";
    const std::string images_path = idx_file_or_throw(dir, prefix + "-images-idx3-ubyte", set_name);
    const std::string labels_path = idx_file_or_throw(dir, prefix + "-labels-idx1-ubyte", set_name);
    const IdxArray images = read_idx(images_path);
    const IdxArray labels = read_idx(labels_path);
    if (images.dims.size() != 3)
        throw DataFormatError(images_path + ": holds " + std::to_string(images.dims.size()) +
                              " dimensions, but images are [N, H, W] (3)");
    if (labels.dims.size() != 1)
        throw DataFormatError(labels_path + ": holds " + std::to_string(labels.dims.size()) +
                              " dimensions, but labels are [N] (1)");
    if (images.dims[0] != labels.dims[0])
        throw DataFormatError(images_path + " holds " + std::to_string(images.dims[0]) + " images, but " + labels_path +
                              " holds " + std::to_string(labels.dims[0]) + " labels");
    ImageDataset d;
    d.name = set_name + (train ? " (train)" : " (test)");
    d.num_classes = 10;
    const int64_t n = images.dims[0];
    d.images = Tensor<float>(Shape{n, 1, images.dims[1], images.dims[2]});
    bytes_to_unit_range(images.data.data(), d.images.data(), d.images.numel());
    d.labels = Tensor<int64_t>(Shape{n});
    for (int64_t i = 0; i < n; ++i) {
        const uint8_t label = labels.data[static_cast<size_t>(i)];
        if (label >= d.num_classes)
            throw DataFormatError(labels_path + ": label " + std::to_string(i) + " is " + std::to_string(label) +
                                  ", not 0..9");
        d.labels(i) = label;
    }
    return d;
}

}  // namespace dataset_detail

// MNIST from dir: {train,t10k}-{images-idx3,labels-idx1}-ubyte, each optionally .gz.
inline ImageDataset load_mnist(const std::string& dir, bool train = true) {
    return dataset_detail::load_idx_pair(dir, train, "MNIST");
}
// Fashion-MNIST (Xiao et al. 2017): the same file names and layout as MNIST.
inline ImageDataset load_fashion_mnist(const std::string& dir = kDefaultFashionMnistDir, bool train = true) {
    return dataset_detail::load_idx_pair(dir, train, "Fashion-MNIST");
}

// CIFAR-10 from dir (the folder cifar-10-batches-bin): data_batch_1..5.bin for the training
// set (50000 images), test_batch.bin for the test set (10000). Images are [N, 3, 32, 32].
inline ImageDataset load_cifar10(const std::string& dir, bool train = true) {
    std::vector<std::string> files;
    if (train)
        for (int k = 1; k <= 5; ++k)
            files.push_back(dataset_detail::join_path(dir, "data_batch_" + std::to_string(k) + ".bin"));
    else files.push_back(dataset_detail::join_path(dir, "test_batch.bin"));
    std::vector<cifar::Batch> batches;
    int64_t n = 0;
    for (const std::string& f : files) {
        batches.push_back(cifar::read_batch(f));
        n += batches.back().count;
    }
    ImageDataset d;
    d.name = std::string("CIFAR-10") + (train ? " (train)" : " (test)");
    d.num_classes = static_cast<int>(cifar::kClasses);
    d.images = Tensor<float>(Shape{n, cifar::kChannels, cifar::kSide, cifar::kSide});
    d.labels = Tensor<int64_t>(Shape{n});
    int64_t first = 0;
    for (const cifar::Batch& b : batches) {
        // A record's R, G, B planes are already the [C, H, W] layout of one image.
        dataset_detail::bytes_to_unit_range(b.pixels.data(), d.images.data() + first * cifar::kImageBytes,
                                            b.count * cifar::kImageBytes);
        for (int64_t i = 0; i < b.count; ++i) d.labels(first + i) = b.labels[static_cast<size_t>(i)];
        first += b.count;
    }
    return d;
}

namespace dataset_detail {

// Signed distances in pixels (negative inside) of the shapes of the embedded set, in the
// shape's own frame (origin at its centre). Coverage of a pixel = clamp(0.5 - distance)
// gives anti-aliased edges with one evaluation per pixel.
inline double box_distance(double u, double v, double half_u, double half_v) {
    const double qu = std::fabs(u) - half_u, qv = std::fabs(v) - half_v;
    const double ou = std::max(qu, 0.0), ov = std::max(qv, 0.0);
    const double outside = std::sqrt(ou * ou + ov * ov);
    return outside + std::min(std::max(qu, qv), 0.0);
}
// An upward equilateral triangle of inradius r_in: the largest of its three edge distances
// (exact inside, slightly small near the corners outside: harmless for anti-aliasing).
inline double triangle_distance(double u, double v, double r_in) {
    const double s = 0.8660254037844386;  // sin 60 degrees; v grows downwards
    return std::max({v, -0.5 * v + s * u, -0.5 * v - s * u}) - r_in;
}

// Draws one 28x28 image of class label into out (bytes), from 6 uniforms in [0, 1).
inline void draw_shape(int label, const double* draws, uint8_t* out) {
    constexpr int kSide = 28;
    const double cx = 13.5 + (draws[0] - 0.5) * 5.0, cy = 13.5 + (draws[1] - 0.5) * 5.0;  // centre +-2.5 px
    const double size = 6.5 + 3.5 * draws[2];                                             // radius 6.5..10
    const double thickness = 1.6 + 1.6 * draws[3];                                        // strokes 1.6..3.2 px
    const double angle = (draws[4] - 0.5) * 0.5;                                          // +-0.25 rad
    const double intensity = 0.7 + 0.3 * draws[5];
    const double c = std::cos(angle), s = std::sin(angle);
    const double half = 0.75 * size, bar = thickness / 2;
    for (int y = 0; y < kSide; ++y)
        for (int x = 0; x < kSide; ++x) {
            const double dx = x - cx, dy = y - cy;
            const double u = c * dx + s * dy, v = -s * dx + c * dy;  // into the shape's rotated frame
            double d = 0;
            switch (label) {
            case 0: d = std::sqrt(u * u + v * v) - size; break;
            case 1: d = std::fabs(std::sqrt(u * u + v * v) - (size - bar)) - bar; break;
            case 2: d = box_distance(u, v, half, half); break;
            case 3: d = std::fabs(box_distance(u, v, half - bar, half - bar)) - bar; break;
            case 4: d = std::min(box_distance(u, v, bar, size), box_distance(u, v, size, bar)); break;
            case 5: {
                const double p = (u + v) * 0.7071067811865476, q = (u - v) * 0.7071067811865476;  // turned 45 degrees
                d = std::min(box_distance(p, q, bar, size), box_distance(p, q, size, bar));
                break;
            }
            case 6:
            case 7: {
                const double along = label == 6 ? u : v, across = label == 6 ? v : u;
                const double gap = std::max(2 * half / 3, thickness + 1.5);  // three bars that never merge
                d = std::min({box_distance(along, across + gap, half, bar), box_distance(along, across, half, bar),
                              box_distance(along, across - gap, half, bar)});
                break;
            }
            case 8: d = triangle_distance(u, v - 0.25 * size, 0.5 * size); break;  // centred on its box
            default: d = std::fabs(triangle_distance(u, v - 0.25 * size, 0.5 * size - bar)) - bar; break;
            }
            const double coverage = std::min(1.0, std::max(0.0, 0.5 - d));
            out[y * kSide + x] = static_cast<uint8_t>(std::lround(255.0 * intensity * coverage));
        }
}

}  // namespace dataset_detail

// The embedded synthetic set: n grayscale 28x28 images, 10 classes of simple shapes
// (kShapesClassNames), white on black like Fashion-MNIST, with random position, size,
// stroke thickness, rotation and brightness. Label i % 10 (balanced). Image i depends only
// on (seed, i): a larger n extends a smaller one. Pixels are quantized to bytes first, as
// the real data sets are.
inline ImageDataset make_shapes_dataset(int64_t n, uint64_t seed = 0) {
    if (n < 0) throw std::invalid_argument("make_shapes_dataset: n = " + std::to_string(n) + " < 0");
    constexpr int64_t kPixels = 28 * 28, kDraws = 6;
    ImageDataset d;
    d.name = "shapes (embedded synthetic set)";
    d.num_classes = 10;
    d.images = Tensor<float>(Shape{n, 1, 28, 28});
    d.labels = Tensor<int64_t>(Shape{n});
    std::vector<uint8_t> bytes(static_cast<size_t>(n * kPixels));
    parallel_for(0, n, 64, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
            Rng rng(seed, static_cast<uint64_t>(i * kDraws / 2));  // uniform() uses one block per 2 draws
            double draws[kDraws];
            rng.uniform(draws, kDraws);
            dataset_detail::draw_shape(static_cast<int>(i % 10), draws, bytes.data() + i * kPixels);
            d.labels(i) = i % 10;
        }
    });
    dataset_detail::bytes_to_unit_range(bytes.data(), d.images.data(), d.images.numel());
    return d;
}

// A data set and what the user should be told about where it came from.
struct DatasetChoice {
    ImageDataset data;
    bool embedded = false;  // true: the synthetic shapes, because the real files are missing
    std::string message;
};

// Fashion-MNIST from dir if its files are there; otherwise the embedded shapes set
// (embedded_size images: 0 means as many as Fashion-MNIST has, 60000 or 10000) with a
// message that says so and how to install the real data. Damaged files still throw: only
// missing ones fall back.
inline DatasetChoice load_fashion_mnist_or_embedded(const std::string& dir = kDefaultFashionMnistDir, bool train = true,
                                                    int64_t embedded_size = 0, uint64_t seed = 0) {
    const std::string prefix = train ? "train" : "t10k";
    std::string missing;
    for (const char* kind : {"-images-idx3-ubyte", "-labels-idx1-ubyte"})
        if (dataset_detail::find_idx_file(dir, prefix + kind).empty())
            missing += (missing.empty() ? "" : " and ") + dataset_detail::join_path(dir, prefix + kind) + "[.gz]";
    DatasetChoice choice;
    if (missing.empty()) {
        choice.data = load_fashion_mnist(dir, train);
        choice.message = "Using " + choice.data.name + " from " + dir + ": " + std::to_string(choice.data.size()) +
                         " images of 28x28.";
        return choice;
    }
    const int64_t n = embedded_size > 0 ? embedded_size : (train ? 60000 : 10000);
    choice.data = make_shapes_dataset(n, seed);
    choice.embedded = true;
    choice.message = "Fashion-MNIST not found (missing " + missing + "). ";
    choice.message += "Using the embedded synthetic set instead: " + std::to_string(n) +
                      " images of 28x28 simple shapes in 10 classes. ";
    choice.message += "For the real data: sudo apt-get install dataset-fashion-mnist (Debian/Ubuntu; installs " +
                      std::string(kDefaultFashionMnistDir) + "), or put the four files of " +
                      "github.com/zalandoresearch/fashion-mnist into " + dir + ".";
    return choice;
}

// ------------------------------------------------------------------------------ loader

struct DataBatch {
    Tensor<float> x;    // [B, C, H, W]
    Tensor<int64_t> y;  // [B], undefined for a data set without labels
};

// Everything a resumed run needs to continue with the very batches an uninterrupted run
// would get: the order of epoch e is a pure function of (seed, e), and position counts the
// samples of that order already handed out.
struct LoaderState {
    uint64_t seed = 0;
    int64_t epoch = 0;
    int64_t position = 0;

    friend bool operator==(const LoaderState& a, const LoaderState& b) {
        return a.seed == b.seed && a.epoch == b.epoch && a.position == b.position;
    }
};

struct LoaderOptions {
    bool shuffle = true;       // false: every epoch in index order
    bool random_flip = false;  // mirror each sample left-right with probability 1/2 (seeded)
};

// Hands out batches of batch_size samples forever, epoch after epoch. Each epoch is a fresh
// seeded permutation; its last N mod batch_size samples, too few for a whole batch, are
// dropped for that epoch (every batch has the same shape, and the next reshuffle puts other
// samples there). The loader shares the caller's image storage: it copies no pixels.
class DataLoader {
public:
    DataLoader(ImageDataset data, int64_t batch_size, uint64_t seed = 0, LoaderOptions options = {})
        : data_(std::move(data)), batch_size_(batch_size), options_(options) {
        if (data_.images.dim() != 4 || (data_.labels.defined() && data_.labels.numel() != data_.size()))
            throw std::invalid_argument("DataLoader: " + data_.name +
                                        " needs images [N, C, H, W] and labels [N] or none, has " + data_.images.shape().str() +
                                        " and " + data_.labels.shape().str());
        if (batch_size_ <= 0 || batch_size_ > data_.size())
            throw std::invalid_argument("DataLoader: batch size " + std::to_string(batch_size_) + " is not in [1, " +
                                        std::to_string(data_.size()) + "], the size of " + data_.name);
        restore(LoaderState{seed, 0, 0});
    }

    const ImageDataset& dataset() const { return data_; }
    int64_t batch_size() const { return batch_size_; }
    int64_t batches_per_epoch() const { return data_.size() / batch_size_; }
    int64_t epoch() const { return state_.epoch; }

    LoaderState state() const { return state_; }
    // Continues from a state taken by state(), possibly by another loader over the same data.
    void restore(const LoaderState& s) {
        if (s.epoch < 0 || s.position < 0 || s.position > data_.size())
            throw std::invalid_argument("DataLoader::restore: epoch " + std::to_string(s.epoch) + ", position " +
                                        std::to_string(s.position) + " is not a state of a loader over " +
                                        std::to_string(data_.size()) + " samples");
        state_ = s;
        order_.clear();
        settle();
    }

    // The order in which epoch e visits the samples: a permutation of 0..N-1.
    std::vector<int64_t> epoch_order(int64_t e) const {
        const int64_t n = data_.size();
        std::vector<int64_t> order(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
        if (!options_.shuffle) return order;
        // Fisher-Yates; n - 1 draws of one block each, so epoch e owns counters [e n, e n + n).
        Rng rng(state_.seed, static_cast<uint64_t>(e) * static_cast<uint64_t>(n));
        for (int64_t i = n - 1; i > 0; --i)
            std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(rng.randint(i + 1))]);
        return order;
    }

    DataBatch next() { return next_part(0, batch_size_); }
    // Samples [begin, end) of the next batch; the loader moves past the whole batch. Processes
    // that each take their part of every batch together see the batches of a single loader.
    DataBatch next_part(int64_t begin, int64_t end) {
        if (begin < 0 || begin > end || end > batch_size_)
            throw std::invalid_argument("DataLoader::next_part: [" + std::to_string(begin) + ", " + std::to_string(end) +
                                        ") is not a part of a batch of " + std::to_string(batch_size_));
        const Shape& s = data_.images.shape();
        const int64_t per_image = s.numel(1, 4), width = s[3], n = end - begin;
        const bool labelled = data_.labels.defined();
        DataBatch b{Tensor<float>(Shape{n, s[1], s[2], s[3]}), labelled ? Tensor<int64_t>(Shape{n}) : Tensor<int64_t>()};
        for (int64_t k = 0; k < n; ++k) {
            const int64_t slot = state_.position + begin + k;
            const int64_t index = order_[static_cast<size_t>(slot)];
            const float* src = data_.images.data() + index * per_image;
            float* dst = b.x.data() + k * per_image;
            if (options_.random_flip && flips(state_.epoch, slot)) {
                for (int64_t row = 0; row < per_image; row += width)
                    std::reverse_copy(src + row, src + row + width, dst + row);
            } else {
                std::copy(src, src + per_image, dst);
            }
            if (labelled) b.y(k) = data_.labels(index);
        }
        state_.position += batch_size_;
        settle();
        return b;
    }

    // Whether the sample in the given slot of the given epoch is mirrored (random_flip).
    bool flips(int64_t e, int64_t slot) const {
        // Its own key, so flips and permutations are independent streams; one block per slot.
        Rng rng(state_.seed ^ 0x9E3779B97F4A7C15ull,
                static_cast<uint64_t>(e) * static_cast<uint64_t>(data_.size()) + static_cast<uint64_t>(slot));
        return rng.randint(2) == 1;
    }

private:
    // Moves to the next epoch when what is left cannot fill a batch, and keeps order_ current.
    void settle() {
        if (state_.position + batch_size_ > data_.size()) {
            ++state_.epoch;
            state_.position = 0;
            order_.clear();
        }
        if (order_.empty()) order_ = epoch_order(state_.epoch);
    }

    ImageDataset data_;
    int64_t batch_size_;
    LoaderOptions options_;
    LoaderState state_;
    std::vector<int64_t> order_;  // epoch_order(state_.epoch)
};

DDPMKIT_END_NAMESPACE
