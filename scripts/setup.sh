#!/usr/bin/env bash
# Installs the Debian packages spinemets needs (when root; otherwise prints the apt-get
# line and stops), then configures and builds with CMake. Sourced by demo.sh and test.sh.
set -euo pipefail

SM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SM_BUILD="${SM_BUILD:-$SM_ROOT/build}"

# Build and runtime: compiler, CMake, DCMTK (+ its command-line tools for tests), OpenJPEG,
# libpng, zlib, OpenMP (with gcc), CMocka, nifti2, jansson. Tests also use pydicom's
# bundled DICOM files as a robustness corpus; the benchmark compares with dcm2niix.
SM_PACKAGES=(cmake make gcc g++ pkg-config zlib1g-dev libdcmtk-dev dcmtk libopenjp2-7-dev
  libpng-dev libcmocka-dev libnifti2-dev libjansson-dev)
SM_TEST_PACKAGES=(python3 python3-pydicom)

sm_install_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    echo "spinemets setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "spinemets setup: missing Debian packages. Run as root:" >&2
    echo "  apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
}

# sm_build DIR [cmake options...]: configure once, then incremental builds.
sm_build() {
  local dir="$1"; shift
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    cmake -S "$SM_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  else
    cmake -S "$SM_ROOT" -B "$dir" "$@" >/dev/null
  fi
  cmake --build "$dir" -j"$(nproc)" -- --no-print-directory >/dev/null
}
