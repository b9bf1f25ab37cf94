#!/usr/bin/env bash
# Idempotent set-up for `make bench`: wrk (Debian) and LiteLLM proxy in its own venv.
# Re-running is cheap: each step is skipped when its result is already there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"

if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing wrk from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  else
    echo "setup: wrk missing and cannot apt-get it; bench/load.py will use its Python engine" >&2
  fi
fi

venv="$here/.venv-litellm"
req="$here/litellm/requirements.txt"
cons="$here/litellm/constraints.txt"
stamp="$venv/.installed-$(cat "$req" "$cons" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing LiteLLM proxy into $venv"
  test -x "$venv/bin/python" || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -r "$req" -c "$cons"
  rm -f "$venv"/.installed-*
  touch "$stamp"
fi

# Portkey's open-source gateway (Node), pinned by bench/portkey/package-lock.json. Its
# postinstall (patch-package) is for its own development and is not needed to run it.
portkey="$here/portkey"
if command -v npm >/dev/null 2>&1; then
  pstamp="$portkey/node_modules/.installed-$(sha256sum "$portkey/package-lock.json" | cut -c1-16)"
  if [ ! -f "$pstamp" ]; then
    echo "setup: installing Portkey gateway into $portkey/node_modules"
    (cd "$portkey" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
    touch "$pstamp"
  fi
else
  echo "setup: npm missing; the Portkey column will be left out" >&2
fi
