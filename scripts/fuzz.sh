#!/usr/bin/env bash
# Fuzzes with libFuzzer for a bounded time:
#   scripts/fuzz.sh [SECONDS] [TARGET]   (default 600 s each; targets: frontend readers model)
# fuzz_frontend: parser + Sema on arbitrary bytes; seeds: tests/fuzz/corpus plus
#   every .tdl file of the repository and the shared conformance suite.
# fuzz_readers: the .npy / safetensors / CSV / .csv.gz readers; seeds:
#   tests/fuzz/corpus-readers (first byte picks the reader).
# fuzz_model: the .tdlm model loader (digest recomputed per input); seeds:
#   tests/fuzz/corpus-model (small exported models).
# Builds with clang-14 + ASan + UBSan in build-fuzz/. Findings are written to
# tests/fuzz/ as crash-* / timeout-*: turn each into a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
targets=${2:-"frontend readers model"}
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DTDL_FUZZ=ON -DTDL_SANITIZE=ON >/dev/null
export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1
for t in $targets; do
  ninja -C build-fuzz "fuzz_$t"
  run=tests/fuzz/corpus-run-$t
  mkdir -p "$run"
  if [ "$t" = frontend ]; then
    cp tests/fuzz/corpus/* "$run"/ 2>/dev/null || true
    find tests stdlib examples ../shared/conformance -name '*.tdl' 2>/dev/null | while read -r f; do
      cp "$f" "$run/$(echo "$f" | tr '/' '_')"
    done
  elif [ "$t" = model ]; then
    cp tests/fuzz/corpus-model/* "$run"/
  else
    cp tests/fuzz/corpus-readers/* "$run"/
  fi
  "./build-fuzz/tests/fuzz/fuzz_$t" "$run" -max_total_time="$secs" -max_len=65536 \
    -timeout=10 -rss_limit_mb=4096 -artifact_prefix=tests/fuzz/ -print_final_stats=1
done
