#!/usr/bin/env bash
# Extracts the example data sets that Debian's python3-sklearn package ships
# (UCI handwritten digits, wine, breast cancer) into examples/data/, without
# installing scikit-learn: `apt-get download` + `dpkg-deb -x`. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
out=examples/data
want=(digits.csv.gz wine_data.csv breast_cancer.csv)
have=1
for f in "${want[@]}"; do [ -s "$out/$f" ] || have=0; done
if [ $have = 1 ]; then
  echo "fetch-example-data: examples/data is complete"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# apt-get download writes into the current folder; _apt may not be able to
# write a mktemp folder, which only costs a warning.
(cd "$tmp" && apt-get download python3-sklearn 2>&1 | grep -v "^W: Download is performed unsandboxed" || true)
deb=$(ls "$tmp"/python3-sklearn_*.deb 2>/dev/null | head -1)
if [ -z "$deb" ]; then
  echo "fetch-example-data: could not download python3-sklearn (run 'apt-get update' first?)" >&2
  exit 1
fi
dpkg-deb -x "$deb" "$tmp/x"
mkdir -p "$out"
for f in "${want[@]}"; do
  cp "$tmp/x/usr/lib/python3/dist-packages/sklearn/datasets/data/$f" "$out/$f"
done
echo "fetch-example-data: wrote ${want[*]} to $out"
