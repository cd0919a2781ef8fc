// Data parallelism over MPI (dist/mpi.hpp), built with DDPMKIT_MPI and run by ctest as
// `mpirun -np 2 ddpmkit_mpi_tests`: every process runs every case, and a case passes when it
// passes on all of them.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "ddpmkit/dist/mpi.hpp"
#include "tiny_training.hpp"

using namespace ddpmkit;

namespace {

dist::MpiGroup& world() {
    static dist::MpiGroup group;
    return group;
}

// Every process's copy of these bytes equals rank 0's.
bool same_on_every_process(const void* data, int64_t bytes) {
    std::vector<char> all(static_cast<size_t>(bytes * world().size()));
    world().all_gather(data, bytes, all.data());
    for (int r = 1; r < world().size(); ++r)
        if (std::memcmp(all.data(), all.data() + r * bytes, static_cast<size_t>(bytes)) != 0) return false;
    return true;
}

bool same_on_every_process(const std::vector<TensorF>& params) {
    bool same = true;
    for (const TensorF& p : params) same = same_on_every_process(p.data(), p.numel() * int64_t(sizeof(float))) && same;
    return same;
}

}  // namespace

TEST_CASE("mpi: the ring sum is exact on integers, the same bits everywhere, whatever the length") {
    const int rank = world().rank(), size = world().size();
    REQUIRE(size >= 2);
    for (int64_t n : {0, 1, 2, 3, 1000, 1003}) {
        CAPTURE(n);
        std::vector<double> d(static_cast<size_t>(n));
        std::vector<float> f(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) {
            d[size_t(i)] = double(i) * (rank + 1);
            f[size_t(i)] = 0.1f * float(i % 7) + 1e-7f * float(rank);  // sums that depend on the order
        }
        world().all_reduce_sum(d.data(), n);
        world().all_reduce_sum(f.data(), n);
        bool exact = true;
        for (int64_t i = 0; i < n; ++i) exact = exact && d[size_t(i)] == double(i) * size * (size + 1) / 2;
        CHECK(exact);
        CHECK(same_on_every_process(f.data(), n * int64_t(sizeof(float))));
    }
}

TEST_CASE("mpi: broadcast_bytes and all_gather in rank order") {
    const std::vector<uint8_t> root_bytes = {1, 2, 3, 250};
    const std::vector<uint8_t> got = dist::broadcast_bytes(world(), world().is_root() ? root_bytes : std::vector<uint8_t>{9});
    CHECK(got == root_bytes);
    const int64_t mine[2] = {world().rank(), 10 * world().rank()};
    std::vector<int64_t> all(static_cast<size_t>(2 * world().size()));
    world().all_gather(mine, sizeof mine, all.data());
    for (int r = 0; r < world().size(); ++r) {
        CHECK(all[size_t(2 * r)] == r);
        CHECK(all[size_t(2 * r + 1)] == 10 * r);
    }
}

TEST_CASE("mpi: N processes with batch B take one process's steps, bit-identical everywhere and run to run") {
    train::TrainerOptions one;
    one.group = &dist::solo();
    const test::TinyRun alone = test::train_tiny_unet(one, 3);
    train::TrainerOptions shared;
    shared.group = &world();
    const test::TinyRun together = test::train_tiny_unet(shared, 3);
    // The same examples, timesteps and noise; the gradient's float sums only in another order.
    const test::RunDistance d = test::distance(alone, together);
    CHECK(d.weights < test::kWeightTolerance);
    CHECK(d.grad_norms < test::kGradNormTolerance);
    CHECK(d.weights > 0.0);  // equal bits would mean each process took the whole batch
    CHECK(same_on_every_process(together.params));
    const test::TinyRun again = test::train_tiny_unet(shared, 3);
    CHECK(test::distance(together, again).weights == 0.0);
    CHECK(test::distance(together, again).grad_norms == 0.0);
    // With micro-batches too.
    shared.micro_batches = 2;
    const test::RunDistance dm = test::distance(alone, test::train_tiny_unet(shared, 3));
    CHECK(dm.weights < test::kWeightTolerance);
    CHECK(dm.grad_norms < test::kGradNormTolerance);
}

int main(int argc, char** argv) {
    dist::Mpi mpi(argc, argv);
    doctest::Context context(argc, argv);
    int failed = context.run() != 0 ? 1 : 0;
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return failed;
}
