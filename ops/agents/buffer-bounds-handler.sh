#!/usr/bin/env bash
# Buffer bounds handler: scan C/C++ sources for functions that write without a length bound.
#
# Usage: buffer-bounds-handler.sh <task_id>
#   K1N_RESULT_FILE  where to write the result (set by the workflow)
#   K1N_SCAN_DIR     tree to scan (default: $K1N_PROJECT_DIR)
#
# One quality gate per function (strcpy, strcat, sprintf/vsprintf, gets, scanf-family "%s");
# a gate passes when the function is not called anywhere. The bounded variants (strncpy,
# snprintf, fgets, "%15s") do not match. A call inside a comment or string still counts: this
# is a grep-level check that errs on the side of reporting.
# Exits 0 whenever the scan ran (findings lower the gates), 2 on usage errors.
set -euo pipefail

# shellcheck source=lib/k1n-handler.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/k1n-handler.sh"
k1n_init "$@"

C_SOURCES="--include=*.c --include=*.h --include=*.cc --include=*.cpp --include=*.cxx"
C_SOURCES+=" --include=*.hh --include=*.hpp --include=*.hxx"

RULE_NAMES=(strcpy strcat sprintf gets scanf-unbounded-s)
# \b before the name keeps strncpy, snprintf, fgets and friends out.
RULE_PATTERNS=(
  '\bstrcpy\s*\('
  '\bstrcat\s*\('
  '\bv?sprintf\s*\('
  '\bgets\s*\('
  '\b(v?f|v?s|v)?scanf\s*\([^;]*"[^"]*%s'
)
RULE_GREP_OPTS=("$C_SOURCES" "$C_SOURCES" "$C_SOURCES" "$C_SOURCES" "$C_SOURCES")

# How many files were looked at, so "all gates passed" over zero files is visibly empty.
read -r -a include_opts <<<"$C_SOURCES"
files_scanned=$(cd "$SCAN_DIR" && grep -rlIs "${include_opts[@]}" \
  "${K1N_EXCLUDE_DIRS[@]/#/--exclude-dir=}" -e '' . | wc -l || true)
files_scanned=$((files_scanned + 0))
EXTRA_RESULT="\"files_scanned\": $files_scanned"

k1n_run_rules buffer-bounds
if ((files_scanned == 0)); then
  printf 'buffer-bounds: note: no C/C++ sources under %s, so there was nothing to check\n' \
    "$SCAN_DIR"
fi
