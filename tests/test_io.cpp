// Tests of the io area.
#include <doctest/doctest.h>
