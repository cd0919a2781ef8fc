// ddpmkit — pictures: image grids and strips as PNG or PGM/PPM, and line charts (loss curves).
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
#include <array>
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
    if (rows == 0 && cols == 0) cols = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
    if (rows == 0) rows = (n + cols - 1) / cols;
    if (cols == 0) cols = (n + rows - 1) / rows;
    if (rows * cols < n)
        image_detail::picture_error("make_grid: " + std::to_string(rows) + " rows x " + std::to_string(cols) +
                                    " cols hold fewer than the " + std::to_string(n) + " images");
    const int64_t border = options.border;
    const int64_t width = cols * w + (cols + 1) * border, height = rows * h + (rows + 1) * border;
    if (width * height * c > (int64_t(1) << 31) - 1)  // PNG writers take int sizes
        image_detail::picture_error("make_grid: a " + std::to_string(width) + "x" + std::to_string(height) +
                                    " picture is too large");
    Picture p(static_cast<int>(width), static_cast<int>(height), static_cast<int>(c), options.border_value);
    const float* src = batch.data();
    for (int64_t i = 0; i < n; ++i) {
        const int64_t x0 = border + (i % cols) * (w + border), y0 = border + (i / cols) * (h + border);
        for (int64_t ch = 0; ch < c; ++ch)
            for (int64_t y = 0; y < h; ++y)
                for (int64_t x = 0; x < w; ++x)
                    p.at(static_cast<int>(x0 + x), static_cast<int>(y0 + y), static_cast<int>(ch)) =
                        to_pixel_byte(src[((i * c + ch) * h + y) * w + x]);
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

// ---------------------------------------------------------------------------- line chart

struct ChartOptions {
    std::string title;
    std::string x_label = "step";
    std::string y_label = "loss";
    bool log_y = false;    // logarithmic y axis; values <= 0 are left out
    double smoothing = 0;  // in [0, 1): also draw an exponential moving average of this weight
    int width = 800, height = 480;
};

namespace image_detail {

using Rgb = std::array<uint8_t, 3>;

// A bitmap font for ASCII 32..126, drawn for ddpmkit: 5 columns (bit 4 is the leftmost),
// 7 rows down to the baseline and 2 more for the descenders of g, j, p, q, y.
// clang-format off
inline constexpr uint8_t kFont5x9[95][9] = {
    {0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00}, {0x04,0x04,0x04,0x04,0x04,0x00,0x04,0x00,0x00},  // space !
    {0x0A,0x0A,0x00,0x00,0x00,0x00,0x00,0x00,0x00}, {0x0A,0x0A,0x1F,0x0A,0x1F,0x0A,0x0A,0x00,0x00},  // " #
    {0x04,0x0F,0x14,0x0E,0x05,0x1E,0x04,0x00,0x00}, {0x18,0x19,0x02,0x04,0x08,0x13,0x03,0x00,0x00},  // $ %
    {0x0C,0x12,0x14,0x08,0x15,0x12,0x0D,0x00,0x00}, {0x04,0x04,0x00,0x00,0x00,0x00,0x00,0x00,0x00},  // & '
    {0x02,0x04,0x08,0x08,0x08,0x04,0x02,0x00,0x00}, {0x08,0x04,0x02,0x02,0x02,0x04,0x08,0x00,0x00},  // ( )
    {0x00,0x04,0x15,0x0E,0x15,0x04,0x00,0x00,0x00}, {0x00,0x04,0x04,0x1F,0x04,0x04,0x00,0x00,0x00},  // * +
    {0x00,0x00,0x00,0x00,0x0C,0x04,0x08,0x00,0x00}, {0x00,0x00,0x00,0x1F,0x00,0x00,0x00,0x00,0x00},  // , -
    {0x00,0x00,0x00,0x00,0x00,0x0C,0x0C,0x00,0x00}, {0x00,0x01,0x02,0x04,0x08,0x10,0x00,0x00,0x00},  // . /
    {0x0E,0x11,0x13,0x15,0x19,0x11,0x0E,0x00,0x00}, {0x04,0x0C,0x04,0x04,0x04,0x04,0x0E,0x00,0x00},  // 0 1
    {0x0E,0x11,0x01,0x02,0x04,0x08,0x1F,0x00,0x00}, {0x1F,0x02,0x04,0x02,0x01,0x11,0x0E,0x00,0x00},  // 2 3
    {0x02,0x06,0x0A,0x12,0x1F,0x02,0x02,0x00,0x00}, {0x1F,0x10,0x1E,0x01,0x01,0x11,0x0E,0x00,0x00},  // 4 5
    {0x06,0x08,0x10,0x1E,0x11,0x11,0x0E,0x00,0x00}, {0x1F,0x01,0x02,0x04,0x08,0x08,0x08,0x00,0x00},  // 6 7
    {0x0E,0x11,0x11,0x0E,0x11,0x11,0x0E,0x00,0x00}, {0x0E,0x11,0x11,0x0F,0x01,0x02,0x0C,0x00,0x00},  // 8 9
    {0x00,0x0C,0x0C,0x00,0x0C,0x0C,0x00,0x00,0x00}, {0x00,0x0C,0x0C,0x00,0x0C,0x04,0x08,0x00,0x00},  // : ;
    {0x02,0x04,0x08,0x10,0x08,0x04,0x02,0x00,0x00}, {0x00,0x00,0x1F,0x00,0x1F,0x00,0x00,0x00,0x00},  // < =
    {0x08,0x04,0x02,0x01,0x02,0x04,0x08,0x00,0x00}, {0x0E,0x11,0x01,0x02,0x04,0x00,0x04,0x00,0x00},  // > ?
    {0x0E,0x11,0x01,0x0D,0x15,0x15,0x0E,0x00,0x00}, {0x0E,0x11,0x11,0x1F,0x11,0x11,0x11,0x00,0x00},  // @ A
    {0x1E,0x11,0x11,0x1E,0x11,0x11,0x1E,0x00,0x00}, {0x0E,0x11,0x10,0x10,0x10,0x11,0x0E,0x00,0x00},  // B C
    {0x1C,0x12,0x11,0x11,0x11,0x12,0x1C,0x00,0x00}, {0x1F,0x10,0x10,0x1E,0x10,0x10,0x1F,0x00,0x00},  // D E
    {0x1F,0x10,0x10,0x1E,0x10,0x10,0x10,0x00,0x00}, {0x0E,0x11,0x10,0x17,0x11,0x11,0x0F,0x00,0x00},  // F G
    {0x11,0x11,0x11,0x1F,0x11,0x11,0x11,0x00,0x00}, {0x0E,0x04,0x04,0x04,0x04,0x04,0x0E,0x00,0x00},  // H I
    {0x07,0x02,0x02,0x02,0x02,0x12,0x0C,0x00,0x00}, {0x11,0x12,0x14,0x18,0x14,0x12,0x11,0x00,0x00},  // J K
    {0x10,0x10,0x10,0x10,0x10,0x10,0x1F,0x00,0x00}, {0x11,0x1B,0x15,0x15,0x11,0x11,0x11,0x00,0x00},  // L M
    {0x11,0x11,0x19,0x15,0x13,0x11,0x11,0x00,0x00}, {0x0E,0x11,0x11,0x11,0x11,0x11,0x0E,0x00,0x00},  // N O
    {0x1E,0x11,0x11,0x1E,0x10,0x10,0x10,0x00,0x00}, {0x0E,0x11,0x11,0x11,0x15,0x12,0x0D,0x00,0x00},  // P Q
    {0x1E,0x11,0x11,0x1E,0x14,0x12,0x11,0x00,0x00}, {0x0F,0x10,0x10,0x0E,0x01,0x01,0x1E,0x00,0x00},  // R S
    {0x1F,0x04,0x04,0x04,0x04,0x04,0x04,0x00,0x00}, {0x11,0x11,0x11,0x11,0x11,0x11,0x0E,0x00,0x00},  // T U
    {0x11,0x11,0x11,0x11,0x11,0x0A,0x04,0x00,0x00}, {0x11,0x11,0x11,0x15,0x15,0x15,0x0A,0x00,0x00},  // V W
    {0x11,0x11,0x0A,0x04,0x0A,0x11,0x11,0x00,0x00}, {0x11,0x11,0x0A,0x04,0x04,0x04,0x04,0x00,0x00},  // X Y
    {0x1F,0x01,0x02,0x04,0x08,0x10,0x1F,0x00,0x00}, {0x0E,0x08,0x08,0x08,0x08,0x08,0x0E,0x00,0x00},  // Z [
    {0x00,0x10,0x08,0x04,0x02,0x01,0x00,0x00,0x00}, {0x0E,0x02,0x02,0x02,0x02,0x02,0x0E,0x00,0x00},  // backslash ]
    {0x04,0x0A,0x11,0x00,0x00,0x00,0x00,0x00,0x00}, {0x00,0x00,0x00,0x00,0x00,0x00,0x1F,0x00,0x00},  // ^ _
    {0x08,0x04,0x00,0x00,0x00,0x00,0x00,0x00,0x00}, {0x00,0x00,0x0E,0x01,0x0F,0x11,0x0F,0x00,0x00},  // ` a
    {0x10,0x10,0x16,0x19,0x11,0x11,0x1E,0x00,0x00}, {0x00,0x00,0x0E,0x10,0x10,0x11,0x0E,0x00,0x00},  // b c
    {0x01,0x01,0x0D,0x13,0x11,0x11,0x0F,0x00,0x00}, {0x00,0x00,0x0E,0x11,0x1F,0x10,0x0E,0x00,0x00},  // d e
    {0x06,0x09,0x08,0x1C,0x08,0x08,0x08,0x00,0x00}, {0x00,0x00,0x0F,0x11,0x11,0x11,0x0F,0x01,0x0E},  // f g
    {0x10,0x10,0x16,0x19,0x11,0x11,0x11,0x00,0x00}, {0x04,0x00,0x0C,0x04,0x04,0x04,0x0E,0x00,0x00},  // h i
    {0x02,0x00,0x06,0x02,0x02,0x02,0x02,0x12,0x0C}, {0x10,0x10,0x12,0x14,0x18,0x14,0x12,0x00,0x00},  // j k
    {0x0C,0x04,0x04,0x04,0x04,0x04,0x0E,0x00,0x00}, {0x00,0x00,0x1A,0x15,0x15,0x11,0x11,0x00,0x00},  // l m
    {0x00,0x00,0x16,0x19,0x11,0x11,0x11,0x00,0x00}, {0x00,0x00,0x0E,0x11,0x11,0x11,0x0E,0x00,0x00},  // n o
    {0x00,0x00,0x1E,0x11,0x11,0x11,0x1E,0x10,0x10}, {0x00,0x00,0x0F,0x11,0x11,0x11,0x0F,0x01,0x01},  // p q
    {0x00,0x00,0x16,0x19,0x10,0x10,0x10,0x00,0x00}, {0x00,0x00,0x0E,0x10,0x0E,0x01,0x1E,0x00,0x00},  // r s
    {0x08,0x08,0x1C,0x08,0x08,0x09,0x06,0x00,0x00}, {0x00,0x00,0x11,0x11,0x11,0x13,0x0D,0x00,0x00},  // t u
    {0x00,0x00,0x11,0x11,0x11,0x0A,0x04,0x00,0x00}, {0x00,0x00,0x11,0x11,0x15,0x15,0x0A,0x00,0x00},  // v w
    {0x00,0x00,0x11,0x0A,0x04,0x0A,0x11,0x00,0x00}, {0x00,0x00,0x11,0x11,0x11,0x11,0x0F,0x01,0x0E},  // x y
    {0x00,0x00,0x1F,0x02,0x04,0x08,0x1F,0x00,0x00}, {0x02,0x04,0x04,0x08,0x04,0x04,0x02,0x00,0x00},  // z {
    {0x04,0x04,0x04,0x04,0x04,0x04,0x04,0x00,0x00}, {0x08,0x04,0x04,0x02,0x04,0x04,0x08,0x00,0x00},  // | }
    {0x00,0x00,0x08,0x15,0x02,0x00,0x00,0x00,0x00},  // ~
};
// clang-format on

inline constexpr int kGlyphAdvance = 6;  // 5 columns of ink and 1 of space

inline int text_width(const std::string& s, int scale) {
    return s.empty() ? 0 : (static_cast<int>(s.size()) * kGlyphAdvance - 1) * scale;
}

inline void fill_rect(Picture& p, int x0, int y0, int x1, int y1, Rgb color) {  // [x0, x1) x [y0, y1), clipped
    for (int y = std::max(0, y0); y < std::min(p.height, y1); ++y)
        for (int x = std::max(0, x0); x < std::min(p.width, x1); ++x)
            for (int c = 0; c < 3; ++c) p.at(x, y, c) = color[static_cast<size_t>(c)];
}

// Text with its top-left corner at (x, y); characters outside ASCII 32..126 draw as '?'.
inline void draw_text(Picture& p, int x, int y, const std::string& s, int scale, Rgb color) {
    for (size_t i = 0; i < s.size(); ++i) {
        const unsigned char ch = static_cast<unsigned char>(s[i]);
        const uint8_t* glyph = kFont5x9[(ch >= 32 && ch < 127 ? ch : '?') - 32];
        const int gx = x + static_cast<int>(i) * kGlyphAdvance * scale;
        for (int row = 0; row < 9; ++row)
            for (int col = 0; col < 5; ++col)
                if (glyph[row] & (0x10 >> col))
                    fill_rect(p, gx + col * scale, y + row * scale, gx + (col + 1) * scale, y + (row + 1) * scale,
                              color);
    }
}

// Anti-aliased polyline of the given width, clipped to [left, right) x [top, bottom).
// A non-finite point breaks the line. Coverage is the largest over all segments, so joints
// are not drawn twice.
inline void stroke_polyline(Picture& p, const std::vector<double>& xs, const std::vector<double>& ys, double width,
                            Rgb color, int left, int top, int right, int bottom) {
    const int w = right - left, h = bottom - top;
    std::vector<float> coverage(static_cast<size_t>(w) * h, 0.0f);
    const double reach = width / 2 + 0.5;  // pixels farther than this from the centre line get no ink
    auto segment = [&](double x0, double y0, double x1, double y1) {
        const double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
        const int px0 = std::max(left, static_cast<int>(std::floor(std::min(x0, x1) - reach)));
        const int px1 = std::min(right - 1, static_cast<int>(std::ceil(std::max(x0, x1) + reach)));
        const int py0 = std::max(top, static_cast<int>(std::floor(std::min(y0, y1) - reach)));
        const int py1 = std::min(bottom - 1, static_cast<int>(std::ceil(std::max(y0, y1) + reach)));
        for (int py = py0; py <= py1; ++py)
            for (int px = px0; px <= px1; ++px) {
                const double cx = px + 0.5 - x0, cy = py + 0.5 - y0;  // the pixel centre, from the start point
                const double t = len2 > 0 ? std::min(1.0, std::max(0.0, (cx * dx + cy * dy) / len2)) : 0.0;
                const double ex = cx - t * dx, ey = cy - t * dy, distance = std::sqrt(ex * ex + ey * ey);
                const float a = static_cast<float>(std::min(1.0, std::max(0.0, reach - distance)));
                float& cell = coverage[static_cast<size_t>(py - top) * w + (px - left)];
                cell = std::max(cell, a);
            }
    };
    for (size_t i = 0; i < xs.size(); ++i) {
        if (!std::isfinite(xs[i]) || !std::isfinite(ys[i])) continue;
        const bool has_next = i + 1 < xs.size() && std::isfinite(xs[i + 1]) && std::isfinite(ys[i + 1]);
        const bool has_prev = i > 0 && std::isfinite(xs[i - 1]) && std::isfinite(ys[i - 1]);
        if (has_next) segment(xs[i], ys[i], xs[i + 1], ys[i + 1]);
        else if (!has_prev) segment(xs[i], ys[i], xs[i], ys[i]);  // an isolated point: a dot
    }
    for (int y = top; y < bottom; ++y)
        for (int x = left; x < right; ++x) {
            const float a = coverage[static_cast<size_t>(y - top) * w + (x - left)];
            if (a <= 0) continue;
            for (int c = 0; c < 3; ++c) {
                uint8_t& v = p.at(x, y, c);
                v = static_cast<uint8_t>(std::lround(v + (color[static_cast<size_t>(c)] - v) * a));
            }
        }
}

// A tick spacing of 1, 2 or 5 x 10^k giving about `target` intervals over range.
inline double nice_step(double range, int target) {
    const double raw = range / target;
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    const double f = raw / magnitude;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * magnitude;
}

// value with `decimals` digits after the point; very large or small magnitudes as 1e+07.
inline std::string format_tick(double value, int decimals) {
    char buf[32];
    const double a = std::fabs(value);
    if (a != 0 && (a >= 1e7 || a < 1e-5)) std::snprintf(buf, sizeof buf, "%.3g", value);
    else std::snprintf(buf, sizeof buf, "%.*f", std::max(0, decimals), value);
    std::string s = buf;
    if (s.find_first_not_of("-0.") == std::string::npos) s = "0";  // never "-0.00"
    return s;
}

struct Tick {
    double value;  // in axis units (log10 of the value on a log axis)
    std::string label;
};

inline std::vector<Tick> linear_ticks(double lo, double hi, int target) {
    const double step = nice_step(hi - lo, target);
    const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
    std::vector<Tick> ticks;
    for (double k = std::ceil(lo / step); k <= std::floor(hi / step); ++k)
        ticks.push_back({k * step, format_tick(k * step, decimals)});
    return ticks;
}

// Ticks of a log axis spanning [10^lo, 10^hi]: the powers of ten, with 2x and 5x when
// less than two decades are in view, and linear ticks when even those give fewer than two.
inline std::vector<Tick> log_ticks(double lo, double hi) {
    auto label = [](double v) {
        const int decimals = static_cast<int>(std::max(0.0, -std::floor(std::log10(v) + 1e-9)));
        return format_tick(v, decimals);
    };
    std::vector<Tick> ticks;
    const int first = static_cast<int>(std::floor(lo)), last = static_cast<int>(std::ceil(hi));
    const bool with_minor = hi - lo < 2;
    for (int e = first; e <= last; ++e)
        for (double m : {1.0, 2.0, 5.0}) {
            if (m != 1.0 && !with_minor) continue;
            const double v = m * std::pow(10.0, e), position = std::log10(v);
            if (position >= lo - 1e-12 && position <= hi + 1e-12) ticks.push_back({position, label(v)});
        }
    if (ticks.size() >= 2) return ticks;
    ticks.clear();
    for (const Tick& t : linear_ticks(std::pow(10.0, lo), std::pow(10.0, hi), 4))
        if (t.value > 0) ticks.push_back({std::log10(t.value), t.label});
    return ticks;
}

// Bias-corrected exponential moving average (as TensorBoard smooths scalars); non-finite
// values are skipped and stay non-finite.
inline std::vector<double> smooth(const std::vector<double>& v, double weight) {
    std::vector<double> out(v.size());
    double average = 0, correction = 1;
    for (size_t i = 0; i < v.size(); ++i) {
        if (!std::isfinite(v[i])) {
            out[i] = v[i];
            continue;
        }
        average = weight * average + (1 - weight) * v[i];
        correction *= weight;
        out[i] = average / (1 - correction);
    }
    return out;
}

}  // namespace image_detail

// A line chart of y against x (a loss curve), as an RGB picture: title, axes with tick marks
// and labels, light grid lines, and the curve (plus its moving average if options.smoothing).
// Non-finite points (and points <= 0 on a log axis) are left out and break the line.
inline Picture plot_line_chart(const std::vector<double>& x, const std::vector<double>& y,
                               const ChartOptions& options = {}) {
    if (x.size() != y.size())
        image_detail::picture_error("plot_line_chart: " + std::to_string(x.size()) + " x values but " +
                                    std::to_string(y.size()) + " y values");
    if (options.width < 200 || options.height < 150 || options.width > 8192 || options.height > 8192)
        image_detail::picture_error("plot_line_chart: size " + std::to_string(options.width) + "x" +
                                    std::to_string(options.height) + " is outside 200x150 .. 8192x8192");
    if (!(options.smoothing >= 0 && options.smoothing < 1))
        image_detail::picture_error("plot_line_chart: smoothing " + std::to_string(options.smoothing) +
                                    " is not in [0, 1)");
    const image_detail::Rgb ink{40, 40, 40}, grid{228, 228, 228}, raw_color{150, 185, 230}, line_color{25, 90, 180};

    // Axis units: y, or log10(y) on a log axis.
    auto to_axis = [&](double v) {
        if (!options.log_y) return v;
        return v > 0 ? std::log10(v) : std::nan("");
    };
    std::vector<double> ay(y.size());
    std::transform(y.begin(), y.end(), ay.begin(), to_axis);
    double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
    for (size_t i = 0; i < x.size(); ++i)
        if (std::isfinite(x[i]) && std::isfinite(ay[i])) {
            x_lo = std::min(x_lo, x[i]);
            x_hi = std::max(x_hi, x[i]);
            y_lo = std::min(y_lo, ay[i]);
            y_hi = std::max(y_hi, ay[i]);
        }
    const bool has_data = x_lo <= x_hi;
    if (!has_data) x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;
    if (x_hi - x_lo <= 0) x_lo -= 0.5, x_hi += 0.5;
    if (y_hi - y_lo <= 0) {
        const double pad = options.log_y ? 0.1 : std::max(std::fabs(y_lo) * 0.1, 1e-3);
        y_lo -= pad, y_hi += pad;
    }
    const double margin = 0.05 * (y_hi - y_lo);  // the curve does not touch the frame
    y_lo -= margin, y_hi += margin;

    const std::vector<image_detail::Tick> x_ticks =
        image_detail::linear_ticks(x_lo, x_hi, std::max(2, options.width / 110));
    const std::vector<image_detail::Tick> y_ticks =
        options.log_y ? image_detail::log_ticks(y_lo, y_hi)
                      : image_detail::linear_ticks(y_lo, y_hi, std::max(2, options.height / 70));

    // Layout, in pixels: the plot area is [left, right) x [top, bottom).
    int label_width = 0;
    for (const image_detail::Tick& t : y_ticks)
        label_width = std::max(label_width, image_detail::text_width(t.label, 1));
    const int left = std::max(40, label_width + 14), right = options.width - 24;
    const int top = (options.title.empty() ? 12 : 44) + (options.y_label.empty() ? 0 : 14);
    const int bottom = options.height - (options.x_label.empty() ? 26 : 40);
    auto px = [&](double v) { return left + (v - x_lo) / (x_hi - x_lo) * (right - left); };
    auto py = [&](double v) { return bottom - (v - y_lo) / (y_hi - y_lo) * (bottom - top); };

    Picture p(options.width, options.height, 3, 255);
    for (const image_detail::Tick& t : y_ticks) {
        const int yy = static_cast<int>(std::lround(py(t.value)));
        image_detail::fill_rect(p, left, yy, right, yy + 1, grid);
        image_detail::fill_rect(p, left - 5, yy, left, yy + 1, ink);
        image_detail::draw_text(p, left - 8 - image_detail::text_width(t.label, 1), yy - 3, t.label, 1, ink);
    }
    for (const image_detail::Tick& t : x_ticks) {
        const int xx = static_cast<int>(std::lround(px(t.value)));
        image_detail::fill_rect(p, xx, top, xx + 1, bottom, grid);
        image_detail::fill_rect(p, xx, bottom, xx + 1, bottom + 5, ink);
        image_detail::draw_text(p, xx - image_detail::text_width(t.label, 1) / 2, bottom + 9, t.label, 1, ink);
    }

    std::vector<double> sx(x.size()), sy(y.size());
    auto place = [&](const std::vector<double>& values) {
        for (size_t i = 0; i < x.size(); ++i) {
            sx[i] = px(x[i]);
            sy[i] = py(values[i]);
        }
    };
    if (options.smoothing > 0) {
        place(ay);
        image_detail::stroke_polyline(p, sx, sy, 1.0, raw_color, left, top, right, bottom);
        place(image_detail::smooth(ay, options.smoothing));
        image_detail::stroke_polyline(p, sx, sy, 2.0, line_color, left, top, right, bottom);
    } else {
        place(ay);
        image_detail::stroke_polyline(p, sx, sy, 1.6, line_color, left, top, right, bottom);
    }
    if (!has_data) {
        const std::string note = "no data";
        image_detail::draw_text(p, (left + right - image_detail::text_width(note, 2)) / 2, (top + bottom) / 2 - 7, note,
                                2, ink);
    }

    // The frame last, so the curve never covers it.
    image_detail::fill_rect(p, left - 1, top, left, bottom + 1, ink);
    image_detail::fill_rect(p, left - 1, bottom, right, bottom + 1, ink);
    image_detail::fill_rect(p, right - 1, top, right, bottom, grid);
    image_detail::fill_rect(p, left, top - 1, right, top, grid);
    if (!options.title.empty())
        image_detail::draw_text(p, (options.width - image_detail::text_width(options.title, 2)) / 2, 12, options.title,
                                2, ink);
    if (!options.y_label.empty()) {
        const std::string label = options.y_label + (options.log_y ? " (log scale)" : "");
        image_detail::draw_text(p, left - 1, top - 15, label, 1, ink);
    }
    if (!options.x_label.empty())
        image_detail::draw_text(p, (left + right - image_detail::text_width(options.x_label, 1)) / 2, bottom + 24,
                                options.x_label, 1, ink);
    return p;
}

DDPMKIT_END_NAMESPACE
