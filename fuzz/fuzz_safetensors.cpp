// libFuzzer target: safetensors::File::parse (io/safetensors.hpp, and through it the JSON
// parser) on any bytes. A bad file must end in safetensors::FormatError; a file it accepts
// must give every tensor back with get<T>() of its dtype, and write out and read back equal.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "ddpmkit/io/safetensors.hpp"

namespace st = ddpmkit::safetensors;

namespace {

template <class T>
void copy(const st::File& f, const std::string& name, st::Writer& w) {
    const ddpmkit::Tensor<T> t = f.get<T>(name);  // reads all of its bytes
    if (t.shape() != f.info(name).shape) std::abort();
    w.add(name, t);
}

template <class T>
bool same(const st::File& a, const st::File& b, const std::string& name) {
    const ddpmkit::Tensor<T> x = a.get<T>(name), y = b.get<T>(name);
    return x.shape() == y.shape() && std::memcmp(x.data(), y.data(), static_cast<size_t>(x.numel()) * sizeof(T)) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<uint8_t> bytes(data, data + size);
    try {
        st::File::parse(bytes, "fuzz.safetensors");
    } catch (const st::FormatError&) {
        return 0;
    }
    const st::File f = st::File::parse(bytes, "fuzz.safetensors");
    st::Writer w;
    for (const std::string& name : f.names()) {
        switch (f.info(name).dtype) {
        case st::DType::F32: copy<float>(f, name, w); break;
        case st::DType::F64: copy<double>(f, name, w); break;
        case st::DType::I64: copy<int64_t>(f, name, w); break;
        }
    }
    // The CRC-32s are the writer's own: parse verified them in both files.
    std::map<std::string, std::string> metadata = f.metadata();
    metadata.erase(st::kChecksumKey);
    for (const auto& kv : metadata) w.set_metadata(kv.first, kv.second);
    metadata.emplace("format", "pt");  // the Writer's default, where the file has none
    const st::File again = st::File::parse(w.serialize(), "again.safetensors");
    std::map<std::string, std::string> written = again.metadata();
    if (written.erase(st::kChecksumKey) != 1 || again.names() != f.names() || written != metadata) std::abort();
    for (const std::string& name : f.names()) {
        const st::TensorInfo &a = f.info(name), &b = again.info(name);
        if (a.dtype != b.dtype || a.end - a.begin != b.end - b.begin) std::abort();
        const bool equal = a.dtype == st::DType::F32   ? same<float>(f, again, name)
                           : a.dtype == st::DType::F64 ? same<double>(f, again, name)
                                                       : same<int64_t>(f, again, name);
        if (!equal) std::abort();
    }
    return 0;
}
