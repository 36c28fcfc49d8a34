# Shared helpers for the K1N command handlers in ops/agents (sourced, not executed).
#
# The contract these helpers implement is described in ops/agents/README.md: a handler takes the
# task id as its only argument, reads K1N_* environment variables, writes a JSON result file to
# $K1N_RESULT_FILE and exits 0 when it produced a result, non-zero when it could not.
#
# Only bash, coreutils and grep are used, so the handlers run on any Airflow worker image.

# Exit code for usage errors: bad arguments or environment, nothing was scanned.
readonly K1N_EXIT_USAGE=2

# Directories never worth scanning: version control, virtualenvs, caches, Airflow's state.
readonly K1N_EXCLUDE_DIRS=(.git .hg .svn .venv venv node_modules __pycache__ .airflow
  .mypy_cache .ruff_cache .pytest_cache .tox build dist)

k1n_die_usage() {
  printf '%s: %s\n' "${0##*/}" "$*" >&2
  exit "$K1N_EXIT_USAGE"
}

# k1n_init "$@": check the task-id argument and the environment; sets TASK_ID and SCAN_DIR.
k1n_init() {
  [[ $# -eq 1 ]] || k1n_die_usage "usage: ${0##*/} <task_id>  (got $# arguments)"
  [[ $1 =~ ^[1-9][0-9]*$ ]] || k1n_die_usage "task id must be a positive integer, got '$1'"
  TASK_ID=$1
  if [[ -n ${K1N_TASK_ID:-} && $K1N_TASK_ID != "$TASK_ID" ]]; then
    k1n_die_usage "task id argument $TASK_ID does not match K1N_TASK_ID=$K1N_TASK_ID"
  fi
  [[ -n ${K1N_RESULT_FILE:-} ]] || k1n_die_usage "K1N_RESULT_FILE is not set"
  SCAN_DIR=${K1N_SCAN_DIR:-${K1N_PROJECT_DIR:-}}
  [[ -n $SCAN_DIR ]] || k1n_die_usage "neither K1N_SCAN_DIR nor K1N_PROJECT_DIR is set"
  [[ -d $SCAN_DIR ]] || k1n_die_usage "scan directory not found: $SCAN_DIR"
}

# k1n_grep PATTERN [GREP OPTIONS...]: print "file:line" for every line under $SCAN_DIR that
# matches the extended regular expression PATTERN. Matched text is not printed: a finding may
# be a live secret, and the task log is no place to copy it to.
k1n_grep() {
  local pattern=$1
  shift
  local excludes=() dir status=0
  for dir in "${K1N_EXCLUDE_DIRS[@]}"; do excludes+=("--exclude-dir=$dir"); done
  # -I skips binary files; -s hides messages about unreadable files, reported below instead.
  (cd "$SCAN_DIR" && grep -rnIsE "${excludes[@]}" "$@" -e "$pattern" .) |
    cut -d: -f1,2 | sed 's|^\./||' || status=$?
  # With pipefail, grep's status survives: 1 means no match, 2 means an error (e.g. unreadable
  # files) that must not pass silently for a scanner.
  if ((status > 1)); then
    printf 'warning: grep reported errors scanning %s (unreadable files?)\n' "$SCAN_DIR" >&2
  fi
  return 0
}

# k1n_json_string VALUE: VALUE as a JSON string literal.
k1n_json_string() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  printf '"%s"' "$s"
}

# k1n_write_result PASSED TOTAL EXTRA_JSON_MEMBERS: write the result file atomically.
# EXTRA_JSON_MEMBERS is a comma-separated list of `"key": value` pairs (may be empty).
k1n_write_result() {
  local passed=$1 total=$2 extra=$3 dir tmp
  dir=$(dirname -- "$K1N_RESULT_FILE")
  mkdir -p -- "$dir"
  # Same directory as the target, so the mv below is a rename: readers never see half a file.
  tmp=$(mktemp -- "$dir/.task-result.XXXXXX")
  {
    printf '{\n  "quality_gates": {"passed": %d, "total": %d}' "$passed" "$total"
    [[ -n $extra ]] && printf ',\n  %s' "$extra"
    printf '\n}\n'
  } >"$tmp" || { rm -f -- "$tmp"; exit 1; }
  chmod 644 -- "$tmp" # mktemp creates 0600; the result is not secret and others read it
  mv -f -- "$tmp" "$K1N_RESULT_FILE"
}

# Findings printed per rule; the rest are counted, so a noisy rule cannot flood the task log.
readonly K1N_MAX_PRINTED=50

# k1n_run_rules HANDLER_NAME: run every rule in RULE_NAMES/RULE_PATTERNS/RULE_GREP_OPTS over
# $SCAN_DIR, print the findings, and write the result file with one quality gate per rule.
# RULE_GREP_OPTS holds extra grep options per rule as one space-separated string (may be "").
# EXTRA_RESULT (optional) holds more JSON members for the result file.
k1n_run_rules() {
  local handler=$1 i hits count passed=0 total=${#RULE_NAMES[@]} findings_total=0
  local counts="" opts
  printf '%s: task %s: scanning %s (%d rules)\n' "$handler" "$TASK_ID" "$SCAN_DIR" "$total"
  for ((i = 0; i < total; i++)); do
    read -r -a opts <<<"${RULE_GREP_OPTS[i]}"
    hits=$(k1n_grep "${RULE_PATTERNS[i]}" "${opts[@]}")
    count=0
    [[ -n $hits ]] && count=$(wc -l <<<"$hits")
    count=$((count + 0)) # wc pads with spaces on some systems
    counts+="${counts:+, }$(k1n_json_string "${RULE_NAMES[i]}"): $count"
    findings_total=$((findings_total + count))
    if ((count == 0)); then
      passed=$((passed + 1))
      printf '  ok    %s\n' "${RULE_NAMES[i]}"
    else
      printf '  FAIL  %s: %d finding(s)\n' "${RULE_NAMES[i]}" "$count"
      head -n "$K1N_MAX_PRINTED" <<<"$hits" | sed "s|^|        ${RULE_NAMES[i]}: |"
      if ((count > K1N_MAX_PRINTED)); then
        printf '        ... and %d more\n' "$((count - K1N_MAX_PRINTED))"
      fi
    fi
  done

  k1n_write_result "$passed" "$total" "$(printf '"handler": %s, "task_id": %d, "scan_dir": %s, "findings_total": %d, "findings": {%s}%s' \
    "$(k1n_json_string "$handler")" "$TASK_ID" "$(k1n_json_string "$SCAN_DIR")" \
    "$findings_total" "$counts" "${EXTRA_RESULT:+, $EXTRA_RESULT}")"
  printf '%s: %d/%d quality gates passed, %d finding(s); result: %s\n' \
    "$handler" "$passed" "$total" "$findings_total" "$K1N_RESULT_FILE"
}
