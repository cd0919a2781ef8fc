#!/usr/bin/env bash
# docs_check.sh — the files that docs/*.md cite exist.
#
# Checks, in every docs/*.md:
#   - each word in backticks that looks like a repository path (contains a '/', ends in
#     .hpp .cpp .py .sh .md .txt .build or .safetensors): it must exist relative to the
#     repository root, or, for headers, relative to include/ (`ddpmkit/nn/unet.hpp`, as
#     #include spells it) or include/ddpmkit/ (`nn/unet.hpp`);
#   - each relative Markdown link target [text](target): it must exist relative to the
#     document's folder.
# Words with placeholders or patterns (<...>, {...}, *, $) are skipped. Fenced code blocks
# are not read. Exits 1 naming every missing path, 0 when all exist.
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

if [ "$missing" -gt 0 ]; then
  echo "docs_check: $missing cited path(s) missing (of $checked checked in ${#docs[@]} documents)" >&2
  exit 1
fi
echo "docs_check: all $checked cited paths exist (${#docs[@]} documents)"
