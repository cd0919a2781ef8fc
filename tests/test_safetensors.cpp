// Tests of io/json.hpp and io/safetensors.hpp: round trips, the exact byte layout, one
// case per rejection rule (bad files built in memory), crash-safe writing, and a golden
// file written by PyTorch (benchmarks/torch_unet.py --export).
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <system_error>
#include <vector>

#include <stdlib.h>  // mkdtemp

#include "ddpmkit/io/json.hpp"
#include "ddpmkit/io/safetensors.hpp"

#include <zlib.h>

#ifndef DDPMKIT_TEST_DATA_DIR
#error "DDPMKIT_TEST_DATA_DIR must name the tests/data folder"
#endif

namespace {

namespace fs = std::filesystem;
namespace json = ddpmkit::json;
namespace st = ddpmkit::safetensors;
using ddpmkit::Shape;
using ddpmkit::Tensor;

std::vector<uint8_t> le64(uint64_t n) {
    std::vector<uint8_t> out;
    for (int k = 0; k < 8; ++k) out.push_back(static_cast<uint8_t>(n >> (8 * k)));
    return out;
}

// A file declaring header length n, then `header` as given (unpadded), then data_size zeros.
std::vector<uint8_t> file_of(uint64_t n, const std::string& header, size_t data_size) {
    std::vector<uint8_t> out = le64(n);
    out.insert(out.end(), header.begin(), header.end());
    out.insert(out.end(), data_size, 0);
    return out;
}
std::vector<uint8_t> file_of(const std::string& header, size_t data_size) {
    return file_of(header.size(), header, data_size);
}

// One header entry, fields written as given: entry("w", "\"F32\"", "[2]", "[0,8]").
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
    return "\"" + name + "\":{\"dtype\":" + dtype + ",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
}

// parse() must throw FormatError whose message starts with the origin and contains every word.
void check_rejects(const std::vector<uint8_t>& bytes, std::initializer_list<std::string> words) {
    try {
        st::File::parse(bytes, "bad.safetensors");
        FAIL("parse() accepted the bytes");
    } catch (const st::FormatError& e) {
        const std::string msg = e.what();
        CHECK_MESSAGE(msg.rfind("bad.safetensors: ", 0) == 0, "message: " << msg);
        for (const std::string& w : words) CHECK_MESSAGE(msg.find(w) != std::string::npos, "'" << w << "' not in: " << msg);
    }
}

template <class T>
bool same_bits(const Tensor<T>& a, const Tensor<T>& b) {
    return a.shape() == b.shape() &&
           std::memcmp(a.data(), b.data(), static_cast<size_t>(a.numel()) * sizeof(T)) == 0;
}

std::string header_of(const std::vector<uint8_t>& bytes) {
    uint64_t n = 0;
    for (int k = 7; k >= 0; --k) n = n << 8 | bytes[static_cast<size_t>(k)];
    return std::string(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
}

std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A fresh empty folder, removed with its contents at the end of the test.
struct TempDir {
    fs::path path;
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "ddpmkit_st_XXXXXX").string();
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() { fs::remove_all(path); }
    std::vector<std::string> files() const {
        std::vector<std::string> out;
        for (const auto& e : fs::directory_iterator(path)) out.push_back(e.path().filename().string());
        std::sort(out.begin(), out.end());
        return out;
    }
};

}  // namespace

// ---------------------------------------------------------------------------------- JSON

TEST_CASE("safetensors: JSON parser reads every kind of value") {
    const json::Value v = json::parse(
        " {\"s\":\"q\\\"b\\\\s\\/\\b\\f\\n\\r\\t\\u00e9\\u20AC\\ud83d\\ude00 \xc3\xa9\","
        "\"n\":[0,18446744073709551615,-1,1.5e3,1E-2,-0.0],\"t\":true,\"f\":false,\"z\":null,\"e\":{},\"a\":[]}\n");
    REQUIRE(v.is_object());
    CHECK(v.as_object().size() == 7);
    CHECK(v.find("s")->as_string() == "q\"b\\s/\b\f\n\r\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 \xc3\xa9");
    const json::Array& n = v.find("n")->as_array();
    CHECK(n[0].is_integer());
    CHECK(n[0].as_uint() == 0);
    CHECK(n[1].as_uint() == std::numeric_limits<uint64_t>::max());  // exact, beyond 2^53
    CHECK_FALSE(n[2].is_integer());  // negative: a double
    CHECK(n[2].as_double() == -1.0);
    CHECK_FALSE(n[3].is_integer());
    CHECK(n[3].as_double() == 1500.0);
    CHECK(n[4].as_double() == 0.01);
    CHECK(std::signbit(n[5].as_double()));
    CHECK(v.find("t")->as_bool());
    CHECK_FALSE(v.find("f")->as_bool());
    CHECK(v.find("z")->is_null());
    CHECK(v.find("e")->as_object().empty());
    CHECK(v.find("a")->as_array().empty());
    CHECK(v.find("missing") == nullptr);
    CHECK(v.as_object()[0].first == "s");  // document order
    CHECK_THROWS_WITH_AS(v.find("s")->as_uint(), "JSON: expected a non-negative integer, got a string", json::Error);
    CHECK_THROWS_WITH_AS(v.find("t")->as_array(), "JSON: expected an array, got a boolean", json::Error);
}

TEST_CASE("safetensors: JSON parser rejects malformed text with the byte position") {
    auto error_of = [](const std::string& text) -> std::string {
        try {
            json::parse(text);
        } catch (const json::Error& e) {
            return e.what();
        }
        return "(accepted)";
    };
    CHECK(error_of("1 2") == "JSON: unexpected text after the JSON value at byte 2");
    CHECK(error_of("{\"a\":1,\"a\":2}") == "JSON: duplicate key \"a\" at byte 7");
    CHECK(error_of("18446744073709551616") == "JSON: integer 18446744073709551616 does not fit in 64 bits at byte 0");
    CHECK(error_of("[1,]") == "JSON: unexpected character at byte 3");
    CHECK(error_of("{\"a\":1,}") == "JSON: expected a string key at byte 7");
    CHECK(error_of("{\"a\" 1}") == "JSON: expected ':' at byte 5");
    CHECK(error_of("[1 2]") == "JSON: expected ']' at byte 3");
    CHECK(error_of("\"a\\x\"") == "JSON: invalid escape at byte 2");
    CHECK(error_of("\"\\ud800\"") == "JSON: unpaired high surrogate in \\u escape at byte 1");
    CHECK(error_of("\"\\udc00\"") == "JSON: unpaired low surrogate in \\u escape at byte 1");
    CHECK(error_of("\"\\u12g4\"") == "JSON: invalid hex digit in \\u escape at byte 5");
    CHECK(error_of("\"a\nb\"") == "JSON: control character in string (must be escaped) at byte 2");
    CHECK(error_of("\"\xc0\x80\"") == "JSON: invalid UTF-8 at byte 1");          // overlong
    CHECK(error_of("\"\xed\xa0\x80\"") == "JSON: invalid UTF-8 at byte 1");      // a surrogate
    CHECK(error_of("\"\xf4\x90\x80\x80\"") == "JSON: invalid UTF-8 at byte 1");  // above U+10FFFF
    CHECK(error_of("\"abc") == "JSON: unterminated string at byte 4");
    CHECK(error_of("tru") == "JSON: invalid literal at byte 0");
    CHECK(error_of("") == "JSON: unexpected end of input at byte 0");
    CHECK(error_of("1e999") == "JSON: number 1e999 is out of range at byte 0");
    for (const char* bad : {"01", "1.", ".5", "-", "+1", "1e", "NaN", "[1,2", "{\"a\"}", "// c\n1"})
        CHECK_MESSAGE(error_of(bad) != "(accepted)", bad);
    CHECK(error_of(std::string(300, '[') + std::string(300, ']')) == "JSON: nesting deeper than 256 at byte 256");
    CHECK(error_of(std::string(200, '[') + std::string(200, ']')) == "(accepted)");
}

TEST_CASE("safetensors: JSON numbers too small for a double are zero, too large ones an error") {
    const json::Value v = json::parse("[1e-400,-1e-400,0.00001e-320,1000e-327,4e-320,-0.0e999]");
    const json::Array& n = v.as_array();
    CHECK(n[0].as_double() == 0.0);
    CHECK_FALSE(std::signbit(n[0].as_double()));
    CHECK(n[1].as_double() == 0.0);
    CHECK(std::signbit(n[1].as_double()));
    CHECK(n[2].as_double() == 0.0);
    CHECK(n[3].as_double() == 0.0);
    CHECK(n[4].as_double() == 4e-320);  // a denormal, not zero
    CHECK(n[5].as_double() == 0.0);     // a zero mantissa is never out of range
    CHECK_THROWS_WITH_AS(json::parse("[1,-123.4e400]"), "JSON: number -123.4e400 is out of range at byte 3", json::Error);
    CHECK_THROWS_WITH_AS(json::parse("0.000001e315"), "JSON: number 0.000001e315 is out of range at byte 0", json::Error);
    CHECK(json::parse("0.000001e314").as_double() == 1e308);
}

TEST_CASE("safetensors: JSON parser caps the values of a document, and reads numbers in linear time") {
    // 999,999 numbers and their array: exactly the 1,000,000 values allowed.
    std::string text = "[";
    for (int i = 0; i < 999'999; ++i) text += i % 2 ? "0.125," : "-2.5e-1,";
    text.back() = ']';
    const auto start = std::chrono::steady_clock::now();
    const json::Value v = json::parse(text);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    REQUIRE(v.as_array().size() == 999'999);
    double sum = 0;
    for (const json::Value& x : v.as_array()) sum += x.as_double();
    CHECK(sum == 500'000 * -0.25 + 499'999 * 0.125);  // exact: multiples of 1/8

    // Measured on 2 cores: one std::istringstream per number took 0.55 s (1.15 s with ASan +
    // UBSan), from_chars 0.06 s (0.21 s). The bound is loose, for a shared machine: it
    // catches a parser that is quadratic in the input, not a slower constant.
    CHECK_MESSAGE(seconds < 5.0, seconds << " s for 999,999 numbers");
    // One value more is refused where it starts.
    text.back() = ',';
    text += "7]";
    CHECK_THROWS_WITH_AS(json::parse(text), ("JSON: more than 1000000 values at byte " + std::to_string(text.size() - 2)).c_str(),
                         json::Error);
}

TEST_CASE("safetensors: JSON quote escapes what must be escaped and round-trips") {
    const std::string s = "a\"b\\c/\n\t\r\x01\x1f \xc3\xa9\xf0\x9f\x98\x80";
    CHECK(json::quote(s) == "\"a\\\"b\\\\c/\\n\\t\\r\\u0001\\u001f \xc3\xa9\xf0\x9f\x98\x80\"");
    CHECK(json::parse(json::quote(s)).as_string() == s);
    CHECK(json::quote("") == "\"\"");
    CHECK_THROWS_AS(json::quote("bad \xff"), json::Error);
}

// ------------------------------------------------------------------------ round trips

TEST_CASE("safetensors: round trip of F32, F64 and I64 tensors, a scalar and an empty extent") {
    const Tensor<float> f32(Shape{2, 3}, {1.5f, -2.25f, std::numeric_limits<float>::denorm_min(), -0.0f,
                                          std::numeric_limits<float>::max(), std::numeric_limits<float>::quiet_NaN()});
    const Tensor<double> f64(Shape{2, 1, 2}, {0.1, -1e300, std::numeric_limits<double>::denorm_min(), 2.0 / 3.0});
    const Tensor<int64_t> i64(Shape{3}, {std::numeric_limits<int64_t>::min(), -1, std::numeric_limits<int64_t>::max()});
    const Tensor<double> scalar = Tensor<double>::scalar(-7.5);
    const Tensor<float> empty(Shape{2, 0, 3});
    st::Writer w;
    w.add("f32", f32);
    w.add("f64", f64);
    w.add("i64", i64);
    w.add("scalar", scalar);
    w.add("empty", empty);
    w.add("x/\"odd\" name \xc3\xa9", Tensor<int64_t>::scalar(42));
    w.set_metadata("note", "line\n\"quoted\" \xc3\xa9");
    w.set_metadata("step", "1");
    w.set_metadata("step", "2");  // replaces

    const st::File f = st::File::parse(w.serialize(), "memory");
    CHECK(f.origin() == "memory");
    CHECK(f.names() == std::vector<std::string>{"empty", "f32", "f64", "i64", "scalar", "x/\"odd\" name \xc3\xa9"});
    CHECK(same_bits(f.get<float>("f32"), f32));  // bitwise: -0, denormals and NaN survive
    CHECK(same_bits(f.get<double>("f64"), f64));
    CHECK(same_bits(f.get<int64_t>("i64"), i64));
    CHECK(f.get<double>("scalar").shape() == Shape{});
    CHECK(f.get<double>("scalar").item() == -7.5);
    CHECK(f.get<int64_t>("x/\"odd\" name \xc3\xa9").item() == 42);
    CHECK(f.get<float>("empty").shape() == Shape{2, 0, 3});
    CHECK(f.get<float>("empty").numel() == 0);
    CHECK(f.info("empty").begin == f.info("empty").end);
    CHECK(f.info("f64").dtype == st::DType::F64);
    CHECK(f.info("i64").shape == Shape{3});
    CHECK(f.contains("f32"));
    CHECK_FALSE(f.contains("F32"));
    CHECK(f.metadata().size() == 4);  // and the CRC-32s, each verified by parse
    CHECK(f.metadata().at(st::kChecksumKey).size() == 6 * 9 - 1);
    CHECK(f.metadata().at("format") == "pt");
    CHECK(f.metadata().at("note") == "line\n\"quoted\" \xc3\xa9");
    CHECK(f.metadata().at("step") == "2");
}

TEST_CASE("safetensors: an empty writer gives a valid file with only metadata") {
    const std::vector<uint8_t> bytes = st::Writer(st::Checksums::omit).serialize();
    CHECK(header_of(bytes) == "{\"__metadata__\":{\"format\":\"pt\"}}");  // 32 bytes: no padding
    const st::File f = st::File::parse(bytes, "memory");
    CHECK(f.names().empty());
    CHECK(f.metadata().at("format") == "pt");
}

TEST_CASE("safetensors: header layout is exact: metadata first, space padding to 8, LE row-major data") {
    st::Writer w(st::Checksums::omit);
    w.add("y", Tensor<int64_t>::scalar(0x0102030405060708));
    w.add("x", Tensor<float>(Shape{2, 2}, {1.0f, 2.0f, 3.0f, 4.0f}));
    const std::vector<uint8_t> bytes = w.serialize();
    const std::string expected =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"x\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
        "\"y\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[16,24]}}  ";  // 142 bytes + 2 spaces
    REQUIRE(bytes.size() == 8 + expected.size() + 24);
    CHECK(std::vector<uint8_t>(bytes.begin(), bytes.begin() + 8) == le64(expected.size()));
    CHECK(header_of(bytes) == expected);
    const uint8_t* data = bytes.data() + 8 + expected.size();
    const uint8_t x_bytes[16] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40};  // 1, 2, 3, 4
    const uint8_t y_bytes[8] = {8, 7, 6, 5, 4, 3, 2, 1};
    CHECK(std::memcmp(data, x_bytes, 16) == 0);
    CHECK(std::memcmp(data + 16, y_bytes, 8) == 0);

    // Every amount of padding, 0 to 7 spaces, as the name length varies.
    for (size_t len = 1; len <= 8; ++len) {
        st::Writer wl(st::Checksums::omit);
        wl.add(std::string(len, 'n'), Tensor<float>(Shape{1}));
        const std::string h = header_of(wl.serialize());
        CAPTURE(len);
        CHECK(h.size() % 8 == 0);
        CHECK(h.rfind("{\"__metadata__\":{\"format\":\"pt\"},", 0) == 0);
        const size_t close = h.find_last_of('}');
        CHECK(h.size() - close - 1 < 8);
        CHECK(h.find_first_not_of(' ', close + 1) == std::string::npos);
    }
}

TEST_CASE("safetensors: the CRC-32 of each tensor is recorded, and a changed byte names its tensor") {
    st::Writer w;
    w.add("b", Tensor<float>(Shape{2}, {1.0f, 2.0f}));
    w.add("a", Tensor<int64_t>(Shape{3}, {1, 2, 3}));
    w.add("c", Tensor<float>(Shape{0}));
    const std::vector<uint8_t> bytes = w.serialize();
    // zlib's CRC-32 of the data, in name order: a (24 bytes), b (8 bytes), c (no byte: 0).
    const std::string h = header_of(bytes);
    const uint8_t a[24] = {1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t b[8] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0x40};
    char expected[64];
    std::snprintf(expected, sizeof expected, "\"ddpmkit.crc32\":\"%08lx,%08lx,00000000\"", crc32(0, a, 24), crc32(0, b, 8));
    CHECK(h.find(expected) != std::string::npos);
    CHECK(st::File::parse(bytes, "m").get<float>("b")(1) == 2.0f);
    // One bit of b's data flipped: the error names b (the data is the last 32 bytes: a, then b).
    std::vector<uint8_t> flipped = bytes;
    flipped[bytes.size() - 3] ^= 0x10;
    check_rejects(flipped, {"tensor \"b\": its data does not match the CRC-32 recorded when the file was written", "the file is damaged"});
    // A tensor added to the header without its checksum (here: the header is rewritten by hand).
    std::string more = h;
    more.replace(more.find("\"c\":{"), 0, "\"d\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[32,32]},");
    std::vector<uint8_t> altered = le64(more.size());
    altered.insert(altered.end(), more.begin(), more.end());
    altered.insert(altered.end(), bytes.end() - 32, bytes.end());
    check_rejects(altered, {"metadata \"ddpmkit.crc32\" holds 3 checksums (26 characters) for 4 tensors"});
    // The entry is the writer's own.
    CHECK_THROWS_WITH_AS(w.set_metadata("ddpmkit.crc32", "0"), "safetensors::Writer: metadata \"ddpmkit.crc32\" is written by the writer itself",
                         std::invalid_argument);
}

TEST_CASE("safetensors: writer rejects a duplicate, reserved, undefined or non-UTF-8 name") {
    st::Writer w;
    w.add("a", Tensor<float>(Shape{1}));
    CHECK_THROWS_WITH_AS(w.add("a", Tensor<double>(Shape{2})), "safetensors::Writer: duplicate tensor name \"a\"",
                         std::invalid_argument);
    CHECK_THROWS_AS(w.add("__metadata__", Tensor<float>(Shape{1})), std::invalid_argument);
    CHECK_THROWS_AS(w.add("u", Tensor<float>()), std::invalid_argument);
    CHECK_THROWS_AS(w.add("bad \xff", Tensor<float>(Shape{1})), json::Error);
    CHECK_THROWS_AS(w.set_metadata("k", "bad \xff"), json::Error);
    CHECK(st::File::parse(w.serialize(), "memory").names() == std::vector<std::string>{"a"});
}

TEST_CASE("safetensors: get and info name the tensor, its dtype and the requested one") {
    st::Writer w;
    w.add("w", Tensor<float>(Shape{2}));
    const st::File f = st::File::parse(w.serialize(), "model.safetensors");
    CHECK_THROWS_WITH_AS(f.info("nope"), "model.safetensors: no tensor named \"nope\"", st::FormatError);
    CHECK_THROWS_WITH_AS(f.get<float>("nope"), "model.safetensors: no tensor named \"nope\"", st::FormatError);
    CHECK_THROWS_WITH_AS(f.get<double>("w"), "model.safetensors: tensor \"w\" has dtype F32, but F64 was requested",
                         st::FormatError);
    CHECK_THROWS_WITH_AS(f.get<int64_t>("w"), "model.safetensors: tensor \"w\" has dtype F32, but I64 was requested",
                         st::FormatError);
}

// -------------------------------------------------------------------- rejection rules

TEST_CASE("safetensors: rejects a file shorter than 8 bytes") {
    check_rejects({}, {"0 bytes", "too short"});
    check_rejects({1, 0, 0, 0, 0, 0, 0}, {"7 bytes", "too short"});
}

TEST_CASE("safetensors: rejects a header length above 100 MB") {
    check_rejects(file_of(100000001, "{}", 0), {"header length 100000001", "100 MB"});
    check_rejects(file_of(std::numeric_limits<uint64_t>::max(), "{}", 0), {"header length 18446744073709551615", "100 MB"});
}

TEST_CASE("safetensors: rejects a header length beyond the file size") {
    check_rejects(file_of(3, "{}", 0), {"header length 3 + 8 exceeds the file size 10"});
    check_rejects(le64(1), {"header length 1 + 8 exceeds the file size 8"});
}

TEST_CASE("safetensors: rejects a header that is not valid JSON") {
    check_rejects(file_of("{\"a\" 1}", 0), {"not valid JSON", "expected ':'", "header byte 5 (file byte 13)"});
    check_rejects(file_of("{} x", 0), {"not valid JSON", "after the JSON value", "header byte 3"});
    check_rejects(file_of("{\"w\":{", 0), {"not valid JSON", "header byte 6"});
    check_rejects(file_of("{\"\xff\":1}", 0), {"not valid JSON", "invalid UTF-8"});
    check_rejects(file_of("", 0), {"not valid JSON", "end of input"});
}

TEST_CASE("safetensors: rejects a header that is not a JSON object") {
    check_rejects(file_of("[1,2]", 0), {"header is an array, not a JSON object"});
    check_rejects(file_of("\"x\"", 0), {"header is a string, not a JSON object"});
}

TEST_CASE("safetensors: rejects an entry that is not an object") {
    check_rejects(file_of("{\"w\":[1]}", 0), {"tensor \"w\": entry is an array, not an object"});
    check_rejects(file_of("{\"w\":null}", 0), {"tensor \"w\": entry is null, not an object"});
}

TEST_CASE("safetensors: rejects a missing or ill-typed dtype, shape or data_offsets") {
    SUBCASE("dtype") {
        check_rejects(file_of("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
                      {"tensor \"w\"", "missing field \"dtype\""});
        check_rejects(file_of("{" + entry("w", "32", "[1]", "[0,4]") + "}", 4),
                      {"tensor \"w\"", "field \"dtype\" is an integer, not a string"});
    }
    SUBCASE("shape") {
        check_rejects(file_of("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4),
                      {"tensor \"w\"", "missing field \"shape\""});
        check_rejects(file_of("{" + entry("w", "\"F32\"", "\"1\"", "[0,4]") + "}", 4),
                      {"tensor \"w\"", "field \"shape\" is a string, not an array"});
        check_rejects(file_of("{" + entry("w", "\"F32\"", "[-1]", "[0,4]") + "}", 4),
                      {"tensor \"w\"", "field \"shape\" holds a number, not a non-negative integer"});
        check_rejects(file_of("{" + entry("w", "\"F32\"", "[1.0]", "[0,4]") + "}", 4),
                      {"tensor \"w\"", "field \"shape\" holds a number"});
        check_rejects(file_of("{" + entry("w", "\"F32\"", "[1,1,1,1,1,1,1]", "[0,4]") + "}", 4),
                      {"tensor \"w\"", "rank 7"});
    }
    SUBCASE("data_offsets") {
        check_rejects(file_of("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4),
                      {"tensor \"w\"", "missing field \"data_offsets\""});
        for (const char* bad : {"[0]", "[0,4,8]", "[0,\"4\"]", "[0,-4]", "[0,4.0]", "{\"0\":4}", "4"})
            check_rejects(file_of("{" + entry("w", "\"F32\"", "[1]", bad) + "}", 4),
                          {"tensor \"w\"", "field \"data_offsets\" is not [begin, end]"});
    }
}

TEST_CASE("safetensors: rejects an unknown dtype") {
    check_rejects(file_of("{" + entry("w", "\"F16\"", "[2]", "[0,4]") + "}", 4),
                  {"tensor \"w\"", "unknown dtype \"F16\""});
    check_rejects(file_of("{" + entry("w", "\"f32\"", "[1]", "[0,4]") + "}", 4), {"unknown dtype \"f32\""});
}

TEST_CASE("safetensors: rejects a shape whose element count overflows or exceeds 2^48") {
    // 2^32 x 2^32 elements
    check_rejects(file_of("{" + entry("w", "\"F32\"", "[4294967296,4294967296]", "[0,0]") + "}", 0),
                  {"tensor \"w\"", "shape [4294967296,4294967296] has more than 2^48 elements", "the most a tensor holds"});
    // 2^61 elements fit in 64 bits, their 2^64 bytes do not
    check_rejects(file_of("{" + entry("w", "\"F64\"", "[2305843009213693952]", "[0,0]") + "}", 0),
                  {"shape [2305843009213693952] has more than 2^48 elements"});
    // A zero extent does not excuse the others: strides would still overflow.
    check_rejects(file_of("{" + entry("w", "\"I64\"", "[0,4294967296,4294967296]", "[0,0]") + "}", 0),
                  {"shape [0,4294967296,4294967296] has more than 2^48 elements (counting non-zero extents)"});
    // Found by fuzz_safetensors: 2^32 x 42949672 fit 64-bit bytes but not a tensor, whose
    // element count (2^48 at most) checked its extents before the final zero.
    check_rejects(file_of("{" + entry("w", "\"F64\"", "[4294967296,42949672,0]", "[0,0]") + "}", 0),
                  {"shape [4294967296,42949672,0] has more than 2^48 elements"});
    // 2^48 elements exactly are allowed (then the data is what is missing).
    check_rejects(file_of("{" + entry("w", "\"F32\"", "[16777216,16777216]", "[0,0]") + "}", 0),
                  {"data_offsets [0,0] hold 0 bytes, but shape [16777216,16777216] of F32 needs 1125899906842624"});
    // An extent beyond uint64_t is caught by the JSON parser.
    check_rejects(file_of("{" + entry("w", "\"F32\"", "[18446744073709551616]", "[0,0]") + "}", 0),
                  {"not valid JSON", "does not fit in 64 bits"});
}

TEST_CASE("safetensors: rejects data_offsets whose end is before their begin") {
    check_rejects(file_of("{" + entry("w", "\"F32\"", "[0]", "[8,4]") + "}", 8),
                  {"tensor \"w\"", "data_offsets [8,4] end before they begin"});
}

TEST_CASE("safetensors: rejects a byte size other than elements x dtype size") {
    check_rejects(file_of("{" + entry("w", "\"F32\"", "[3]", "[0,8]") + "}", 8),
                  {"tensor \"w\"", "data_offsets [0,8] hold 8 bytes, but shape [3] of F32 needs 12"});
    check_rejects(file_of("{" + entry("s", "\"F64\"", "[]", "[0,0]") + "}", 0),
                  {"tensor \"s\"", "hold 0 bytes, but shape [] of F64 needs 8"});
}

TEST_CASE("safetensors: rejects offsets that are not contiguous or do not end at the data size") {
    const std::string a4 = entry("a", "\"F32\"", "[1]", "[0,4]");
    SUBCASE("gap") {
        check_rejects(file_of("{" + a4 + "," + entry("b", "\"F32\"", "[1]", "[8,12]") + "}", 12),
                      {"tensor \"b\" begins at data byte 8 but tensor \"a\" ends at 4 (a gap)"});
    }
    SUBCASE("gap before the first tensor") {
        check_rejects(file_of("{" + entry("a", "\"F32\"", "[1]", "[4,8]") + "}", 8),
                      {"tensor \"a\" begins at data byte 4 but the data section starts at 0 (a gap)"});
    }
    SUBCASE("overlap") {
        check_rejects(file_of("{" + entry("a", "\"F32\"", "[2]", "[0,8]") + "," +
                                  entry("b", "\"F32\"", "[2]", "[4,12]") + "}",
                              12),
                      {"tensor \"b\" begins at data byte 4 but tensor \"a\" ends at 8 (an overlap)"});
        check_rejects(file_of("{" + a4 + "," + entry("b", "\"F32\"", "[1]", "[0,4]") + "}", 4), {"(an overlap)"});
    }
    SUBCASE("bytes left after the last tensor") {
        check_rejects(file_of("{" + a4 + "}", 8), {"the tensors end at data byte 4 but the data section has 8 bytes"});
        check_rejects(file_of("{}", 1), {"the tensors end at data byte 0 but the data section has 1 bytes"});
    }
    SUBCASE("last tensor beyond the end of the file") {
        check_rejects(file_of("{" + a4 + "}", 2), {"the tensors end at data byte 4 but the data section has 2 bytes"});
    }
    SUBCASE("empty tensors may share an offset, in any order of the header") {
        const std::string h = "{" + entry("z", "\"F32\"", "[0]", "[4,4]") + "," + a4 + "," +
                              entry("e", "\"I64\"", "[2,0]", "[4,4]") + "," + entry("b", "\"F32\"", "[1]", "[4,8]") +
                              "," + entry("c", "\"F32\"", "[0]", "[0,0]") + "}";
        CHECK(st::File::parse(file_of(h, 8), "ok").names().size() == 5);
    }
}

TEST_CASE("safetensors: rejects duplicate tensor names") {
    const std::string w = entry("w", "\"F32\"", "[1]", "[0,4]");
    check_rejects(file_of("{" + w + "," + w + "}", 4), {"not valid JSON", "duplicate key \"w\""});
    check_rejects(file_of("{\"__metadata__\":{},\"__metadata__\":{}}", 0), {"duplicate key \"__metadata__\""});
}

TEST_CASE("safetensors: rejects metadata values that are not strings") {
    check_rejects(file_of("{\"__metadata__\":{\"format\":\"pt\",\"ch\":16}}", 0),
                  {"\"__metadata__\" value of \"ch\" is an integer, not a string"});
    check_rejects(file_of("{\"__metadata__\":{\"a\":null}}", 0), {"value of \"a\" is null, not a string"});
    check_rejects(file_of("{\"__metadata__\":[]}", 0), {"\"__metadata__\" is an array, not an object"});
}

// ------------------------------------------------------------------------ writing files

TEST_CASE("safetensors: write replaces an existing file whole and leaves no temporary file") {
    TempDir dir;
    const std::string path = (dir.path / "model.safetensors").string();
    st::Writer first;
    first.add("a", Tensor<float>(Shape{3}, {1.0f, 2.0f, 3.0f}));
    first.write(path);
    CHECK(dir.files() == std::vector<std::string>{"model.safetensors"});
    CHECK(read_bytes(path) == first.serialize());

    st::Writer second;
    second.add("b", Tensor<int64_t>(Shape{2}, {7, 8}));
    second.set_metadata("step", "2");
    second.write(path);
    CHECK(dir.files() == std::vector<std::string>{"model.safetensors"});
    CHECK(read_bytes(path) == second.serialize());
    const st::File f = st::File::read(path);
    CHECK(f.origin() == path);
    CHECK(f.names() == std::vector<std::string>{"b"});
    CHECK(f.get<int64_t>("b").at({1}) == 8);
    CHECK(f.metadata().at("step") == "2");

    // A relative path writes into the current folder (synced as ".").
    const fs::path cwd = fs::current_path();
    fs::current_path(dir.path);
    first.write("relative.safetensors");
    fs::current_path(cwd);
    CHECK(read_bytes((dir.path / "relative.safetensors").string()) == first.serialize());
}

TEST_CASE("safetensors: a failed write leaves the target and the folder as they were") {
    TempDir dir;
    // The final rename fails (a non-empty folder is in the way) after all data was written.
    const fs::path target = dir.path / "busy";
    fs::create_directory(target);
    std::ofstream(target / "keep.txt") << "keep";
    st::Writer w;
    w.add("a", Tensor<float>(Shape{2}));
    try {
        w.write(target.string());
        FAIL("write() succeeded over a folder");
    } catch (const std::system_error& e) {
        CHECK(std::string(e.what()).find("cannot write " + target.string()) != std::string::npos);
    }
    CHECK(dir.files() == std::vector<std::string>{"busy"});
    CHECK(read_bytes((target / "keep.txt").string()) == std::vector<uint8_t>{'k', 'e', 'e', 'p'});
}

TEST_CASE("safetensors: write into a missing folder throws with the path and errno text, creating nothing") {
    TempDir dir;
    const std::string path = (dir.path / "missing" / "model.safetensors").string();
    st::Writer w;
    w.add("a", Tensor<float>(Shape{1}));
    try {
        w.write(path);
        FAIL("write() succeeded into a missing folder");
    } catch (const std::system_error& e) {
        const std::string msg = e.what();
        CHECK_MESSAGE(msg.find(path) != std::string::npos, msg);
        CHECK_MESSAGE(msg.find("No such file or directory") != std::string::npos, msg);
        CHECK(e.code() == std::errc::no_such_file_or_directory);
    }
    CHECK(dir.files().empty());
    CHECK_THROWS_AS(st::File::read(path), std::system_error);
}

TEST_CASE("safetensors: File::read refuses a device without end and a folder, reading a bounded amount") {
    CHECK_THROWS_WITH_AS(st::File::read("/dev/zero"),
                         "cannot read /dev/zero: it is not a regular file (a pipe or a device) and gives more bytes, "
                         "above the limit of 268435456 bytes that ddpmkit reads into memory: File too large",
                         std::system_error);
    TempDir dir;
    CHECK_THROWS_WITH_AS(st::File::read(dir.path.string()), ("cannot read " + dir.path.string() + ": Is a directory").c_str(),
                         std::system_error);
}

// --------------------------------------------------------------- golden file (PyTorch)

// Written by: torch_unet.py --export golden_small.safetensors --ch 16 --mult 1,2 --blocks 1
//             --attn 8 --groups 4 --res 16 --batch 2. Values read back with numpy, printed
//             with 9 significant digits (exact for float).
TEST_CASE("safetensors: reads the golden file written by PyTorch") {
    const st::File f = st::File::read(DDPMKIT_TEST_DATA_DIR "/golden_small.safetensors");
    CHECK(f.metadata() == std::map<std::string, std::string>{{"format", "pt"},
                                                             {"in_ch", "1"},
                                                             {"ch", "16"},
                                                             {"mult", "1,2"},
                                                             {"blocks", "1"},
                                                             {"attn", "8"},
                                                             {"groups", "4"},
                                                             {"res", "16"},
                                                             {"batch", "2"}});
    CHECK(f.names().size() == 261);

    CHECK(f.info("input.t").dtype == st::DType::I64);
    CHECK(f.info("input.t").shape == Shape{2});
    const Tensor<int64_t> t = f.get<int64_t>("input.t");
    CHECK(t(0) == 937);
    CHECK(t(1) == 680);

    CHECK(f.info("loss").dtype == st::DType::F32);
    CHECK(f.info("loss").shape == Shape{1});
    CHECK(f.get<float>("loss").item() == 1.20076847f);

    CHECK(f.info("conv_in.weight").shape == Shape{16, 1, 3, 3});
    CHECK(f.info("conv_in.weight").begin == 64);
    CHECK(f.info("conv_in.weight").end == 640);
    CHECK(f.info("mid.1.qkv.weight").shape == Shape{96, 32, 1, 1});
    CHECK(f.info("up.2.conv1.weight").shape == Shape{32, 48, 3, 3});
    CHECK(f.info("time.0.weight").shape == Shape{64, 16});
    CHECK(f.info("output.eps").shape == Shape{2, 1, 16, 16});
    CHECK(f.info("grad.conv_in.weight").shape == Shape{16, 1, 3, 3});

    const Tensor<float> w = f.get<float>("conv_in.weight");
    CHECK(w(0, 0, 0, 0) == -0.283711851f);
    CHECK(w(3, 0, 1, 2) == -0.0518786237f);
    CHECK(w(15, 0, 2, 2) == -0.248666078f);
    CHECK(f.get<float>("mid.1.qkv.weight")(95, 31, 0, 0) == -0.136570096f);
    CHECK(f.get<float>("time.0.weight")(63, 15) == 0.16330719f);
    CHECK(f.get<float>("grad.conv_in.weight")(0, 0, 1, 1) == -0.0578461811f);
    CHECK(f.get<float>("input.x")(0, 0, 0, 0) == -1.050547f);
    CHECK(f.get<float>("output.eps")(0, 0, 0, 0) == 0.223694026f);
    CHECK(f.get<float>("output.eps")(1, 0, 15, 15) == 0.427035511f);
    // The tensor stored last in the file, its last element: the final bytes of the data.
    CHECK(f.info("up.6.temb.weight").end == 1420956);
    CHECK(f.get<float>("up.6.temb.weight")(15, 63) == -0.090858832f);
    CHECK_THROWS_AS(f.get<double>("loss"), st::FormatError);
}

TEST_CASE("safetensors: Writer reproduces the PyTorch golden file byte for byte") {
    const std::string path = DDPMKIT_TEST_DATA_DIR "/golden_small.safetensors";
    const st::File f = st::File::read(path);
    st::Writer w(st::Checksums::omit);
    // The reference writer keeps its metadata in this (insertion) order.
    for (const char* key : {"in_ch", "ch", "mult", "blocks", "attn", "groups", "res", "batch"})
        w.set_metadata(key, f.metadata().at(key));
    for (const std::string& name : f.names()) {
        if (f.info(name).dtype == st::DType::I64) w.add(name, f.get<int64_t>(name));
        else w.add(name, f.get<float>(name));
    }
    CHECK(w.serialize() == read_bytes(path));
}
