// ddpmkit — data parallelism over MPI (build option DDPMKIT_MPI; Debian: libopenmpi-dev).
//
// Not included by ddpmkit.hpp: a program that wants it includes this header and links MPI (the
// CMake target ddpmkit::mpi carries both). Mpi starts and ends MPI for the program; MpiGroup is
// a dist::Group over a communicator, MPI_COMM_WORLD by default:
//
//   ddpmkit::dist::Mpi mpi(argc, argv);
//   ddpmkit::dist::MpiGroup world;
//   options.group = &world;  // train::TrainerOptions: each process takes its share of the batch
//
// The sum is a ring all-reduce written here over MPI_Sendrecv (not MPI_Allreduce, whose order
// of additions the standard leaves to the library): a reduce-scatter, then an all-gather, each
// in size - 1 steps of one chunk. Each chunk's additions go round the ring in one fixed order,
// so the result is the same bits on every process and in every run with the same size, and each
// process sends and receives 2 (size - 1) / size of the data (README: the cost model).
#pragma once

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "ddpmkit/config.hpp"
#include "ddpmkit/dist/group.hpp"

DDPMKIT_BEGIN_NAMESPACE
namespace dist {

// MPI for the life of the program: MPI_Init_thread (funneled: only the thread that made MPI calls
// them; OpenMP's threads never do) and MPI_Finalize, unless MPI was started already.
class Mpi {
public:
    Mpi(int& argc, char**& argv) {
        int started = 0;
        MPI_Initialized(&started);
        if (started) return;
        int provided = 0;
        MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
        owner_ = true;
        if (provided < MPI_THREAD_FUNNELED) throw std::runtime_error("MPI gives no funneled thread support (OpenMP needs it)");
    }
    ~Mpi() {
        if (owner_) MPI_Finalize();
    }
    Mpi(const Mpi&) = delete;
    Mpi& operator=(const Mpi&) = delete;

    // Ends every process of MPI_COMM_WORLD with this exit code: what a process that fails alone
    // must do, since the others would wait for it in the next collective forever.
    [[noreturn]] static void abort(int code) {
        MPI_Abort(MPI_COMM_WORLD, code);
        std::abort();  // not reached
    }

private:
    bool owner_ = false;
};

class MpiGroup final : public Group {
public:
    explicit MpiGroup(MPI_Comm comm = MPI_COMM_WORLD) : comm_(comm) {
        MPI_Comm_rank(comm_, &rank_);
        MPI_Comm_size(comm_, &size_);
    }
    int rank() const override { return rank_; }
    int size() const override { return size_; }
    void all_reduce_sum(float* data, int64_t n) override { ring_all_reduce(data, n, MPI_FLOAT); }
    void all_reduce_sum(double* data, int64_t n) override { ring_all_reduce(data, n, MPI_DOUBLE); }
    void broadcast(void* data, int64_t bytes, int root) override {
        for (int64_t done = 0; done < bytes; done += kMaxCount)  // MPI counts are int
            MPI_Bcast(static_cast<char*>(data) + done, count(std::min(kMaxCount, bytes - done)), MPI_BYTE, root, comm_);
    }
    void all_gather(const void* data, int64_t bytes, void* out) override {
        MPI_Allgather(data, count(bytes), MPI_BYTE, out, count(bytes), MPI_BYTE, comm_);
    }

private:
    static constexpr int64_t kMaxCount = int64_t(1) << 30;

    static int count(int64_t n) {
        if (n < 0 || n > INT_MAX) throw std::length_error("dist::MpiGroup: " + std::to_string(n) + " items in one MPI call (at most 2^31 - 1)");
        return static_cast<int>(n);
    }

    template <class T>
    void ring_all_reduce(T* data, int64_t n, MPI_Datatype type) {
        if (size_ == 1 || n == 0) return;
        // Pieces small enough for int counts per chunk; each piece goes round the ring whole.
        const int64_t piece = kMaxCount;
        for (int64_t at = 0; at < n; at += piece) ring_piece(data + at, std::min(piece, n - at), type);
    }

    template <class T>
    void ring_piece(T* data, int64_t n, MPI_Datatype type) {
        const int right = (rank_ + 1) % size_, left = (rank_ + size_ - 1) % size_;
        auto chunk = [&](int c) { return share(n, (c % size_ + size_) % size_, size_); };
        incoming_.resize(static_cast<size_t>((n + size_ - 1) / size_) * sizeof(T));
        T* in = reinterpret_cast<T*>(incoming_.data());
        // Reduce-scatter: in step s, send chunk rank - s on, receive chunk rank - s - 1 and add
        // this process's part; chunk c starts at rank c and ends, complete, at rank c - 1.
        for (int s = 0; s < size_ - 1; ++s) {
            const auto [sb, se] = chunk(rank_ - s);
            const auto [rb, re] = chunk(rank_ - s - 1);
            MPI_Sendrecv(data + sb, count(se - sb), type, right, 0, in, count(re - rb), type, left, 0, comm_, MPI_STATUS_IGNORE);
            for (int64_t i = rb; i < re; ++i) data[i] = in[i - rb] + data[i];
        }
        // All-gather: the complete chunks travel round the ring once more, copied.
        for (int s = 0; s < size_ - 1; ++s) {
            const auto [sb, se] = chunk(rank_ + 1 - s);
            const auto [rb, re] = chunk(rank_ - s);
            MPI_Sendrecv(data + sb, count(se - sb), type, right, 1, data + rb, count(re - rb), type, left, 1, comm_, MPI_STATUS_IGNORE);
        }
    }

    MPI_Comm comm_;
    int rank_ = 0, size_ = 1;
    std::vector<char> incoming_;
};

}  // namespace dist
DDPMKIT_END_NAMESPACE
