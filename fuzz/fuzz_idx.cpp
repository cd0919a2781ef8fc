// libFuzzer target: the IDX reader (io/idx.hpp) on any bytes, plain or gzipped (gzip data is
// told by its magic 1f 8b, as read_idx does). A bad file must end in DataFormatError; an
// accepted one must hold exactly the data its sizes announce.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "ddpmkit/io/idx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const ddpmkit::IdxArray a = ddpmkit::decode_idx(std::vector<uint8_t>(data, data + size), "fuzz.idx");
        uint64_t n = 1;
        for (int64_t d : a.dims) n *= static_cast<uint64_t>(d);  // checked by the reader: below 2^31
        if (a.dims.empty() || a.data.size() != n) std::abort();
    } catch (const ddpmkit::DataFormatError&) {
    }
    return 0;
}
