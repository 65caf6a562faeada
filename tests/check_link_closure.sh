#!/usr/bin/env bash
# Checks that programs built from Accord's libraries link nothing they should
# not: each PROGRAM's dynamic dependencies (ELF NEEDED entries) and, when the
# build tree has it, its link command must not name a library matching
# FORBIDDEN (an extended regular expression).
#
#   check_link_closure.sh FORBIDDEN PROGRAM...
#
# ctest runs it for the matching, policy and audit test programs with
# 'grpc|sqlite' (linkage, policy) or 'grpc' (audit): see tests/CMakeLists.txt.
set -euo pipefail

forbidden="${1:?usage: check_link_closure.sh FORBIDDEN PROGRAM...}"
shift
[[ $# -gt 0 ]] || { echo "check_link_closure.sh: no program given" >&2; exit 2; }

status=0
for program in "$@"; do
  if [[ ! -x "${program}" ]]; then
    echo "check_link_closure.sh: ${program}: not an executable" >&2
    status=1
    continue
  fi
  ok=1
  needed="$(readelf -d "${program}" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')"
  if bad="$(grep -E "${forbidden}" <<<"${needed}")"; then
    echo "$(basename "${program}") needs $(tr '\n' ' ' <<<"${bad}")(forbidden: ${forbidden})"
    ok=0
  fi
  # The link command (Makefile generator): catches a library linked but
  # dropped by --as-needed, which would still be a dependency of the target.
  name="$(basename "${program}")"
  link_txt="$(find "$(dirname "${program}")/.." -path "*/CMakeFiles/${name}.dir/link.txt" 2>/dev/null | head -n 1)"
  if [[ -n "${link_txt}" ]]; then
    if bad="$(tr ' ' '\n' <"${link_txt}" | grep -E "${forbidden}" | sort -u)"; then
      echo "${name}'s link command names $(tr '\n' ' ' <<<"${bad}")(forbidden: ${forbidden})"
      ok=0
    fi
  fi
  if [[ ${ok} -eq 1 ]]; then
    echo "${name}: no library matching '${forbidden}'"
  else
    status=1
  fi
done
exit "${status}"
