// ddpmkit — IDX files (MNIST, Fashion-MNIST), plain or gzipped, and whole-file reading.
//
// IDX layout (yann.lecun.com/exdb/mnist; docs/architecture.md):
//   magic 00 00 <type> <ndims>   type 0x08 = unsigned byte (the only one data sets use);
//   ndims big-endian u32 sizes;
//   the data, row-major; the product of the sizes x element size is the rest of the file.
// A file that starts with the gzip magic 1f 8b is decompressed (zlib: link -lz), no further
// than its header's sizes ask.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
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

// What the readers of data files hold in memory at most after decompression: far above
// any real data set (MNIST's 60000 training images are 47 MB, EMNIST's largest file 550 MB).
constexpr uint64_t kMaxDataBytes = uint64_t(2) << 30;  // 2 GiB

namespace idx_detail {

inline bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

inline bool has_gzip_magic(const std::vector<uint8_t>& bytes) {
    return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;  // RFC 1952, section 2.3.1
}

// Decompresses gzip data held in memory a piece at a time, so that a reader asks for the
// bytes it expects and no more. Concatenated gzip members are read one after another, as
// gunzip does (RFC 1952, section 2.2). The size in a gzip trailer is never trusted: a damaged
// or hostile file can claim anything there.
class Gunzip {
public:
    Gunzip(const std::vector<uint8_t>& in, std::string origin) : in_(in), origin_(std::move(origin)) {
        if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) fail("zlib could not start inflating");  // 16+: gzip only
    }
    Gunzip(const Gunzip&) = delete;
    Gunzip& operator=(const Gunzip&) = delete;
    ~Gunzip() { inflateEnd(&zs_); }

    // Appends up to `want` decompressed bytes to out, growing it as they arrive (a claim of
    // many bytes allocates nothing until the bytes exist); fewer only at the end of the data.
    // Returns how many were appended.
    size_t read(std::vector<uint8_t>& out, size_t want) {
        const size_t start = out.size(), target = start + want;
        size_t produced = start;
        constexpr size_t kStep = size_t(1) << 30;  // avail_in and avail_out are 32-bit
        while (produced < target && !finished_) {
            if (produced == out.size())
                out.resize(std::min(target, std::max(produced * 2, produced + (size_t(1) << 16))));
            if (zs_.avail_in == 0 && in_pos_ < in_.size()) {
                const size_t take = std::min(kStep, in_.size() - in_pos_);
                zs_.next_in = const_cast<Bytef*>(in_.data() + in_pos_);
                zs_.avail_in = static_cast<uInt>(take);
                in_pos_ += take;
            }
            const size_t room = std::min(kStep, out.size() - produced);
            zs_.next_out = out.data() + produced;
            zs_.avail_out = static_cast<uInt>(room);
            const int rc = inflate(&zs_, Z_NO_FLUSH);
            produced += room - zs_.avail_out;
            const bool input_used_up = zs_.avail_in == 0 && in_pos_ == in_.size();
            if (rc == Z_STREAM_END) {
                if (input_used_up) finished_ = true;
                else if (inflateReset(&zs_) != Z_OK) stream_error("zlib could not start the next gzip member");
            } else if (rc == Z_BUF_ERROR && input_used_up) {
                // Output room was never the problem (room > 0), so inflate wanted more input.
                stream_error("the compressed data ends before the end of the gzip stream (truncated file)");
            } else if (rc != Z_OK) {
                stream_error(zs_.msg ? zs_.msg : zError(rc));
            }
        }
        out.resize(produced);
        return produced - start;
    }

    // Whether decompressed bytes remain; reads to the end of the stream otherwise, so that
    // the last trailer's checks (CRC-32 and size) are made.
    bool has_more() {
        std::vector<uint8_t> probe;
        return read(probe, 1) == 1;
    }

    // Decompresses and drops up to `limit` more bytes: a bounded look for a gzip error.
    void skip(uint64_t limit) {
        std::vector<uint8_t> scratch;
        for (uint64_t done = 0; done < limit && !finished_;) {
            scratch.clear();
            done += read(scratch, static_cast<size_t>(std::min<uint64_t>(limit - done, size_t(1) << 16)));
        }
    }

    bool failed() const { return failed_; }

    [[noreturn]] void fail(const std::string& what) const {
        throw DataFormatError(origin_ + ": gzip error: " + what);
    }

private:
    [[noreturn]] void stream_error(const std::string& what) {
        failed_ = true;
        fail(what);
    }

    const std::vector<uint8_t>& in_;
    std::string origin_;
    z_stream zs_{};
    size_t in_pos_ = 0;
    bool finished_ = false;
    bool failed_ = false;  // the stream itself is bad
};

// The decompressed content of a gzip file held in memory, at most `limit` bytes.
inline std::vector<uint8_t> gunzip(const std::vector<uint8_t>& in, const std::string& origin,
                                   uint64_t limit = kMaxDataBytes) {
    Gunzip gz(in, origin);
    std::vector<uint8_t> out;
    gz.read(out, static_cast<size_t>(limit));
    if (gz.has_more())
        gz.fail("the data decompresses to more than " + std::to_string(limit) +
                " bytes, the limit of what ddpmkit reads into memory");
    return out;
}

inline void reject_gz_name_without_gzip(const std::string& origin) {
    if (ends_with(origin, ".gz"))
        throw DataFormatError(origin +
                              ": gzip error: the name ends in .gz but the file does not start with the gzip "
                              "magic 1f 8b (not gzip data, or a damaged file)");
}

inline std::string hex(unsigned v) {
    const char* digits = "0123456789abcdef";
    return std::string{digits[(v >> 4) & 15], digits[v & 15]};
}

// The sizes of an IDX header and the data byte count they announce.
struct IdxHeader {
    std::vector<int64_t> dims;
    uint64_t data_bytes = 0;
    std::string dims_text;  // "60000x28x28"
};

[[noreturn]] inline void idx_fail(const std::string& origin, const std::string& what) {
    throw DataFormatError(origin + ": " + what);
}

// The magic 00 00 <type> <ndims> of the first 4 bytes (size >= 4); returns ndims.
inline unsigned idx_ndims(const uint8_t* b, const std::string& origin) {
    // IDX magic: two zero bytes, then the element type and the number of dimensions.
    if (b[0] != 0 || b[1] != 0)
        idx_fail(origin, "bad magic " + hex(b[0]) + " " + hex(b[1]) + " " + hex(b[2]) + " " + hex(b[3]) +
                             ": an IDX file starts with 00 00 <type> <ndims>");
    const unsigned type = b[2], ndims = b[3];
    if (type != 0x08) {
        const char* name = type == 0x09   ? "signed byte"
                           : type == 0x0B ? "16-bit integer"
                           : type == 0x0C ? "32-bit integer"
                           : type == 0x0D ? "float"
                           : type == 0x0E ? "double"
                                          : "unknown";
        idx_fail(origin, "element type 0x" + hex(type) + " (" + name +
                             ") is not supported: only 0x08 (unsigned byte) is read");
    }
    if (ndims == 0) idx_fail(origin, "bad magic: 0 dimensions (an IDX array has at least one)");
    return ndims;
}

// The sizes after the magic (b holds 4 + 4 * ndims bytes) and the data byte count they need,
// checked against the cap before anything is allocated for the data.
inline IdxHeader idx_sizes(const uint8_t* b, unsigned ndims, const std::string& origin) {
    IdxHeader h;
    uint64_t nonzero_product = 1;
    bool has_zero = false, overflow = false;
    for (unsigned d = 0; d < ndims; ++d) {
        const uint8_t* p = b + 4 + 4 * d;
        // Sizes are big-endian u32.
        const uint64_t extent = uint64_t(p[0]) << 24 | uint64_t(p[1]) << 16 | uint64_t(p[2]) << 8 | p[3];
        h.dims.push_back(static_cast<int64_t>(extent));
        h.dims_text += (d ? "x" : "") + std::to_string(extent);
        if (extent == 0) has_zero = true;
        else if (nonzero_product > kMaxDataBytes / extent) overflow = true;  // stays <= 2^31: no wrap
        else nonzero_product *= extent;
    }
    // A zero extent does not excuse the others: the loaders make tensors of these sizes.
    if (overflow)
        idx_fail(origin, "dimensions " + h.dims_text + " need more than " + std::to_string(kMaxDataBytes) +
                             " data bytes, the limit of what ddpmkit reads into memory");
    h.data_bytes = has_zero ? 0 : nonzero_product;
    return h;
}

}  // namespace idx_detail

// The bytes of a file held in raw: if they start with the gzip magic 1f 8b, the decompressed
// bytes (at most kMaxDataBytes); else raw itself, unless origin names a ".gz" file, which
// must hold gzip data. Throws DataFormatError for bad gzip data.
inline std::vector<uint8_t> decode_file_bytes(std::vector<uint8_t> raw, const std::string& origin) {
    if (idx_detail::has_gzip_magic(raw)) return idx_detail::gunzip(raw, origin);
    idx_detail::reject_gz_name_without_gzip(origin);
    return raw;
}

// Every byte of the file, decompressed if it is gzip data (see decode_file_bytes). Throws
// std::system_error when the file cannot be opened or read, DataFormatError for bad gzip data.
inline std::vector<uint8_t> read_file_bytes(const std::string& path) {
    return decode_file_bytes(read_whole_file(path), path);
}

// The content of an IDX file of unsigned bytes: dims[0] x dims[1] x ... values, row-major.
struct IdxArray {
    std::vector<int64_t> dims;
    std::vector<uint8_t> data;
};

// Parses IDX bytes (already decompressed); origin names them in error messages.
inline IdxArray parse_idx(std::vector<uint8_t> bytes, const std::string& origin) {
    const size_t size = bytes.size();
    if (size < 4)
        idx_detail::idx_fail(origin, "truncated: " + std::to_string(size) +
                                         " bytes, too short for the 4-byte IDX magic 00 00 <type> <ndims>");
    const unsigned ndims = idx_detail::idx_ndims(bytes.data(), origin);
    const size_t header = 4 + 4 * size_t(ndims);
    if (size < header)
        idx_detail::idx_fail(origin, "truncated: " + std::to_string(size) + " bytes, but the header of " +
                                         std::to_string(ndims) + " dimensions needs " + std::to_string(header));
    idx_detail::IdxHeader h = idx_detail::idx_sizes(bytes.data(), ndims, origin);
    const uint64_t available = size - header;
    // Rule: the product of the sizes x element size (1 byte) equals the rest of the file.
    if (h.data_bytes != available)
        idx_detail::idx_fail(origin, "size mismatch: dimensions " + h.dims_text + " need " +
                                         std::to_string(h.data_bytes) + " data bytes, but " +
                                         std::to_string(available) + " follow the header" +
                                         (h.data_bytes > available ? " (truncated file?)" : " (extra bytes at the end)"));
    bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(header));
    return IdxArray{std::move(h.dims), std::move(bytes)};
}

// The IDX file whose bytes, plain or gzipped, are raw; origin names them in error messages.
// Gzip data is decompressed no further than the header's sizes ask: first the header, then
// exactly the data bytes it announces, then one byte more must not exist.
inline IdxArray decode_idx(const std::vector<uint8_t>& raw, const std::string& origin) {
    if (!idx_detail::has_gzip_magic(raw)) {
        idx_detail::reject_gz_name_without_gzip(origin);
        return parse_idx(raw, origin);
    }
    idx_detail::Gunzip gz(raw, origin);
    try {
        std::vector<uint8_t> head;
        if (gz.read(head, 4) < 4)
            idx_detail::idx_fail(origin, "truncated: " + std::to_string(head.size()) +
                                             " bytes after decompression, too short for the 4-byte IDX magic 00 00 "
                                             "<type> <ndims>");
        const unsigned ndims = idx_detail::idx_ndims(head.data(), origin);
        const size_t header = 4 + 4 * size_t(ndims);
        if (gz.read(head, header - 4) < header - 4)
            idx_detail::idx_fail(origin, "truncated: " + std::to_string(head.size()) +
                                             " bytes after decompression, but the header of " + std::to_string(ndims) +
                                             " dimensions needs " + std::to_string(header));
        idx_detail::IdxHeader h = idx_detail::idx_sizes(head.data(), ndims, origin);
        IdxArray a{std::move(h.dims), {}};
        const size_t got = gz.read(a.data, static_cast<size_t>(h.data_bytes));
        if (got < h.data_bytes)
            idx_detail::idx_fail(origin, "size mismatch: dimensions " + h.dims_text + " need " +
                                             std::to_string(h.data_bytes) + " data bytes, but the gzip data holds " +
                                             std::to_string(got) + " after the header (truncated file?)");
        if (gz.has_more())
            idx_detail::idx_fail(origin, "size mismatch: dimensions " + h.dims_text + " need " +
                                             std::to_string(h.data_bytes) +
                                             " data bytes, but the gzip data holds more after the header (extra bytes "
                                             "at the end)");
        return a;
    } catch (const DataFormatError&) {
        // A corrupt stream gives garbage bytes before zlib notices: a bad header or size may
        // be its symptom. A bounded look further (64 MiB: all of Fashion-MNIST's largest
        // file, to its CRC-32) finds the gzip error that is the cause, which is then thrown.
        if (!gz.failed()) gz.skip(uint64_t(64) << 20);
        throw;
    }
}

// Reads an IDX file, plain or gzipped (see decode_idx).
inline IdxArray read_idx(const std::string& path) { return decode_idx(read_whole_file(path), path); }

DDPMKIT_END_NAMESPACE
