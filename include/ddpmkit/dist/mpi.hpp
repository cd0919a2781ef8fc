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
// The sum is a ring all-reduce written here over MPI_Isend/MPI_Irecv (not MPI_Allreduce, whose
// order of additions the standard leaves to the library): a reduce-scatter, then an all-gather,
// each in size - 1 steps of one chunk. Each chunk's additions go round the ring in one fixed
// order, so the result is the same bits on every process and in every run with the same size,
// and each process sends and receives 2 (size - 1) / size of the data (README: the cost model).
// Started sums (start_sum) go round one after another, a step further at each progress_sums.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstdint>
#include <deque>
#include <stdexcept>
#include <string>
#include <utility>
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
    MpiGroup(const MpiGroup&) = delete;
    MpiGroup& operator=(const MpiGroup&) = delete;

    int rank() const override { return rank_; }
    int size() const override { return size_; }
    void all_reduce_sum(float* data, int64_t n) override { start(data, n, MPI_FLOAT), advance(true); }
    void all_reduce_sum(double* data, int64_t n) override { start(data, n, MPI_DOUBLE), advance(true); }
    void start_sum(float* data, int64_t n) override { start(data, n, MPI_FLOAT), advance(false); }
    void progress_sums() override { advance(false); }
    void wait_sums() override { advance(true); }
    void broadcast(void* data, int64_t bytes, int root) override {
        advance(true);
        for (int64_t done = 0; done < bytes; done += kMaxCount)  // MPI counts are int
            MPI_Bcast(static_cast<char*>(data) + done, count(std::min(kMaxCount, bytes - done)), MPI_BYTE, root, comm_);
    }
    void all_gather(const void* data, int64_t bytes, void* out) override {
        advance(true);
        MPI_Allgather(data, count(bytes), MPI_BYTE, out, count(bytes), MPI_BYTE, comm_);
    }

private:
    static constexpr int64_t kMaxCount = int64_t(1) << 30;

    static int count(int64_t n) {
        if (n < 0 || n > INT_MAX) throw std::length_error("dist::MpiGroup: " + std::to_string(n) + " items in one MPI call (at most 2^31 - 1)");
        return static_cast<int>(n);
    }

    // One sum going round the ring: steps 0 .. size - 2 reduce-scatter, then size - 1 steps
    // all-gather; `step` is the one whose messages are in flight (-1: none posted yet).
    struct Ring {
        char* data;
        int64_t n;
        MPI_Datatype type;
        int step = -1;
    };

    template <class T>
    void start(T* data, int64_t n, MPI_Datatype type) {
        if (size_ == 1) return;
        for (int64_t at = 0; at < n; at += kMaxCount)  // pieces small enough for int counts per chunk
            rings_.push_back(Ring{reinterpret_cast<char*>(data + at), std::min(kMaxCount, n - at), type});
    }

    // Moves the started sums on, in order: until all are done (wait) or until a step's
    // messages are still travelling.
    void advance(bool wait) {
        while (!rings_.empty()) {
            Ring& r = rings_.front();
            if (r.step >= 0) {
                if (wait) {
                    MPI_Waitall(2, requests_, MPI_STATUSES_IGNORE);
                } else {
                    int done = 0;
                    MPI_Testall(2, requests_, &done, MPI_STATUSES_IGNORE);
                    if (!done) return;
                }
                if (r.step < size_ - 1) add_incoming(r);
            }
            if (++r.step == 2 * (size_ - 1)) {
                rings_.pop_front();
                continue;
            }
            post(r);
        }
    }

    // The items [begin, end) of chunk c of the ring's data.
    std::pair<int64_t, int64_t> chunk(const Ring& r, int c) const { return share(r.n, (c % size_ + size_) % size_, size_); }
    int width(const Ring& r) const { return r.type == MPI_FLOAT ? int(sizeof(float)) : int(sizeof(double)); }

    // Reduce-scatter step s: send chunk rank - s on, receive chunk rank - s - 1 to add this
    // process's part to (chunk c starts at rank c and ends, complete, at rank c - 1). All-gather
    // step s: the complete chunk rank + 1 - s goes on, chunk rank - s comes in, copied.
    void post(const Ring& r) {
        const int right = (rank_ + 1) % size_, left = (rank_ + size_ - 1) % size_, w = width(r);
        const bool reducing = r.step < size_ - 1;
        const int s = reducing ? r.step : r.step - (size_ - 1);
        const auto [sb, se] = chunk(r, reducing ? rank_ - s : rank_ + 1 - s);
        const auto [rb, re] = chunk(r, rank_ - s - (reducing ? 1 : 0));
        char* into = r.data + rb * w;
        if (reducing) {
            incoming_.resize(static_cast<size_t>((re - rb) * w));
            into = incoming_.data();
        }
        MPI_Irecv(into, count(re - rb), r.type, left, 0, comm_, &requests_[0]);
        MPI_Isend(r.data + sb * w, count(se - sb), r.type, right, 0, comm_, &requests_[1]);
    }

    void add_incoming(const Ring& r) {
        const auto [rb, re] = chunk(r, rank_ - r.step - 1);
        if (r.type == MPI_FLOAT) add(reinterpret_cast<float*>(r.data) + rb, reinterpret_cast<const float*>(incoming_.data()), re - rb);
        else add(reinterpret_cast<double*>(r.data) + rb, reinterpret_cast<const double*>(incoming_.data()), re - rb);
    }
    template <class T>
    static void add(T* data, const T* in, int64_t n) {
        for (int64_t i = 0; i < n; ++i) data[i] = in[i] + data[i];
    }

    MPI_Comm comm_;
    int rank_ = 0, size_ = 1;
    std::deque<Ring> rings_;
    MPI_Request requests_[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
    std::vector<char> incoming_;
};

}  // namespace dist
DDPMKIT_END_NAMESPACE
