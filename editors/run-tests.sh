#!/usr/bin/env bash
# Runs the editor-support test suites and prints one summary line:
#   vscode  - `npm ci` + `npm test` (TextMate grammar tests, vscode-tmgrammar-test)
#             and `vsce package` into a temporary folder (the .vsix must build)
#   vim     - headless Vim: syntax groups at chosen positions, indentation (vim/test/run.sh)
#   emacs   - ERT: font-lock faces, indentation, eglot entry (emacs/tdl-mode-test.el)
# Exits non-zero if any suite fails. Needs node/npm, vim and emacs
# (scripts/install-deps.sh installs them). Usage: editors/run-tests.sh [vscode|vim|emacs]...
set -u

here="$(cd "$(dirname "$0")" && pwd)"
suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(vscode vim emacs)

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "missing: $1 (install it, e.g. with scripts/install-deps.sh)"
    return 1
  fi
}

suite_vscode() {
  need node && need npm || return 1
  cd "$here/vscode" || return 1
  echo "--- npm ci"
  npm ci --no-audit --no-fund --prefer-offline --loglevel=error || return 1
  echo "--- npm test (grammar tests)"
  npm test || return 1
  echo "--- vsce package"
  local tmp
  tmp="$(mktemp -d)"
  npx --no-install vsce package --allow-missing-repository --skip-license \
      --out "$tmp/tdl.vsix" >"$tmp/vsce.log" 2>&1
  local rc=$?
  if [ $rc -eq 0 ] && [ -s "$tmp/tdl.vsix" ]; then
    echo "vsce: built $(basename "$tmp/tdl.vsix") ($(wc -c <"$tmp/tdl.vsix") bytes)"
  else
    cat "$tmp/vsce.log"
    echo "vsce: packaging failed"
    rc=1
  fi
  rm -rf "$tmp"
  return $rc
}

suite_vim() {
  need vim || return 1
  "$here/vim/test/run.sh"
}

suite_emacs() {
  need emacs || return 1
  cd "$here/emacs" || return 1
  emacs -Q --batch -l tdl-mode.el -l tdl-mode-test.el -f ert-run-tests-batch-and-exit 2>&1
}

summary=()
failed=0
for s in "${suites[@]}"; do
  case "$s" in
    vscode|vim|emacs) ;;
    *) echo "unknown suite: $s (expected vscode, vim or emacs)"; exit 2 ;;
  esac
  echo "=== editors: $s"
  start=$(date +%s)
  ( "suite_$s" )
  rc=$?
  secs=$(( $(date +%s) - start ))
  if [ $rc -eq 0 ]; then
    echo "=== editors: $s PASSED (${secs}s)"
    summary+=("$s PASS")
  else
    echo "=== editors: $s FAILED (exit $rc, ${secs}s)"
    summary+=("$s FAIL")
    failed=$((failed + 1))
  fi
  echo
done

passed=$(( ${#suites[@]} - failed ))
line=$(IFS=,; echo "${summary[*]}")
echo "editors: ${passed}/${#suites[@]} suites passed (${line//,/, })"
[ $failed -eq 0 ]
