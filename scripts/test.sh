#!/usr/bin/env bash
# Sets up what is missing, builds, and runs the whole test suite:
#  1. build/:     the normal build (g++); unit and integration tests (real
#                 gateway and agents on loopback with the PKI from deploy/pki).
#  2. build-san/: one clang build of every library, program and test with
#                 AddressSanitizer, UndefinedBehaviorSanitizer, libFuzzer's
#                 coverage instrumentation, -Wthread-safety and warnings as
#                 errors (the thread-safety annotations are checked on all of
#                 the code). Two passes use it:
#                   fuzz: every fuzz target runs for a bounded time
#                         (ACCORD_FUZZ_SECONDS, default 20) from its corpus
#                         in the repository;
#                   asan: the unit and integration tests again, under the
#                         sanitizers.
# ACCORD_TEST_PASSES selects passes (default "main fuzz asan"). ccache is used
# when present.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
passes="${ACCORD_TEST_PASSES:-main fuzz asan}"
fuzz_seconds="${ACCORD_FUZZ_SECONDS:-20}"
start=$(date +%s)

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
elapsed() { echo "$(( $(date +%s) - start ))s"; }

# build_dir DIR LOG: builds everything in DIR.
build_dir() {
  local dir="$1" log="$2"
  if ! cmake --build "${dir}" -j"${jobs}" >"${log}" 2>&1; then
    grep -E "error|Error|undefined reference" -A4 "${log}" | head -150
    echo "test: build in ${dir} FAILED (log in ${log})" >&2
    exit 1
  fi
}

if [[ " ${passes} " == *" main "* ]]; then
  scripts/build.sh
  echo "== unit and integration tests ($(elapsed))"
  ctest --test-dir build --output-on-failure -j"${jobs}" --timeout 600
fi

if [[ " ${passes} " == *" fuzz "* || " ${passes} " == *" asan "* ]]; then
  scripts/setup.sh
  if ! command -v clang++ >/dev/null; then
    echo "test: clang++ not found; the sanitizer build needs clang (scripts/setup.sh)" >&2
    exit 1
  fi
  # -O1 with line tables only keeps the build short and the reports readable.
  echo "== clang sanitizer build of everything ($(elapsed))"
  CC=clang CXX=clang++ cmake -S . -B build-san -DACCORD_FUZZ=ON -DACCORD_SANITIZE=ON \
    -DACCORD_FUZZ_SECONDS="${fuzz_seconds}" -DCMAKE_BUILD_TYPE=None \
    "-DCMAKE_CXX_FLAGS=-O1 -g1" "-DCMAKE_C_FLAGS=-O1 -g1" -DACCORD_WERROR=ON \
    "${launcher[@]}" >/dev/null
  build_dir build-san build-san/build.log
fi

if [[ " ${passes} " == *" fuzz "* ]]; then
  echo "== fuzz targets, ${fuzz_seconds}s each ($(elapsed))"
  ctest --test-dir build-san -L fuzz --output-on-failure -j"${jobs}"
fi

if [[ " ${passes} " == *" asan "* ]]; then
  echo "== unit and integration tests under ASan+UBSan ($(elapsed))"
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}" \
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan.supp}" \
    ctest --test-dir build-san -LE fuzz --output-on-failure -j"${jobs}" --timeout 900
fi
echo "== all passes done in $(elapsed)"
