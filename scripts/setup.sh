#!/usr/bin/env bash
# Installs what Accord needs to build and run, from Debian's packages only.
# Does nothing when everything is already there. Needs root (or sudo) only
# when something is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libssl-dev openssl libsqlite3-dev sqlite3 libnghttp2-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-dev
)
if [[ "${ACCORD_SETUP_EXTRA:-}" != "" ]]; then
  read -r -a extra <<<"${ACCORD_SETUP_EXTRA}"
  packages+=("${extra[@]}")
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: need root to install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
