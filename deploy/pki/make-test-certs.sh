#!/usr/bin/env bash
# Certificates that Accord must refuse, for the test suite's refusal cases.
# Run after make-pki.sh on the same DIR; uses the real partnership CA there
# except where stated. Never install these in a real deployment.
#
#   rogue-ca.pem/.key                  an unrelated CA
#   rogue-org-police.pem/.key          spiffe://<p>/org/police, signed by the rogue CA
#   expired-org-police.pem/.key        valid identity, validity ended in the past
#   not-yet-valid-org-police.pem/.key  valid identity, validity starts in a year
#   no-uri-org-police.pem/.key         no URI SAN at all (DNS:localhost only)
#   server-only-org-police.pem/.key    valid identity, serverAuth only (no clientAuth)
#   unknown-org.pem/.key               spiffe://<p>/org/unknown-org
#   other-domain-org-police.pem/.key   spiffe://other.accord/org/police
#   revoked-org-police.pem/.key        valid identity, revoked in crl.pem
#
# Idempotent like make-pki.sh: existing files are kept.
set -euo pipefail
umask 077

PKI_PROG="make-test-certs.sh"
# shellcheck source=pki-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/pki-lib.sh"

usage() {
  echo "Usage: make-test-certs.sh --out DIR --partnership-id ID [--crl-days N]"
}

out=""
p=""
crl_days=30
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --partnership-id) p="${2:?--partnership-id needs an id}"; shift 2 ;;
    --crl-days) crl_days="${2:?--crl-days needs a number}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; pki_die "unknown argument '$1'" ;;
  esac
done

pki_require_openssl
[[ -n "${out}" && -n "${p}" ]] || { usage >&2; pki_die "--out and --partnership-id are required"; }
pki_valid_segment "${p}" || pki_die "partnership id '${p}' is not a valid trust domain"
for f in ca.pem ca.key openssl-ca.cnf index.txt; do
  [[ -f "${out}/${f}" ]] || pki_die "${out}/${f} missing: run make-pki.sh --out ${out} first"
done
out="$(cd "${out}" && pwd)"
pki_env "${out}"

ts() { date -u -d "$1" +%Y%m%d%H%M%SZ; }
police="URI:spiffe://${p}/org/police"

# The rogue CA and its certificate, made with `openssl x509` so that nothing
# touches the real CA's database.
if [[ -f "${out}/rogue-ca.pem" && -f "${out}/rogue-ca.key" ]]; then
  pki_say "kept      rogue-ca.pem"
else
  openssl req -x509 -new -config "${out}/openssl-ca.cnf" -extensions ext_ca \
    -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
    -keyout "${out}/rogue-ca.key" -out "${out}/rogue-ca.pem" -days 3650 \
    -subj "/O=${p}/CN=${p} partnership CA" 2>/dev/null || pki_die "could not make rogue-ca.pem"
  chmod 600 "${out}/rogue-ca.key"
  chmod 644 "${out}/rogue-ca.pem"
  pki_say "created   rogue-ca.pem (same subject as the real CA, different key)"
fi
if [[ -f "${out}/rogue-org-police.pem" && -f "${out}/rogue-org-police.key" ]]; then
  pki_say "kept      rogue-org-police.pem"
else
  openssl req -new -config "${out}/openssl-ca.cnf" \
    -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "${out}/rogue-org-police.key" -out "${out}/rogue-org-police.csr" \
    -subj "/O=${p}/OU=org/CN=police" 2>/dev/null || pki_die "could not make rogue request"
  ACCORD_SAN="${police}" ACCORD_EKU="clientAuth" openssl x509 -req \
    -in "${out}/rogue-org-police.csr" -CA "${out}/rogue-ca.pem" -CAkey "${out}/rogue-ca.key" \
    -extfile "${out}/openssl-ca.cnf" -extensions ext_leaf -days 825 -sha256 \
    -out "${out}/rogue-org-police.pem" 2>/dev/null || pki_die "could not sign rogue-org-police.pem"
  rm -f "${out}/rogue-org-police.csr"
  chmod 600 "${out}/rogue-org-police.key"
  chmod 644 "${out}/rogue-org-police.pem"
  pki_say "created   rogue-org-police.pem (${police}, signed by rogue-ca.pem)"
fi

pki_issue "${out}" expired-org-police "/O=${p}/OU=org/CN=police" "${police}" clientAuth 1 \
  -startdate "$(ts '-30 days')" -enddate "$(ts '-1 day')"
pki_issue "${out}" not-yet-valid-org-police "/O=${p}/OU=org/CN=police" "${police}" clientAuth 1 \
  -startdate "$(ts '+365 days')" -enddate "$(ts '+730 days')"
pki_issue "${out}" no-uri-org-police "/O=${p}/OU=org/CN=police" \
  "DNS:localhost,IP:127.0.0.1" clientAuth 825
pki_issue "${out}" server-only-org-police "/O=${p}/OU=org/CN=police" "${police}" serverAuth 825
pki_issue "${out}" unknown-org "/O=${p}/OU=org/CN=unknown-org" \
  "URI:spiffe://${p}/org/unknown-org" clientAuth 825
pki_issue "${out}" other-domain-org-police "/O=other.accord/OU=org/CN=police" \
  "URI:spiffe://other.accord/org/police" clientAuth 825

if [[ -f "${out}/revoked-org-police.pem" && -f "${out}/revoked-org-police.key" ]]; then
  pki_say "kept      revoked-org-police.pem"
else
  pki_issue "${out}" revoked-org-police "/O=${p}/OU=org/CN=police" "${police}" clientAuth 825
  "$(dirname "${BASH_SOURCE[0]}")/revoke.sh" --out "${out}" --reason keyCompromise \
    --crl-days "${crl_days}" "${out}/revoked-org-police.pem" | sed 's/^revoke.sh: /  /'
fi

pki_say "done"
