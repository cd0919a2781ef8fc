#!/usr/bin/env bash
# docs_check.sh — the files that docs/*.md cite exist, and the functions and tests that
# docs/math.md names exist.
#
# Checks, in every docs/*.md:
#   - each word in backticks that looks like a repository path (contains a '/', ends in
#     .hpp .cpp .py .sh .md .txt .build or .safetensors): it must exist relative to the
#     repository root, or, for headers, relative to include/ (`ddpmkit/nn/unet.hpp`, as
#     #include spells it) or include/ddpmkit/ (`nn/unet.hpp`);
#   - each relative Markdown link target [text](target): it must exist relative to the
#     document's folder.
# Words with placeholders or patterns (<...>, {...}, *, $) are skipped.
#
# Checks, in docs/math.md (the list named_docs below):
#   - each backticked C++ name (`q_sample`, `DdpmSampler`, `GaussianMixture::denoiser`,
#     `sample()`, `Tensor<float>`: a span matching
#     ^NAME(::NAME)*(<...>)?(\(\))?$, NAME = [A-Za-z_][A-Za-z0-9_]*): every NAME of it must
#     occur as a whole word in the code (comments and string literals removed) of the
#     .hpp/.h/.cpp files under include/, tools/ or examples/. Backticked paths, flags,
#     expressions and commands do not match and are left to the path check or skipped;
#   - each test quoted in double quotes on a "- Test:" or "- Tests:" bullet (the bullet's
#     wrapped lines joined by one space; a bullet may quote several tests): the quote must
#     equal, character for character, the name of a doctest TEST_CASE (or
#     TEST_CASE_TEMPLATE, TEST_CASE_FIXTURE) in tests/*.cpp, whose name may be split into
#     adjacent string literals, across lines too. Commented-out test cases do not count.
# Fenced code blocks are not read. Exits 1 naming every missing path, name and test (with
# the document's line), 0 when all exist.
#
#   bash tests/docs_check.sh        (from any folder)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

shopt -s nullglob
docs=(docs/*.md)
if [ ${#docs[@]} -eq 0 ]; then
  echo "docs_check: no docs/*.md in $root" >&2
  exit 1
fi

missing=0
checked=0
report() {  # doc, what, target
  echo "docs_check: $1 cites $2 \`$3\`, which does not exist" >&2
  missing=$((missing + 1))
}

for doc in "${docs[@]}"; do
  # The document without its fenced code blocks.
  text="$(awk '/^[[:space:]]*```/ { fenced = !fenced; next } !fenced' "$doc")"

  # Backticked words that look like repository paths (the backticks in quotes are literal).
  # shellcheck disable=SC2016
  while IFS= read -r word; do
    [ -n "$word" ] || continue
    case "$word" in
      *'<'* | *'>'* | *'{'* | *'}'* | *'*'* | *'$'*) continue ;;
    esac
    case "$word" in
      */*.hpp | */*.cpp | */*.py | */*.sh | */*.md | */*.txt | */*.build | */*.safetensors) ;;
      *) continue ;;
    esac
    word="${word%%#*}"
    checked=$((checked + 1))
    [ -e "$word" ] || [ -e "include/$word" ] || [ -e "include/ddpmkit/$word" ] || report "$doc" "the path" "$word"
  done < <(printf '%s\n' "$text" | grep -o '`[^`]*`' | tr -d '`' | tr -s '[:blank:]' '\n')

  # Relative Markdown links.
  while IFS= read -r target; do
    target="${target%%#*}"
    [ -n "$target" ] || continue  # a link to an anchor of the same document
    case "$target" in
      http://* | https://* | mailto:*) continue ;;
    esac
    checked=$((checked + 1))
    [ -e "$(dirname "$doc")/$target" ] || report "$doc" "the link" "$target"
  done < <(printf '%s\n' "$text" | grep -o '\](\([^)]*\))' | sed 's/^](//; s/)$//')
done

paths_checked=$checked
paths_missing=$missing

# ---- The functions and tests that docs/math.md names ----------------------------------

named_docs=(docs/math.md)
names_checked=0
names_missing=0
tests_checked=0
tests_missing=0

# C++ source on stdin without its comments and, unless keep_strings=1, without its string
# and character literals (each replaced by a space); a ' after a letter, digit or _ is a
# digit separator (100'000), not a character literal.
# shellcheck disable=SC2016
strip_cpp='
{
  line = $0; out = ""
  while (line != "") {
    if (in_comment) {
      i = index(line, "*/")
      if (i == 0) { line = ""; break }
      line = substr(line, i + 2); in_comment = 0; out = out " "; continue
    }
    if (!match(line, /["\047\/]/)) { out = out line; break }
    out = out substr(line, 1, RSTART - 1)
    c = substr(line, RSTART, 1)
    line = substr(line, RSTART + 1)
    if (c == "/") {
      n = substr(line, 1, 1)
      if (n == "/") { line = ""; break }
      if (n == "*") { in_comment = 1; line = substr(line, 2); continue }
      out = out c; continue
    }
    if (c == "\047" && substr(out, length(out), 1) ~ /[A-Za-z0-9_]/) { out = out " "; continue }
    lit = c
    while (line != "") {
      d = substr(line, 1, 1)
      if (d == "\\") { lit = lit substr(line, 1, 2); line = substr(line, 3); continue }
      lit = lit d; line = substr(line, 2)
      if (d == c) break
    }
    out = out (keep_strings ? lit : " ")
  }
  print out
}'

# Every word of the code under include/, tools/ and examples/, one a line.
code_dirs=()
for d in include tools examples; do [ -d "$d" ] && code_dirs+=("$d"); done
code_words="$(find "${code_dirs[@]}" -type f \( -name '*.hpp' -o -name '*.h' -o -name '*.cpp' \) \
  -exec cat {} + | awk -v keep_strings=0 "$strip_cpp" \
  | awk '{ n = split($0, w, /[^A-Za-z0-9_]+/); for (i = 1; i <= n; i++) if (w[i] != "") seen[w[i]] = 1 }
         END { for (x in seen) print x }')"
declare -A known_word=()
while IFS= read -r w; do known_word["$w"]=1; done <<< "$code_words"

# The names of the doctest cases in tests/*.cpp, one a line: the string literals after
# TEST_CASE( / TEST_CASE_TEMPLATE( / TEST_CASE_FIXTURE(fixture, concatenated.
test_files=(tests/*.cpp)
test_names=""
if [ ${#test_files[@]} -gt 0 ]; then
  test_names="$(cat "${test_files[@]}" | awk -v keep_strings=1 "$strip_cpp" | awk '
    { all = all " " $0 }
    END {
      while (match(all, /TEST_CASE(_TEMPLATE|_FIXTURE)?[ \t]*\(/)) {
        macro = substr(all, RSTART, RLENGTH)
        all = substr(all, RSTART + RLENGTH)
        if (macro ~ /FIXTURE/) { i = index(all, ","); if (i == 0) break; all = substr(all, i + 1) }
        name = ""; found = 0
        while (1) {
          sub(/^[ \t]+/, "", all)
          if (substr(all, 1, 1) != "\"") break
          all = substr(all, 2); found = 1
          while (all != "") {
            d = substr(all, 1, 1)
            if (d == "\\") { name = name substr(all, 2, 1); all = substr(all, 3); continue }
            all = substr(all, 2)
            if (d == "\"") break
            name = name d
          }
        }
        if (found) print name
      }
    }')"
fi
declare -A known_test=()
while IFS= read -r t; do [ -n "$t" ] && known_test["$t"]=1; done <<< "$test_names"

for doc in "${named_docs[@]}"; do
  [ -f "$doc" ] || { echo "docs_check: $doc is missing" >&2; names_missing=$((names_missing + 1)); continue; }

  # Backticked C++ names, each once: "line<TAB>name".
  # shellcheck disable=SC2016
  while IFS=$'\t' read -r line name; do
    [ -n "$name" ] || continue
    names_checked=$((names_checked + 1))
    bare="${name%()}"
    bare="${bare%%<*}"
    absent=""
    IFS=':' read -r -a parts <<< "${bare//::/:}"
    for part in "${parts[@]}"; do
      [ -n "${known_word[$part]:-}" ] || absent="${absent:+$absent, }$part"
    done
    if [ -n "$absent" ]; then
      echo "docs_check: $doc names \`$name\`, which the code under include/, tools/ and examples/ does not contain (missing: $absent; line $line)" >&2
      names_missing=$((names_missing + 1))
    fi
  done < <(awk '
    /^[[:space:]]*```/ { fenced = !fenced; next }
    fenced { next }
    {
      rest = $0
      while (match(rest, /`[^`]*`/)) {
        span = substr(rest, RSTART + 1, RLENGTH - 2)
        rest = substr(rest, RSTART + RLENGTH)
        if (span ~ /^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*(<[^<>]*>)?(\(\))?$/ && !(span in seen)) {
          seen[span] = 1
          print NR "\t" span
        }
      }
    }' "$doc")

  # Tests quoted on "- Test:" / "- Tests:" bullets, each bullet joined into one line:
  # "line<TAB>name".
  while IFS=$'\t' read -r line name; do
    tests_checked=$((tests_checked + 1))
    if [ -z "${known_test[$name]:-}" ]; then
      echo "docs_check: $doc names test \"$name\", which no tests/*.cpp defines (line $line)" >&2
      tests_missing=$((tests_missing + 1))
    fi
  done < <(awk '
    function flush(   rest) {
      if (bullet ~ /^[-*+][ \t]+Tests?:/) {
        rest = bullet
        while (match(rest, /"[^"]*"/)) {
          print start "\t" substr(rest, RSTART + 1, RLENGTH - 2)
          rest = substr(rest, RSTART + RLENGTH)
        }
      }
      bullet = ""
    }
    /^[[:space:]]*```/ { flush(); fenced = !fenced; next }
    fenced { next }
    /^[-*+][ \t]/ { flush(); bullet = $0; start = NR; next }
    bullet != "" && /^[ \t]+[^ \t]/ { sub(/^[ \t]+/, ""); bullet = bullet " " $0; next }
    { flush() }
    END { flush() }' "$doc")
done

failed=0
if [ "$paths_missing" -gt 0 ]; then
  echo "docs_check: $paths_missing cited path(s) missing (of $paths_checked checked in ${#docs[@]} documents)" >&2
  failed=1
fi
if [ "$names_missing" -gt 0 ] || [ "$tests_missing" -gt 0 ]; then
  echo "docs_check: ${named_docs[*]} names $names_missing missing function(s) or type(s) (of $names_checked checked) and $tests_missing missing test(s) (of $tests_checked checked)" >&2
  failed=1
fi
[ "$failed" -eq 0 ] || exit 1
echo "docs_check: all $paths_checked cited paths exist (${#docs[@]} documents); all $names_checked functions and types and $tests_checked tests that ${named_docs[*]} names exist"
