#!/usr/bin/env bash
# Configures and builds Accord into build/ (programs in build/bin/).
#   scripts/build.sh [extra cmake args...]
# ACCORD_BUILD_TARGETS="a b" builds only those targets.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
# RelWithDebInfo with line tables only (-g1): backtraces and profiles keep
# their file:line, and the build is about a sixth shorter than with -g.
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" \
  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" -DACCORD_WERROR=ON \
  "${launcher[@]}" "$@" >/dev/null
targets=()
for t in ${ACCORD_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
echo "build: compiling (log in build/build.log)"
if ! cmake --build build -j"$(nproc)" "${targets[@]}" >build/build.log 2>&1; then
  grep -E "error|Error|undefined reference" -A4 build/build.log | head -150
  echo "build: FAILED" >&2
  exit 1
fi
