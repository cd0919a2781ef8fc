// ddpmkit — pictures: image grids and strips as PNG or PGM/PPM, and PNG, PGM and PPM input (charts: io/plot.hpp).
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
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <zlib.h>

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
#include "ddpmkit/io/file.hpp"

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

// The largest picture read_image accepts (that of the largest U-Net, nn::UNetConfig): checked
// in the file's header before any pixel is decoded or any memory is given to it.
constexpr int64_t kMaxPictureSide = 4096;

namespace image_detail {

[[noreturn]] inline void read_error(const std::string& path, const std::string& what) {
    throw std::runtime_error("read_image " + path + ": " + what);
}

inline uint32_t big_endian32(const uint8_t* p) {
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

inline void check_side(const std::string& path, int64_t width, int64_t height) {
    if (width < 1 || height < 1 || width > kMaxPictureSide || height > kMaxPictureSide)
        read_error(path, "a " + std::to_string(width) + "x" + std::to_string(height) + " picture; ddpmkit reads 1 to " +
                             std::to_string(kMaxPictureSide) + " pixels a side");
}

// A PNG's structure, checked before stb_image decodes it (PNG specification, 3rd edition, sections
// 5 and 11): the signature, chunks that fit in the file with their CRC-32, IHDR first with a
// size within kMaxPictureSide, IEND last, and image data that inflates to exactly the bytes the
// header's picture holds. stb_image then never sees a length, a size or a zlib stream it could
// be made to allocate gigabytes for.
inline void check_png(const std::string& path, const std::vector<uint8_t>& bytes) {
    constexpr size_t kSignature = 8;
    size_t pos = kSignature;
    int64_t width = 0, height = 0, pixel_bits = 0;
    bool interlaced = false, ended = false;
    z_stream zs{};
    if (inflateInit(&zs) != Z_OK) read_error(path, "zlib could not start inflating");
    std::unique_ptr<z_stream, int (*)(z_stream*)> inflating(&zs, &inflateEnd);
    uint64_t inflated = 0, expected = 0;
    int zlib_rc = Z_OK;
    while (!ended) {
        if (bytes.size() - pos < 12) read_error(path, "the file ends at byte " + std::to_string(bytes.size()) + " before the IEND chunk (truncated)");
        const uint32_t length = big_endian32(&bytes[pos]);
        const std::string type(reinterpret_cast<const char*>(&bytes[pos + 4]), 4);
        auto chunk_name = [&] {
            std::string name = type;
            for (char& c : name)
                if (!std::isalpha(static_cast<unsigned char>(c))) c = '?';
            return "chunk " + name + " at byte " + std::to_string(pos);
        };
        if (length > bytes.size() - pos - 12)
            read_error(path, chunk_name() + " claims " + std::to_string(length) + " bytes; the file has " +
                                 std::to_string(bytes.size() - pos - 12) + " after its header (truncated or damaged)");
        const uint8_t* data = &bytes[pos + 8];
        const uLong crc = crc32(crc32(0L, Z_NULL, 0), &bytes[pos + 4], static_cast<uInt>(length + 4));
        if (crc != big_endian32(data + length)) read_error(path, chunk_name() + ": its CRC-32 does not match (a damaged file)");
        if (pos == kSignature) {
            if (type != "IHDR" || length != 13) read_error(path, "the first chunk is not a 13-byte IHDR");
            width = big_endian32(data);
            height = big_endian32(data + 4);
            check_side(path, width, height);
            const int depth = data[8], color = data[9];
            const int samples = color == 0 ? 1 : color == 2 ? 3 : color == 3 ? 1 : color == 4 ? 2 : color == 6 ? 4 : 0;
            const bool depth_ok = depth == 8 || (depth == 16 && color != 3) || ((color == 0 || color == 3) && (depth == 1 || depth == 2 || depth == 4));
            if (samples == 0 || !depth_ok)
                read_error(path, "IHDR: bit depth " + std::to_string(depth) + " with colour type " + std::to_string(color) +
                                     " is not a PNG pixel format");
            if (data[12] > 1) read_error(path, "IHDR: interlace method " + std::to_string(data[12]));
            interlaced = data[12] == 1;
            pixel_bits = int64_t(samples) * depth;
            // Each row: a filter byte and its pixels, rounded up to whole bytes; Adam7 has seven
            // sub-pictures (section 8.2), each made of such rows.
            auto rows_bytes = [&](int64_t w, int64_t h) { return w > 0 && h > 0 ? h * (1 + (w * pixel_bits + 7) / 8) : 0; };
            if (!interlaced) {
                expected = static_cast<uint64_t>(rows_bytes(width, height));
            } else {
                static const int adam7[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};
                for (const auto& p : adam7)
                    expected += static_cast<uint64_t>(rows_bytes((width - p[0] + p[2] - 1) / p[2], (height - p[1] + p[3] - 1) / p[3]));
            }
        } else if (type == "IDAT" && length > 0) {
            if (zlib_rc == Z_STREAM_END) read_error(path, chunk_name() + ": image data after the end of its zlib stream");
            zs.next_in = const_cast<Bytef*>(data);
            zs.avail_in = length;
            uint8_t scratch[1 << 14];
            while (zs.avail_in > 0 && zlib_rc != Z_STREAM_END) {
                zs.next_out = scratch;
                zs.avail_out = sizeof scratch;
                zlib_rc = inflate(&zs, Z_NO_FLUSH);
                if (zlib_rc != Z_OK && zlib_rc != Z_STREAM_END && zlib_rc != Z_BUF_ERROR)
                    read_error(path, chunk_name() + ": the image data is not a valid zlib stream (" + (zs.msg ? zs.msg : zError(zlib_rc)) + ")");
                inflated += sizeof scratch - zs.avail_out;
                if (inflated > expected)
                    read_error(path, "the image data inflates to more than the " + std::to_string(expected) + " bytes of a " +
                                         std::to_string(width) + "x" + std::to_string(height) + " picture");
            }
        } else if (type == "IEND") {
            ended = true;
        }
        pos += 12 + length;
    }
    if (zlib_rc != Z_STREAM_END || inflated != expected)
        read_error(path, "the image data inflates to " + std::to_string(inflated) + " bytes" + (zlib_rc != Z_STREAM_END ? " and stops early" : "") +
                             "; a " + std::to_string(width) + "x" + std::to_string(height) + " picture needs " + std::to_string(expected));
}

// A binary PGM (P5) or PPM (P6): "Pn", width, height and maxval separated by whitespace or
// comments, one whitespace byte, then the samples, one byte each when maxval < 256 and two
// (most significant first) otherwise (netpbm.sourceforge.net/doc/pgm.html). Returns [1, 1 or 3,
// H, W] in [-1, 1], sample / maxval mapped linearly (as PNG bytes are: 0 -> -1, maxval -> 1).
inline Tensor<float> read_pnm(const std::string& path, const std::vector<uint8_t>& bytes) {
    const int samples = bytes[1] == '5' ? 1 : 3;
    size_t pos = 2;
    auto number = [&](const char* what) {
        for (;;) {  // whitespace and comments before it
            if (pos < bytes.size() && std::isspace(bytes[pos])) ++pos;
            else if (pos < bytes.size() && bytes[pos] == '#') while (pos < bytes.size() && bytes[pos] != '\n' && bytes[pos] != '\r') ++pos;
            else break;
        }
        int64_t value = 0;
        const size_t start = pos;
        while (pos < bytes.size() && bytes[pos] >= '0' && bytes[pos] <= '9' && pos - start < 9) value = value * 10 + (bytes[pos++] - '0');
        if (pos == start || pos == bytes.size() || !std::isspace(bytes[pos]))
            read_error(path, std::string("the header's ") + what + " at byte " + std::to_string(start) +
                                 " is not a number of at most 9 digits followed by whitespace");
        return value;
    };
    const int64_t width = number("width"), height = number("height");
    check_side(path, width, height);
    const int64_t maxval = number("maxval");
    if (maxval < 1 || maxval > 65535) read_error(path, "the header's maxval " + std::to_string(maxval) + " is outside 1..65535");
    ++pos;  // the single whitespace byte after maxval
    const int64_t width_bytes = maxval < 256 ? 1 : 2, need = width * height * samples * width_bytes;
    if (static_cast<int64_t>(bytes.size()) - static_cast<int64_t>(pos) != need)
        read_error(path, "a " + std::to_string(width) + "x" + std::to_string(height) + (samples == 1 ? " PGM" : " PPM") + " needs " +
                             std::to_string(need) + " bytes of samples after its header; the file has " +
                             std::to_string(static_cast<int64_t>(bytes.size()) - static_cast<int64_t>(pos)));
    Tensor<float> out({1, samples, height, width});
    const float half = static_cast<float>(maxval) / 2;  // exact; 127.5 for 8 bits, as for a PNG
    const uint8_t* src = bytes.data() + pos;
    for (int64_t i = 0; i < width * height; ++i)
        for (int c = 0; c < samples; ++c) {
            const uint8_t* s = src + (i * samples + c) * width_bytes;
            const int64_t v = width_bytes == 1 ? s[0] : int64_t(s[0]) << 8 | s[1];
            if (v > maxval) read_error(path, "sample " + std::to_string(i * samples + c) + " is " + std::to_string(v) + ", above maxval " + std::to_string(maxval));
            out.data()[c * width * height + i] = static_cast<float>(v) / half - 1.0f;
        }
    return out;
}

// [1, from, H, W] -> [1, to, H, W]: gray copied to R, G and B; RGB to its luma (ITU-R BT.601:
// 0.299 R + 0.587 G + 0.114 B).
inline Tensor<float> convert_channels(const Tensor<float>& in, int to) {
    const int64_t from = in.size(1), hw = in.size(2) * in.size(3);
    if (from == to) return in;
    Tensor<float> out({1, to, in.size(2), in.size(3)});
    for (int64_t i = 0; i < hw; ++i)
        if (to == 3) {
            for (int c = 0; c < 3; ++c) out.data()[c * hw + i] = in.data()[i];
        } else {
            out.data()[i] = 0.299f * in.data()[i] + 0.587f * in.data()[hw + i] + 0.114f * in.data()[2 * hw + i];
        }
    return out;
}

}  // namespace image_detail

// A picture file as [1, channels, H, W] in [-1, 1]; channels 1 (gray) or 3 (RGB), converted from
// what the file holds. Reads PNG (checked by structure, then decoded by stb_image; an alpha
// channel is dropped) and binary PGM/PPM (P5, P6), at most kMaxPictureSide pixels a side. A
// file in any other format, damaged or truncated, throws std::runtime_error naming the file and
// what is wrong.
inline Tensor<float> read_image(const std::string& path, int channels) {
    if (channels != 1 && channels != 3) throw std::invalid_argument("read_image: channels must be 1 or 3, not " + std::to_string(channels));
    const std::vector<uint8_t> bytes = read_whole_file(path);
    static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (bytes.size() >= 2 && bytes[0] == 'P' && (bytes[1] == '5' || bytes[1] == '6'))
        return image_detail::convert_channels(image_detail::read_pnm(path, bytes), channels);
    if (bytes.size() < 8 || !std::equal(kPng, kPng + 8, bytes.begin()))
        image_detail::read_error(path, "not a PNG, PGM (P5) or PPM (P6) file");
    if (bytes.size() > size_t(INT_MAX)) image_detail::read_error(path, "a PNG of more than 2 GiB");  // stb_image takes an int size
    image_detail::check_png(path, bytes);
    int w = 0, h = 0, have = 0;
    std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
        stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &have, channels), stbi_image_free);
    if (!pixels) image_detail::read_error(path, std::string("stb_image: ") + (stbi_failure_reason() ? stbi_failure_reason() : "cannot decode it"));
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
