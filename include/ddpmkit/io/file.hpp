// ddpmkit — reading a whole file into memory, with errors that name the file.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "ddpmkit/config.hpp"

DDPMKIT_BEGIN_NAMESPACE

// Every byte of the file. Throws std::system_error "cannot open PATH" / "cannot read PATH".
inline std::vector<uint8_t> read_whole_file(const std::string& path) {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> fp(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!fp) {
        const int err = errno;  // before the message is built
        throw std::system_error(err, std::generic_category(), "cannot open " + path);
    }
    std::vector<uint8_t> bytes;
    const size_t chunk = size_t(1) << 20;
    for (;;) {
        const size_t old = bytes.size();
        bytes.resize(old + chunk);
        const size_t got = std::fread(bytes.data() + old, 1, chunk, fp.get());
        bytes.resize(old + got);
        if (got < chunk) break;
    }
    if (std::ferror(fp.get())) {
        const int err = errno;
        throw std::system_error(err, std::generic_category(), "cannot read " + path);
    }
    return bytes;
}

DDPMKIT_END_NAMESPACE
