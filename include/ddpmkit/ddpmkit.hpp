// ddpmkit — the umbrella header: everything public, in layer order.
#pragma once

#include "ddpmkit/config.hpp"
#include "ddpmkit/version.hpp"

#include "ddpmkit/core/parallel.hpp"
#include "ddpmkit/core/random.hpp"
#include "ddpmkit/core/shape.hpp"
#include "ddpmkit/core/tensor.hpp"
