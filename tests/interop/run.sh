#!/usr/bin/env bash
# Interop: the providers' own libraries sign, hookgate (target/debug/hookgate) must accept what
# they sign and refuse it tampered or stale. See README.md beside this file.
#   HOOKGATE_INTEROP_VENV  Python venv to create or reuse   (default /tmp/hookgate-interop-venv)
#   HOOKGATE_INTEROP_NODE  npm folder to create or reuse    (default /tmp/hookgate-interop-node)
#   HOOKGATE_BIN           a hookgate binary to use instead of building target/debug/hookgate
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VENV=${HOOKGATE_INTEROP_VENV:-/tmp/hookgate-interop-venv}
export HOOKGATE_INTEROP_NODE=${HOOKGATE_INTEROP_NODE:-/tmp/hookgate-interop-node}
export PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
NPM_PACKAGES=(@octokit/webhooks-methods@6.0.0 @linear/sdk@98.0.0 @shopify/shopify-api@15.0.0)
START=$SECONDS
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hookgate-interop.XXXXXX")
GW_PID=

say() { printf 'interop: %s\n' "$*"; }
cleanup() {
  if [[ -n $GW_PID ]] && kill -0 "$GW_PID" 2>/dev/null; then kill -KILL "$GW_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# 1. The providers' libraries. A stamp of the pins lets a warm venv skip pip entirely; a lock
#    keeps two runs from installing into the same folders at once.
exec 9>"$VENV.lock"
if command -v flock >/dev/null; then flock 9; fi
STAMP=$(cat "$HERE/requirements.txt" <(echo barker==0.1) | sha256sum | cut -c1-16)
if ! "$VENV/bin/python" -c '' 2>/dev/null; then python3 -m venv --clear "$VENV"; fi
PY=$VENV/bin/python
if [[ $(cat "$VENV/.hookgate-interop" 2>/dev/null) != "$STAMP" ]]; then
  say "installing the Python libraries into $VENV"
  complete=yes
  if ! "$PY" -m pip install -q --no-compile -r "$HERE/requirements.txt"; then
    say "pip could not install them all at once; trying one by one (a refused package is skipped)"
    while read -r pin; do
      [[ -z $pin || $pin == \#* ]] && continue
      "$PY" -m pip install -q --no-compile "$pin" || { say "SKIP $pin: pip could not install it"; complete=no; }
    done <"$HERE/requirements.txt"
  fi
  # barker 0.1's setup.py imports barker.py, which imports requests: no build isolation.
  if ! "$PY" -m pip install -q --no-compile --no-build-isolation barker==0.1; then
    say "SKIP barker==0.1: pip could not install it"
    complete=no
  fi
  if [[ $complete == yes ]]; then echo "$STAMP" >"$VENV/.hookgate-interop"; fi
fi

if command -v npm >/dev/null && command -v node >/dev/null; then
  mkdir -p "$HOOKGATE_INTEROP_NODE"
  [[ -f $HOOKGATE_INTEROP_NODE/package.json ]] || echo '{"private": true}' >"$HOOKGATE_INTEROP_NODE/package.json"
  if [[ $(cat "$HOOKGATE_INTEROP_NODE/.hookgate-interop" 2>/dev/null) != "${NPM_PACKAGES[*]}" ]]; then
    say "installing ${NPM_PACKAGES[*]} into $HOOKGATE_INTEROP_NODE"
    npm_install() { timeout 180 npm install --prefix "$HOOKGATE_INTEROP_NODE" --no-audit --no-fund --silent "$@"; }
    if npm_install "${NPM_PACKAGES[@]}"; then
      echo "${NPM_PACKAGES[*]}" >"$HOOKGATE_INTEROP_NODE/.hookgate-interop"
    else
      for package in "${NPM_PACKAGES[@]}"; do npm_install "$package" || say "SKIP $package: npm could not install it"; done
    fi
  fi
else
  say "SKIP the npm libraries: node or npm is not installed"
fi
exec 9>&-

# 2. The gateway, on free loopback ports (picked again if another process takes one first).
BIN=${HOOKGATE_BIN:-}
say "libraries ready after $((SECONDS - START)) s"
if [[ -z $BIN ]]; then
  (cd "$ROOT" && cargo build --quiet)
  BIN=$ROOT/target/debug/hookgate
  say "cargo build done after $((SECONDS - START)) s"
fi
for attempt in 1 2 3; do
  "$PY" "$HERE/drive.py" config "$WORK"
  "$BIN" check --config "$WORK/gateway.yaml" >"$WORK/check.log" 2>&1 || { cat "$WORK/check.log" >&2; exit 1; }
  "$BIN" --config "$WORK/gateway.yaml" 2>"$WORK/gateway.log" &
  GW_PID=$!
  deadline=$((SECONDS + 30))
  until "$PY" "$HERE/drive.py" ready "$WORK"; do
    if ! kill -0 "$GW_PID" 2>/dev/null || ((SECONDS > deadline)); then break; fi
    sleep 0.1
  done
  if "$PY" "$HERE/drive.py" ready "$WORK"; then break; fi
  kill -KILL "$GW_PID" 2>/dev/null || true
  wait "$GW_PID" 2>/dev/null || true
  GW_PID=
  say "gateway did not become ready (attempt $attempt); its log:"
  tail -n 20 "$WORK/gateway.log" >&2
  if ! grep -qi 'address.*in use' "$WORK/gateway.log" || ((attempt == 3)); then exit 1; fi
done
say "gateway ready after $((SECONDS - START)) s ($BIN, pid $GW_PID)"

# 3. The checks.
status=0
"$PY" "$HERE/drive.py" run "$WORK" || status=$?

# 4. SIGTERM: the gateway drains and exits 0.
kill -TERM "$GW_PID" 2>/dev/null || true
deadline=$((SECONDS + 20))
while kill -0 "$GW_PID" 2>/dev/null && ((SECONDS <= deadline)); do sleep 0.1; done
gateway_status=0
if kill -0 "$GW_PID" 2>/dev/null; then
  say "FAIL gateway still running 20 s after SIGTERM"
  kill -KILL "$GW_PID"
  gateway_status=1
fi
wait "$GW_PID" || gateway_status=$?
GW_PID=
if ((gateway_status != 0)); then
  say "FAIL gateway exited $gateway_status after SIGTERM (expected 0); its log:"
  tail -n 20 "$WORK/gateway.log" >&2
  status=1
else
  say "ok   gateway exited 0 after SIGTERM"
fi
if ((status != 0)); then
  say "gateway log (last 40 lines):"
  tail -n 40 "$WORK/gateway.log" >&2
fi
say "done in $((SECONDS - START)) s: $([[ $status == 0 ]] && echo PASS || echo FAIL)"
exit "$status"
