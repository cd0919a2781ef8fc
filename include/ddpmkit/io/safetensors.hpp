// ddpmkit — safetensors: the tensor file format of Hugging Face and PyTorch, read and written.
//
// Layout (docs/architecture.md; github.com/huggingface/safetensors):
//   u64 little-endian header length N;
//   N bytes of UTF-8 JSON {"name":{"dtype":"F32","shape":[..],"data_offsets":[begin,end]},
//                          "__metadata__":{"key":"value",..}};
//   the data: little-endian, row-major; offsets relative to the data start, end exclusive.
// Supported dtypes: F32, F64, I64 (the element types of Tensor<T>). Writer::write is
// crash-safe and uses POSIX calls (open, fsync, rename).
//
// Integrity: Writer records the CRC-32 (zlib's) of each tensor's data in the metadata entry
// "ddpmkit.crc32", eight hex digits per tensor, comma-separated, in the order of the tensors'
// names (byte order, the order their data follows). Other readers see one more string of
// metadata; File verifies every tensor when the entry is there and names the one that differs.
#pragma once

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include "ddpmkit/config.hpp"
#include "ddpmkit/io/file.hpp"
#include "ddpmkit/core/shape.hpp"
#include "ddpmkit/core/tensor.hpp"
#include "ddpmkit/io/json.hpp"

// Tensor bytes are copied as they are in memory, and the file is little-endian.
#if defined(__BYTE_ORDER__)
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "ddpmkit safetensors: little-endian hosts only");
#endif

DDPMKIT_BEGIN_NAMESPACE

namespace safetensors {

enum class DType { F32, F64, I64 };

inline const char* dtype_name(DType d) {
    switch (d) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::I64: return "I64";
    }
    return "?";
}
inline size_t dtype_size(DType d) { return d == DType::F32 ? 4 : 8; }
// The dtype named s, if it is one of ours.
inline bool dtype_from_name(const std::string& s, DType& d) {
    for (DType c : {DType::F32, DType::F64, DType::I64})
        if (s == dtype_name(c)) {
            d = c;
            return true;
        }
    return false;
}
template <class T>
constexpr DType dtype_of() {
    if constexpr (std::is_same<T, float>::value) return DType::F32;
    else if constexpr (std::is_same<T, double>::value) return DType::F64;
    else {
        static_assert(std::is_same<T, int64_t>::value, "safetensors: T is float, double or int64_t");
        return DType::I64;
    }
}

// A header entry. begin and end are byte offsets into the data section (end exclusive).
struct TensorInfo {
    std::string name;
    DType dtype = DType::F32;
    Shape shape;
    uint64_t begin = 0, end = 0;
};

// A malformed file, or one that lacks what was asked of it. The message starts with the
// file name (or the origin given to File::parse) and says what is wrong and where.
class FormatError : public std::runtime_error {
public:
    explicit FormatError(const std::string& what) : std::runtime_error(what) {}
};

// The header-length limit of the reference implementation; guards against absurd allocations.
constexpr uint64_t kMaxHeaderSize = 100'000'000;

// The metadata entry that holds the tensors' CRC-32s (see the top of this file).
constexpr const char* kChecksumKey = "ddpmkit.crc32";
// Whether a Writer records it: omit writes exactly what other safetensors writers write.
enum class Checksums { record, omit };

namespace detail {

inline uint32_t crc32_of(const uint8_t* data, uint64_t n) {
    uLong crc = crc32(0L, Z_NULL, 0);
    constexpr uint64_t kStep = uint64_t(1) << 30;  // zlib takes 32-bit lengths
    for (uint64_t done = 0; done < n; done += kStep)
        crc = crc32(crc, data + done, static_cast<uInt>(std::min(kStep, n - done)));
    return static_cast<uint32_t>(crc);
}

inline std::string hex8(uint32_t v) {
    char buf[9];
    std::snprintf(buf, sizeof buf, "%08x", v);
    return buf;
}

}  // namespace detail

// A whole safetensors file in memory, validated on construction.
class File {
public:
    static File read(const std::string& path);
    // origin names the bytes in error messages (usually the path they came from).
    static File parse(std::vector<uint8_t> bytes, std::string origin);

    const std::string& origin() const { return origin_; }
    std::vector<std::string> names() const {  // sorted
        std::vector<std::string> out;
        for (const auto& kv : tensors_) out.push_back(kv.first);
        return out;
    }
    bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
    const TensorInfo& info(const std::string& name) const {
        const auto it = tensors_.find(name);
        if (it == tensors_.end()) fail("no tensor named \"" + name + "\"");
        return it->second;
    }
    // A copy of the tensor; its dtype must be T's exactly (no silent conversions).
    template <class T>
    Tensor<T> get(const std::string& name) const {
        const TensorInfo& ti = info(name);
        if (ti.dtype != dtype_of<T>())
            fail("tensor \"" + name + "\" has dtype " + dtype_name(ti.dtype) + ", but " + dtype_name(dtype_of<T>()) +
                 " was requested");
        Tensor<T> t(ti.shape);
        std::memcpy(t.data(), bytes_.data() + data_start_ + ti.begin, static_cast<size_t>(ti.end - ti.begin));
        return t;
    }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }

private:
    File() = default;
    [[noreturn]] void fail(const std::string& what) const { throw FormatError(origin_ + ": " + what); }
    void read_metadata(const json::Value& v);
    TensorInfo read_entry(const std::string& name, const json::Value& v) const;
    void check_layout(uint64_t data_size) const;
    void verify_checksums() const;

    std::vector<uint8_t> bytes_;
    std::string origin_;
    uint64_t data_start_ = 0;
    std::map<std::string, TensorInfo> tensors_;
    std::map<std::string, std::string> metadata_;
};

inline File File::read(const std::string& path) { return parse(read_whole_file(path), path); }

inline File File::parse(std::vector<uint8_t> bytes, std::string origin) {
    File f;
    f.bytes_ = std::move(bytes);
    f.origin_ = std::move(origin);
    const uint64_t size = f.bytes_.size();
    // Rule: a file holds at least the 8-byte header length.
    if (size < 8) f.fail("file has " + std::to_string(size) + " bytes, too short for the 8-byte header length");
    uint64_t n = 0;
    for (int k = 7; k >= 0; --k) n = n << 8 | f.bytes_[static_cast<size_t>(k)];  // u64 little-endian
    // Rule: N <= 100 MB, and the header fits in the file (n is small, so n + 8 cannot wrap).
    if (n > kMaxHeaderSize)
        f.fail("header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(kMaxHeaderSize) +
               " bytes (100 MB)");
    if (n + 8 > size)
        f.fail("header length " + std::to_string(n) + " + 8 exceeds the file size " + std::to_string(size));
    // Rule: the header is one JSON object (trailing spaces are the writers' padding).
    json::Value root;
    try {
        root = json::parse(reinterpret_cast<const char*>(f.bytes_.data()) + 8, static_cast<size_t>(n));
    } catch (const json::Error& e) {
        f.fail("header is not valid JSON: " + e.reason() + " at header byte " + std::to_string(e.position()) +
               " (file byte " + std::to_string(e.position() + 8) + ")");
    }
    if (!root.is_object()) f.fail("header is " + root.describe() + ", not a JSON object");
    f.data_start_ = 8 + n;
    // Duplicate names were rejected by the JSON parser (it refuses duplicate keys).
    for (const auto& kv : root.as_object()) {
        if (kv.first == "__metadata__") f.read_metadata(kv.second);
        else f.tensors_.emplace(kv.first, f.read_entry(kv.first, kv.second));
    }
    f.check_layout(size - f.data_start_);
    f.verify_checksums();
    return f;
}

// "__metadata__" maps strings to strings only.
inline void File::read_metadata(const json::Value& v) {
    if (!v.is_object()) fail("\"__metadata__\" is " + v.describe() + ", not an object");
    for (const auto& kv : v.as_object()) {
        if (!kv.second.is_string())
            fail("\"__metadata__\" value of \"" + kv.first + "\" is " + kv.second.describe() + ", not a string");
        metadata_[kv.first] = kv.second.as_string();
    }
}

inline TensorInfo File::read_entry(const std::string& name, const json::Value& v) const {
    const std::string where = "tensor \"" + name + "\": ";
    if (!v.is_object()) fail(where + "entry is " + v.describe() + ", not an object");
    auto field = [&](const char* key) -> const json::Value& {
        const json::Value* f = v.find(key);
        if (!f) fail(where + "missing field \"" + key + "\"");
        return *f;
    };
    TensorInfo ti;
    ti.name = name;

    const json::Value& dtype = field("dtype");
    if (!dtype.is_string()) fail(where + "field \"dtype\" is " + dtype.describe() + ", not a string");
    // Rule: unknown dtypes are rejected (the format has more, e.g. F16, BF16, I32: we hold none of them).
    if (!dtype_from_name(dtype.as_string(), ti.dtype))
        fail(where + "unknown dtype \"" + dtype.as_string() + "\" (supported: F32, F64, I64)");

    const json::Value& shape = field("shape");
    if (!shape.is_array()) fail(where + "field \"shape\" is " + shape.describe() + ", not an array");
    const json::Array& dims = shape.as_array();
    if (dims.size() > static_cast<size_t>(Shape::kMaxRank))
        fail(where + "shape has rank " + std::to_string(dims.size()) + ", above the supported " +
             std::to_string(Shape::kMaxRank));
    // Rule: the shape product must not overflow. Stricter: the product of the non-zero
    // extents is at most what a tensor may hold (Shape::kMaxNumel, 2^48), so that element
    // count, strides, byte size and offsets fit in int64_t whatever the order of the extents.
    const uint64_t limit = static_cast<uint64_t>(Shape::kMaxNumel);
    std::string dims_text;
    uint64_t nonzero_product = 1;
    bool has_zero = false, overflow = false;
    for (const json::Value& d : dims) {
        if (!d.is_integer())
            fail(where + "field \"shape\" holds " + d.describe() + ", not a non-negative integer");
        const uint64_t e = d.as_uint();
        dims_text += (dims_text.empty() ? "" : ",") + std::to_string(e);
        if (e == 0) has_zero = true;
        else if (nonzero_product > limit / e) overflow = true;
        else nonzero_product *= e;
    }
    if (overflow)
        fail(where + "shape [" + dims_text + "] has more than 2^48 elements (counting non-zero extents), the most a "
                     "tensor holds");
    std::vector<int64_t> extents;
    for (const json::Value& d : dims) extents.push_back(static_cast<int64_t>(d.as_uint()));
    ti.shape = Shape(extents);
    const uint64_t nbytes = (has_zero ? 0 : nonzero_product) * dtype_size(ti.dtype);

    const json::Value& offsets = field("data_offsets");
    if (!offsets.is_array() || offsets.as_array().size() != 2 || !offsets.as_array()[0].is_integer() ||
        !offsets.as_array()[1].is_integer())
        fail(where + "field \"data_offsets\" is not [begin, end] with two non-negative integers");
    ti.begin = offsets.as_array()[0].as_uint();
    ti.end = offsets.as_array()[1].as_uint();
    const std::string span = "[" + std::to_string(ti.begin) + "," + std::to_string(ti.end) + "]";
    // Rule: end >= begin, and end - begin == elements x dtype size.
    if (ti.end < ti.begin) fail(where + "data_offsets " + span + " end before they begin");
    if (ti.end - ti.begin != nbytes)
        fail(where + "data_offsets " + span + " hold " + std::to_string(ti.end - ti.begin) + " bytes, but shape " +
             ti.shape.str() + " of " + dtype_name(ti.dtype) + " needs " + std::to_string(nbytes));
    return ti;
}

// Rule: the tensors tile the data section exactly, no gaps or overlaps: in offset order each
// begins where the previous one ends, the first at 0, and the last ends at the end of the file.
inline void File::check_layout(uint64_t data_size) const {
    std::vector<const TensorInfo*> order;
    for (const auto& kv : tensors_) order.push_back(&kv.second);
    std::sort(order.begin(), order.end(), [](const TensorInfo* a, const TensorInfo* b) {
        return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    uint64_t pos = 0;
    std::string previous = "the data section starts";
    for (const TensorInfo* t : order) {
        if (t->begin != pos)
            fail("tensor \"" + t->name + "\" begins at data byte " + std::to_string(t->begin) + " but " + previous +
                 " at " + std::to_string(pos) + (t->begin > pos ? " (a gap)" : " (an overlap)"));
        pos = t->end;
        previous = "tensor \"" + t->name + "\" ends";
    }
    if (pos != data_size)
        fail("the tensors end at data byte " + std::to_string(pos) + " but the data section has " +
             std::to_string(data_size) + " bytes");
}

// Rule: when the metadata holds kChecksumKey, it has one CRC-32 per tensor, in name order, and
// each matches the tensor's data.
inline void File::verify_checksums() const {
    const auto it = metadata_.find(kChecksumKey);
    if (it == metadata_.end()) return;
    const std::string& list = it->second;
    if (list.size() != (tensors_.empty() ? 0 : 9 * tensors_.size() - 1))
        fail(std::string("metadata \"") + kChecksumKey + "\" holds " + std::to_string((list.size() + 1) / 9) +
             " checksums (" + std::to_string(list.size()) + " characters) for " + std::to_string(tensors_.size()) +
             " tensors: the header was altered after it was written");
    size_t pos = 0;
    for (const auto& kv : tensors_) {
        const std::string recorded = list.substr(pos, 8);
        if (pos + 8 < list.size() && list[pos + 8] != ',')
            fail(std::string("metadata \"") + kChecksumKey + "\" is not comma-separated 8-digit hex CRC-32s");
        pos += 9;
        const TensorInfo& t = kv.second;
        const std::string actual = detail::hex8(detail::crc32_of(bytes_.data() + data_start_ + t.begin, t.end - t.begin));
        if (recorded != actual)
            fail("tensor \"" + t.name + "\": its data does not match the CRC-32 recorded when the file was written (" +
                 recorded + " recorded, " + actual + " now): the file is damaged");
    }
}

namespace detail {

// Crash-safe replacement of a file (docs/architecture.md, formats). The bytes go to a temporary
// file in the target's folder (so that rename stays on one filesystem and is atomic),
// reach the disk (fsync), and only then replace the target by rename; a final fsync of
// the folder makes the rename itself durable. Until commit() the target is untouched, and
// an uncommitted temporary file is removed by the destructor, whatever went wrong.
class AtomicFile {
public:
    explicit AtomicFile(std::string path) : path_(std::move(path)) {
        static std::atomic<unsigned> counter{0};  // unique among the writers of this process
        tmp_ = path_ + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
        // O_EXCL: never reuse (and never truncate) a file that is already there.
        fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd_ < 0) fail("creating the temporary file", tmp_);
        created_ = true;
    }
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;
    ~AtomicFile() {
        if (fd_ >= 0) ::close(fd_);
        if (created_) ::unlink(tmp_.c_str());
    }

    void write(const void* data, size_t n) {
        const char* p = static_cast<const char*>(data);
        while (n > 0) {  // write() may write less than asked, or be interrupted
            const ssize_t k = ::write(fd_, p, n);
            if (k < 0 && errno == EINTR) continue;
            if (k < 0) fail("writing", tmp_);
            p += k;
            n -= static_cast<size_t>(k);
        }
    }

    void commit() {
        if (::fsync(fd_) != 0) fail("syncing", tmp_);
        const int fd = fd_;
        fd_ = -1;
        if (::close(fd) != 0) fail("closing", tmp_);
        if (::rename(tmp_.c_str(), path_.c_str()) != 0) fail("renaming", tmp_);
        created_ = false;
        const size_t slash = path_.find_last_of('/');
        const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path_.substr(0, slash);
        const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) fail("opening the folder", dir);
        const int rc = ::fsync(dfd);
        const int err = errno;
        ::close(dfd);
        // EINVAL: the filesystem cannot sync folders (some network mounts); nothing to do.
        if (rc != 0 && err != EINVAL) {
            errno = err;
            fail("syncing the folder", dir);
        }
    }

private:
    // Takes no built string so that errno is read before anything can allocate and change it.
    [[noreturn]] void fail(const char* step, const std::string& subject) const {
        const int err = errno;
        throw std::system_error(err, std::generic_category(),
                                "safetensors: cannot write " + path_ + ": " + step + " " + subject);
    }
    std::string path_, tmp_;
    int fd_ = -1;
    bool created_ = false;
};

}  // namespace detail

// Collects tensors and metadata, then writes them as one safetensors file.
class Writer {
public:
    explicit Writer(Checksums checksums = Checksums::record) : checksums_(checksums) {}

    // Copies the tensor's values now; later changes to the tensor are not written.
    template <class T>
    void add(const std::string& name, const Tensor<T>& t) {
        if (!t.defined()) throw std::invalid_argument("safetensors::Writer: tensor \"" + name + "\" is undefined");
        if (name == "__metadata__")
            throw std::invalid_argument("safetensors::Writer: \"__metadata__\" is reserved, not a tensor name");
        if (tensors_.count(name)) throw std::invalid_argument("safetensors::Writer: duplicate tensor name \"" + name + "\"");
        json::quote(name);  // throws now rather than at write time if the name is not UTF-8
        const auto* bytes = reinterpret_cast<const uint8_t*>(t.data());
        const size_t n = static_cast<size_t>(t.numel()) * sizeof(T);
        tensors_.emplace(name, Entry{dtype_of<T>(), t.shape(), std::vector<uint8_t>(bytes, bytes + n), detail::crc32_of(bytes, n)});
    }
    // Sets (or replaces) a metadata entry; "format" starts out as "pt". kChecksumKey is the
    // writer's own.
    void set_metadata(const std::string& key, const std::string& value) {
        if (key == kChecksumKey)
            throw std::invalid_argument(std::string("safetensors::Writer: metadata \"") + kChecksumKey + "\" is written by the writer itself");
        json::quote(key);  // as in add(): reject non-UTF-8 early
        json::quote(value);
        for (auto& kv : metadata_)
            if (kv.first == key) {
                kv.second = value;
                return;
            }
        metadata_.emplace_back(key, value);
    }

    std::vector<uint8_t> serialize() const {
        const std::string head = header();
        std::vector<uint8_t> out = length_prefix(head.size());
        size_t total = out.size() + head.size();
        for (const auto& kv : tensors_) total += kv.second.data.size();
        out.reserve(total);
        out.insert(out.end(), head.begin(), head.end());
        for (const auto& kv : tensors_) out.insert(out.end(), kv.second.data.begin(), kv.second.data.end());
        return out;
    }

    // Crash-safe: an existing file at path is replaced whole or not at all (see AtomicFile).
    // Throws std::system_error naming the path and the errno text.
    void write(const std::string& path) const {
        const std::string head = header();
        detail::AtomicFile file(path);
        const std::vector<uint8_t> prefix = length_prefix(head.size());
        file.write(prefix.data(), prefix.size());
        file.write(head.data(), head.size());
        for (const auto& kv : tensors_) file.write(kv.second.data.data(), kv.second.data.size());
        file.commit();
    }

private:
    struct Entry {
        DType dtype;
        Shape shape;
        std::vector<uint8_t> data;  // little-endian, row-major
        uint32_t crc;               // CRC-32 of data
    };

    static std::vector<uint8_t> length_prefix(uint64_t n) {  // u64 little-endian
        std::vector<uint8_t> out(8);
        for (size_t k = 0; k < 8; ++k) out[k] = static_cast<uint8_t>(n >> (8 * k));
        return out;
    }

    // The JSON header, metadata first (the checksums last), then the tensors by name, the order
    // their data follows.
    std::string header() const {
        std::string h = "{\"__metadata__\":{", checksums;
        for (size_t i = 0; i < metadata_.size(); ++i)
            h += (i ? "," : "") + json::quote(metadata_[i].first) + ":" + json::quote(metadata_[i].second);
        if (checksums_ == Checksums::record) {
            for (const auto& kv : tensors_) checksums += (checksums.empty() ? "" : ",") + detail::hex8(kv.second.crc);
            h += "," + json::quote(kChecksumKey) + ":" + json::quote(checksums);
        }
        h += "}";
        uint64_t offset = 0;
        for (const auto& kv : tensors_) {
            const Entry& e = kv.second;
            std::string dims;
            for (int64_t d : e.shape) dims += (dims.empty() ? "" : ",") + std::to_string(d);
            h += "," + json::quote(kv.first) + ":{\"dtype\":\"" + dtype_name(e.dtype) + "\",\"shape\":[" + dims +
                 "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + e.data.size()) + "]}";
            offset += e.data.size();
        }
        h += "}";
        // Pad with spaces to a multiple of 8, so that the data starts 8-byte aligned.
        h.append((8 - h.size() % 8) % 8, ' ');
        return h;
    }

    Checksums checksums_;
    std::map<std::string, Entry> tensors_;  // sorted by name: the order of the data
    std::vector<std::pair<std::string, std::string>> metadata_{{"format", "pt"}};  // in insertion order
};

}  // namespace safetensors

DDPMKIT_END_NAMESPACE
