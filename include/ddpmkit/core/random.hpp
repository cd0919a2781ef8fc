// ddpmkit — a seeded, counter-based random generator (Philox4x32-10, Salmon et al. 2011).
//
// Element i of a draw is a pure function of (seed, counter + i / 4), so the numbers are
// the same whatever the thread count and whatever order the threads run in. The whole
// state is two integers: a checkpoint saves them and a resumed run continues the stream.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

#include "ddpmkit/config.hpp"
#include "ddpmkit/core/parallel.hpp"

DDPMKIT_BEGIN_NAMESPACE

namespace philox {
// One Philox4x32 block of 10 rounds: 128 random bits from a 128-bit counter and a 64-bit key.
inline std::array<uint32_t, 4> block(uint64_t counter, uint64_t stream, uint64_t key) {
    constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
    uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
    uint32_t c2 = static_cast<uint32_t>(stream), c3 = static_cast<uint32_t>(stream >> 32);
    uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
    for (int round = 0; round < 10; ++round) {
        const uint64_t p0 = static_cast<uint64_t>(M0) * c0, p1 = static_cast<uint64_t>(M1) * c2;
        const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0, n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
        c1 = static_cast<uint32_t>(p1);
        c3 = static_cast<uint32_t>(p0);
        c0 = n0;
        c2 = n2;
        k0 += W0;
        k1 += W1;
    }
    return {c0, c1, c2, c3};
}
// A uniform in (0, 1]: never 0, so log(u) is finite in Box-Muller.
inline double to_unit(uint32_t hi, uint32_t lo) {
    const uint64_t bits = (static_cast<uint64_t>(hi) << 21) ^ lo;  // 53 random bits
    return (static_cast<double>(bits & ((1ull << 53) - 1)) + 1.0) * (1.0 / 9007199254740992.0);
}
}  // namespace philox

class Rng {
public:
    explicit Rng(uint64_t seed = 0, uint64_t counter = 0) : seed_(seed), counter_(counter) {}

    uint64_t seed() const { return seed_; }
    // Blocks used so far: with the seed, the whole state of the generator.
    uint64_t counter() const { return counter_; }
    void set_state(uint64_t seed, uint64_t counter) {
        seed_ = seed;
        counter_ = counter;
    }

    // out[i] ~ U[lo, hi), i < n. Uses ceil(n / 2) blocks (two doubles per block).
    template <class T>
    void uniform(T* out, int64_t n, double lo = 0.0, double hi = 1.0) {
        uniform_part(out, n, 0, n, lo, hi);
    }
    // Elements [begin, end) of what uniform(out, total) would draw, into out[0, end - begin); the
    // generator moves past all `total` (as normal_part).
    template <class T>
    void uniform_part(T* out, int64_t total, int64_t begin, int64_t end, double lo = 0.0, double hi = 1.0) {
        const uint64_t base = take((total + 1) / 2);
        parallel_for(begin / 2, (end + 1) / 2, 4096, [&](int64_t b0, int64_t b1) {
            for (int64_t b = b0; b < b1; ++b) {
                const auto r = philox::block(base + static_cast<uint64_t>(b), 0, seed_);
                const double u[2] = {1.0 - philox::to_unit(r[0], r[1]), 1.0 - philox::to_unit(r[2], r[3])};
                for (int j = 0; j < 2; ++j)
                    if (2 * b + j >= begin && 2 * b + j < end) out[2 * b + j - begin] = static_cast<T>(lo + (hi - lo) * u[j]);
            }
        });
    }
    // out[i] ~ N(mean, std^2), by Box-Muller: one block gives two normals.
    template <class T>
    void normal(T* out, int64_t n, double mean = 0.0, double std = 1.0) {
        normal_part(out, n, 0, n, mean, std);
    }
    // Elements [begin, end) of what normal(out, total) would draw, into out[0, end - begin); the
    // generator moves past all `total`. Processes that each take their part of one draw hold,
    // together, exactly the draw of a single process (data parallelism, dist/group.hpp).
    template <class T>
    void normal_part(T* out, int64_t total, int64_t begin, int64_t end, double mean = 0.0, double std = 1.0) {
        const uint64_t base = take((total + 1) / 2);
        parallel_for(begin / 2, (end + 1) / 2, 4096, [&](int64_t b0, int64_t b1) {
            for (int64_t b = b0; b < b1; ++b) {
                const auto r = philox::block(base + static_cast<uint64_t>(b), 1, seed_);
                const double radius = std::sqrt(-2.0 * std::log(philox::to_unit(r[0], r[1])));
                const double angle = 6.283185307179586 * philox::to_unit(r[2], r[3]);
                const double z[2] = {radius * std::cos(angle), radius * std::sin(angle)};
                for (int j = 0; j < 2; ++j)
                    if (2 * b + j >= begin && 2 * b + j < end) out[2 * b + j - begin] = static_cast<T>(mean + std * z[j]);
            }
        });
    }
    // A uniform integer in [0, n), n > 0 (modulo bias below 2^-32 for n < 2^32).
    int64_t randint(int64_t n) {
        const auto r = philox::block(take(1), 2, seed_);
        const uint64_t bits = (static_cast<uint64_t>(r[0]) << 32) | r[1];
        return static_cast<int64_t>(bits % static_cast<uint64_t>(n));
    }

private:
    uint64_t take(int64_t blocks) {
        const uint64_t first = counter_;
        counter_ += static_cast<uint64_t>(blocks);
        return first;
    }
    uint64_t seed_;
    uint64_t counter_;
};

// The rows of a batch that the ops now running hold when the batch is split (over the processes
// of a data-parallel run, or into micro-batches): rows [first, first + count) of total. A draw
// made per row of the batch (a dropout mask) then takes those rows' part of the whole batch's
// draw, so the parts together draw exactly what one pass over the whole batch does.
struct BatchPart {
    int64_t first = 0, count = 0, total = 0;  // total 0: no part is set, every batch is whole
};
inline BatchPart& batch_part() {
    static thread_local BatchPart part;
    return part;
}

// While alive, the ops of this thread run on these rows of the batch (batch_part()).
class BatchPartGuard {
public:
    BatchPartGuard(int64_t first, int64_t count, int64_t total) : previous_(batch_part()) { batch_part() = {first, count, total}; }
    ~BatchPartGuard() { batch_part() = previous_; }
    BatchPartGuard(const BatchPartGuard&) = delete;
    BatchPartGuard& operator=(const BatchPartGuard&) = delete;

private:
    BatchPart previous_;
};

DDPMKIT_END_NAMESPACE
