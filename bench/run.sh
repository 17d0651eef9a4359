#!/usr/bin/env bash
# hookgate's load benchmark, one command, loopback only (see bench/README.md):
#   bench/run.sh                         # direct vs nginx proxy_pass vs hookgate, ~4 minutes
#   bench/run.sh --hookgate-log off      # the same with hookgate's per-request log line off
#   bench/run.sh --help                  # every option
# Installs what it needs (Debian: wrk, nginx; cargo builds hookgate and the tiny upstream),
# then runs bench/loadbench.py. Results: /tmp/hookgate-bench/<time>/results.md (and .json).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"

case "${1:-}" in -h|--help) exec python3 "$here/loadbench.py" --help ;; esac

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || missing+=(nginx)
command -v taskset >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: apt-get install ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Debian starts nginx as a service on install; the benchmark runs its own, so stop that one.
if command -v systemctl >/dev/null && systemctl is-active --quiet nginx 2>/dev/null; then
  systemctl stop nginx || true
fi

echo "bench: cargo build --release (hookgate, bench/upstream)" >&2
(cd "$repo" && cargo build --release --quiet --bin hookgate)
(cd "$here/upstream" && cargo build --release --quiet)

ulimit -n 20000 2>/dev/null || true
exec python3 "$here/loadbench.py" "$@"
