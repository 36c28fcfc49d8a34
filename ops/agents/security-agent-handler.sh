#!/usr/bin/env bash
# Security audit handler: scan a source tree for hard-coded secrets and risky shell patterns.
#
# Usage: security-agent-handler.sh <task_id>
#   K1N_RESULT_FILE  where to write the result (set by the workflow)
#   K1N_SCAN_DIR     tree to scan (default: $K1N_PROJECT_DIR)
#
# One quality gate per rule; a gate passes when its rule finds nothing. Findings are printed as
# file:line only, never the matched text, so a real secret is not copied into the task log.
# Exits 0 whenever the scan ran (findings lower the gates), 2 on usage errors.
# This is a grep-level check: it finds the obvious cases and is no substitute for a real
# secret scanner such as gitleaks.
set -euo pipefail

# shellcheck source=lib/k1n-handler.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib/k1n-handler.sh"
k1n_init "$@"

# Name, extended regular expression, extra grep options. The patterns are written so that
# this file does not match them itself.
RULE_NAMES=(
  hardcoded-password
  aws-access-key-id
  private-key
  github-token
  download-piped-to-shell
  eval-of-variable
)
RULE_PATTERNS=(
  '(password|passwd|secret|api_?key|access_?token)["'"'"']?\s*[:=]\s*["'"'"'][^"'"'"']{3,}["'"'"']'
  '\b(AKIA|ASIA)[0-9A-Z]{16}\b'
  '-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----'
  '\bgh[pousr]_[A-Za-z0-9]{36}\b'
  '\b(curl|wget)\b[^|]*\|\s*(sudo\s+)?(ba|da|z)?sh\b'
  '\beval\s+["'"'"']?\$'
)
RULE_GREP_OPTS=(-i "" "" "" "" "")

k1n_run_rules security-agent
