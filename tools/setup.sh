#!/usr/bin/env bash
# Installs what phonrec needs on a fresh Debian machine, idempotently:
#   Debian: flite (synthetic corpus), espeak-ng, festival, sox;  Python: .venv with phonrec[test].
# Re-running is cheap: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg_bin in flite:flite espeak-ng:espeak-ng festival:festival sox:sox; do
  command -v "${pkg_bin#*:}" >/dev/null 2>&1 || need_apt+=("${pkg_bin%%:*}")
done
if ((${#need_apt[@]})); then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.phonrec-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing phonrec and its dependencies into .venv (first time: several minutes)"
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -m pip install -q -e '.[test]' 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import phonrec, torch, torchaudio, hydra" # fails loudly if the install did not work
  touch "$stamp"
fi
