#!/usr/bin/env bash
# Sets up what is missing, builds, and runs the whole test suite:
#  1. build/:      the normal build; unit and integration tests (real gateway
#                  and agents on loopback with the PKI from deploy/pki).
#  2. build-fuzz/: clang with libFuzzer, ASan and UBSan; every fuzz target
#                  runs for a bounded time (ACCORD_FUZZ_SECONDS, default 20)
#                  from its corpus in the repository.
#  3. build-asan/: AddressSanitizer + UndefinedBehaviorSanitizer build; the
#                  unit and integration tests again.
# Each pass builds only the targets it runs. ACCORD_TEST_PASSES selects passes
# (default "main fuzz asan"). ccache is used when present.
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

# build_dir DIR LOG TARGETS...: builds TARGETS (or everything) in DIR.
build_dir() {
  local dir="$1" log="$2"
  shift 2
  local targets=()
  for t in "$@"; do targets+=(--target "$t"); done
  if ! cmake --build "${dir}" -j"${jobs}" "${targets[@]}" >"${log}" 2>&1; then
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

# Sanitizer builds: -O1 with line tables only, which keeps the builds short
# and the reports readable.
san_flags=(-DCMAKE_BUILD_TYPE=None "-DCMAKE_CXX_FLAGS=-O1 -g1" "-DCMAKE_C_FLAGS=-O1 -g1"
  -DACCORD_WERROR=ON "${launcher[@]}")

if [[ " ${passes} " == *" fuzz "* ]]; then
  if ! command -v clang++ >/dev/null; then
    echo "test: clang++ not found; the fuzz pass needs clang (scripts/setup.sh)" >&2
    exit 1
  fi
  echo "== fuzz targets, ${fuzz_seconds}s each ($(elapsed))"
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -DACCORD_FUZZ=ON \
    -DACCORD_FUZZ_SECONDS="${fuzz_seconds}" "${san_flags[@]}" >/dev/null
  mapfile -t fuzzers < <(ctest --test-dir build-fuzz -N -L fuzz |
    sed -n 's/^ *Test *#[0-9]*: *//p')
  echo "build-fuzz: compiling ${fuzzers[*]}"
  build_dir build-fuzz build-fuzz/build.log "${fuzzers[@]}"
  ctest --test-dir build-fuzz -L fuzz --output-on-failure -j"${jobs}"
fi

if [[ " ${passes} " == *" asan "* ]]; then
  echo "== unit and integration tests under ASan+UBSan ($(elapsed))"
  cmake -S . -B build-asan -DACCORD_SANITIZE=ON "${san_flags[@]}" >/dev/null
  echo "build-asan: compiling"
  build_dir build-asan build-asan/build.log
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}" \
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan.supp}" \
    ctest --test-dir build-asan -LE fuzz --output-on-failure -j"${jobs}" --timeout 900
fi
echo "== all passes done in $(elapsed)"
