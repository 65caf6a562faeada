#!/usr/bin/env bash
# Revokes certificates issued by an Accord partnership CA and re-signs the
# CRL (crl.pem and its hashed/ entry). With no certificate it only re-signs
# the CRL, which must be done before the current one's nextUpdate. Accord
# reloads the CRL from disk; nothing needs restarting. See docs/PKI.md.
set -euo pipefail
umask 077

PKI_PROG="revoke.sh"
# shellcheck source=pki-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/pki-lib.sh"

usage() {
  cat <<'EOF'
Usage: revoke.sh --out DIR [--reason REASON] [--crl-days N] [CERT.pem]...

  --out DIR        The partnership PKI directory made by make-pki.sh.
  --reason REASON  unspecified (default), keyCompromise, affiliationChanged,
                   superseded or cessationOfOperation.
  --crl-days N     Validity of the new CRL (default 30).
EOF
}

out=""
reason="unspecified"
crl_days=30
certs=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --reason) reason="${2:?--reason needs a value}"; shift 2 ;;
    --crl-days) crl_days="${2:?--crl-days needs a number}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; pki_die "unknown option '$1'" ;;
    *) certs+=("$1"); shift ;;
  esac
done

pki_require_openssl
[[ -n "${out}" ]] || { usage >&2; pki_die "--out DIR is required"; }
pki_check_positive_int --crl-days "${crl_days}"
case "${reason}" in
  unspecified | keyCompromise | affiliationChanged | superseded | cessationOfOperation) ;;
  *) pki_die "unknown revocation reason '${reason}'" ;;
esac
for f in ca.pem ca.key openssl-ca.cnf index.txt; do
  [[ -f "${out}/${f}" ]] || pki_die "${out}/${f} missing: not a PKI directory made by make-pki.sh"
done
out="$(cd "${out}" && pwd)"
pki_env "${out}"

for cert in ${certs[@]+"${certs[@]}"}; do
  [[ -r "${cert}" ]] || pki_die "cannot read ${cert}"
  # Only this CA's certificates (expired ones included) can be revoked here.
  openssl verify -CAfile "${out}/ca.pem" -no_check_time "${cert}" >/dev/null 2>&1 ||
    pki_die "${cert} was not issued by ${out}/ca.pem"
  serial="$(openssl x509 -noout -serial -in "${cert}")"
  serial="${serial#serial=}"
  if log="$(openssl ca -config "${out}/openssl-ca.cnf" -revoke "${cert}" \
    -crl_reason "${reason}" 2>&1)"; then
    pki_say "revoked   ${cert} (serial ${serial}, ${reason})"
  elif [[ "${log}" == *"Already revoked"* ]]; then
    pki_say "kept      ${cert} (serial ${serial} already revoked)"
  else
    pki_die "could not revoke ${cert}: ${log}"
  fi
done

pki_gen_crl "${out}" "${crl_days}"
pki_say "signed    crl.pem (${crl_days} days) and updated hashed/"
