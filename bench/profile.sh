#!/usr/bin/env bash
# Profiles hookgate under load (see bench/README.md, "Profiles"):
#   bench/profile.sh perf --size 1024            # perf cpu-clock sampling, pinned like run.sh
#   bench/profile.sh callgrind --size 65536      # instructions per request, repeatable
# Installs linux-perf / valgrind (Debian) when missing; builds like run.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v perf >/dev/null || missing+=(linux-perf)
command -v valgrind >/dev/null || missing+=(valgrind)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
(cd "$here/.." && cargo build --release --quiet --bin hookgate)
(cd "$here/upstream" && cargo build --release --quiet)
exec python3 "$here/profile.py" "$@"
