#!/usr/bin/env bash
# Creates, or completes, an Accord partnership's PKI: the partnership CA, the
# gateway, agent, organisation and auditor certificates with their SPIFFE
# URI SAN identities, an empty CRL, the gateway's audit tree-head signing key,
# and per organisation its referral sealing key and its agent's own audit
# tree-head signing key. See docs/PKI.md.
#
# Idempotent: whatever already exists in DIR is kept; only what is missing is
# created, and each file is reported as kept or created.
set -euo pipefail
umask 077

PKI_PROG="make-pki.sh"
# shellcheck source=pki-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/pki-lib.sh"

usage() {
  cat <<'EOF'
Usage: make-pki.sh --out DIR [--partnership FILE] [--partnership-id ID]
                   [--org ID]... [--auditor NAME]... [--days N] [--ca-days N]
                   [--crl-days N]

  --partnership FILE   Partnership textproto: takes its id, the ids of its
                       organisations and its auditors.
  --partnership-id ID  Trust domain (when no --partnership file is given).
  --org ID             An organisation (repeatable; added to the file's).
  --auditor NAME       An auditor name or spiffe://ID/auditor/NAME (repeatable).
  --out DIR            Where to write; created with mode 0700.
  --days N             Validity of leaf certificates (default 825).
  --ca-days N          Validity of a new CA certificate (default 3650).
  --crl-days N         Validity of the CRL (default 30); refresh it with
                       revoke.sh --out DIR before it lapses.

Writes in DIR: ca.pem/.key, gateway.pem/.key, agent-<org>.pem/.key,
org-<org>.pem/.key, auditor-<name>.pem/.key, crl.pem, hashed/,
audit-signing.key/.pub.pem (the gateway's log), audit-signing-<org>.key/.pub.pem
(each agent's own log) and referral-<org>.key/.pub.pem.
EOF
}

partnership_file=""
partnership_id=""
out=""
days=825
ca_days=3650
crl_days=30
orgs=()
auditors=()

while [[ $# -gt 0 ]]; do
  case "$1" in
    --partnership) partnership_file="${2:?--partnership needs a file}"; shift 2 ;;
    --partnership-id) partnership_id="${2:?--partnership-id needs an id}"; shift 2 ;;
    --org) orgs+=("${2:?--org needs an id}"); shift 2 ;;
    --auditor) auditors+=("${2:?--auditor needs a name}"); shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --days) days="${2:?--days needs a number}"; shift 2 ;;
    --ca-days) ca_days="${2:?--ca-days needs a number}"; shift 2 ;;
    --crl-days) crl_days="${2:?--crl-days needs a number}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; pki_die "unknown argument '$1'" ;;
  esac
done

pki_require_openssl
[[ -n "${out}" ]] || { usage >&2; pki_die "--out DIR is required"; }
pki_check_positive_int --days "${days}"
pki_check_positive_int --ca-days "${ca_days}"
pki_check_positive_int --crl-days "${crl_days}"

if [[ -n "${partnership_file}" ]]; then
  [[ -r "${partnership_file}" ]] || pki_die "cannot read ${partnership_file}"
  while read -r kind value; do
    case "${kind}" in
      partnership)
        if [[ -n "${partnership_id}" && "${partnership_id}" != "${value}" ]]; then
          pki_die "--partnership-id ${partnership_id} differs from ${partnership_file}'s id ${value}"
        fi
        partnership_id="${value}"
        ;;
      org) orgs+=("${value}") ;;
      auditor) auditors+=("${value}") ;;
    esac
  done < <(pki_parse_partnership "${partnership_file}")
fi

[[ -n "${partnership_id}" ]] ||
  pki_die "no partnership id: give --partnership FILE or --partnership-id ID"
pki_valid_segment "${partnership_id}" ||
  pki_die "partnership id '${partnership_id}' is not a valid trust domain (a-z, 0-9, '.', '-', '_')"

# Auditors may be given as names or as full identities of this partnership.
auditor_names=()
for a in ${auditors[@]+"${auditors[@]}"}; do
  if [[ "${a}" == spiffe://* ]]; then
    prefix="spiffe://${partnership_id}/auditor/"
    [[ "${a}" == "${prefix}"* ]] || pki_die "auditor '${a}' is not an identity in ${partnership_id}"
    a="${a#"${prefix}"}"
  fi
  pki_valid_segment "${a}" || pki_die "auditor name '${a}' is not valid (a-z, 0-9, '.', '-', '_')"
  auditor_names+=("${a}")
done
for o in ${orgs[@]+"${orgs[@]}"}; do
  pki_valid_segment "${o}" || pki_die "organisation id '${o}' is not valid (a-z, 0-9, '.', '-', '_')"
done
[[ ${#orgs[@]} -gt 0 ]] || pki_say "warning: no organisations given; only the CA and gateway are made"

# Remove duplicates, keeping order.
dedup() { awk '!seen[$0]++'; }
mapfile -t orgs < <(printf '%s\n' ${orgs[@]+"${orgs[@]}"} | dedup | sed '/^$/d')
mapfile -t auditor_names < <(printf '%s\n' ${auditor_names[@]+"${auditor_names[@]}"} | dedup | sed '/^$/d')

mkdir -p "${out}"
chmod 700 "${out}"
out="$(cd "${out}" && pwd)"
pki_say "partnership ${partnership_id} in ${out}: ${#orgs[@]} organisations, ${#auditor_names[@]} auditors"

pki_init_ca_db "${out}"
pki_make_ca "${out}" "${partnership_id}" "${ca_days}"

p="${partnership_id}"
loopback="DNS:localhost,IP:127.0.0.1"

pki_issue "${out}" gateway "/O=${p}/OU=gateway/CN=gateway" \
  "URI:spiffe://${p}/gateway,${loopback}" "serverAuth,clientAuth" "${days}"
for o in ${orgs[@]+"${orgs[@]}"}; do
  pki_issue "${out}" "agent-${o}" "/O=${p}/OU=agent/CN=${o}" \
    "URI:spiffe://${p}/agent/${o},${loopback}" "serverAuth,clientAuth" "${days}"
  pki_issue "${out}" "org-${o}" "/O=${p}/OU=org/CN=${o}" \
    "URI:spiffe://${p}/org/${o}" "clientAuth" "${days}"
done
for a in ${auditor_names[@]+"${auditor_names[@]}"}; do
  pki_issue "${out}" "auditor-${a}" "/O=${p}/OU=auditor/CN=${a}" \
    "URI:spiffe://${p}/auditor/${a}" "clientAuth" "${days}"
done

if [[ -f "${out}/crl.pem" ]]; then
  pki_say "kept      crl.pem"
  pki_update_hashed "${out}"
else
  pki_gen_crl "${out}" "${crl_days}"
  pki_say "created   crl.pem (${crl_days} days) and hashed/"
fi

pki_keypair "${out}" audit-signing ED25519
for o in ${orgs[@]+"${orgs[@]}"}; do
  pki_keypair "${out}" "referral-${o}" X25519
  # Each agent signs its own audit log's tree heads: the private key stays
  # with that agent (mode 0600), the public key goes to whoever audits it.
  pki_keypair "${out}" "audit-signing-${o}" ED25519
done

pki_say "done"
