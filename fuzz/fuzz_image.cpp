// libFuzzer target: read_image (io/image.hpp: PNG checked, then decoded by stb_image; PGM and
// PPM) on any bytes, written to a temporary file first (read_image takes a path). The first
// byte picks 1 or 3 channels. An unreadable picture must end in std::runtime_error; a readable
// one is [1, C, H, W] in [-1, 1], at most kMaxPictureSide pixels a side.
// stb_image itself is compiled in stb_image.cpp, under ASan but not UBSan (see there).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include <unistd.h>

#include "ddpmkit/io/image.hpp"

namespace {

const std::string& temp_path() {
    static const std::string path = [] {
        const char* dir = std::getenv("TMPDIR");
        std::string p = std::string(dir && *dir ? dir : "/tmp") + "/ddpmkit-fuzz-image-XXXXXX";
        const int fd = ::mkstemp(&p[0]);
        if (fd < 0) std::abort();
        ::close(fd);
        return p;
    }();
    // Registered after path is made, so that it runs before path is destroyed.
    static const bool removed_at_exit = std::atexit([] { ::unlink(temp_path().c_str()); }) == 0;
    (void)removed_at_exit;
    return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const int channels = data[0] % 2 ? 3 : 1;
    std::FILE* f = std::fopen(temp_path().c_str(), "wb");
    if (!f) std::abort();
    if (std::fwrite(data + 1, 1, size - 1, f) != size - 1) std::abort();
    std::fclose(f);
    try {
        const ddpmkit::Tensor<float> t = ddpmkit::read_image(temp_path(), channels);
        if (t.dim() != 4 || t.size(0) != 1 || t.size(1) != channels || t.size(2) > ddpmkit::kMaxPictureSide ||
            t.size(3) > ddpmkit::kMaxPictureSide)
            std::abort();
        for (int64_t i = 0; i < t.numel(); ++i)
            if (!(t.data()[i] >= -1.0f && t.data()[i] <= 1.0f)) std::abort();
    } catch (const std::runtime_error&) {
    }
    return 0;
}
