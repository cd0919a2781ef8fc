// ddpmkit — the processes of a data-parallel run, as the trainer sees them.
//
// A Group is a rank among size processes and the few collectives data parallelism needs:
// a sum over the processes (the gradients), a broadcast (the weights and the resume state
// from rank 0) and a gather in rank order (samples, so that the output does not depend on the
// process count). One process needs no library: solo() is the group of one. ddpmkit/dist/mpi.hpp
// gives the MPI group (build option DDPMKIT_MPI), and user code can bring its own.
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ddpmkit/config.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace dist {

class Group {
public:
    virtual ~Group() = default;
    virtual int rank() const = 0;
    virtual int size() const = 0;
    // In place: the element-wise sum over the processes, the same bits on every process and in
    // every run with the same size (the order of the additions depends only on the ranks).
    virtual void all_reduce_sum(float* data, int64_t n) = 0;
    virtual void all_reduce_sum(double* data, int64_t n) = 0;
    // The sum in place as well, overlapping with other work: start_sum begins it (data must not
    // be touched until wait_sums returns), progress_sums lets the started sums advance (call it
    // often meanwhile), wait_sums completes them all. Every process starts the same sums in the
    // same order and waits for them before another collective. By default the sum is done at once.
    virtual void start_sum(float* data, int64_t n) { all_reduce_sum(data, n); }
    virtual void progress_sums() {}
    virtual void wait_sums() {}
    // root's `bytes` bytes at data, copied to data on every process.
    virtual void broadcast(void* data, int64_t bytes, int root) = 0;
    // Every process's `bytes` bytes, in rank order, into out (size() x bytes) on every process.
    virtual void all_gather(const void* data, int64_t bytes, void* out) = 0;

    bool is_root() const { return rank() == 0; }
};

// The group of one process: every collective is a copy or nothing.
class Solo final : public Group {
public:
    int rank() const override { return 0; }
    int size() const override { return 1; }
    void all_reduce_sum(float*, int64_t) override {}
    void all_reduce_sum(double*, int64_t) override {}
    void broadcast(void*, int64_t, int root) override {
        if (root != 0) throw std::invalid_argument("dist::Solo: broadcast from rank " + std::to_string(root) + " of 1 process");
    }
    void all_gather(const void* data, int64_t bytes, void* out) override {
        if (bytes > 0) std::memcpy(out, data, static_cast<size_t>(bytes));
    }
};

inline Group& solo() {
    static Solo group;
    return group;
}

// root's bytes on every process (the others' `bytes` are ignored): the size, then the bytes.
inline std::vector<uint8_t> broadcast_bytes(Group& group, std::vector<uint8_t> bytes, int root = 0) {
    int64_t n = static_cast<int64_t>(bytes.size());
    group.broadcast(&n, sizeof n, root);
    bytes.resize(static_cast<size_t>(n));
    group.broadcast(bytes.data(), n, root);
    return bytes;
}

// The items [begin, end) of n that `rank` of `size` processes takes: contiguous, in rank
// order, sizes that differ by at most one, together all n exactly once.
inline std::pair<int64_t, int64_t> share(int64_t n, int rank, int size) {
    return {n * rank / size, n * (rank + 1) / size};
}

}  // namespace dist
DDPMKIT_END_NAMESPACE
