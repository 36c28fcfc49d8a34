#!/usr/bin/env bash
# The few system packages the test suite uses beyond Python, installed from Debian when missing:
#   chromium        the browser tests (Playwright drives /usr/bin/chromium; it downloads none)
#   docker-compose  validates docker-compose.yaml with a real compose implementation (`config`)
#   redis-server    the Celery broker of `make cluster`, unless a Redis answers on 127.0.0.1:6379
# Installing needs root (or passwordless sudo); otherwise this prints the apt line and fails.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
if ! command -v redis-server >/dev/null 2>&1 \
    && ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  missing+=(redis-server)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "system-deps: installing ${missing[*]} from Debian's packages" >&2
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "system-deps: run as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null \
  || { "${as_root[@]}" apt-get update -q >/dev/null \
       && "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
