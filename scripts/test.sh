#!/usr/bin/env bash
# Sets up what is missing, builds, and runs the whole test suite: unit tests,
# integration tests (real gateway and agents on loopback with the PKI from
# deploy/pki), and the libFuzzer targets for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

scripts/build.sh
echo "== unit and integration tests"
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 600

