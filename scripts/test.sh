#!/usr/bin/env bash
# Test command: install what is missing, build with warnings as errors (and an
# ASan+UBSan build), and run the whole CTest + CMocka suite in both.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/setup.sh"

sm_install_packages "${SM_PACKAGES[@]}" "${SM_TEST_PACKAGES[@]}"
jobs="$(nproc)"

echo "spinemets: sanitizer build (ASan+UBSan) in $SM_ROOT/build-asan"
sm_build "$SM_ROOT/build-asan" -DSM_WERROR=ON -DSM_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "spinemets: sanitizer tests (unit, e2e; slow benchmark-size tests excluded)"
(cd "$SM_ROOT/build-asan" && ASAN_OPTIONS=detect_leaks=1 ctest -j"$jobs" --output-on-failure -LE slow)

echo "spinemets: release build in $SM_BUILD"
sm_build "$SM_BUILD" -DSM_WERROR=ON
echo "spinemets: release tests"
cd "$SM_BUILD"
ctest -j"$jobs" --output-on-failure
