// PLACEHOLDER created by the build setup so that examples/CMakeLists.txt has something to
// build; the real teaching example (tensors and gradients) replaces this file.
#include <cstdio>

#include <ddpmkit/ddpmkit.hpp>

int main() {
    ddpmkit::TensorF t(ddpmkit::Shape{2, 3}, 1.0f);
    t(1, 2) = 4.0f;
    std::printf("ddpmkit %s (%s): a %lld-element tensor, t(1,2) = %g\n", DDPMKIT_VERSION_STRING,
                DDPMKIT_ARCH_NAME, static_cast<long long>(t.numel()), static_cast<double>(t(1, 2)));
    return t(1, 2) == 4.0f ? 0 : 1;
}
