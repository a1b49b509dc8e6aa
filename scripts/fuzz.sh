#!/usr/bin/env bash
# Fuzzes the frontend (parser + Sema) with libFuzzer for a bounded time.
#   scripts/fuzz.sh [SECONDS]   (default 600)
# Builds with clang-14 + ASan + UBSan in build-fuzz/. The seed corpus is
# tests/fuzz/corpus plus every .tdl file of the repository and the shared
# conformance suite. Findings are written to tests/fuzz/ as crash-*; turn each
# into a regression test (tests/diagnostics/ or tests/frontend/).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DTDL_FUZZ=ON -DTDL_SANITIZE=ON >/dev/null
ninja -C build-fuzz fuzz_frontend
run=tests/fuzz/corpus-run
mkdir -p "$run"
cp tests/fuzz/corpus/* "$run"/ 2>/dev/null || true
find tests stdlib examples ../shared/conformance -name '*.tdl' 2>/dev/null | while read -r f; do
  cp "$f" "$run/$(echo "$f" | tr '/' '_')"
done
export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1
./build-fuzz/tests/fuzz/fuzz_frontend "$run" -max_total_time="$secs" -max_len=4096 \
  -timeout=10 -rss_limit_mb=4096 -artifact_prefix=tests/fuzz/ -print_final_stats=1
