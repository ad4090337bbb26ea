#!/usr/bin/env bash
# Set up regsim in ./.venv from the pinned requirements (idempotent).
#   bash tools/setup.sh           # what running the study needs
#   bash tools/setup.sh --tests   # plus the system packages some tests use (needs root + apt):
#                                 # Chromium (the HTML report test), pdflatex (the LaTeX
#                                 # tables compile), Slurm and munge (the cluster test)
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements.txt
# Snakemake reads each --configfile before the workflow runs; this makes a file it cannot
# open or decode one line, not a traceback (see regsim/startup.py).
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cat > "$site/regsim-startup.pth" <<'PTH'
import sys; exec("try:\n import regsim.startup\n regsim.startup.install()\nexcept Exception:\n pass")
PTH

if [ "${1:-}" = "--tests" ]; then
  packages=(chromium texlive-latex-recommended slurm-wlm munge)
  missing=()
  for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    else
      echo "setup: not root or no apt-get; tests that need ${missing[*]} will be skipped" >&2
    fi
  fi
fi
echo "regsim is set up in .venv (activate with: . .venv/bin/activate)"
