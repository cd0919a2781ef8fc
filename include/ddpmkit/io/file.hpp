// ddpmkit — reading a whole file into memory, and preparing the folders files are written
// to; errors name the file.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

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

// Creates the folder `dir` and every missing folder above it (as `mkdir -p`), then checks
// that a file can be created in it, so that a run fails before its work, not at its first
// write. Throws std::runtime_error naming the path and the reason.
inline void make_output_dir(const std::string& dir) {
    if (dir.empty()) throw std::invalid_argument("make_output_dir: the folder name is empty");
    auto fail = [&](const std::string& what, int err) {
        throw std::runtime_error("cannot use the folder " + dir + ": " + what + ": " + std::strerror(err));
    };
    for (size_t end = dir.find('/', 1);; end = dir.find('/', end + 1)) {
        const std::string prefix = dir.substr(0, end);
        struct stat st {};
        if (::stat(prefix.c_str(), &st) == 0) {
            if (!S_ISDIR(st.st_mode)) fail(prefix + " is in the way", ENOTDIR);
        } else if (errno != ENOENT || (::mkdir(prefix.c_str(), 0777) != 0 && errno != EEXIST)) {
            const int err = errno;  // before the message is built
            fail("cannot create " + prefix, err);
        }
        if (end == std::string::npos) break;
    }
    std::string probe = dir + "/.ddpmkit-write-test-XXXXXX";
    const int fd = ::mkstemp(&probe[0]);
    if (fd < 0) {
        const int err = errno;
        fail("cannot create a file in it", err);
    }
    ::close(fd);
    ::unlink(probe.c_str());
}

// Prepares the folder of a file about to be written: created if missing, checked writable
// (make_output_dir); the path itself must not be a folder.
inline void prepare_output_file(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
        throw std::runtime_error("cannot write " + path + ": it is a folder");
    const size_t slash = path.rfind('/');
    make_output_dir(slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash));
}

DDPMKIT_END_NAMESPACE
