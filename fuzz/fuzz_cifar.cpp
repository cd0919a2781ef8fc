// libFuzzer target: the CIFAR-10 batch reader (io/cifar.hpp) on any bytes, plain or gzipped
// (told by the magic 1f 8b, as read_batch does). A bad file must end in DataFormatError; an
// accepted one holds whole 3073-byte records with labels 0..9.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "ddpmkit/io/cifar.hpp"

namespace cifar = ddpmkit::cifar;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const std::vector<uint8_t> bytes = ddpmkit::decode_file_bytes(std::vector<uint8_t>(data, data + size), "fuzz.bin");
        const cifar::Batch b = cifar::parse_batch(bytes, "fuzz.bin");
        if (b.count < 1 || static_cast<uint64_t>(b.count) * cifar::kRecordBytes != bytes.size() ||
            b.pixels.size() != static_cast<size_t>(b.count * cifar::kImageBytes) ||
            b.labels.size() != static_cast<size_t>(b.count))
            std::abort();
        for (uint8_t label : b.labels)
            if (label >= cifar::kClasses) std::abort();
    } catch (const ddpmkit::DataFormatError&) {
    }
    return 0;
}
