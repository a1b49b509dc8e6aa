#!/usr/bin/env bash
# The GPU check of issue 22, for a machine with an NVIDIA GPU (and its driver): builds tdl
# unless build/tdl runs here, then with `--device cuda`: the device's own tests, the shared
# conformance suite (when ../shared is there), tests/lang, the gradient checks and the
# examples in graph mode, and the GPU benchmarks (bench/gpu.py, written to bench/GPU.md or
# $OUT/GPU.md). Prints a summary; exits 1 if anything failed. Meant to take under 10 minutes.
#   scripts/gpu-check.sh          # on a GPU
#   scripts/gpu-check.sh emu      # a rehearsal on the emulated device, anywhere
set -u
cd "$(dirname "$0")/.."
DEVICE=${1:-cuda}
TDL=${TDL:-$PWD/build/tdl}
LOGS=${OUT:-${TMPDIR:-/tmp}}/gpu-check-logs
mkdir -p "$LOGS"
PY=python3
for p in /usr/bin/python3 python3; do
  if "$p" -c 'import numpy' >/dev/null 2>&1; then PY=$p; break; fi
done
status=0
summary=()
step() {  # step NAME COMMAND...: runs it with its output in $LOGS/NAME.log
  local name=$1 t0 r
  shift
  t0=$(date +%s)
  if "$@" >"$LOGS/$name.log" 2>&1; then r=ok; else r=FAILED; status=1; fi
  summary+=("$(printf '%-22s %-6s %4ds  %s' "$name" "$r" $(($(date +%s) - t0)) "$(tail -n 1 "$LOGS/$name.log")")")
}

if ! "$TDL" --version >/dev/null 2>&1; then
  echo "gpu-check: building tdl ($TDL does not run here)"
  step build make build
fi
if ! "$TDL" run --device "$DEVICE" examples/hello.tdl >"$LOGS/device.log" 2>&1; then
  echo "gpu-check: no device: $(tail -n 1 "$LOGS/device.log")"
  exit 1
fi
echo "gpu-check: --device $DEVICE with $TDL; logs in $LOGS"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true

[ -x build/tests/codegen/device_tests ] && step device_tests build/tests/codegen/device_tests
export TDL TDL_TEST_DEVICE=$DEVICE
SUITES=(tests/lang tests/gradcheck)
[ -d ../shared/conformance ] && SUITES=(../shared/conformance "${SUITES[@]}")
[ -f ../shared/conformance/run.py ] && RUNNER=../shared/conformance/run.py || RUNNER=
if [ -n "$RUNNER" ]; then
  step programs "$PY" "$RUNNER" --tdl tests/device/tdl-on-device --modes graph "${SUITES[@]}"
  step examples "$PY" "$RUNNER" --tdl tests/device/tdl-on-device --modes graph examples
else
  summary+=("programs, examples: skipped (no ../shared/conformance/run.py here)")
fi
step option "$PY" tests/ptx_check.py --tdl "$TDL" --device-check tests/codegen/fused.tdl
BENCH_SIZES=()
[ "$DEVICE" = emu ] && BENCH_SIZES=(--n 1000000 --m 256 --reps 4)  # a rehearsal: the plumbing, not speed
step bench "$PY" bench/gpu.py --tdl "$TDL" --device "$DEVICE" "${BENCH_SIZES[@]}" --out "${OUT:-bench}/GPU.md"

echo
printf '%s\n' "${summary[@]}"
echo
cat "${OUT:-bench}/GPU.md" 2>/dev/null
exit $status
