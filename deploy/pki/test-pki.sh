#!/usr/bin/env bash
# Self-check of the partnership PKI tooling: runs make-pki.sh for the example
# partnership into a temporary directory and checks chains, CRL checking,
# SAN identities, key usages, key permissions, idempotence, revocation and
# the refusal-case certificates of make-test-certs.sh. Exits non-zero on any
# failure. Usage: test-pki.sh [PARTNERSHIP.textproto]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
partnership="${1:-${here}/../examples/partnership.textproto}"
p="northdale.accord"
orgs=(womens-centre rape-crisis refuge law-centre employment police childrens-services)

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
dir="${tmp}/pki"
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
pass() { echo "ok:   $*"; }

verify() {  # verify CERT -> 0 if it chains to the CA and is not revoked
  openssl verify -CAfile "${dir}/ca.pem" -CRLfile "${dir}/crl.pem" -crl_check "$1" >/dev/null 2>&1
}

sans() { openssl x509 -noout -ext subjectAltName -in "$1" 2>/dev/null | tail -n +2 | tr -d ' '; }
eku() { openssl x509 -noout -ext extendedKeyUsage -in "$1" 2>/dev/null | tail -n +2 | sed 's/^ *//'; }

check_leaf() {  # check_leaf NAME EXPECTED_SANS EXPECTED_EKU
  local cert="${dir}/$1.pem" key="${dir}/$1.key"
  [[ -f "${cert}" && -f "${key}" ]] || { fail "$1: missing"; return; }
  verify "${cert}" || fail "$1: does not verify against ca.pem with crl.pem"
  [[ "$(sans "${cert}")" == "$2" ]] || fail "$1: SAN '$(sans "${cert}")', want '$2'"
  [[ "$(eku "${cert}")" == "$3" ]] || fail "$1: extendedKeyUsage '$(eku "${cert}")', want '$3'"
  [[ "$(stat -c %a "${key}")" == 600 ]] || fail "$1.key: mode $(stat -c %a "${key}"), want 600"
  # The key belongs to the certificate.
  [[ "$(openssl x509 -noout -pubkey -in "${cert}")" == "$(openssl pkey -pubout -in "${key}")" ]] ||
    fail "$1: key does not match certificate"
  pass "$1"
}

start=$(date +%s%N)
"${here}/make-pki.sh" --partnership "${partnership}" --out "${dir}" >"${tmp}/first.log" ||
  { cat "${tmp}/first.log"; fail "make-pki.sh failed"; exit 1; }
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
echo "make-pki.sh took ${elapsed_ms} ms"

[[ "$(stat -c %a "${dir}")" == 700 ]] || fail "output directory mode $(stat -c %a "${dir}"), want 700"
openssl x509 -noout -ext basicConstraints -in "${dir}/ca.pem" | grep -F >/dev/null "CA:TRUE" ||
  fail "ca.pem: not CA:TRUE"
openssl x509 -noout -ext keyUsage -in "${dir}/ca.pem" | grep -F >/dev/null "Certificate Sign, CRL Sign" ||
  fail "ca.pem: keyUsage is not keyCertSign, cRLSign"
openssl pkey -in "${dir}/ca.key" -noout -text 2>/dev/null | grep -F >/dev/null "NIST CURVE: P-256" ||
  fail "ca.key: not P-256"

loop="DNS:localhost,IPAddress:127.0.0.1"
both="TLS Web Server Authentication, TLS Web Client Authentication"
client="TLS Web Client Authentication"
check_leaf gateway "URI:spiffe://${p}/gateway,${loop}" "${both}"
for o in "${orgs[@]}"; do
  check_leaf "agent-${o}" "URI:spiffe://${p}/agent/${o},${loop}" "${both}"
  check_leaf "org-${o}" "URI:spiffe://${p}/org/${o}" "${client}"
  [[ "$(stat -c %a "${dir}/referral-${o}.key")" == 600 ]] || fail "referral-${o}.key not 0600"
  openssl pkey -pubin -in "${dir}/referral-${o}.pub.pem" -noout -text 2>/dev/null |
    grep -F "X25519 Public-Key" >/dev/null || fail "referral-${o}.pub.pem: not X25519"
  [[ "$(stat -c %a "${dir}/audit-signing-${o}.key")" == 600 ]] || fail "audit-signing-${o}.key not 0600"
  openssl pkey -pubin -in "${dir}/audit-signing-${o}.pub.pem" -noout -text 2>/dev/null |
    grep -F "ED25519 Public-Key" >/dev/null || fail "audit-signing-${o}.pub.pem: not Ed25519"
done
check_leaf auditor-dpo "URI:spiffe://${p}/auditor/dpo" "${client}"
[[ "$(stat -c %a "${dir}/audit-signing.key")" == 600 ]] || fail "audit-signing.key not 0600"
openssl pkey -pubin -in "${dir}/audit-signing.pub.pem" -noout -text 2>/dev/null |
  grep -F "ED25519 Public-Key" >/dev/null || fail "audit-signing.pub.pem: not Ed25519"

# Unique serial numbers.
dups="$(for f in "${dir}"/*.pem; do openssl x509 -noout -serial -in "${f}" 2>/dev/null || true; done |
  sort | uniq -d)"
[[ -z "${dups}" ]] || fail "duplicate serial numbers: ${dups}"

# The hashed directory works as a CA path with CRL checking.
hash="$(openssl x509 -hash -noout -in "${dir}/ca.pem")"
[[ -f "${dir}/hashed/${hash}.0" && -f "${dir}/hashed/${hash}.r0" ]] || fail "hashed/ entries missing"
openssl verify -CApath "${dir}/hashed" -crl_check "${dir}/org-police.pem" >/dev/null 2>&1 ||
  fail "org-police.pem does not verify with -CApath hashed -crl_check"

# Idempotent: a second run keeps every file.
sum_before="$(cd "${dir}" && sha256sum ./*.pem ./*.key)"
"${here}/make-pki.sh" --partnership "${partnership}" --out "${dir}" >"${tmp}/second.log" ||
  fail "second make-pki.sh run failed"
grep -q "created" "${tmp}/second.log" && fail "second run created files: $(grep created "${tmp}/second.log")"
[[ "$(cd "${dir}" && sha256sum ./*.pem ./*.key)" == "${sum_before}" ]] ||
  fail "second run changed files"
# ... and only makes what is missing.
rm "${dir}/org-refuge.pem"
"${here}/make-pki.sh" --partnership "${partnership}" --out "${dir}" >"${tmp}/third.log" ||
  fail "third make-pki.sh run failed"
[[ "$(grep -c -E "created|reissued" "${tmp}/third.log")" == 1 ]] ||
  fail "after removing one certificate, the run did more than reissue it"
check_leaf org-refuge "URI:spiffe://${p}/org/refuge" "${client}"
pass "idempotent"

# Flags instead of a partnership file.
"${here}/make-pki.sh" --partnership-id test.accord --org alpha --auditor bob \
  --out "${tmp}/flags" --days 10 >/dev/null || fail "make-pki.sh with flags failed"
[[ "$(sans "${tmp}/flags/org-alpha.pem")" == "URI:spiffe://test.accord/org/alpha" ]] ||
  fail "--org alpha: wrong SAN"
[[ -f "${tmp}/flags/auditor-bob.pem" ]] || fail "--auditor bob: missing"
pass "flags"

# Revocation.
"${here}/revoke.sh" --out "${dir}" "${dir}/org-employment.pem" >/dev/null || fail "revoke.sh failed"
if verify "${dir}/org-employment.pem"; then fail "revoked org-employment.pem still verifies"; fi
log="$(openssl verify -CApath "${dir}/hashed" -crl_check "${dir}/org-employment.pem" 2>&1 || true)"
[[ "${log}" == *"certificate revoked"* ]] || fail "hashed/ CRL does not revoke org-employment.pem"
verify "${dir}/org-police.pem" || fail "org-police.pem no longer verifies after another revocation"
"${here}/revoke.sh" --out "${dir}" "${dir}/org-employment.pem" >/dev/null ||
  fail "revoking twice is not idempotent"
if "${here}/revoke.sh" --out "${dir}" "${tmp}/flags/org-alpha.pem" >/dev/null 2>&1; then
  fail "revoke.sh accepted a certificate from another CA"
fi
pass "revocation"

# Refusal-case certificates.
"${here}/make-test-certs.sh" --out "${dir}" --partnership-id "${p}" >"${tmp}/test-certs.log" ||
  { cat "${tmp}/test-certs.log"; fail "make-test-certs.sh failed"; }
for n in rogue-ca rogue-org-police expired-org-police not-yet-valid-org-police no-uri-org-police \
  server-only-org-police unknown-org other-domain-org-police revoked-org-police; do
  [[ -f "${dir}/${n}.pem" && -f "${dir}/${n}.key" ]] || fail "${n}.pem/.key missing"
  [[ "$(stat -c %a "${dir}/${n}.key")" == 600 ]] || fail "${n}.key not 0600"
done
expect_refused() {  # expect_refused NAME REASON_SUBSTRING
  local log
  log="$(openssl verify -CAfile "${dir}/ca.pem" -CRLfile "${dir}/crl.pem" -crl_check \
    -purpose sslclient "${dir}/$1.pem" 2>&1)" && { fail "$1 verifies; it must not"; return; }
  [[ "${log}" == *"$2"* ]] || fail "$1 refused for the wrong reason: ${log}"
}
expect_refused rogue-org-police "unable to get local issuer certificate"
expect_refused expired-org-police "certificate has expired"
expect_refused not-yet-valid-org-police "certificate is not yet valid"
expect_refused server-only-org-police "unsuitable certificate purpose"
expect_refused revoked-org-police "certificate revoked"
for n in no-uri-org-police unknown-org other-domain-org-police; do
  verify "${dir}/${n}.pem" || fail "${n} must chain (Accord refuses it by identity)"
done
[[ "$(sans "${dir}/no-uri-org-police.pem")" != *URI:* ]] || fail "no-uri-org-police has a URI SAN"
[[ "$(sans "${dir}/other-domain-org-police.pem")" == "URI:spiffe://other.accord/org/police" ]] ||
  fail "other-domain-org-police: wrong SAN"
[[ "$(sans "${dir}/unknown-org.pem")" == "URI:spiffe://${p}/org/unknown-org" ]] ||
  fail "unknown-org: wrong SAN"
pass "test certificates"

if [[ ${failures} -ne 0 ]]; then
  echo "${failures} check(s) failed" >&2
  exit 1
fi
echo "all PKI checks passed"
