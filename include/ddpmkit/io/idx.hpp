// ddpmkit — IDX files (MNIST, Fashion-MNIST), plain or gzipped, and whole-file reading.
//
// IDX layout (yann.lecun.com/exdb/mnist; docs/architecture.md):
//   magic 00 00 <type> <ndims>   type 0x08 = unsigned byte (the only one data sets use);
//   ndims big-endian u32 sizes;
//   the data, row-major; the product of the sizes x element size is the rest of the file.
// A file that starts with the gzip magic 1f 8b is decompressed first (zlib: link -lz).
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <zlib.h>

#include "ddpmkit/config.hpp"
#include "ddpmkit/io/file.hpp"

DDPMKIT_BEGIN_NAMESPACE

// A malformed data file (IDX, CIFAR, gzip). The message starts with the file name and
// says what is wrong.
class DataFormatError : public std::runtime_error {
public:
    explicit DataFormatError(const std::string& what) : std::runtime_error(what) {}
};

namespace idx_detail {

inline bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

inline bool has_gzip_magic(const std::vector<uint8_t>& bytes) {
    return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;  // RFC 1952, section 2.3.1
}

// The decompressed content of a gzip file held in memory. Concatenated gzip members are
// read one after another, as gunzip does (RFC 1952, section 2.2).
inline std::vector<uint8_t> gunzip(const std::vector<uint8_t>& in, const std::string& origin) {
    auto fail = [&](const std::string& what) -> void { throw DataFormatError(origin + ": gzip error: " + what); };
    z_stream zs{};
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) fail("zlib could not start inflating");  // 16+: gzip wrapper only
    const std::unique_ptr<z_stream, int (*)(z_stream*)> end(&zs, &inflateEnd);

    // The last member's trailer holds its size mod 2^32 (RFC 1952, ISIZE): a good first guess
    // for the output size, unless it is implausible (deflate expands at most 1032:1, and a
    // damaged or cut file ends in arbitrary bytes).
    size_t guess = in.size() * 4;
    if (in.size() >= 18) {
        const size_t n = in.size();
        const size_t isize = static_cast<size_t>(in[n - 4]) | static_cast<size_t>(in[n - 3]) << 8 |
                             static_cast<size_t>(in[n - 2]) << 16 | static_cast<size_t>(in[n - 1]) << 24;
        if (isize <= n * 1032) guess = isize;
    }
    std::vector<uint8_t> out(std::max<size_t>(guess, 1 << 16));
    constexpr size_t kStep = size_t(1) << 30;  // avail_in and avail_out are 32-bit
    size_t in_pos = 0, produced = 0;
    for (;;) {
        if (zs.avail_in == 0 && in_pos < in.size()) {
            const size_t take = std::min(kStep, in.size() - in_pos);
            zs.next_in = const_cast<Bytef*>(in.data() + in_pos);
            zs.avail_in = static_cast<uInt>(take);
            in_pos += take;
        }
        if (produced == out.size()) out.resize(out.size() * 2);
        const size_t room = std::min(kStep, out.size() - produced);
        zs.next_out = out.data() + produced;
        zs.avail_out = static_cast<uInt>(room);
        const int rc = inflate(&zs, Z_NO_FLUSH);
        produced += room - zs.avail_out;
        const bool input_used_up = zs.avail_in == 0 && in_pos == in.size();
        if (rc == Z_STREAM_END) {
            if (input_used_up) break;
            if (inflateReset(&zs) != Z_OK) fail("zlib could not start the next gzip member");
        } else if (rc == Z_BUF_ERROR && input_used_up) {
            // Output room was never the problem (room > 0), so inflate wanted more input.
            fail("the compressed data ends before the end of the gzip stream (truncated file)");
        } else if (rc != Z_OK) {
            fail(zs.msg ? zs.msg : zError(rc));
        }
    }
    out.resize(produced);
    return out;
}

}  // namespace idx_detail

// Every byte of the file; if it starts with the gzip magic 1f 8b, the decompressed bytes.
// A name ending in ".gz" must hold gzip data. Throws std::system_error when the file cannot
// be opened or read, DataFormatError for bad gzip data.
inline std::vector<uint8_t> read_file_bytes(const std::string& path) {
    std::vector<uint8_t> bytes = read_whole_file(path);
    if (idx_detail::has_gzip_magic(bytes)) return idx_detail::gunzip(bytes, path);
    if (idx_detail::ends_with(path, ".gz"))
        throw DataFormatError(path +
                              ": gzip error: the name ends in .gz but the file does not start with the gzip "
                              "magic 1f 8b (not gzip data, or a damaged file)");
    return bytes;
}

// The content of an IDX file of unsigned bytes: dims[0] x dims[1] x ... values, row-major.
struct IdxArray {
    std::vector<int64_t> dims;
    std::vector<uint8_t> data;
};

// Parses IDX bytes (already decompressed); origin names them in error messages.
inline IdxArray parse_idx(std::vector<uint8_t> bytes, const std::string& origin) {
    auto fail = [&](const std::string& what) -> void { throw DataFormatError(origin + ": " + what); };
    const size_t size = bytes.size();
    if (size < 4)
        fail("truncated: " + std::to_string(size) + " bytes, too short for the 4-byte IDX magic 00 00 <type> <ndims>");
    auto hex = [](unsigned v) {
        const char* digits = "0123456789abcdef";
        return std::string{digits[(v >> 4) & 15], digits[v & 15]};
    };
    // IDX magic: two zero bytes, then the element type and the number of dimensions.
    if (bytes[0] != 0 || bytes[1] != 0)
        fail("bad magic " + hex(bytes[0]) + " " + hex(bytes[1]) + " " + hex(bytes[2]) + " " + hex(bytes[3]) +
             ": an IDX file starts with 00 00 <type> <ndims>");
    const unsigned type = bytes[2], ndims = bytes[3];
    if (type != 0x08) {
        const char* name = type == 0x09   ? "signed byte"
                           : type == 0x0B ? "16-bit integer"
                           : type == 0x0C ? "32-bit integer"
                           : type == 0x0D ? "float"
                           : type == 0x0E ? "double"
                                          : "unknown";
        fail("element type 0x" + hex(type) + " (" + name + ") is not supported: only 0x08 (unsigned byte) is read");
    }
    if (ndims == 0) fail("bad magic: 0 dimensions (an IDX array has at least one)");
    const size_t header = 4 + 4 * size_t(ndims);
    if (size < header)
        fail("truncated: " + std::to_string(size) + " bytes, but the header of " + std::to_string(ndims) +
             " dimensions needs " + std::to_string(header));
    IdxArray a;
    const uint64_t available = size - header;
    uint64_t nonzero_product = 1;
    bool has_zero = false, overflow = false;
    std::string dims_text;
    for (unsigned d = 0; d < ndims; ++d) {
        const uint8_t* p = bytes.data() + 4 + 4 * d;
        // Sizes are big-endian u32.
        const uint64_t extent = uint64_t(p[0]) << 24 | uint64_t(p[1]) << 16 | uint64_t(p[2]) << 8 | p[3];
        a.dims.push_back(static_cast<int64_t>(extent));
        dims_text += (d ? "x" : "") + std::to_string(extent);
        if (extent == 0) has_zero = true;
        else if (nonzero_product > std::numeric_limits<uint64_t>::max() / extent) overflow = true;
        else nonzero_product *= extent;
    }
    const bool too_many = overflow && !has_zero;  // more bytes than 64 bits count: never in the file
    const uint64_t needed = has_zero ? 0 : nonzero_product;
    // Rule: the product of the sizes x element size (1 byte) equals the rest of the file.
    if (too_many || needed != available)
        fail("size mismatch: dimensions " + dims_text + " need " +
             (too_many ? "more than 2^64" : std::to_string(needed)) + " data bytes, but " + std::to_string(available) +
             " follow the header" +
             (too_many || needed > available ? " (truncated file?)" : " (extra bytes at the end)"));
    bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(header));
    a.data = std::move(bytes);
    return a;
}

// Reads an IDX file, plain or gzipped (see read_file_bytes).
inline IdxArray read_idx(const std::string& path) { return parse_idx(read_file_bytes(path), path); }

DDPMKIT_END_NAMESPACE
