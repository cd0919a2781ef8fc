// ddpmkit — pictures: image grids and strips as PNG or PGM/PPM, and PNG input (charts: io/plot.hpp).
//
// Pixel values in [-1, 1] map to bytes in [0, 255] with clamping (docs/architecture.md); grids put a
// 2-pixel border around and between the tiles. Shape letters: N images, C channels (1 or 3),
// H x W pixels.
//
// PNG files are written by stb_image_write and read by stb_image (Debian: libstb-dev,
// <stb/stb_image_write.h>, <stb/stb_image.h>). This header only declares their functions; the
// implementation must exist exactly once in a program. Pick one:
//   - in exactly one .cpp file:  #define DDPMKIT_STB_IMPLEMENTATION  before including
//     ddpmkit/io/image.hpp (or ddpmkit.hpp): ddpmkit then compiles both there;
//   - link a library that has them, e.g. Debian's libstb (pkg-config stb, -lstb);
//   - nothing, if your program already compiles them with STB_IMAGE_WRITE_IMPLEMENTATION and
//     STB_IMAGE_IMPLEMENTATION itself.
// PGM/PPM files need no library.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#if defined(DDPMKIT_STB_IMPLEMENTATION)
#ifndef STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#endif
#ifndef STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_IMPLEMENTATION
#endif
#endif
// Third-party C code: its warnings are not ours to fix.
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#if __has_include(<stb/stb_image_write.h>)  // Debian, Ubuntu, Fedora
#include <stb/stb_image_write.h>
#include <stb/stb_image.h>
#elif __has_include(<stb_image_write.h>)  // vcpkg, Homebrew, a copy next to the program
#include <stb_image_write.h>
#include <stb_image.h>
#else
#error "ddpmkit/io/image.hpp needs stb_image_write.h and stb_image.h (Debian/Ubuntu: apt-get install libstb-dev)"
#endif
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/tensor.hpp"

DDPMKIT_BEGIN_NAMESPACE

// An 8-bit picture: rows top to bottom, channels interleaved (1: gray, 3: RGB).
struct Picture {
    int width = 0, height = 0, channels = 0;
    std::vector<uint8_t> pixels;

    Picture() = default;
    Picture(int w, int h, int c, uint8_t value = 0)
        : width(w), height(h), channels(c), pixels(static_cast<size_t>(w) * h * c, value) {}
    uint8_t& at(int x, int y, int c = 0) { return pixels[(static_cast<size_t>(y) * width + x) * channels + c]; }
    uint8_t at(int x, int y, int c = 0) const { return pixels[(static_cast<size_t>(y) * width + x) * channels + c]; }
};

// [-1, 1] -> [0, 255], rounded to nearest and clamped (docs/architecture.md). NaN -> 0: a diverged
// sample shows black instead of reaching an undefined float-to-int conversion.
inline uint8_t to_pixel_byte(float v) {
    if (std::isnan(v)) return 0;
    const double b = std::floor((static_cast<double>(v) + 1.0) * 127.5 + 0.5);
    return static_cast<uint8_t>(std::min(255.0, std::max(0.0, b)));
}

struct GridOptions {
    int rows = 0;  // 0: from cols, or near-square when both are 0
    int cols = 0;  // 0: from rows, or near-square when both are 0
    int border = 2;
    uint8_t border_value = 128;  // mid-gray: tiles stay apart on black or white backgrounds
    int scale = 1;               // each pixel drawn as a scale x scale block (28x28 images are small on a screen)
};

namespace image_detail {

[[noreturn]] inline void picture_error(const std::string& what) { throw std::invalid_argument(what); }

// Writes bytes to path (replacing it). std::system_error names the path and the errno text.
inline void write_file(const std::string& path, const void* data, size_t n) {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> fp(std::fopen(path.c_str(), "wb"), &std::fclose);
    auto fail = [&](const char* step) {
        const int err = errno;
        throw std::system_error(err, std::generic_category(), std::string("cannot ") + step + " " + path);
    };
    if (!fp) fail("create");
    if (n > 0 && std::fwrite(data, 1, n, fp.get()) != n) fail("write");
    if (std::fclose(fp.release()) != 0) fail("write");  // the last buffered bytes reach the file here
}

inline void check_batch(const char* op, const Tensor<float>& batch) {
    const Shape& s = batch.shape();
    if (!batch.defined() || s.rank() != 4 || (s[1] != 1 && s[1] != 3) || s[0] < 1 || s[2] < 1 || s[3] < 1)
        picture_error(std::string(op) + ": expects a batch [N, C, H, W] with N >= 1 and C = 1 or 3, got " + s.str());
}

}  // namespace image_detail

// The batch as one picture: images left to right, then top to bottom, with options.border
// pixels around and between them. Cells beyond N keep the border value.
inline Picture make_grid(const Tensor<float>& batch, const GridOptions& options = {}) {
    image_detail::check_batch("make_grid", batch);
    const int64_t n = batch.size(0), c = batch.size(1), h = batch.size(2), w = batch.size(3);
    int64_t rows = options.rows, cols = options.cols;
    if (rows < 0 || cols < 0 || options.border < 0)
        image_detail::picture_error("make_grid: rows " + std::to_string(rows) + ", cols " + std::to_string(cols) +
                                    " and border " + std::to_string(options.border) + " must not be negative");
    if (options.scale < 1 || options.scale > 64)
        image_detail::picture_error("make_grid: scale " + std::to_string(options.scale) + " is outside 1..64");
    if (rows == 0 && cols == 0) cols = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
    if (rows == 0) rows = (n + cols - 1) / cols;
    if (cols == 0) cols = (n + rows - 1) / rows;
    if (rows * cols < n)
        image_detail::picture_error("make_grid: " + std::to_string(rows) + " rows x " + std::to_string(cols) +
                                    " cols hold fewer than the " + std::to_string(n) + " images");
    const int64_t border = options.border, k = options.scale;
    const int64_t width = cols * w * k + (cols + 1) * border, height = rows * h * k + (rows + 1) * border;
    if (width * height * c > (int64_t(1) << 31) - 1)  // PNG writers take int sizes
        image_detail::picture_error("make_grid: a " + std::to_string(width) + "x" + std::to_string(height) +
                                    " picture is too large");
    Picture p(static_cast<int>(width), static_cast<int>(height), static_cast<int>(c), options.border_value);
    const float* src = batch.data();
    for (int64_t i = 0; i < n; ++i) {
        const int64_t x0 = border + (i % cols) * (w * k + border), y0 = border + (i / cols) * (h * k + border);
        for (int64_t ch = 0; ch < c; ++ch)
            for (int64_t y = 0; y < h * k; ++y)
                for (int64_t x = 0; x < w * k; ++x)
                    p.at(static_cast<int>(x0 + x), static_cast<int>(y0 + y), static_cast<int>(ch)) =
                        to_pixel_byte(src[((i * c + ch) * h + y / k) * w + x / k]);
    }
    return p;
}

// A strip: row r shows sample r of every frame, frames left to right. With frames = the
// states x_T, ..., x_0 of a reverse chain, each row is one sample being denoised.
inline Picture make_strip(const std::vector<Tensor<float>>& frames, int border = 2, uint8_t border_value = 128) {
    if (frames.empty()) image_detail::picture_error("make_strip: no frames");
    image_detail::check_batch("make_strip", frames[0]);
    const Shape s = frames[0].shape();
    const int64_t rows = s[0], cols = static_cast<int64_t>(frames.size()), per_image = s.numel(1, 4);
    Tensor<float> tiles(Shape{rows * cols, s[1], s[2], s[3]});
    for (int64_t t = 0; t < cols; ++t) {
        const Tensor<float>& f = frames[static_cast<size_t>(t)];
        if (f.shape() != s)
            image_detail::picture_error("make_strip: frame " + std::to_string(t) + " has shape " + f.shape().str() +
                                        ", frame 0 has " + s.str());
        for (int64_t r = 0; r < rows; ++r)
            std::copy(f.data() + r * per_image, f.data() + (r + 1) * per_image,
                      tiles.data() + (r * cols + t) * per_image);
    }
    return make_grid(tiles, GridOptions{static_cast<int>(rows), static_cast<int>(cols), border, border_value});
}

// PNG through stb_image_write (see the top of this file for its implementation).
inline void write_png(const std::string& path, const Picture& p) {
    if (p.channels != 1 && p.channels != 3 && p.channels != 4)
        image_detail::picture_error("write_png " + path + ": " + std::to_string(p.channels) + " channels (1, 3 or 4)");
    std::vector<uint8_t> encoded;
    auto append = [](void* context, void* data, int size) {
        const auto* bytes = static_cast<const uint8_t*>(data);
        static_cast<std::vector<uint8_t>*>(context)->insert(static_cast<std::vector<uint8_t>*>(context)->end(), bytes,
                                                            bytes + size);
    };
    if (!stbi_write_png_to_func(append, &encoded, p.width, p.height, p.channels, p.pixels.data(), p.width * p.channels))
        throw std::runtime_error("write_png " + path + ": stb_image_write could not encode the " +
                                 std::to_string(p.width) + "x" + std::to_string(p.height) + " picture");
    image_detail::write_file(path, encoded.data(), encoded.size());
}

// Netpbm without any library: PGM (P5) for gray pictures, PPM (P6) for RGB; maxval 255, so
// one byte per sample (netpbm.sourceforge.net/doc/pgm.html).
inline void write_pnm(const std::string& path, const Picture& p) {
    if (p.channels != 1 && p.channels != 3)
        image_detail::picture_error("write_pnm " + path + ": " + std::to_string(p.channels) + " channels (1 or 3)");
    const std::string header = std::string(p.channels == 1 ? "P5" : "P6") + "\n" + std::to_string(p.width) + " " +
                               std::to_string(p.height) + "\n255\n";
    std::vector<uint8_t> bytes(header.begin(), header.end());
    bytes.insert(bytes.end(), p.pixels.begin(), p.pixels.end());
    image_detail::write_file(path, bytes.data(), bytes.size());
}

// A PNG (or any format stb_image reads) as [1, channels, H, W] in [-1, 1]; channels 1 (gray)
// or 3 (RGB), converted from what the file holds.
inline Tensor<float> read_png(const std::string& path, int channels) {
    if (channels != 1 && channels != 3) throw std::invalid_argument("read_png: channels must be 1 or 3, not " + std::to_string(channels));
    int w = 0, h = 0, have = 0;
    std::unique_ptr<stbi_uc, void (*)(void*)> pixels(stbi_load(path.c_str(), &w, &h, &have, channels), stbi_image_free);
    if (!pixels) throw std::runtime_error("read_png " + path + ": " + (stbi_failure_reason() ? stbi_failure_reason() : "unreadable"));
    Tensor<float> out({1, channels, h, w});
    for (int c = 0; c < channels; ++c)
        for (int64_t i = 0; i < int64_t(w) * h; ++i) out.data()[c * int64_t(w) * h + i] = pixels.get()[i * channels + c] / 127.5f - 1.0f;
    return out;
}

inline void write_grid_png(const std::string& path, const Tensor<float>& batch, const GridOptions& options = {}) {
    write_png(path, make_grid(batch, options));
}
inline void write_grid_pnm(const std::string& path, const Tensor<float>& batch, const GridOptions& options = {}) {
    write_pnm(path, make_grid(batch, options));
}

DDPMKIT_END_NAMESPACE
