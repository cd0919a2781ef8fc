// Tests of the diffusion area.
#include <doctest/doctest.h>
