// doctest main for ddpmkit_tests (the only translation unit that defines it).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
