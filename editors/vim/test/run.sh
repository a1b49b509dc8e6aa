#!/usr/bin/env bash
# Runs the headless Vim test (syntax groups and indentation); exits non-zero on any mismatch.
set -u
cd "$(dirname "$0")"
rm -f results.txt
vim -Nu NONE -i NONE -es -S check.vim </dev/null
rc=$?
if [ -f results.txt ]; then
  grep -v '^ok ' results.txt || true
  echo "vim: $(grep -c '^ok ' results.txt) check(s) passed"
else
  echo "vim: no results written (vim exit $rc)"
  [ "$rc" -eq 0 ] && rc=1
fi
exit $rc
