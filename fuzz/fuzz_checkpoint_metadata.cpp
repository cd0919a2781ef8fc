// libFuzzer target: how a checkpoint's metadata becomes a training configuration
// (train::TrainConfig::from_metadata, and nn::UNetConfig::from_metadata inside it). The
// fuzzed bytes are the metadata as lines "key=value" (what a safetensors header's
// "__metadata__" holds, without the JSON around it). Bad metadata must end in
// std::invalid_argument; accepted metadata must survive a round trip through to_metadata.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>

#include "ddpmkit/train/checkpoint.hpp"

namespace train = ddpmkit::train;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::map<std::string, std::string> metadata;
    const std::string text(reinterpret_cast<const char*>(data), size);
    for (size_t begin = 0; begin < text.size();) {
        size_t end = text.find('\n', begin);
        if (end == std::string::npos) end = text.size();
        const std::string line = text.substr(begin, end - begin);
        const size_t eq = line.find('=');
        if (eq != std::string::npos) metadata[line.substr(0, eq)] = line.substr(eq + 1);
        begin = end + 1;
    }
    train::TrainConfig c;
    try {
        c = train::TrainConfig::from_metadata(metadata);
    } catch (const std::invalid_argument&) {
        return 0;
    }
    // Written numbers are rounded (std::to_string): the second round trip must be exact.
    const std::map<std::string, std::string> once = train::TrainConfig::from_metadata(c.to_metadata()).to_metadata();
    if (train::TrainConfig::from_metadata(once).to_metadata() != once) std::abort();
    return 0;
}
