#!/usr/bin/env bash
# Fail when the protos in the working tree break the contracts of a git ref (default HEAD~1).
#
#   scripts/check_breaking.sh [REF]
#
# Extracts REF's buf workspace (buf.yaml, protos, third_party) with `git archive`, so the
# working tree is untouched, and runs `buf breaking` with the FILE rules of buf.yaml against
# it. Passes trivially when REF does not exist or has no protos yet.
# buf is $BUF, else .venv/bin/buf, else buf on PATH.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ref="${1:-HEAD~1}"
buf="${BUF:-$root/.venv/bin/buf}"
[[ -x "$buf" ]] || buf="$(command -v buf)" || { echo "buf not found (set BUF)" >&2; exit 2; }
cd "$root"

if ! git rev-parse --verify --quiet "$ref^{commit}" >/dev/null; then
    echo "no commit $ref: nothing to compare against"
    exit 0
fi
if ! git ls-tree -r --name-only "$ref" -- protos | grep -q '\.proto$'; then
    echo "$ref has no protos: nothing to compare against"
    exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
paths=()
for path in buf.yaml protos third_party; do
    if git cat-file -e "$ref:$path" 2>/dev/null; then paths+=("$path"); fi
done
git archive "$ref" -- "${paths[@]}" | tar -x -C "$tmp"
"$buf" breaking . --against "$tmp"
echo "no breaking changes against $ref"
