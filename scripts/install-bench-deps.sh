#!/usr/bin/env bash
# The benchmark suite's peers beside NumPy (installed with the build dependencies):
# PyTorch and TorchScript from Debian 12 (python3-torch), for `make bench` only, so that a
# test run does not download it. Idempotent; needs root (or sudo).
set -euo pipefail
if dpkg-query -W -f='${Status}' python3-torch 2>/dev/null | grep -q "install ok installed"; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-torch
