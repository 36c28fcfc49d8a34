#!/usr/bin/env bash
# License compliance handler: check the SPDX license headers of a tree's source files.
#
# Usage: license-compliance-handler.sh <task_id>
#   K1N_RESULT_FILE        where to write the result (set by the workflow)
#   K1N_SCAN_DIR           tree to scan (default: $K1N_PROJECT_DIR)
#   K1N_ALLOWED_LICENSES   space-separated SPDX ids that may appear
#                          (default: Apache-2.0 MIT BSD-2-Clause BSD-3-Clause ISC)
#
# Three quality gates:
#   spdx-header      every source file names its license with "SPDX-License-Identifier:" in
#                    its first 10 lines
#   allowed-license  every license named in those headers is in K1N_ALLOWED_LICENSES
#   license-file     the tree's root has a LICENSE, LICENSE.txt, LICENSE.md or COPYING file
# Exits 0 whenever the check ran (problems lower the gates), 2 on usage errors.
set -euo pipefail

# shellcheck source=lib/k1n-handler.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/k1n-handler.sh"
k1n_init "$@"

read -r -a allowed <<<"${K1N_ALLOWED_LICENSES:-Apache-2.0 MIT BSD-2-Clause BSD-3-Clause ISC}"
HEADER_LINES=10
SOURCE_NAMES=(-name '*.py' -o -name '*.sh' -o -name '*.bash' -o -name '*.c' -o -name '*.h'
  -o -name '*.cc' -o -name '*.cpp' -o -name '*.hpp' -o -name '*.js' -o -name '*.ts'
  -o -name '*.go' -o -name '*.rs' -o -name '*.java')

is_allowed() {
  local id
  for id in "${allowed[@]}"; do [[ $1 == "$id" ]] && return 0; done
  return 1
}

prune=()
for dir in "${K1N_EXCLUDE_DIRS[@]}"; do prune+=(-name "$dir" -o); done
prune+=(-false)

files=0
missing=()
disallowed=()
while IFS= read -r -d '' file; do
  files=$((files + 1))
  file=${file#./}
  # `|| true`: an unreadable file simply has no header, and sed quitting early may make head
  # die of SIGPIPE, which pipefail would otherwise turn into an error.
  expression=$(head -n "$HEADER_LINES" -- "$SCAN_DIR/$file" 2>/dev/null |
    sed -nE '/SPDX-License-Identifier:/{s/.*SPDX-License-Identifier:[[:space:]]*//p;q}') || true
  # Drop what closes the comment the header sits in ("*/", "-->") and trailing blanks.
  expression=${expression%%\*/*}
  expression=${expression%%-->*}
  expression=${expression%"${expression##*[![:space:]]}"}
  if [[ -z $expression ]]; then
    missing+=("$file")
    continue
  fi
  # An SPDX expression: ids joined by AND/OR, "WITH <exception>", parentheses.
  read -r -a words <<<"${expression//[()]/ }"
  after_with=false
  for word in "${words[@]}"; do
    case $word in
      AND | OR) ;;
      WITH) after_with=true ;;
      *)
        if $after_with; then
          after_with=false # an exception id, not a license
        elif ! is_allowed "$word"; then
          disallowed+=("$file: $word")
        fi
        ;;
    esac
  done
done < <(cd "$SCAN_DIR" && find . \( -type d \( "${prune[@]}" \) -prune \) -o \
  -type f \( "${SOURCE_NAMES[@]}" \) -print0)

license_file=""
for name in LICENSE LICENSE.txt LICENSE.md COPYING; do
  if [[ -f $SCAN_DIR/$name ]]; then
    license_file=$name
    break
  fi
done

report() { # report GATE PROBLEM_COUNT ITEM...
  local gate=$1 count=$2
  shift 2
  if ((count == 0)); then
    printf '  ok    %s\n' "$gate"
    return 0
  fi
  printf '  FAIL  %s: %d problem(s)\n' "$gate" "$count"
  local item shown=0
  for item in "$@"; do
    ((shown++ < K1N_MAX_PRINTED)) || break
    printf '        %s: %s\n' "$gate" "$item"
  done
  if ((count > K1N_MAX_PRINTED)); then
    printf '        ... and %d more\n' "$((count - K1N_MAX_PRINTED))"
  fi
  return 1
}

printf 'license-compliance: task %s: checking %d source file(s) under %s\n' \
  "$TASK_ID" "$files" "$SCAN_DIR"
passed=0
report spdx-header "${#missing[@]}" "${missing[@]/%/ (no SPDX-License-Identifier)}" &&
  passed=$((passed + 1))
report allowed-license "${#disallowed[@]}" "${disallowed[@]/%/ (not in K1N_ALLOWED_LICENSES)}" &&
  passed=$((passed + 1))
if [[ -n $license_file ]]; then
  report license-file 0 && passed=$((passed + 1))
else
  report license-file 1 "no LICENSE, LICENSE.txt, LICENSE.md or COPYING at the root" || true
fi

k1n_write_result "$passed" 3 "$(printf '"handler": "license-compliance", "task_id": %d, "scan_dir": %s, "files_scanned": %d, "missing_header": %d, "disallowed_license": %d, "license_file": %s' \
  "$TASK_ID" "$(k1n_json_string "$SCAN_DIR")" "$files" "${#missing[@]}" "${#disallowed[@]}" \
  "$(if [[ -n $license_file ]]; then k1n_json_string "$license_file"; else printf null; fi)")"
printf 'license-compliance: %d/3 quality gates passed; result: %s\n' "$passed" "$K1N_RESULT_FILE"
