// ddpmkit — reading a whole file into memory, and preparing the folders files are written
// to; errors name the file.
#pragma once

#include <algorithm>
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

// What read_whole_file reads at most: a regular file's size is known before reading and
// checked first; a pipe or a device is read until its end, and /dev/zero has none.
constexpr uint64_t kMaxFileBytes = uint64_t(16) << 30;   // 16 GiB
constexpr uint64_t kMaxStreamBytes = uint64_t(256) << 20;  // 256 MiB

// Every byte of the file. Throws std::system_error "cannot open PATH" / "cannot read PATH",
// the latter also for a folder (EISDIR) and for more bytes than the caps above (EFBIG).
inline std::vector<uint8_t> read_whole_file(const std::string& path) {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> fp(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!fp) {
        const int err = errno;  // before the message is built
        throw std::system_error(err, std::generic_category(), "cannot open " + path);
    }
    struct stat st {};
    if (::fstat(::fileno(fp.get()), &st) != 0) {
        const int err = errno;
        throw std::system_error(err, std::generic_category(), "cannot read " + path);
    }
    if (S_ISDIR(st.st_mode)) throw std::system_error(EISDIR, std::generic_category(), "cannot read " + path);
    const bool regular = S_ISREG(st.st_mode);
    const uint64_t limit = regular ? kMaxFileBytes : kMaxStreamBytes;
    auto too_big = [&](const std::string& what) {
        return std::system_error(EFBIG, std::generic_category(),
                                 "cannot read " + path + ": " + what + ", above the limit of " +
                                     std::to_string(limit) + " bytes that ddpmkit reads into memory");
    };
    if (regular && static_cast<uint64_t>(st.st_size) > limit)
        throw too_big("it has " + std::to_string(st.st_size) + " bytes");
    std::vector<uint8_t> bytes;
    if (regular) bytes.reserve(static_cast<size_t>(st.st_size));
    const size_t chunk = size_t(1) << 20;
    for (;;) {
        const size_t old = bytes.size();
        // One byte beyond the limit is enough to know it is exceeded (a growing file too).
        const size_t want = static_cast<size_t>(std::min<uint64_t>(chunk, limit + 1 - old));
        bytes.resize(old + want);
        const size_t got = std::fread(bytes.data() + old, 1, want, fp.get());
        bytes.resize(old + got);
        if (bytes.size() > limit)
            throw too_big(regular ? "it grew while being read"
                                  : "it is not a regular file (a pipe or a device) and gives more bytes");
        if (got < want) break;
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
