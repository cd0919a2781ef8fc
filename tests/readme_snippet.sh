#!/usr/bin/env bash
# README.md's first C++ block ("Using ddpmkit") must be examples/research/api_tour.cpp's
# lines between "// README begin" and "// README end", verbatim: the README shows a program
# that the build compiles and ctest runs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
program=$(sed -n '/^\/\/ README begin$/,/^\/\/ README end$/p' "$root/examples/research/api_tour.cpp" | sed '1d;$d')
shown=$(sed -n '/^## Using ddpmkit/,/^## /p' "$root/README.md" | sed -n '/^```cpp$/,/^```$/p' | sed '1d;$d' | sed '/^```$/,$d')
if [ -z "$program" ] || [ "$program" != "$shown" ]; then
  echo "README.md's code under \"Using ddpmkit\" differs from examples/research/api_tour.cpp (between the README markers):"
  diff <(echo "$shown") <(echo "$program") || true
  exit 1
fi
echo "README.md shows examples/research/api_tour.cpp verbatim ($(wc -l <<< "$program") lines)"
