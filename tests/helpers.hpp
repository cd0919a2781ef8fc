// Helpers shared by the test files.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "ddpmkit/autograd/gradcheck.hpp"

namespace test {

// The message of the exception of type E thrown by f, or "" if none was thrown.
template <class E, class F>
std::string message_of(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    }
    return "";
}

// gradcheck of f at inputs (double): analytic against central differences, within
// gradcheck's tolerances and, if given, an absolute error bound.
inline void check_gradients(const std::function<ddpmkit::VarD(const std::vector<ddpmkit::VarD>&)>& f,
                            const std::vector<ddpmkit::VarD>& inputs, double max_abs_error = HUGE_VAL) {
    const ddpmkit::GradcheckResult r = ddpmkit::gradcheck(f, inputs);
    INFO(r.message);
    CHECK(r.ok);
    CHECK(r.max_abs_error < max_abs_error);
}

}  // namespace test
