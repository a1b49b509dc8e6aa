#!/usr/bin/env bash
# Installs every build and test dependency of TDL from Debian 12's repositories.
# Idempotent: packages already present are left alone. Needs root (or sudo).
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build ccache pkg-config git
  antlr4 libantlr4-runtime-dev
  llvm-19-dev llvm-19-tools libclang-rt-14-dev clang-14
  libfmt-dev libcli11-dev catch2
  libopenblas-dev nlohmann-json3-dev libedit-dev zlib1g-dev libzstd-dev libxml2-dev libffi-dev
  python3 python3-numpy
  libboost1.81-dev libboost-context1.81-dev wrk  # Beast (tdl serve), Context (the emulated GPU's fibers)
  openmpi-bin libopenmpi-dev
  xeus-dev jupyter-client python3-ipykernel jupyter-nbconvert python3-nbclient python3-jupyter-kernel-test
  vim-nox emacs-nox
  # Cross-building for 64-bit ARM (`tdl build --target aarch64-linux-gnu`, docs/edge.md):
  # the cross compiler, qemu-user to test its executables, and the arm64 libraries the
  # runner links (multiarch: the arm64 architecture is added below).
  g++-aarch64-linux-gnu qemu-user libopenblas-dev:arm64 libfmt-dev:arm64 zlib1g-dev:arm64
)
# Node.js and npm for the editor tests: Debian's packages unless a Node.js with
# its own npm is already installed (e.g. NodeSource's, which conflicts with
# Debian's npm package).
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "install-deps: adding the arm64 architecture (multiarch) for the cross-build's libraries"
  $SUDO dpkg --add-architecture arm64
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
