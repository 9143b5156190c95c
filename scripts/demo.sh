#!/usr/bin/env bash
# Main command: install what is missing, build, generate the bundled phantom series and
# run the pipeline on it. Re-running rebuilds and regenerates only what changed.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/setup.sh"

sm_install_packages "${SM_PACKAGES[@]}"
echo "spinemets: building in $SM_BUILD"
sm_build "$SM_BUILD" -DSM_TESTS=OFF
bin="$SM_BUILD/pipeline/spinemets"

spec="$SM_ROOT/sample-data/lumbar.json"
gen="$SM_ROOT/sample-data/generated/lumbar"
stamp="$gen/.stamp"
if [ -f "$stamp" ] && [ "$stamp" -nt "$spec" ] && [ "$stamp" -nt "$bin" ]; then
  echo "spinemets: phantom up to date in $gen"
else
  echo "spinemets: generating phantom $spec -> $gen"
  rm -rf "$gen"
  "$bin" phantom --spec "$spec" -o "$gen"
  touch "$stamp"
fi

out="$SM_ROOT/out/lumbar"
echo "spinemets: running the pipeline on $gen/dicom"
set +e
"$bin" run "$gen/dicom" -o "$out"
rc=$?
set -e
echo "spinemets: exit code $rc; results in $out (run.json lists every series)"
exit $rc
