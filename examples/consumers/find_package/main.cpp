// A consumer of ddpmkit (find_package): builds a tensor, checks a value, exits non-zero if wrong.
#include <cstdio>

#include <ddpmkit/ddpmkit.hpp>

int main() {
    ddpmkit::TensorF t(ddpmkit::Shape{2, 3}, 1.5f);
    t(1, 2) = 4.0f;
    float sum = 0.0f;
    for (int64_t i = 0; i < t.numel(); ++i) sum += t.data()[i];
    if (t.numel() != 6 || t.dim() != 2 || sum != 11.5f) {
        std::fprintf(stderr, "ddpmkit consumer (find_package): expected 6 elements summing to 11.5, got %lld summing to %g\n",
                     static_cast<long long>(t.numel()), static_cast<double>(sum));
        return 1;
    }
    std::printf("ddpmkit consumer (find_package): ok, ddpmkit %s, kernels %s\n", DDPMKIT_VERSION_STRING, ddpmkit::arch_name());
    return 0;
}
