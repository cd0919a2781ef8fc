// Tests of the data and picture I/O: IDX (plain and gzipped) and CIFAR-10 readers with one
// case per rejection, the data sets (MNIST-style files written here, the embedded shapes,
// Fashion-MNIST if installed), the DataLoader (determinism, resume, flips), PGM/PNG grids
// and strips, the line chart, the CSV logger and the progress line.
//
// All test files are generated here, in a temporary folder. This file is the one translation
// unit of ddpmkit_tests that compiles stb_image_write (DDPMKIT_STB_IMPLEMENTATION, see
// io/image.hpp) and stb_image, which read_image decodes the PNGs with.
#define DDPMKIT_STB_IMPLEMENTATION
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include <stdlib.h>  // mkdtemp
#include <sys/resource.h>  // getrusage
#include <zlib.h>

#include "ddpmkit/core/parallel.hpp"
#include "ddpmkit/io/cifar.hpp"
#include "ddpmkit/io/dataset.hpp"
#include "ddpmkit/io/file.hpp"
#include "ddpmkit/io/idx.hpp"
#include "ddpmkit/io/image.hpp"
#include "ddpmkit/io/plot.hpp"
#include "ddpmkit/io/progress.hpp"


namespace {

namespace fs = std::filesystem;
using namespace ddpmkit;

// A fresh empty folder, removed with its contents at the end of the test.
struct TempDir {
    fs::path path;
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "ddpmkit_io_XXXXXX").string();
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() { fs::remove_all(path); }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
std::string read_text(const std::string& path) {
    const std::vector<uint8_t> b = read_bytes(path);
    return std::string(b.begin(), b.end());
}
void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}
// Compressed with zlib's own gzip writer.
void write_gzip(const std::string& path, const std::vector<uint8_t>& bytes) {
    gzFile gz = gzopen(path.c_str(), "wb");
    REQUIRE(gz != nullptr);
    REQUIRE(gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
    REQUIRE(gzclose(gz) == Z_OK);
}

// bytes as one gzip member, in memory (level 1: the tests below gzip megabytes).
std::vector<uint8_t> gzip_member(const std::vector<uint8_t>& bytes, int level = 1) {
    z_stream zs{};
    REQUIRE(deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    std::vector<uint8_t> out(deflateBound(&zs, bytes.size()) + 32);
    zs.next_in = const_cast<Bytef*>(bytes.data());
    zs.avail_in = static_cast<uInt>(bytes.size());
    zs.next_out = out.data();
    zs.avail_out = static_cast<uInt>(out.size());
    REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    out.resize(out.size() - zs.avail_out);
    deflateEnd(&zs);
    return out;
}
// The peak resident memory of this process so far, in MB.
double peak_rss_mb() {
    struct rusage ru {};
    REQUIRE(getrusage(RUSAGE_SELF, &ru) == 0);
    return static_cast<double>(ru.ru_maxrss) / 1024.0;  // Linux: kilobytes
}

// An IDX file: magic 00 00 <type> <ndims>, big-endian u32 sizes, then the data as given.
std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data,
                               uint8_t type = 0x08) {
    std::vector<uint8_t> out{0, 0, type, static_cast<uint8_t>(dims.size())};
    for (uint32_t d : dims)
        for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(d >> shift));
    out.insert(out.end(), data.begin(), data.end());
    return out;
}
std::vector<uint8_t> counting(size_t n, unsigned mul = 1) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * mul);
    return v;
}

// f() must throw E whose message contains every word.
template <class E, class F>
void check_throws_with(F f, std::initializer_list<std::string> words) {
    try {
        f();
        FAIL("no exception");
    } catch (const E& e) {
        const std::string msg = e.what();
        for (const std::string& w : words)
            CHECK_MESSAGE(msg.find(w) != std::string::npos, "'" << w << "' not in: " << msg);
    }
}

// A data set whose image i has pixel (c, y, x) = code(i, c, y, x) in [-1, 1], label i % 7.
float code(int64_t i, int64_t c, int64_t y, int64_t x) {
    return static_cast<float>((i * 24 + c * 12 + y * 4 + x) % 255) / 127.5f - 1.0f;
}
ImageDataset numbered_dataset(int64_t n) {
    ImageDataset d;
    d.name = "numbered";
    d.num_classes = 7;
    d.images = Tensor<float>(Shape{n, 2, 3, 4});
    d.labels = Tensor<int64_t>(Shape{n});
    for (int64_t i = 0; i < n; ++i) {
        for (int64_t c = 0; c < 2; ++c)
            for (int64_t y = 0; y < 3; ++y)
                for (int64_t x = 0; x < 4; ++x) d.images(i, c, y, x) = code(i, c, y, x);
        d.labels(i) = i % 7;
    }
    return d;
}
// The data set index of each sample of a batch, mirrored or not (codes are unique for i < 85).
std::vector<int64_t> indices_of(const DataBatch& b) {
    std::vector<int64_t> out;
    for (int64_t k = 0; k < b.x.size(0); ++k) {
        int64_t found = -1;
        const float left = b.x(k, 0, 1, 0), right = b.x(k, 0, 1, 3);
        for (int64_t i = 0; i < 85 && found < 0; ++i)
            if ((left == code(i, 0, 1, 0) && right == code(i, 0, 1, 3)) ||
                (left == code(i, 0, 1, 3) && right == code(i, 0, 1, 0)))
                found = i;
        out.push_back(found);
    }
    return out;
}
bool same(const DataBatch& a, const DataBatch& b) {
    return a.x.shape() == b.x.shape() && std::equal(a.x.data(), a.x.data() + a.x.numel(), b.x.data()) &&
           std::equal(a.y.data(), a.y.data() + a.y.numel(), b.y.data());
}

// A P5 file written by write_pnm: its width, height and pixels.
struct Pgm {
    int width = 0, height = 0;
    std::vector<uint8_t> pixels;
};
Pgm read_pgm(const std::string& path) {
    const std::vector<uint8_t> b = read_bytes(path);
    Pgm p;
    int maxval = 0, consumed = 0;
    REQUIRE(std::sscanf(reinterpret_cast<const char*>(b.data()), "P5 %d %d %d%n", &p.width, &p.height, &maxval,
                        &consumed) == 3);
    CHECK(maxval == 255);
    p.pixels.assign(b.begin() + consumed + 1, b.end());  // one whitespace byte after maxval
    REQUIRE(p.pixels.size() == static_cast<size_t>(p.width) * p.height);
    return p;
}

}  // namespace

// ------------------------------------------------------------------------------ IDX

TEST_CASE("io: IDX round trip of plain files (images [N, H, W] and labels [N])") {
    TempDir dir;
    const std::vector<uint8_t> pixels = counting(3 * 4 * 5, 7);
    write_bytes(dir.file("images"), idx_bytes({3, 4, 5}, pixels));
    write_bytes(dir.file("labels"), idx_bytes({3}, {9, 0, 4}));
    const IdxArray images = read_idx(dir.file("images"));
    CHECK(images.dims == std::vector<int64_t>{3, 4, 5});
    CHECK(images.data == pixels);
    const IdxArray labels = read_idx(dir.file("labels"));
    CHECK(labels.dims == std::vector<int64_t>{3});
    CHECK(labels.data == std::vector<uint8_t>{9, 0, 4});
    // A zero extent holds no data.
    write_bytes(dir.file("empty"), idx_bytes({0, 28, 28}, {}));
    CHECK(read_idx(dir.file("empty")).data.empty());
}

TEST_CASE("io: IDX round trip of gzipped files, by name or by the 1f 8b magic, and concatenated members") {
    TempDir dir;
    const std::vector<uint8_t> bytes = idx_bytes({50, 28, 28}, counting(50 * 28 * 28, 13));
    write_gzip(dir.file("a.gz"), bytes);
    CHECK(read_bytes(dir.file("a.gz"))[0] == 0x1f);
    const IdxArray a = read_idx(dir.file("a.gz"));
    CHECK(a.dims == std::vector<int64_t>{50, 28, 28});
    CHECK(a.data == std::vector<uint8_t>(bytes.begin() + 16, bytes.end()));
    // Gzip data under another name is still recognized by its magic.
    fs::copy_file(dir.file("a.gz"), dir.file("a-idx3-ubyte"));
    CHECK(read_idx(dir.file("a-idx3-ubyte")).data == a.data);
    // Two gzip members one after the other decompress to the concatenation (RFC 1952, 2.2).
    const std::vector<uint8_t> head(bytes.begin(), bytes.begin() + 1000), tail(bytes.begin() + 1000, bytes.end());
    write_gzip(dir.file("head.gz"), head);
    write_gzip(dir.file("tail.gz"), tail);
    std::vector<uint8_t> two = read_bytes(dir.file("head.gz"));
    const std::vector<uint8_t> second = read_bytes(dir.file("tail.gz"));
    two.insert(two.end(), second.begin(), second.end());
    write_bytes(dir.file("two.gz"), two);
    CHECK(read_file_bytes(dir.file("two.gz")) == bytes);
}

TEST_CASE("io: IDX rejects a bad magic") {
    std::vector<uint8_t> b = idx_bytes({2}, {1, 2});
    b[1] = 0x01;
    check_throws_with<DataFormatError>([&] { parse_idx(b, "bad.idx"); },
                                       {"bad.idx: bad magic 00 01 08 01", "00 00 <type> <ndims>"});
    check_throws_with<DataFormatError>([&] { parse_idx({0, 0, 8, 0}, "zero.idx"); },
                                       {"zero.idx: bad magic: 0 dimensions"});
}

TEST_CASE("io: IDX rejects element types other than unsigned byte") {
    check_throws_with<DataFormatError>([] { parse_idx(idx_bytes({1}, {0, 0, 0, 0}, 0x0D), "f.idx"); },
                                       {"f.idx: element type 0x0d (float) is not supported", "0x08 (unsigned byte)"});
    check_throws_with<DataFormatError>([] { parse_idx(idx_bytes({1}, {0}, 0x42), "u.idx"); },
                                       {"element type 0x42 (unknown)"});
}

TEST_CASE("io: IDX rejects a truncated header") {
    check_throws_with<DataFormatError>([] { parse_idx({0, 0, 8}, "t.idx"); },
                                       {"t.idx: truncated: 3 bytes", "4-byte IDX magic"});
    std::vector<uint8_t> b = idx_bytes({2, 3}, {});
    b.resize(9);  // the second size is cut
    check_throws_with<DataFormatError>([&] { parse_idx(b, "t.idx"); },
                                       {"t.idx: truncated: 9 bytes", "2 dimensions needs 12"});
}

TEST_CASE("io: IDX rejects data that does not match the sizes") {
    check_throws_with<DataFormatError>(
        [] { parse_idx(idx_bytes({2, 3}, counting(5)), "short.idx"); },
        {"short.idx: size mismatch: dimensions 2x3 need 6 data bytes, but 5 follow the header (truncated file?)"});
    check_throws_with<DataFormatError>(
        [] { parse_idx(idx_bytes({2, 3}, counting(7)), "long.idx"); },
        {"size mismatch: dimensions 2x3 need 6 data bytes, but 7 follow", "(extra bytes at the end)"});
    // A product of sizes beyond 64 bits is caught by the cap, before it could wrap.
    check_throws_with<DataFormatError>(
        [] { parse_idx(idx_bytes({0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, counting(8)), "huge.idx"); },
        {"huge.idx: dimensions 4294967295x4294967295x4294967295 need more than 2147483648 data bytes, the limit"});
}

TEST_CASE("io: IDX sizes above the 2 GiB cap are rejected before any data is read, plain or gzipped") {
    // 65536 x 32768 = 2^31 bytes is the cap itself: allowed, so the data is what is missing.
    check_throws_with<DataFormatError>([] { parse_idx(idx_bytes({65536, 32768}, counting(8)), "cap.idx"); },
                                       {"cap.idx: size mismatch: dimensions 65536x32768 need 2147483648 data bytes, "
                                        "but 8 follow the header (truncated file?)"});
    check_throws_with<DataFormatError>(
        [] { parse_idx(idx_bytes({65536, 32769}, counting(8)), "over.idx"); },
        {"over.idx: dimensions 65536x32769 need more than 2147483648 data bytes, the limit of what ddpmkit reads"});
    // A zero extent makes no data, but the loaders would still make tensors of the others.
    check_throws_with<DataFormatError>([] { parse_idx(idx_bytes({0, 65536, 65536}, {}), "zero.idx"); },
                                       {"zero.idx: dimensions 0x65536x65536 need more than 2147483648"});
    check_throws_with<DataFormatError>(
        [] { decode_idx(gzip_member(idx_bytes({65536, 32769}, counting(8))), "over.idx.gz"); },
        {"over.idx.gz: dimensions 65536x32769 need more than 2147483648 data bytes"});
}

TEST_CASE("io: a gzipped IDX file whose trailer claims 4 GB allocates only what its header announces") {
    // 4 MB of data that deflate cannot shrink (so the file is 4 MB too), its gzip trailer's
    // size (ISIZE) changed to 4,294,967,280: the reader once took that for the output size.
    std::vector<uint8_t> data(4'000'000);
    uint32_t state = 12345;
    for (uint8_t& b : data) b = static_cast<uint8_t>((state = state * 1664525u + 1013904223u) >> 24);
    std::vector<uint8_t> gz = gzip_member(idx_bytes({1000, 4000}, data));
    REQUIRE(gz.size() > 4'000'000);
    for (size_t k = 1; k <= 4; ++k) gz[gz.size() - k] = k == 4 ? 0xF0 : 0xFF;  // little-endian 0xFFFFFFF0
    const double before = peak_rss_mb();
    check_throws_with<DataFormatError>([&] { decode_idx(gz, "claims4gb.gz"); },
                                       {"claims4gb.gz: gzip error: incorrect length check"});
    CHECK(peak_rss_mb() - before < 512);  // 4 GB zero-filled would show
    // With the right trailer the same file reads, all 4,000,000 bytes of it.
    gz = gzip_member(idx_bytes({1000, 4000}, data));
    CHECK(decode_idx(gz, "ok.gz").data == data);
}

TEST_CASE("io: gzip data beyond the IDX header's sizes stops one byte after them (a gzip bomb of many members)") {
    // The labels [6] in a first member, then 16 members of 64 MiB of zeros each: a 1 GiB
    // stream in 1 MB of file. Only the 6 announced bytes and one more are ever decompressed.
    std::vector<uint8_t> bomb = gzip_member(idx_bytes({6}, {1, 2, 3, 4, 5, 6}));
    const std::vector<uint8_t> zeros = gzip_member(std::vector<uint8_t>(size_t(64) << 20), 9);
    for (int k = 0; k < 16; ++k) bomb.insert(bomb.end(), zeros.begin(), zeros.end());
    REQUIRE(bomb.size() < (size_t(2) << 20));
    const double before = peak_rss_mb();
    check_throws_with<DataFormatError>(
        [&] { decode_idx(bomb, "bomb.gz"); },
        {"bomb.gz: size mismatch: dimensions 6 need 6 data bytes, but the gzip data holds more after the header "
         "(extra bytes at the end)"});
    CHECK(peak_rss_mb() - before < 512);  // 1 GiB decompressed would show
    // Without a header to say how much, the whole-file reader stops at its own limit.
    check_throws_with<DataFormatError>(
        [&] { idx_detail::gunzip(bomb, "bomb.bin.gz", 1000); },
        {"bomb.bin.gz: gzip error: the data decompresses to more than 1000 bytes, the limit"});
}

TEST_CASE("io: gzip data shorter than the IDX header's sizes, or a gzipped header cut short") {
    check_throws_with<DataFormatError>(
        [] { decode_idx(gzip_member(idx_bytes({100, 100}, counting(50))), "short.gz"); },
        {"short.gz: size mismatch: dimensions 100x100 need 10000 data bytes, but the gzip data holds 50 after the "
         "header (truncated file?)"});
    check_throws_with<DataFormatError>([] { decode_idx(gzip_member({0, 0, 8}), "t.gz"); },
                                       {"t.gz: truncated: 3 bytes after decompression, too short for the 4-byte IDX "
                                        "magic"});
    check_throws_with<DataFormatError>(
        [] { decode_idx(gzip_member({0, 0, 8, 2, 0, 0, 0}), "t.gz"); },
        {"t.gz: truncated: 7 bytes after decompression, but the header of 2 dimensions needs 12"});
    check_throws_with<DataFormatError>([] { decode_idx(gzip_member(idx_bytes({2}, {1, 2}, 0x0C)), "int.gz"); },
                                       {"int.gz: element type 0x0c (32-bit integer) is not supported"});
    // Two members that split the header itself still read as one file.
    const std::vector<uint8_t> bytes = idx_bytes({2, 3}, counting(6));
    std::vector<uint8_t> two = gzip_member({bytes.begin(), bytes.begin() + 6});
    const std::vector<uint8_t> rest = gzip_member({bytes.begin() + 6, bytes.end()});
    two.insert(two.end(), rest.begin(), rest.end());
    const IdxArray a = decode_idx(two, "two.gz");
    CHECK(a.dims == std::vector<int64_t>{2, 3});
    CHECK(a.data == counting(6));
}

TEST_CASE("io: gzip errors: corrupt data, a truncated stream, a .gz name without gzip data") {
    TempDir dir;
    const std::vector<uint8_t> bytes = idx_bytes({200, 10}, counting(2000, 31));
    write_gzip(dir.file("ok.gz"), bytes);
    const std::vector<uint8_t> gz = read_bytes(dir.file("ok.gz"));

    std::vector<uint8_t> corrupt = gz;
    for (size_t i = 12; i < corrupt.size() - 8; i += 3) corrupt[i] ^= 0x5A;  // the deflate data, not the header
    write_bytes(dir.file("corrupt.gz"), corrupt);
    check_throws_with<DataFormatError>([&] { read_idx(dir.file("corrupt.gz")); },
                                       {dir.file("corrupt.gz") + ": gzip error: "});

    std::vector<uint8_t> bad_crc = gz;
    bad_crc[bad_crc.size() - 6] ^= 0xFF;  // the CRC-32 of the trailer
    write_bytes(dir.file("crc.gz"), bad_crc);
    check_throws_with<DataFormatError>([&] { read_idx(dir.file("crc.gz")); },
                                       {dir.file("crc.gz") + ": gzip error: incorrect data check"});

    write_bytes(dir.file("cut.gz"), std::vector<uint8_t>(gz.begin(), gz.begin() + static_cast<long>(gz.size() / 2)));
    check_throws_with<DataFormatError>([&] { read_idx(dir.file("cut.gz")); },
                                       {dir.file("cut.gz") + ": gzip error:", "(truncated file)"});

    write_bytes(dir.file("plain.gz"), bytes);
    check_throws_with<DataFormatError>([&] { read_idx(dir.file("plain.gz")); },
                                       {dir.file("plain.gz") + ": gzip error: the name ends in .gz", "1f 8b"});
}

TEST_CASE("io: read_whole_file caps what it reads: a device without end, a folder, a file above 16 GiB") {
    check_throws_with<std::system_error>(
        [] { read_whole_file("/dev/zero"); },
        {"cannot read /dev/zero: it is not a regular file (a pipe or a device) and gives more bytes, above the "
         "limit of 268435456 bytes that ddpmkit reads into memory", "File too large"});
    TempDir dir;
    check_throws_with<std::system_error>([&] { read_whole_file(dir.path.string()); },
                                         {"cannot read " + dir.path.string(), "Is a directory"});
    // A sparse file: its size is refused before a byte of it is read.
    {
        std::ofstream(dir.file("huge")).put('x');
    }
    fs::resize_file(dir.file("huge"), (uint64_t(16) << 30) + 1);
    check_throws_with<std::system_error>(
        [&] { read_idx(dir.file("huge")); },
        {"cannot read " + dir.file("huge") + ": it has 17179869185 bytes, above the limit of 17179869184 bytes"});
    // A file of /proc says 0 bytes to stat, and is read whole all the same.
    const std::vector<uint8_t> status = read_whole_file("/proc/self/status");
    CHECK(std::string(status.begin(), status.begin() + 5) == "Name:");
}

TEST_CASE("io: a missing file throws std::system_error with the path") {
    TempDir dir;
    check_throws_with<std::system_error>([&] { read_idx(dir.file("nope")); },
                                         {"cannot open " + dir.file("nope"), "No such file or directory"});
}

TEST_CASE("io: make_output_dir creates every missing level and refuses what cannot be written") {
    TempDir dir;
    const std::string nested = dir.file("a/b/c");
    make_output_dir(nested);
    CHECK(fs::is_directory(nested));
    make_output_dir(nested + "/");  // existing, with a trailing slash: nothing to do
    CHECK(fs::is_empty(nested));    // the write probe leaves nothing behind

    write_bytes(dir.file("file"), {1, 2, 3});
    check_throws_with<std::runtime_error>([&] { make_output_dir(dir.file("file/x/y")); },
                                          {"cannot use the folder " + dir.file("file/x/y"), dir.file("file") + " is in the way"});
    check_throws_with<std::runtime_error>([&] { make_output_dir(dir.file("file")); }, {dir.file("file") + " is in the way"});
    // /proc takes no new files, even from root (whom permission bits do not stop).
    check_throws_with<std::runtime_error>([&] { make_output_dir("/proc"); }, {"cannot use the folder /proc: cannot create a file in it"});

    prepare_output_file(dir.file("d/e/out.png"));
    CHECK(fs::is_directory(dir.file("d/e")));
    prepare_output_file("relative-name-in-the-working-folder.png");  // its folder is "."
    check_throws_with<std::runtime_error>([&] { prepare_output_file(nested); }, {"cannot write " + nested + ": it is a folder"});
}

// ------------------------------------------------------------------------------ CIFAR-10

TEST_CASE("io: CIFAR-10 reader on synthetic batches, and load_cifar10") {
    TempDir dir;
    // Record r: label r % 10, pixel byte k of plane c = (r + c * 50 + k) % 256.
    auto batch_bytes = [](int records, int first) {
        std::vector<uint8_t> b;
        for (int r = first; r < first + records; ++r) {
            b.push_back(static_cast<uint8_t>(r % 10));
            for (int c = 0; c < 3; ++c)
                for (int k = 0; k < 1024; ++k) b.push_back(static_cast<uint8_t>((r + c * 50 + k) % 256));
        }
        return b;
    };
    write_bytes(dir.file("test_batch.bin"), batch_bytes(4, 0));
    const cifar::Batch b = cifar::read_batch(dir.file("test_batch.bin"));
    CHECK(b.count == 4);
    CHECK(b.labels == std::vector<uint8_t>{0, 1, 2, 3});
    CHECK(b.pixels[3072 + 1024 + 5] == (1 + 50 + 5) % 256);  // record 1, green plane, pixel 5

    const ImageDataset test = load_cifar10(dir.path.string(), false);
    CHECK(test.images.shape() == Shape{4, 3, 32, 32});
    CHECK(test.num_classes == 10);
    CHECK(test.name == "CIFAR-10 (test)");
    CHECK(test.labels(3) == 3);
    CHECK(test.images(2, 1, 0, 7) == static_cast<float>((2 + 50 + 7) % 256) / 127.5f - 1.0f);  // green, row 0, x 7
    CHECK(test.images(2, 2, 1, 0) == static_cast<float>((2 + 100 + 32) % 256) / 127.5f - 1.0f);  // blue, row 1, x 0

    for (int k = 1; k <= 5; ++k)
        write_bytes(dir.file("data_batch_" + std::to_string(k) + ".bin"), batch_bytes(2, 2 * k));
    const ImageDataset train = load_cifar10(dir.path.string(), true);
    CHECK(train.images.shape() == Shape{10, 3, 32, 32});
    CHECK(train.labels(9) == 11 % 10);
    CHECK(train.images(9, 0, 0, 0) == static_cast<float>(11) / 127.5f - 1.0f);
}

TEST_CASE("io: CIFAR-10 reader rejects a size that is not a multiple of 3073, and labels above 9") {
    check_throws_with<DataFormatError>([] { cifar::parse_batch(std::vector<uint8_t>(3074), "b.bin"); },
                                       {"b.bin: size mismatch: 3074 bytes is not a positive multiple", "3073"});
    check_throws_with<DataFormatError>([] { cifar::parse_batch({}, "e.bin"); }, {"e.bin: size mismatch: 0 bytes"});
    std::vector<uint8_t> b(2 * 3073);
    b[3073] = 10;
    check_throws_with<DataFormatError>([&] { cifar::parse_batch(b, "l.bin"); },
                                       {"l.bin: record 1 (byte 3073) has label 10, not 0..9"});
    TempDir dir;
    check_throws_with<std::system_error>([&] { load_cifar10(dir.path.string(), true); }, {"data_batch_1.bin"});
}

// ------------------------------------------------------------------------------ data sets

TEST_CASE("io: load_mnist reads MNIST-named files, plain or .gz, and scales bytes to [-1, 1]") {
    TempDir dir;
    std::vector<uint8_t> pixels = counting(3 * 28 * 28, 5);
    pixels[0] = 0;
    pixels[1] = 255;
    write_gzip(dir.file("train-images-idx3-ubyte.gz"), idx_bytes({3, 28, 28}, pixels));
    write_bytes(dir.file("train-labels-idx1-ubyte"), idx_bytes({3}, {7, 0, 9}));
    const ImageDataset d = load_mnist(dir.path.string(), true);
    CHECK(d.name == "MNIST (train)");
    CHECK(d.num_classes == 10);
    CHECK(d.size() == 3);
    CHECK(d.images.shape() == Shape{3, 1, 28, 28});
    CHECK(d.images(0, 0, 0, 0) == -1.0f);
    CHECK(d.images(0, 0, 0, 1) == 1.0f);
    CHECK(d.images(2, 0, 27, 27) == static_cast<float>(pixels.back()) / 127.5f - 1.0f);
    CHECK(d.labels.shape() == Shape{3});
    CHECK(d.labels(0) == 7);
    CHECK(d.labels(2) == 9);

    check_throws_with<std::runtime_error>([&] { load_mnist(dir.path.string(), false); },
                                          {"t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz", "exists"});
    write_bytes(dir.file("t10k-images-idx3-ubyte"), idx_bytes({2, 28, 28}, counting(2 * 28 * 28)));
    write_bytes(dir.file("t10k-labels-idx1-ubyte"), idx_bytes({3}, {1, 2, 3}));
    check_throws_with<DataFormatError>([&] { load_mnist(dir.path.string(), false); },
                                       {"holds 2 images, but", "holds 3 labels"});
    write_bytes(dir.file("t10k-labels-idx1-ubyte"), idx_bytes({2}, {1, 10}));
    check_throws_with<DataFormatError>([&] { load_mnist(dir.path.string(), false); }, {"label 1 is 10, not 0..9"});
    write_bytes(dir.file("t10k-labels-idx1-ubyte"), idx_bytes({2, 1}, {1, 2}));
    check_throws_with<DataFormatError>([&] { load_mnist(dir.path.string(), false); },
                                       {"holds 2 dimensions, but labels are [N] (1)"});
}

TEST_CASE("io: embedded shapes set: shape, range, balanced labels, determinism, recognizable classes") {
    const ImageDataset d = make_shapes_dataset(400, 7);
    CHECK(d.images.shape() == Shape{400, 1, 28, 28});
    CHECK(d.labels.shape() == Shape{400});
    CHECK(d.num_classes == 10);
    CHECK(kShapesClassNames.size() == 10);
    const auto [lo, hi] = std::minmax_element(d.images.data(), d.images.data() + d.images.numel());
    CHECK(*lo == -1.0f);  // black background
    CHECK(*hi <= 1.0f);
    CHECK(*hi > 0.3f);
    for (int64_t i = 0; i < 400; ++i) {
        CHECK(d.labels(i) == i % 10);
        CHECK(d.images(i, 0, 0, 0) == -1.0f);  // the shapes stay off the corners
        CHECK(*std::max_element(&d.images(i, 0, 0, 0), &d.images(i, 0, 0, 0) + 784) > 0.3f);
        // Bytes, as in the real data sets: x = b / 127.5 - 1 with b an integer.
        const float b = (d.images(i, 0, 14, 14) + 1.0f) * 127.5f;
        CHECK(std::fabs(b - std::round(b)) < 1e-3f);
    }
    // Same seed: the same images, whatever the thread count; image i depends on (seed, i) only.
    const int threads = num_threads();
    set_num_threads(1);
    const ImageDataset prefix = make_shapes_dataset(150, 7);
    set_num_threads(threads);
    CHECK(std::equal(prefix.images.data(), prefix.images.data() + prefix.images.numel(), d.images.data()));
    const ImageDataset other = make_shapes_dataset(400, 8);
    CHECK_FALSE(std::equal(other.images.data(), other.images.data() + other.images.numel(), d.images.data()));
    CHECK(make_shapes_dataset(0, 1).size() == 0);
    CHECK_THROWS_AS(make_shapes_dataset(-1, 1), std::invalid_argument);

    // Recognizable: the nearest class mean (from other images) names the class of most images.
    const ImageDataset held_out = make_shapes_dataset(2000, 99);
    std::vector<double> means(10 * 784, 0.0);
    for (int64_t i = 0; i < 400; ++i)
        for (int64_t p = 0; p < 784; ++p)
            means[static_cast<size_t>(d.labels(i) * 784 + p)] += d.images.data()[i * 784 + p] / 40.0;
    int correct = 0;
    for (int64_t i = 1000; i < 2000; ++i) {
        int best = -1;
        double best_distance = INFINITY;
        for (int c = 0; c < 10; ++c) {
            double distance = 0;
            for (int64_t p = 0; p < 784; ++p) {
                const double diff = held_out.images.data()[i * 784 + p] - means[static_cast<size_t>(c * 784 + p)];
                distance += diff * diff;
            }
            if (distance < best_distance) best_distance = distance, best = c;
        }
        correct += best == held_out.labels(i);
    }
    MESSAGE("nearest-class-mean accuracy on the embedded shapes: " << correct / 10.0 << "%");
    CHECK(correct > 500);  // chance is 100 of 1000
}

TEST_CASE("io: load_fashion_mnist_or_embedded falls back to the embedded set when files are missing") {
    TempDir dir;
    const DatasetChoice choice = load_fashion_mnist_or_embedded(dir.path.string(), true, 30, 3);
    CHECK(choice.embedded);
    CHECK(choice.data.size() == 30);
    CHECK(choice.data.name == "shapes (embedded synthetic set)");
    for (const char* word : {"Fashion-MNIST not found", "train-images-idx3-ubyte[.gz]", "embedded synthetic set",
                             "apt-get install dataset-fashion-mnist", "/usr/share/datasets/fashion-mnist"})
        CHECK_MESSAGE(choice.message.find(word) != std::string::npos, "'" << word << "' not in: " << choice.message);
    CHECK(std::equal(choice.data.images.data(), choice.data.images.data() + choice.data.images.numel(),
                     make_shapes_dataset(30, 3).images.data()));
    CHECK(load_fashion_mnist_or_embedded(dir.path.string(), false, 0).data.size() == 10000);

    // Files that are there but damaged throw instead of falling back.
    write_bytes(dir.file("train-images-idx3-ubyte"), idx_bytes({1, 28, 28}, counting(10)));
    write_bytes(dir.file("train-labels-idx1-ubyte"), idx_bytes({1}, {1}));
    CHECK_THROWS_AS(load_fashion_mnist_or_embedded(dir.path.string(), true), DataFormatError);
    write_bytes(dir.file("train-images-idx3-ubyte"), idx_bytes({1, 28, 28}, counting(784)));
    const DatasetChoice real = load_fashion_mnist_or_embedded(dir.path.string(), true);
    CHECK_FALSE(real.embedded);
    CHECK(real.data.name == "Fashion-MNIST (train)");
    CHECK(real.message.find("Using Fashion-MNIST (train) from " + dir.path.string()) == 0);
}

TEST_CASE("io: Fashion-MNIST from /usr/share/datasets/fashion-mnist (Debian dataset-fashion-mnist)") {
    if (dataset_detail::find_idx_file(kDefaultFashionMnistDir, "train-images-idx3-ubyte").empty()) {
        MESSAGE("skipped: " << kDefaultFashionMnistDir << " is absent (apt-get install dataset-fashion-mnist)");
        return;
    }
    for (const bool train : {true, false}) {
        const ImageDataset d = load_fashion_mnist(kDefaultFashionMnistDir, train);
        const int64_t n = train ? 60000 : 10000;
        CHECK(d.images.shape() == Shape{n, 1, 28, 28});
        CHECK(d.labels.shape() == Shape{n});
        std::vector<int64_t> per_class(10, 0);
        for (int64_t i = 0; i < n; ++i) {
            REQUIRE(d.labels(i) >= 0);
            REQUIRE(d.labels(i) < 10);
            ++per_class[static_cast<size_t>(d.labels(i))];
        }
        CHECK(per_class == std::vector<int64_t>(10, n / 10));  // Fashion-MNIST is balanced
        const auto [lo, hi] = std::minmax_element(d.images.data(), d.images.data() + d.images.numel());
        CHECK(*lo == -1.0f);
        CHECK(*hi == 1.0f);
    }
}

// ------------------------------------------------------------------------------ loader

TEST_CASE("io: DataLoader gives every index once per epoch, drops the partial batch, reshuffles each epoch") {
    const ImageDataset data = numbered_dataset(23);
    DataLoader loader(data, 5, 42);
    CHECK(loader.batches_per_epoch() == 4);
    std::vector<std::vector<int64_t>> epochs;
    for (int e = 0; e < 3; ++e) {
        CHECK(loader.epoch() == e);
        std::vector<int64_t> seen;
        for (int k = 0; k < 4; ++k) {
            const DataBatch b = loader.next();
            REQUIRE(b.x.shape() == Shape{5, 2, 3, 4});
            REQUIRE(b.y.shape() == Shape{5});
            for (int64_t i : indices_of(b)) seen.push_back(i);
            const std::vector<int64_t> idx = indices_of(b);
            for (size_t j = 0; j < idx.size(); ++j) CHECK(b.y(static_cast<int64_t>(j)) == idx[j] % 7);
        }
        // The 20 samples given are the first 20 of the epoch's order: distinct, 3 left out.
        const std::vector<int64_t> order = loader.epoch_order(e);
        CHECK(seen == std::vector<int64_t>(order.begin(), order.begin() + 20));
        std::vector<int64_t> sorted = order;
        std::sort(sorted.begin(), sorted.end());
        for (int64_t i = 0; i < 23; ++i) CHECK(sorted[static_cast<size_t>(i)] == i);
        epochs.push_back(order);
    }
    CHECK(loader.epoch() == 3);
    CHECK(epochs[0] != epochs[1]);
    CHECK(epochs[1] != epochs[2]);

    DataLoader in_order(data, 23, 42, LoaderOptions{false, false});
    const std::vector<int64_t> all = indices_of(in_order.next());
    for (int64_t i = 0; i < 23; ++i) CHECK(all[static_cast<size_t>(i)] == i);
    CHECK(in_order.epoch() == 1);
}

TEST_CASE("io: DataLoader is deterministic: the same seed gives the same batches, another seed others") {
    const ImageDataset data = numbered_dataset(40);
    DataLoader a(data, 8, 123, LoaderOptions{true, true}), b(data, 8, 123, LoaderOptions{true, true});
    DataLoader c(data, 8, 124, LoaderOptions{true, true});
    bool any_different = false;
    for (int k = 0; k < 12; ++k) {
        const DataBatch ba = a.next(), bb = b.next(), bc = c.next();
        CHECK(same(ba, bb));
        any_different = any_different || !same(ba, bc);
    }
    CHECK(any_different);
}

TEST_CASE("io: DataLoader resumed from a saved state continues exactly like an uninterrupted one") {
    const ImageDataset data = numbered_dataset(29);
    for (const int stop : {0, 3, 4, 5, 9}) {  // within an epoch and at its boundaries (6 batches of 4)
        CAPTURE(stop);
        DataLoader uninterrupted(data, 4, 9, LoaderOptions{true, true});
        DataLoader first_run(data, 4, 9, LoaderOptions{true, true});
        for (int k = 0; k < stop; ++k) {
            uninterrupted.next();
            first_run.next();
        }
        const LoaderState saved = first_run.state();
        CHECK(saved.seed == 9);
        CHECK(saved.epoch == stop / 7);
        // A new process: another seed at construction, then the saved state.
        DataLoader resumed(data, 4, 1000, LoaderOptions{true, true});
        resumed.restore(saved);
        CHECK(resumed.state() == saved);
        for (int k = 0; k < 20; ++k) CHECK(same(uninterrupted.next(), resumed.next()));
        CHECK(uninterrupted.state() == resumed.state());
    }
    // A state whose position leaves less than a batch moves on to the next epoch.
    DataLoader loader(data, 4, 9);
    loader.restore(LoaderState{9, 2, 27});
    CHECK(loader.state() == LoaderState{9, 3, 0});
    CHECK_THROWS_AS(loader.restore(LoaderState{9, -1, 0}), std::invalid_argument);
    CHECK_THROWS_AS(loader.restore(LoaderState{9, 0, 30}), std::invalid_argument);
}

TEST_CASE("io: DataLoader random flips mirror about half the samples, left-right, reproducibly") {
    const ImageDataset data = numbered_dataset(50);
    DataLoader loader(data, 10, 5, LoaderOptions{true, true});
    int flipped = 0, total = 0;
    for (int k = 0; k < 20; ++k) {
        const DataBatch b = loader.next();
        const std::vector<int64_t> idx = indices_of(b);
        for (int64_t j = 0; j < 10; ++j) {
            const int64_t i = idx[static_cast<size_t>(j)];
            REQUIRE(i >= 0);
            const bool mirrored = b.x(j, 0, 0, 0) == code(i, 0, 0, 3);
            for (int64_t c = 0; c < 2; ++c)
                for (int64_t y = 0; y < 3; ++y)
                    for (int64_t x = 0; x < 4; ++x) CHECK(b.x(j, c, y, x) == code(i, c, y, mirrored ? 3 - x : x));
            flipped += mirrored;
            ++total;
        }
    }
    CHECK(flipped > total * 3 / 10);
    CHECK(flipped < total * 7 / 10);
    DataLoader plain(data, 10, 5);
    for (int k = 0; k < 5; ++k) {
        const DataBatch b = plain.next();
        const std::vector<int64_t> idx = indices_of(b);
        for (int64_t j = 0; j < 10; ++j) CHECK(b.x(j, 0, 0, 0) == code(idx[static_cast<size_t>(j)], 0, 0, 0));
    }
}

TEST_CASE("io: DataLoader rejects a batch size outside [1, N] and a data set that is not [N, C, H, W]") {
    const ImageDataset data = numbered_dataset(6);
    check_throws_with<std::invalid_argument>([&] { DataLoader(data, 7, 0); },
                                             {"batch size 7 is not in [1, 6], the size of numbered"});
    CHECK_THROWS_AS(DataLoader(data, 0, 0), std::invalid_argument);
    ImageDataset flat = data;
    flat.images = data.images.reshape(Shape{6, 24});
    check_throws_with<std::invalid_argument>([&] { DataLoader(flat, 2, 0); }, {"needs images [N, C, H, W]"});
}

// ------------------------------------------------------------------------------ pictures

TEST_CASE("io: to_pixel_byte maps [-1, 1] to [0, 255], rounds, clamps and sends NaN to 0") {
    CHECK(to_pixel_byte(-1.0f) == 0);
    CHECK(to_pixel_byte(1.0f) == 255);
    CHECK(to_pixel_byte(0.0f) == 128);  // 127.5 rounds up
    CHECK(to_pixel_byte(-3.0f) == 0);
    CHECK(to_pixel_byte(7.0f) == 255);
    CHECK(to_pixel_byte(INFINITY) == 255);
    CHECK(to_pixel_byte(-INFINITY) == 0);
    CHECK(to_pixel_byte(NAN) == 0);
    for (int b = 0; b < 256; ++b) CHECK(to_pixel_byte(static_cast<float>(b) / 127.5f - 1.0f) == b);  // exact round trip
}

TEST_CASE("io: PGM grid: layout, 2-pixel border, clamping, read back") {
    TempDir dir;
    // 5 images of 1x3x2; image i is filled with a value, pixel (2, 1) of image 4 is out of range.
    Tensor<float> batch(Shape{5, 1, 3, 2});
    const float values[5] = {-1.0f, -0.5f, 0.0f, 0.5f, 1.0f};
    for (int64_t i = 0; i < 5; ++i)
        for (int64_t p = 0; p < 6; ++p) batch.data()[i * 6 + p] = values[i];
    batch(4, 0, 2, 1) = 9.0f;
    batch(3, 0, 0, 0) = -9.0f;
    write_grid_pnm(dir.file("grid.pgm"), batch);  // near-square: 3 columns, 2 rows
    const Pgm g = read_pgm(dir.file("grid.pgm"));
    CHECK(g.width == 3 * 2 + 4 * 2);
    CHECK(g.height == 2 * 3 + 3 * 2);
    auto at = [&](int x, int y) { return g.pixels[static_cast<size_t>(y * g.width + x)]; };
    const GridOptions defaults;
    for (int x = 0; x < g.width; ++x) {
        CHECK(at(x, 0) == defaults.border_value);
        CHECK(at(x, 1) == defaults.border_value);
        CHECK(at(x, g.height - 1) == defaults.border_value);
        CHECK(at(x, 5) == defaults.border_value);  // between the rows
    }
    for (int y = 0; y < g.height; ++y) CHECK(at(0, y) == defaults.border_value);
    const int expected[5] = {0, 64, 128, 191, 255};  // (v + 1) * 127.5, rounded
    for (int i = 0; i < 5; ++i) {
        const int x0 = 2 + (i % 3) * 4, y0 = 2 + (i / 3) * 5;
        CHECK(at(x0 + 1, y0 + 1) == expected[i]);
    }
    CHECK(at(2 + 0 * 4, 2 + 1 * 5) == 0);        // image 3, pixel (0, 0): -9 clamps to 0
    CHECK(at(2 + 1 * 4 + 1, 2 + 5 + 2) == 255);  // image 4, pixel (2, 1): 9 clamps to 255
    CHECK(at(2 + 2 * 4, 2 + 5) == defaults.border_value);  // the sixth cell is empty

    // Explicit layout and border.
    const Picture one_row = make_grid(batch, GridOptions{1, 0, 1, 7});
    CHECK(one_row.width == 5 * 2 + 6 * 1);
    CHECK(one_row.height == 3 + 2);
    CHECK(one_row.at(0, 0) == 7);
    const Picture tall = make_grid(batch, GridOptions{0, 2, 2, 0});
    CHECK(tall.width == 2 * 2 + 3 * 2);
    CHECK(tall.height == 3 * 3 + 4 * 2);
    // Scaled: each pixel a 3x3 block of the unscaled pixel's value.
    const Picture big = make_grid(batch, GridOptions{1, 0, 1, 7, 3});
    CHECK(big.width == 5 * 2 * 3 + 6 * 1);
    CHECK(big.height == 3 * 3 + 2);
    for (int i = 0; i < 5; ++i)
        for (int y = 0; y < 9; ++y)
            for (int x = 0; x < 6; ++x) CHECK(big.at(1 + i * 7 + x, 1 + y) == one_row.at(1 + i * 3 + x / 3, 1 + y / 3));
    CHECK(big.at(1 + 6, 1) == 7);  // the border between images 0 and 1 stays one pixel wide
    check_throws_with<std::invalid_argument>([&] { make_grid(batch, GridOptions{1, 0, 1, 7, 0}); }, {"make_grid: scale 0 is outside 1..64"});
    check_throws_with<std::invalid_argument>([&] { make_grid(batch, GridOptions{2, 2}); },
                                             {"2 rows x 2 cols hold fewer than the 5 images"});
    check_throws_with<std::invalid_argument>([&] { make_grid(Tensor<float>(Shape{2, 2, 3, 3})); },
                                             {"make_grid: expects a batch [N, C, H, W]", "C = 1 or 3"});
}

TEST_CASE("io: PPM for RGB batches keeps the channels interleaved") {
    TempDir dir;
    Tensor<float> rgb(Shape{1, 3, 1, 1}, {-1.0f, 0.0f, 1.0f});
    write_grid_pnm(dir.file("c.ppm"), rgb, GridOptions{0, 0, 0});
    const std::vector<uint8_t> b = read_bytes(dir.file("c.ppm"));
    const std::string header = "P6\n1 1\n255\n";
    REQUIRE(b.size() == header.size() + 3);
    CHECK(std::string(b.begin(), b.begin() + static_cast<long>(header.size())) == header);
    CHECK(b[header.size()] == 0);
    CHECK(b[header.size() + 1] == 128);
    CHECK(b[header.size() + 2] == 255);
    check_throws_with<std::system_error>([&] { write_grid_pnm(dir.file("missing/c.ppm"), rgb); },
                                         {"cannot create " + dir.file("missing/c.ppm")});
}

TEST_CASE("io: PNG grid: signature, size, and decoded pixels equal to the PGM ones") {
    TempDir dir;
    const ImageDataset shapes = make_shapes_dataset(12, 1);
    write_grid_png(dir.file("g.png"), shapes.images);
    write_grid_pnm(dir.file("g.pgm"), shapes.images);
    const std::vector<uint8_t> png = read_bytes(dir.file("g.png"));
    REQUIRE(png.size() > 33);
    const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    CHECK(std::equal(signature, signature + 8, png.begin()));
    CHECK(std::string(png.begin() + 12, png.begin() + 16) == "IHDR");
    auto be32 = [&](size_t at) {
        return uint32_t(png[at]) << 24 | uint32_t(png[at + 1]) << 16 | uint32_t(png[at + 2]) << 8 | png[at + 3];
    };
    const int side = 4 * 28 + 5 * 2;  // 12 images: 4 x 3
    CHECK(be32(16) == static_cast<uint32_t>(side));
    CHECK(be32(20) == static_cast<uint32_t>(3 * 28 + 4 * 2));
    CHECK(png[24] == 8);  // bit depth
    CHECK(png[25] == 0);  // colour type 0: grayscale
    const TensorF decoded = read_image(dir.file("g.png"), 1);  // back to [-1, 1]
    const Pgm pgm = read_pgm(dir.file("g.pgm"));
    REQUIRE(decoded.shape() == Shape{1, 1, pgm.height, pgm.width});
    int64_t differ = 0;
    for (size_t i = 0; i < pgm.pixels.size(); ++i) differ += decoded.data()[i] != pgm.pixels[i] / 127.5f - 1.0f;
    CHECK(differ == 0);
    const TensorF from_pgm = read_image(dir.file("g.pgm"), 1);  // the PGM reads back to the same
    CHECK(std::equal(decoded.data(), decoded.data() + decoded.numel(), from_pgm.data(), from_pgm.data() + from_pgm.numel()));
    check_throws_with<std::runtime_error>([&] { read_image(dir.file("g.pgm.missing"), 1); }, {"cannot open", "g.pgm.missing"});
}

namespace {

// A PNG made by hand (PNG specification, section 5): chunks with their CRC-32, raw rows
// (filter byte 0 + samples) compressed by zlib.
std::vector<uint8_t> be32_bytes(uint32_t v) { return {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)}; }

std::vector<uint8_t> png_chunk(const std::string& type, const std::vector<uint8_t>& data) {
    std::vector<uint8_t> c = be32_bytes(uint32_t(data.size()));
    c.reserve(12 + data.size());
    for (char letter : type) c.push_back(uint8_t(letter));
    c.insert(c.end(), data.begin(), data.end());
    const std::vector<uint8_t> crc = be32_bytes(uint32_t(crc32(0L, c.data() + 4, uInt(c.size() - 4))));
    c.insert(c.end(), crc.begin(), crc.end());
    return c;
}

std::vector<uint8_t> handmade_png(uint32_t width, uint32_t height, uint8_t color, const std::vector<uint8_t>& raw) {
    std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, ihdr = be32_bytes(width);
    const std::vector<uint8_t> h = be32_bytes(height);
    ihdr.insert(ihdr.end(), h.begin(), h.end());
    ihdr.insert(ihdr.end(), {8, color, 0, 0, 0});  // depth 8, no interlace
    std::vector<uint8_t> z(compressBound(uLong(raw.size())));
    uLongf n = z.size();
    REQUIRE(compress(z.data(), &n, raw.data(), uLong(raw.size())) == Z_OK);
    z.resize(n);
    for (const auto& c : {png_chunk("IHDR", ihdr), png_chunk("IDAT", z), png_chunk("IEND", {})}) png.insert(png.end(), c.begin(), c.end());
    return png;
}

}  // namespace

TEST_CASE("io: read_image reads PNG, PGM and PPM, 8 and 16 bits, and converts gray and RGB") {
    const TempDir dir;
    // 2x1 RGB PNG: pixels (255, 0, 0) and (0, 255, 51).
    write_bytes(dir.file("rgb.png"), handmade_png(2, 1, 2, {0, 255, 0, 0, 0, 255, 51}));
    const TensorF rgb = read_image(dir.file("rgb.png"), 3);
    REQUIRE(rgb.shape() == Shape{1, 3, 1, 2});
    CHECK(std::vector<float>(rgb.data(), rgb.data() + 6) == std::vector<float>{1, -1, -1, 1, -1, 51 / 127.5f - 1});
    // A 16-bit PGM with maxval 1000, read as RGB: each sample copied to R, G and B.
    write_bytes(dir.file("g16.pgm"), {'P', '5', ' ', '2', '\n', '#', ' ', 'c', '\n', '1', ' ', '1', '0', '0', '0', '\n', 0x01, 0xF4, 0x03, 0xE8});
    const TensorF g16 = read_image(dir.file("g16.pgm"), 3);
    REQUIRE(g16.shape() == Shape{1, 3, 1, 2});
    for (int c = 0; c < 3; ++c) {
        CHECK(g16(0, c, 0, 0) == doctest::Approx(0.0));  // 500 / 1000
        CHECK(g16(0, c, 0, 1) == 1.0f);
    }
    // A PPM read as gray: its luma 0.299 R + 0.587 G + 0.114 B.
    write_bytes(dir.file("c.ppm"), {'P', '6', '\n', '1', ' ', '1', '\n', '2', '5', '5', '\n', 255, 0, 255});
    CHECK(read_image(dir.file("c.ppm"), 1)(0, 0, 0, 0) == doctest::Approx(0.413 * 2 - 1).epsilon(1e-6));
    check_throws_with<std::invalid_argument>([&] { read_image(dir.file("c.ppm"), 2); }, {"channels must be 1 or 3, not 2"});
}

TEST_CASE("io: read_image refuses damaged, hostile and oversized pictures before decoding them") {
    const TempDir dir;
    const std::vector<uint8_t> good = handmade_png(2, 2, 0, {0, 10, 20, 0, 30, 40});
    auto refused = [&](const std::vector<uint8_t>& bytes, std::initializer_list<std::string> message) {
        write_bytes(dir.file("bad"), bytes);
        check_throws_with<std::runtime_error>([&] { read_image(dir.file("bad"), 1); }, message);
    };
    std::vector<uint8_t> flipped = good;
    flipped[good.size() - 20] ^= 1;  // inside the IDAT chunk's data
    refused(flipped, {"read_image " + dir.file("bad") + ": chunk IDAT at byte 33: its CRC-32 does not match (a damaged file)"});
    refused(std::vector<uint8_t>(good.begin(), good.end() - 12), {"the file ends at byte 59 before the IEND chunk (truncated)"});
    std::vector<uint8_t> cut(good.begin(), good.begin() + 50);
    refused(cut, {"chunk IDAT at byte 33 claims"});
    // A chunk that claims 2 GB (stb_image would ask for it before reading).
    std::vector<uint8_t> huge = good;
    huge[33] = 0x7f;
    refused(huge, {"chunk IDAT at byte 33 claims 2130706446 bytes; the file has 26 after its header (truncated or damaged)"});
    // Sizes from the header, before any pixel: too large, zero.
    refused(handmade_png(5000, 1, 0, {}), {"a 5000x1 picture; ddpmkit reads 1 to 4096 pixels a side"});
    refused(handmade_png(1, 0, 0, {}), {"a 1x0 picture"});
    // Image data that inflates past the header's picture (a zlib bomb) or short of it.
    refused(handmade_png(2, 2, 0, std::vector<uint8_t>(1 << 20, 0)), {"the image data inflates to more than the 6 bytes of a 2x2 picture"});
    refused(handmade_png(2, 2, 0, {0, 1, 2}), {"the image data inflates to 3 bytes; a 2x2 picture needs 6"});
    // Other formats, including the 32-byte TGA that decodes to 461 million pixels (fuzz/corpus/image/finding_tga_18711x24644.bin).
    refused({0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x17, 0x49, 0x44, 0x60, 24, 0}, {"not a PNG, PGM (P5) or PPM (P6) file"});
    refused({'P', '2', '\n'}, {"not a PNG, PGM (P5) or PPM (P6) file"});
    // PGM headers and sizes.
    refused({'P', '5', '\n', '9', '9', '9', '9', '9', ' ', '1', ' ', '2', '5', '5', '\n'}, {"a 99999x1 picture"});
    refused({'P', '5', '\n', '2', 'x', '1'}, {"the header's width at byte 3 is not a number of at most 9 digits followed by whitespace"});
    refused({'P', '5', ' ', '2', ' ', '1', ' ', '0', '\n', 0, 0}, {"the header's maxval 0 is outside 1..65535"});
    refused({'P', '5', ' ', '2', ' ', '2', ' ', '2', '5', '5', '\n', 1, 2, 3}, {"a 2x2 PGM needs 4 bytes of samples after its header; the file has 3"});
    refused({'P', '5', ' ', '1', ' ', '1', ' ', '9', '\n', 10}, {"sample 0 is 10, above maxval 9"});
}

TEST_CASE("io: make_strip shows each sample in a row, frames left to right") {
    std::vector<Tensor<float>> frames;
    for (int t = 0; t < 4; ++t) {
        Tensor<float> f(Shape{2, 1, 2, 2});
        for (int64_t s = 0; s < 2; ++s)
            for (int64_t p = 0; p < 4; ++p) f.data()[s * 4 + p] = static_cast<float>(s * 4 + t) / 127.5f - 1.0f;
        frames.push_back(f);
    }
    const Picture p = make_strip(frames);
    CHECK(p.width == 4 * 2 + 5 * 2);
    CHECK(p.height == 2 * 2 + 3 * 2);
    for (int s = 0; s < 2; ++s)
        for (int t = 0; t < 4; ++t) CHECK(p.at(2 + t * 4, 2 + s * 4) == s * 4 + t);
    frames[2] = Tensor<float>(Shape{3, 1, 2, 2});
    check_throws_with<std::invalid_argument>([&] { make_strip(frames); }, {"frame 2 has shape"});
    CHECK_THROWS_AS(make_strip({}), std::invalid_argument);
}

TEST_CASE("io: line chart: size, background, curve, axes; log scale, no data and bad input") {
    TempDir dir;
    std::vector<double> steps, losses;
    for (int i = 0; i <= 2000; i += 10) {
        steps.push_back(i);
        losses.push_back(0.05 + std::exp(-i / 300.0) + 0.02 * std::sin(i * 0.37));
    }
    ChartOptions options;
    options.title = "Training loss";
    options.smoothing = 0.9;
    const Picture p = plot_line_chart(steps, losses, options);
    CHECK(p.width == 800);
    CHECK(p.height == 480);
    CHECK(p.channels == 3);
    CHECK(p.at(2, 2, 0) == 255);  // white background
    // The smoothed curve's blue is present; so is dark ink (text, axes).
    int blue = 0, ink = 0;
    for (int y = 0; y < p.height; ++y)
        for (int x = 0; x < p.width; ++x) {
            blue += p.at(x, y, 0) == 25 && p.at(x, y, 1) == 90 && p.at(x, y, 2) == 180;
            ink += p.at(x, y, 0) == 40 && p.at(x, y, 1) == 40 && p.at(x, y, 2) == 40;
        }
    CHECK(blue > 500);
    CHECK(ink > 1000);
    write_png(dir.file("loss.png"), p);
    CHECK(read_bytes(dir.file("loss.png")).size() > 1000);

    options.log_y = true;
    options.width = 400;
    options.height = 300;
    losses[5] = -1.0;  // left out on a log axis
    losses[6] = NAN;
    const Picture log_chart = plot_line_chart(steps, losses, options);
    CHECK(log_chart.width == 400);
    CHECK(plot_line_chart({}, {}).width == 800);  // an empty chart that says "no data"
    CHECK(plot_line_chart({5}, {0.5}).height == 480);
    check_throws_with<std::invalid_argument>([] { plot_line_chart({1, 2}, {1}); }, {"2 x values but 1 y values"});
    options.smoothing = 1.0;
    CHECK_THROWS_AS(plot_line_chart(steps, losses, options), std::invalid_argument);
}

TEST_CASE("io: plots: points, lines, arrows and histogram bars land where the frame maps them; the legend") {
    PlotOptions o;
    o.x_min = 0, o.x_max = 1, o.y_min = 0, o.y_max = 2;
    const Plot::Rgb red{214, 39, 40}, blue{31, 119, 180};
    auto is = [](const Picture& p, double x, double y, Plot::Rgb c) {
        const int ix = static_cast<int>(x), iy = static_cast<int>(y);
        return p.at(ix, iy, 0) == c[0] && p.at(ix, iy, 1) == c[1] && p.at(ix, iy, 2) == c[2];
    };
    auto white = [&](const Picture& p, double x, double y) { return is(p, x, y, {255, 255, 255}); };

    // A point's centre and a thick line's centre carry their colour exactly; off them, white.
    Plot dots(o);
    dots.points({0.25}, {0.5}, "", 4.0, red).line({0.0, 1.0}, {1.5, 1.5}, "", 4.0, blue);
    const Plot::Frame f = dots.frame();
    CHECK(f.left < f.right);
    CHECK(f.px(0.0) == doctest::Approx(f.left));
    CHECK(f.py(2.0) == doctest::Approx(f.top));
    const Picture p = dots.render();
    CHECK(is(p, f.px(0.25), f.py(0.5), red));
    CHECK(white(p, f.px(0.75), f.py(0.5)));
    CHECK(is(p, f.px(0.6), f.py(1.5), blue));
    CHECK(white(p, f.px(0.65), f.py(1.1)));  // off the grid lines (ticks every 0.1 in x, 0.2 in y)

    // An arrow from (0.2, 1.1) to (0.8, 1.1): red ink along it, none before its start.
    Plot field(o);
    field.arrows({0.2}, {1.1}, {0.6}, {0.0}, "", red);
    const Picture a = field.render();
    const int ax = static_cast<int>(f.px(0.5)), ay = static_cast<int>(f.py(1.1));
    CHECK(a.at(ax, ay, 0) > a.at(ax, ay, 1) + 60);
    CHECK(white(a, f.px(0.05), f.py(1.1)));

    // {0.1, 0.2, 0.3, 0.9} in 2 bins over [0, 1]: densities 1.5 and 0.5 (area 1). At height 0.9
    // the first bar is filled (white blended towards the colour), the second is not.
    Plot bars(o);
    bars.histogram({0.1, 0.2, 0.3, 0.9}, 2, "", blue);
    const Picture h = bars.render();
    const double k = Plot::kBarOpacity;
    const Plot::Rgb fill{static_cast<uint8_t>(std::lround(255 + (31 - 255) * k)), static_cast<uint8_t>(std::lround(255 + (119 - 255) * k)),
                         static_cast<uint8_t>(std::lround(255 + (180 - 255) * k))};
    CHECK(is(h, f.px(0.25), f.py(0.9), fill));
    CHECK(white(h, f.px(0.75), f.py(0.9)));
    CHECK(is(h, f.px(0.75), f.py(0.25), fill));

    // A labelled series gets a legend (its box, top right in the plot area); an unlabelled one none.
    auto ink_top_right = [&](const Picture& q) {
        int n = 0;
        for (int y = f.top + 2; y < f.top + 40; ++y)
            for (int x = f.right - 120; x < f.right - 2; ++x) n += q.at(x, y, 0) == 40 && q.at(x, y, 1) == 40 && q.at(x, y, 2) == 40;
        return n;
    };
    CHECK(ink_top_right(Plot(o).line({0.0, 1.0}, {0.1, 0.1}, "linear").render()) > 20);
    CHECK(ink_top_right(Plot(o).line({0.0, 1.0}, {0.1, 0.1}).render()) == 0);

    check_throws_with<std::invalid_argument>([&] { Plot(o).histogram({1.0}, 0); }, {"0 bins"});
    check_throws_with<std::invalid_argument>([&] { Plot(o).histogram({NAN}, 3); }, {"no finite values"});
    check_throws_with<std::invalid_argument>([&] { Plot(o).arrows({1, 2}, {1, 2}, {1}, {1, 2}); }, {"2 x values but 1 y values"});
    PlotOptions empty = o;
    empty.x_max = 0;
    check_throws_with<std::invalid_argument>([&] { Plot(empty).render(); }, {"ranges are empty"});
    empty = o;
    empty.width = 100;
    check_throws_with<std::invalid_argument>([&] { Plot{empty}; }, {"outside 200x150"});
}

// ------------------------------------------------------------------------------ logs

TEST_CASE("io: CSV logger writes the header once and one flushed row per call") {
    TempDir dir;
    const std::string path = dir.file("log.csv");
    {
        CsvLogger log(path, {"step", "loss", "lr, scaled"});
        CHECK(read_text(path) == "step,loss,\"lr, scaled\"\n");
        log.log({1, 0.5, 2e-4});
        CHECK(read_text(path) == "step,loss,\"lr, scaled\"\n1,0.5,0.0002\n");  // flushed at once
        log.log({2, 0.123456789012, 1e-12});
        CHECK_THROWS_AS(log.log({3, 0.1}), std::invalid_argument);
    }
    CHECK(read_text(path) == "step,loss,\"lr, scaled\"\n1,0.5,0.0002\n2,0.123456789,1e-12\n");
    // Without append the file starts over.
    { CsvLogger log(path, {"step", "loss"}); }
    CHECK(read_text(path) == "step,loss\n");
    CHECK_THROWS_AS(CsvLogger(path, {}), std::invalid_argument);
    check_throws_with<std::system_error>([&] { CsvLogger(dir.file("no/log.csv"), {"a"}); },
                                         {"CsvLogger: cannot create " + dir.file("no/log.csv")});
}

TEST_CASE("io: CSV logger appends when resuming with the same header, and refuses another header") {
    TempDir dir;
    const std::string path = dir.file("log.csv");
    {
        CsvLogger log(path, {"step", "loss"}, true);  // appending to nothing creates the file
        log.log({1, 0.5});
    }
    {
        CsvLogger log(path, {"step", "loss"}, true);
        log.log({2, 0.25});
    }
    CHECK(read_text(path) == "step,loss\n1,0.5\n2,0.25\n");
    // A row cut short by a crash is dropped before appending.
    std::ofstream(path, std::ios::app) << "3,0.1";
    {
        CsvLogger log(path, {"step", "loss"}, true);
        log.log({3, 0.125});
    }
    CHECK(read_text(path) == "step,loss\n1,0.5\n2,0.25\n3,0.125\n");
    check_throws_with<std::runtime_error>([&] { CsvLogger(path, {"step", "loss", "grad_norm"}, true); },
                                          {"cannot append, its header is \"step,loss\"",
                                           "this run logs \"step,loss,grad_norm\""});
    CHECK(read_text(path) == "step,loss\n1,0.5\n2,0.25\n3,0.125\n");  // untouched
}

TEST_CASE("io: progress line: format, rate-limited plain lines, in-place redraws") {
    CHECK(ProgressLine::format_duration(0) == "0:00");
    CHECK(ProgressLine::format_duration(95) == "1:35");
    CHECK(ProgressLine::format_duration(5400) == "1:30:00");
    CHECK(ProgressLine::format_duration(200000) == "2d 7:33:20");
    CHECK(ProgressLine::format_duration(NAN) == "?");

    std::FILE* out = std::tmpfile();
    REQUIRE(out != nullptr);
    auto contents = [&] {
        std::fflush(out);
        std::rewind(out);
        std::string s;
        for (int ch; (ch = std::fgetc(out)) != EOF;) s += static_cast<char>(ch);
        return s;
    };
    {
        const ProgressLine line(100, 0, 10.0, out, ProgressStyle::lines);
        CHECK(line.format(50, {{"loss", 0.03125}, {"grad", 1.5}}, 10.0) ==
              "step 50/100 (50.0%)  loss 0.03125  grad 1.5  5.00 it/s  ETA 0:10");
        CHECK(line.format(100, {}, 400.0) == "step 100/100 (100.0%)  4.00 s/it  took 6:40");
        CHECK(line.format(0, {}, 0.0) == "step 0/100 (0.0%)");
        const ProgressLine resumed(100, 40, 10.0, out, ProgressStyle::lines);
        CHECK(resumed.format(50, {}, 5.0) == "step 50/100 (50.0%)  2.00 it/s  ETA 0:25");
    }
    CHECK(contents().empty());  // format() prints nothing
    {
        ProgressLine line(5, 0, 1e9, out, ProgressStyle::lines);  // one line per 1e9 s: the first and the last
        for (int step = 1; step <= 5; ++step) line.update(step, {{"loss", 1.0 / step}});
    }
    std::string text = contents();
    CHECK(std::count(text.begin(), text.end(), '\n') == 2);
    CHECK(text.find("step 1/5 (20.0%)  loss 1") == 0);
    CHECK(text.find("\nstep 5/5 (100.0%)  loss 0.2") != std::string::npos);
    CHECK(text.find('\r') == std::string::npos);
    std::fclose(out);

    out = std::tmpfile();
    REQUIRE(out != nullptr);
    {
        ProgressLine line(3, 0, 0.0, out, ProgressStyle::in_place);
        line.update(1, {{"loss", 0.5}});
        line.update(3);
    }
    text = contents();
    CHECK(text.find("\rstep 1/3") == 0);
    CHECK(text.find("\rstep 3/3") != std::string::npos);
    CHECK(std::count(text.begin(), text.end(), '\n') == 1);  // only the final one
    CHECK(text.back() == '\n');
    std::fclose(out);
}
