// libFuzzer target: the gzip path of the IDX reader (io/idx.hpp), which decompresses a
// header first and then only the bytes it announces. The fuzzed bytes are an IDX file; they
// are gzipped here (in one or two members, by the last byte), and the reader must agree
// with the plain parser: the same sizes and data, or an error from both.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include <zlib.h>

#include "ddpmkit/io/idx.hpp"

namespace {

// data as one gzip member (zlib's deflate with the gzip wrapper).
void gzip_member(const uint8_t* data, size_t size, std::vector<uint8_t>& out) {
    z_stream zs{};
    if (deflateInit2(&zs, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
    const size_t start = out.size();
    out.resize(start + deflateBound(&zs, size) + 32);
    zs.next_in = const_cast<Bytef*>(data);
    zs.avail_in = static_cast<uInt>(size);
    zs.next_out = out.data() + start;
    zs.avail_out = static_cast<uInt>(out.size() - start);
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) std::abort();
    out.resize(out.size() - zs.avail_out);
    deflateEnd(&zs);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const size_t split = data[size - 1] % 2 ? size / 2 : size;  // odd last byte: two members
    std::vector<uint8_t> gz;
    gzip_member(data, split, gz);
    if (split < size) gzip_member(data + split, size - split, gz);
    ddpmkit::IdxArray plain, gzipped;
    bool plain_ok = true, gzipped_ok = true;
    try {
        plain = ddpmkit::parse_idx(std::vector<uint8_t>(data, data + size), "fuzz.idx");
    } catch (const ddpmkit::DataFormatError&) {
        plain_ok = false;
    }
    try {
        gzipped = ddpmkit::decode_idx(gz, "fuzz.idx.gz");
    } catch (const ddpmkit::DataFormatError&) {
        gzipped_ok = false;
    }
    if (plain_ok != gzipped_ok) std::abort();
    if (plain_ok && (plain.dims != gzipped.dims || plain.data != gzipped.data)) std::abort();
    return 0;
}
