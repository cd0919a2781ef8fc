// ddpmkit inspect: the tensors and metadata of a safetensors file.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "common.hpp"

namespace cli {

// Text from a file as the terminal may show it: control bytes (escape sequences could move the
// cursor or retitle the window) and DEL as \xNN; UTF-8 passes.
inline std::string printable(const std::string& text) {
    std::string out;
    for (unsigned char c : text) {
        if (c < 0x20 || c == 0x7f) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

inline int cmd_inspect(int argc, char** argv) {
    Flags f("inspect", "Lists the tensors of a safetensors file (name, dtype, shape) and its metadata, after checking\n"
                     "each tensor against the CRC-32 ddpmkit records when it writes a file.", {});
    std::vector<std::string> files;
    if (!f.parse(argc, argv, &files)) return 0;
    if (files.size() != 1) throw UsageError("give exactly one FILE");
    const safetensors::File file = safetensors::File::read(files[0]);
    int64_t elements = 0;
    for (const std::string& name : file.names()) {
        const safetensors::TensorInfo& t = file.info(name);
        std::printf("%-48s %-4s %s\n", printable(name).c_str(), safetensors::dtype_name(t.dtype), t.shape.str().c_str());
        elements += t.shape.numel();
    }
    const bool checked = file.metadata().count(safetensors::kChecksumKey) != 0;
    std::printf("%zu tensors, %lld elements; %s\n", file.names().size(), static_cast<long long>(elements),
                checked ? "every tensor matches its CRC-32" : "no CRC-32 recorded (not written by ddpmkit)");
    for (const auto& [key, value] : file.metadata())
        if (key != safetensors::kChecksumKey) std::printf("  %s = %s\n", printable(key).c_str(), printable(value).c_str());
    return 0;
}

}  // namespace cli
