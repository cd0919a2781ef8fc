// ddpmkit — tensor storage: 64-byte aligned blocks, large ones recycled.
//
// A training or sampling step allocates the same large activations and gradients again
// and again. Memory fresh from the system costs a page fault per 4 KB and the kernel's
// zeroing, and glibc returns freed memory to the system when enough of it gathers at the top
// of its heap, so without a cache every step pays those costs again (about a tenth of a
// U-Net step). Blocks of at least kMinCachedBytes are therefore kept when freed, by size
// rounded to 4 KB, and handed out again for the same rounded size, up to a limit on the
// bytes kept (1 GiB by default). Under AddressSanitizer nothing is cached, so that a use
// after free is still caught.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/parallel.hpp"
#include "ddpmkit/core/shape.hpp"

DDPMKIT_BEGIN_NAMESPACE

constexpr size_t kAlignment = 64;
constexpr int64_t kParallelZeroBytes = int64_t(1) << 18;  // blocks zeroed on the threads take at least this many bytes each

class BlockCache {
public:
    static constexpr size_t kMinCachedBytes = size_t(64) << 10;

    // The process's cache (never destroyed: tensors may be freed during static destruction).
    static BlockCache& instance() {
        static BlockCache* cache = new BlockCache;
        return *cache;
    }

    // Bytes a request of `bytes` really takes: whole cache lines, whole pages when cached.
    static size_t rounded(size_t bytes) {
        const size_t lines = (std::max<size_t>(bytes, 1) + kAlignment - 1) / kAlignment * kAlignment;
        return lines < kMinCachedBytes ? lines : (lines + 4095) / 4096 * 4096;
    }

    // A block of at least `bytes`, 64-byte aligned; throws std::bad_alloc.
    void* allocate(size_t bytes) {
        const size_t size = rounded(bytes);
        if (caching(size)) {
            std::lock_guard<std::mutex> lock(mutex_);
            const auto it = free_.find(size);
            if (it != free_.end()) {
                void* p = it->second;
                free_.erase(it);
                cached_bytes_ -= size;
                return p;
            }
        }
        void* p = std::aligned_alloc(kAlignment, size);
        if (!p) throw std::bad_alloc();
        return p;
    }
    // Takes back a block from allocate(bytes).
    void release(void* p, size_t bytes) {
        const size_t size = rounded(bytes);
        if (caching(size)) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (cached_bytes_ + size <= limit_) {
                free_.emplace(size, p);
                cached_bytes_ += size;
                return;
            }
        }
        std::free(p);
    }

    // Returns every cached block to the system.
    void clear() {
        std::lock_guard<std::mutex> lock(mutex_);
        for (const auto& [size, p] : free_) std::free(p);
        free_.clear();
        cached_bytes_ = 0;
    }
    // At most `bytes` are kept for reuse (0: none); blocks over the new limit are freed.
    void set_limit(size_t bytes) {
        std::lock_guard<std::mutex> lock(mutex_);
        limit_ = bytes;
        while (cached_bytes_ > limit_) {
            const auto it = std::prev(free_.end());  // the largest first
            cached_bytes_ -= it->first;
            std::free(it->second);
            free_.erase(it);
        }
    }
    size_t cached_bytes() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return cached_bytes_;
    }

private:
    BlockCache() = default;
    static bool caching(size_t size) {
#if defined(__SANITIZE_ADDRESS__)
        (void)size;
        return false;
#else
        return size >= kMinCachedBytes;
#endif
    }

    mutable std::mutex mutex_;
    std::multimap<size_t, void*> free_;
    size_t cached_bytes_ = 0;
    size_t limit_ = size_t(1) << 30;
};

// Storage for n elements of T, 64-byte aligned; zero-filled when `zero`.
template <class T>
std::shared_ptr<T> aligned_storage_of(int64_t n, bool zero = true) {
    if (n < 0 || n > Shape::kMaxNumel) throw std::length_error("storage of " + std::to_string(n) + " elements");
    const size_t bytes = static_cast<size_t>(n) * sizeof(T);
    T* p = static_cast<T*>(BlockCache::instance().allocate(bytes));
    if (zero)  // on the threads: a serial memset of a large gradient held the other threads up
        parallel_for(0, static_cast<int64_t>(bytes), kParallelZeroBytes, [p](int64_t b, int64_t e) {
            std::memset(reinterpret_cast<char*>(p) + b, 0, static_cast<size_t>(e - b));
        });
    return std::shared_ptr<T>(p, [bytes](T* q) { BlockCache::instance().release(q, bytes); });
}

DDPMKIT_END_NAMESPACE
