// ddpmkit — CIFAR-10 binary batches (data_batch_1.bin ... data_batch_5.bin, test_batch.bin).
//
// Layout (www.cs.toronto.edu/~kriz/cifar.html, "binary version"): records of 3073 bytes,
// no header: 1 label byte (0..9), then 1024 red, 1024 green and 1024 blue bytes, each
// plane a 32x32 image in row-major order. A gzipped batch is read too (see read_file_bytes).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ddpmkit/config.hpp"
#include "ddpmkit/io/idx.hpp"

DDPMKIT_BEGIN_NAMESPACE

namespace cifar {

constexpr int64_t kSide = 32, kChannels = 3, kClasses = 10;
constexpr int64_t kImageBytes = kChannels * kSide * kSide;  // 3072
constexpr int64_t kRecordBytes = 1 + kImageBytes;           // 3073

// One batch file: count images of 3x32x32 bytes (planes R, G, B) and their labels.
struct Batch {
    int64_t count = 0;
    std::vector<uint8_t> pixels;  // count x 3072, in file order
    std::vector<uint8_t> labels;  // count, each < 10
};

// Parses the bytes of one batch file; origin names them in error messages.
inline Batch parse_batch(const std::vector<uint8_t>& bytes, const std::string& origin) {
    const int64_t size = static_cast<int64_t>(bytes.size());
    // Rule: the file is a whole number of 3073-byte records (and holds at least one).
    if (size == 0 || size % kRecordBytes != 0)
        throw DataFormatError(origin + ": size mismatch: " + std::to_string(size) +
                              " bytes is not a positive multiple of the CIFAR-10 record size 3073 (1 label byte + "
                              "3072 pixel bytes)");
    // The same cap as for gzipped batches (decode_file_bytes), for plain ones: it also keeps
    // count x 3072 far from overflow.
    if (static_cast<uint64_t>(size) > kMaxDataBytes)
        throw DataFormatError(origin + ": " + std::to_string(size) + " bytes, above the limit of " +
                              std::to_string(kMaxDataBytes) + " bytes that ddpmkit reads into memory");
    Batch b;
    b.count = size / kRecordBytes;
    b.pixels.resize(static_cast<size_t>(b.count * kImageBytes));
    b.labels.resize(static_cast<size_t>(b.count));
    for (int64_t i = 0; i < b.count; ++i) {
        const uint8_t* record = bytes.data() + i * kRecordBytes;
        // Rule: the label byte is a class index 0..9.
        if (record[0] >= kClasses)
            throw DataFormatError(origin + ": record " + std::to_string(i) + " (byte " +
                                  std::to_string(i * kRecordBytes) + ") has label " + std::to_string(record[0]) +
                                  ", not 0..9 (is this a CIFAR-100 file? Its records have two label bytes)");
        b.labels[static_cast<size_t>(i)] = record[0];
        std::copy(record + 1, record + kRecordBytes, b.pixels.begin() + static_cast<std::ptrdiff_t>(i * kImageBytes));
    }
    return b;
}

inline Batch read_batch(const std::string& path) { return parse_batch(read_file_bytes(path), path); }

}  // namespace cifar

DDPMKIT_END_NAMESPACE
