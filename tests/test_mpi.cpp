// Data parallelism over MPI (dist/mpi.hpp), built with DDPMKIT_MPI and run by ctest as
// `mpirun -np 2 ddpmkit_mpi_tests`: every process runs every case, and a case passes when it
// passes on all of them.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <cstring>
#include <vector>

#include "ddpmkit/dist/mpi.hpp"
#include "ddpmkit/eval/classifier.hpp"
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

TEST_CASE("mpi: started sums advance while the caller works and end as the blocking sums") {
    const int rank = world().rank();
    const std::vector<int64_t> lengths = {0, 1, 5, 1003, 40000};
    std::vector<std::vector<float>> started, blocking;
    for (int64_t n : lengths) {
        std::vector<float> v(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) v[size_t(i)] = 0.1f * float((i * 7 + rank) % 11) + 1e-7f * float(rank);
        started.push_back(v);
        blocking.push_back(v);
    }
    for (size_t k = 0; k < lengths.size(); ++k) {
        world().start_sum(started[k].data(), lengths[k]);
        world().progress_sums();
    }
    double between = rank + 1.0;  // a blocking sum while sums are under way comes after them
    world().all_reduce_sum(&between, 1);
    CHECK(between == world().size() * (world().size() + 1) / 2.0);
    world().wait_sums();
    for (size_t k = 0; k < lengths.size(); ++k) {
        world().all_reduce_sum(blocking[k].data(), lengths[k]);
        CAPTURE(lengths[k]);
        CHECK(started[k] == blocking[k]);  // the same ring, the same bits
    }
}

namespace {

// The world, counting the sums started and calling a function at the first.
struct WatchedGroup final : dist::Group {
    std::function<void()> at_first_start;
    int starts = 0;
    int rank() const override { return world().rank(); }
    int size() const override { return world().size(); }
    void all_reduce_sum(float* data, int64_t n) override { world().all_reduce_sum(data, n); }
    void all_reduce_sum(double* data, int64_t n) override { world().all_reduce_sum(data, n); }
    void start_sum(float* data, int64_t n) override {
        if (starts++ == 0) at_first_start();
        world().start_sum(data, n);
    }
    void progress_sums() override { world().progress_sums(); }
    void wait_sums() override { world().wait_sums(); }
    void broadcast(void* data, int64_t bytes, int root) override { world().broadcast(data, bytes, root); }
    void all_gather(const void* data, int64_t bytes, void* out) override { world().all_gather(data, bytes, out); }
};

}  // namespace

TEST_CASE("mpi: GradientSum sums the gradients in buckets that start during the backward pass") {
    nn::UNetConfig c;
    c.ch = 8, c.mult = {1, 2}, c.blocks = 1, c.attn = {4}, c.groups = 4, c.res = 8;
    nn::UNet<float> model(c, 3);
    const std::vector<VarF*> params = model.parameters();
    Rng rng(40 + uint64_t(world().rank()));  // each process its own examples
    const VarF x(TensorF::randn({2, 1, 8, 8}, rng));
    const Tensor<int64_t> t({2}, std::vector<int64_t>{3, 70});
    auto loss = [&] { const VarF out = model.forward(x, t); return mean(out * out); };

    // Each process's own gradients, gathered: the expected sum, added in rank order in double.
    model.zero_grad();
    loss().backward();
    std::vector<double> expected;
    for (VarF* p : params) {
        std::vector<float> all(static_cast<size_t>(p->numel() * world().size()));
        world().all_gather(p->grad().data(), p->numel() * int64_t(sizeof(float)), all.data());
        for (int64_t i = 0; i < p->numel(); ++i) {
            double s = 0.0;
            for (int r = 0; r < world().size(); ++r) s += all[size_t(r * p->numel() + i)];
            expected.push_back(s);
        }
    }

    for (int64_t bucket_bytes : {int64_t(0), int64_t(1024), int64_t(1) << 20}) {
        CAPTURE(bucket_bytes);
        WatchedGroup group;
        bool first_gradient_pending = false;  // the model's first parameter is the backward pass's last
        group.at_first_start = [&] {
            const TensorF& g = params[0]->grad();
            first_gradient_pending = std::all_of(g.data(), g.data() + g.numel(), [](float v) { return v == 0.0f; });
        };
        train::GradientSum sum(group, params, bucket_bytes);
        model.zero_grad();
        sum.backward(loss());
        CHECK(group.starts == sum.buckets());  // every bucket was complete by the end of the backward pass
        if (sum.buckets() > 1) CHECK(first_gradient_pending);  // ... and the first started long before
        CHECK(sum.finish() >= 0.0);
        double worst = 0.0, largest = 0.0;  // |error| and |gradient| at most
        bool two_exact = true;  // two floats add the same either way: on 2 processes the sum is exact
        size_t at = 0;
        for (VarF* p : params)
            for (int64_t i = 0; i < p->numel(); ++i, ++at) {
                const double got = p->grad().data()[i], want = expected[at];
                worst = std::max(worst, std::abs(got - want));
                largest = std::max(largest, std::abs(want));
                two_exact = two_exact && got == static_cast<double>(static_cast<float>(want));
            }
        CHECK(worst < 1e-6 * largest);
        if (world().size() == 2) CHECK(two_exact);
        std::vector<TensorF> grads;
        for (VarF* p : params) grads.push_back(p->grad());
        CHECK(same_on_every_process(grads));
    }
    CHECK(train::GradientSum(world(), params, 1024).buckets() > 10);
}

TEST_CASE("mpi: classifier features (ddpmkit fd) split over the processes are one process's, bit for bit") {
    const eval::Classifier model(5);  // untrained: the features of any weights must agree
    Rng rng(9);
    const TensorF images = TensorF::rand({700, 1, 28, 28}, rng, -1, 1);
    const TensorF alone = eval::classifier_features(model, images, 256);
    for (int64_t n : {700, 100}) {  // 3 batches; 1 batch, for one process only
        CAPTURE(n);
        const TensorF split = eval::classifier_features(model, images.slice(0, n), 256, world());
        REQUIRE(split.numel() == n * eval::Classifier::kFeatures);
        CHECK(std::memcmp(split.data(), alone.data(), sizeof(float) * static_cast<size_t>(split.numel())) == 0);
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
    // Small buckets, summed during the backward pass: on 2 processes each element's sum is one
    // addition of two floats, so the buckets change no bit; on more, only the order of additions.
    shared.micro_batches = 1;
    shared.bucket_bytes = 1024;
    const test::TinyRun bucketed = test::train_tiny_unet(shared, 3);
    if (world().size() == 2) CHECK(test::distance(together, bucketed).weights == 0.0);
    CHECK(test::distance(alone, bucketed).weights < test::kWeightTolerance);
    CHECK(same_on_every_process(bucketed.params));
    // With dropout: each process takes its rows' part of the whole batch's masks.
    const test::RunDistance dd = test::distance(test::train_tiny_unet(one, 3, 0.3), test::train_tiny_unet(shared, 3, 0.3));
    CHECK(dd.weights < test::kWeightTolerance);
    CHECK(dd.grad_norms < test::kGradNormTolerance);
}

int main(int argc, char** argv) {
    dist::Mpi mpi(argc, argv);
    doctest::Context context(argc, argv);
    int failed = context.run() != 0 ? 1 : 0;
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return failed;
}
