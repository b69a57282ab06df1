#!/usr/bin/env bash
# One-shot set-up on a fresh Debian machine: system packages (FFCV build deps, the
# embedded Fashion-MNIST dataset, sample photos for tests) and a virtualenv in .venv
# holding attmask_ray with its dev extra. Idempotent: re-running skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
APT_PKGS="libopencv-dev libturbojpeg0-dev pkg-config dataset-fashion-mnist"
missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "[setup] apt-get install$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY=.venv/bin/python
if ! $VPY -c "import attmask_ray, ffcv, torch, timm, ray" >/dev/null 2>&1; then
  $VPY -m pip install -q --upgrade pip setuptools wheel
  # torch/torchvision pinned to the matching pair (a CUDA build that also runs on CPU).
  $VPY -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
  # ffcv's setup.py needs numpy and pkg-config's opencv at build time.
  $VPY -m pip install -q "numpy>=2.0,<2.5" cython
  $VPY -m pip install -q --no-build-isolation "ffcv==1.0.2"
  $VPY -m pip install -q -e ".[dev]"
fi
echo "[setup] ready: $($VPY -c 'import torch, ray, timm, ffcv; print("torch", torch.__version__, "ray", ray.__version__, "timm", timm.__version__)')"
