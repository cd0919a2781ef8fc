// libFuzzer target: the JSON parser (io/json.hpp) on any bytes. Malformed text must end in
// json::Error; anything else escaping, a crash, a leak or undefined behaviour is a finding.
// A parsed document is walked whole, and every string in it must quote and parse back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "ddpmkit/io/json.hpp"

namespace json = ddpmkit::json;

namespace {

void walk(const json::Value& v) {
    (void)v.describe();
    if (v.is_string()) {
        if (json::parse(json::quote(v.as_string())).as_string() != v.as_string()) std::abort();
    } else if (v.is_number()) {
        if (v.is_integer()) (void)v.as_uint();
        (void)v.as_double();
    } else if (v.is_array()) {
        for (const json::Value& item : v.as_array()) walk(item);
    } else if (v.is_object()) {
        for (const auto& kv : v.as_object()) {
            if (json::parse(json::quote(kv.first)).as_string() != kv.first) std::abort();
            if (v.find(kv.first) != &kv.second) std::abort();  // keys are unique
            walk(kv.second);
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        walk(json::parse(reinterpret_cast<const char*>(data), size));
    } catch (const json::Error& e) {
        if (e.position() != json::Error::npos && e.position() > size) std::abort();  // a position inside the text
    }
    return 0;
}
