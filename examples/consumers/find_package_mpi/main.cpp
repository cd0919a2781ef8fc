// A consumer of ddpmkit::mpi: a data-parallel loop of its own. Each process fits w to its own
// examples; the gradients are summed over the processes (train::GradientSum) before each
// identical step, so every process ends with the same w: the least-squares fit to all examples.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include <ddpmkit/ddpmkit.hpp>
#include <ddpmkit/dist/mpi.hpp>

using namespace ddpmkit;

int main(int argc, char** argv) {
    dist::Mpi mpi(argc, argv);
    dist::MpiGroup world;
    // Process r holds y = 2 + r for every x: the fit over all of them is the mean, 2 + (size - 1) / 2.
    VarF w(TensorF(Shape{1}, 0.0f), true);
    const VarF y(TensorF(Shape{8}, 2.0f + static_cast<float>(world.rank())));
    train::GradientSum sum(world, {&w}, 0);
    for (int step = 0; step < 200; ++step) {
        w.zero_grad();
        const VarF d = y - w;
        sum.backward(mean(d * d) * (1.0f / static_cast<float>(world.size())));
        sum.finish();
        w.value().data()[0] -= 0.25f * w.grad().data()[0];
    }
    const float want = 2.0f + 0.5f * static_cast<float>(world.size() - 1), got = w.value().data()[0];
    std::vector<float> all(static_cast<size_t>(world.size()));
    world.all_gather(&got, sizeof got, all.data());
    for (float other : all)
        if (std::memcmp(&other, &got, sizeof got) != 0 || std::abs(got - want) > 1e-5f) {
            std::fprintf(stderr, "ddpmkit consumer (mpi, rank %d): w = %.7g, expected %.7g on every process\n", world.rank(),
                         static_cast<double>(got), static_cast<double>(want));
            return 1;
        }
    if (world.is_root()) std::printf("ddpmkit consumer (mpi): ok, %d processes fit w = %g\n", world.size(), static_cast<double>(got));
    return 0;
}
