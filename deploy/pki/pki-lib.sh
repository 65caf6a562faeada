# shellcheck shell=bash
# Shared functions for the Accord partnership PKI scripts (make-pki.sh,
# make-test-certs.sh, revoke.sh, test-pki.sh). Sourced, not run.
#
# The CA state lives next to the certificates in the output directory:
#   openssl-ca.cnf   the one `openssl ca` configuration (per-certificate values
#                    come from ACCORD_* environment variables, so no
#                    configuration file is written per certificate)
#   index.txt        the CA database (issued and revoked certificates)
#   crlnumber        the next CRL number
#   issued/          a copy of every issued certificate, by serial
# Requires bash and the OpenSSL 3 command-line tool.

pki_die() {
  echo "${PKI_PROG:-pki}: error: $*" >&2
  exit 1
}

pki_say() {
  echo "${PKI_PROG:-pki}: $*"
}

pki_require_openssl() {
  command -v openssl >/dev/null 2>&1 || pki_die "openssl not found (apt-get install openssl)"
  local version
  version="$(openssl version)"
  case "${version}" in
    "OpenSSL 3."*) ;;
    *) pki_die "OpenSSL 3 required, found: ${version}" ;;
  esac
}

# A partnership id, org id or auditor name: what runtime/identity.cc accepts
# as one path segment of a spiffe:// URI.
pki_valid_segment() {
  [[ "$1" =~ ^[a-z0-9][a-z0-9._-]{0,63}$ ]]
}

pki_check_positive_int() {
  [[ "$2" =~ ^[1-9][0-9]{0,5}$ ]] || pki_die "$1 must be a positive number of days, got '$2'"
}

# Writes DIR/openssl-ca.cnf and the CA database files if missing. The config
# finds its directory through ACCORD_PKI_DIR so that DIR can be moved.
pki_init_ca_db() {
  local dir="$1"
  mkdir -p "${dir}/issued"
  [[ -f "${dir}/index.txt" ]] || : >"${dir}/index.txt"
  [[ -f "${dir}/crlnumber" ]] || echo 01 >"${dir}/crlnumber"
  [[ -f "${dir}/openssl-ca.cnf" ]] && return 0
  cat >"${dir}/openssl-ca.cnf" <<'EOF'
# Accord partnership CA: configuration for `openssl ca` (written by
# deploy/pki/make-pki.sh). The scripts set ACCORD_PKI_DIR and, per
# certificate, ACCORD_SAN and ACCORD_EKU.
[ ca ]
default_ca = accord_ca

[ accord_ca ]
dir              = $ENV::ACCORD_PKI_DIR
database         = $dir/index.txt
new_certs_dir    = $dir/issued
certificate      = $dir/ca.pem
private_key      = $dir/ca.key
crlnumber        = $dir/crlnumber
default_md       = sha256
default_days     = 825
default_crl_days = 30
rand_serial      = yes
unique_subject   = no
email_in_dn      = no
copy_extensions  = none
policy           = accord_policy
crl_extensions   = ext_crl

[ accord_policy ]
organizationName       = supplied
organizationalUnitName = optional
commonName             = supplied

[ req ]
distinguished_name = req_dn
prompt             = no
string_mask        = utf8only

[ req_dn ]
O  = Accord
CN = Accord

[ ext_ca ]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash

[ ext_leaf ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = $ENV::ACCORD_EKU
subjectAltName         = $ENV::ACCORD_SAN
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ ext_crl ]
authorityKeyIdentifier = keyid:always
EOF
}

# Sets the environment every `openssl ca` / `openssl req` call needs.
pki_env() {
  export ACCORD_PKI_DIR="$1"
  export ACCORD_SAN="${ACCORD_SAN:-DNS:localhost}"
  export ACCORD_EKU="${ACCORD_EKU:-clientAuth}"
}

# pki_make_ca DIR PARTNERSHIP CA_DAYS: creates ca.pem/ca.key unless present.
pki_make_ca() {
  local dir="$1" partnership="$2" days="$3"
  if [[ -f "${dir}/ca.pem" && -f "${dir}/ca.key" ]]; then
    local subject
    subject="$(openssl x509 -noout -subject -nameopt multiline -in "${dir}/ca.pem")" ||
      pki_die "cannot read ${dir}/ca.pem"
    [[ "${subject}" == *"organizationName"*"= ${partnership}"$'\n'* ]] ||
      pki_die "${dir}/ca.pem is not the CA of partnership ${partnership}"
    pki_say "kept      ca.pem (partnership CA)"
    return 0
  fi
  if [[ -f "${dir}/ca.pem" || -f "${dir}/ca.key" ]]; then
    pki_die "${dir} holds only one of ca.pem and ca.key; restore the other or remove both" \
      "(removing the CA invalidates every certificate it issued)"
  fi
  pki_env "${dir}"
  openssl req -x509 -new -config "${dir}/openssl-ca.cnf" -extensions ext_ca \
    -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
    -keyout "${dir}/ca.key" -out "${dir}/ca.pem" -days "${days}" \
    -subj "/O=${partnership}/CN=${partnership} partnership CA" 2>/dev/null ||
    pki_die "could not create the partnership CA"
  chmod 600 "${dir}/ca.key"
  chmod 644 "${dir}/ca.pem"
  pki_say "created   ca.pem (partnership CA for ${partnership}, ${days} days)"
}

# pki_issue DIR NAME SUBJECT SAN EKU DAYS [extra `openssl ca` args...]
# Issues NAME.pem for NAME.key (a new P-256 key unless the key exists) signed
# by the CA in DIR. Keeps an existing NAME.pem.
pki_issue() {
  local dir="$1" name="$2" subject="$3" san="$4" eku="$5" days="$6"
  shift 6
  local key="${dir}/${name}.key" cert="${dir}/${name}.pem" csr="${dir}/${name}.csr"
  if [[ -f "${cert}" && -f "${key}" ]]; then
    pki_say "kept      ${name}.pem"
    return 0
  fi
  if [[ -f "${cert}" ]]; then
    pki_die "${cert} exists without its key ${name}.key; remove ${name}.pem to issue a new one"
  fi
  local what="created  "
  pki_env "${dir}"
  if [[ -f "${key}" ]]; then
    what="reissued "
    openssl req -new -config "${dir}/openssl-ca.cnf" -key "${key}" -out "${csr}" \
      -subj "${subject}" 2>/dev/null || pki_die "could not make a request for ${name}"
  else
    openssl req -new -config "${dir}/openssl-ca.cnf" \
      -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout "${key}" -out "${csr}" -subj "${subject}" 2>/dev/null ||
      pki_die "could not make a key and request for ${name}"
  fi
  chmod 600 "${key}"
  # Backdated by an hour so that a host whose clock is a little behind the
  # CA's does not see a new certificate as not yet valid.
  local log start=()
  [[ " $* " == *" -startdate "* ]] || start=(-startdate "$(date -u -d '-1 hour' +%Y%m%d%H%M%SZ)")
  if ! log="$(ACCORD_SAN="${san}" ACCORD_EKU="${eku}" openssl ca -batch -notext \
    -config "${dir}/openssl-ca.cnf" -extensions ext_leaf -days "${days}" \
    -in "${csr}" -out "${cert}" "${start[@]}" "$@" 2>&1)"; then
    rm -f "${csr}" "${cert}"
    pki_die "could not issue ${name}.pem: ${log}"
  fi
  rm -f "${csr}"
  chmod 644 "${cert}"
  pki_say "${what} ${name}.pem (${san}; ${eku})"
}

# pki_gen_crl DIR CRL_DAYS: (re)signs crl.pem from the CA database and puts
# the CA and the CRL under their hash names in DIR/hashed (the layout
# OpenSSL's -CApath and gRPC's crl_directory expect). Files are replaced by
# rename so a process reloading them never reads a partial file.
pki_gen_crl() {
  local dir="$1" days="$2" log
  pki_env "${dir}"
  if ! log="$(openssl ca -gencrl -config "${dir}/openssl-ca.cnf" -crldays "${days}" \
    -out "${dir}/crl.pem.tmp" 2>&1)"; then
    rm -f "${dir}/crl.pem.tmp"
    pki_die "could not sign the CRL: ${log}"
  fi
  chmod 644 "${dir}/crl.pem.tmp"
  mv -f "${dir}/crl.pem.tmp" "${dir}/crl.pem"
  pki_update_hashed "${dir}"
}

pki_update_hashed() {
  local dir="$1" hash
  mkdir -p "${dir}/hashed"
  chmod 755 "${dir}/hashed"
  hash="$(openssl x509 -hash -noout -in "${dir}/ca.pem")" || pki_die "cannot read ca.pem"
  local src dst
  for pair in "ca.pem:${hash}.0" "crl.pem:${hash}.r0"; do
    src="${dir}/${pair%%:*}"
    dst="${dir}/hashed/${pair##*:}"
    [[ -f "${src}" ]] || continue
    if ! cmp -s "${src}" "${dst}"; then
      cp "${src}" "${dst}.tmp"
      chmod 644 "${dst}.tmp"
      mv -f "${dst}.tmp" "${dst}"
    fi
  done
}

# pki_keypair DIR NAME ALGORITHM: NAME.key and NAME.pub.pem for an Ed25519 or
# X25519 key pair, unless present.
pki_keypair() {
  local dir="$1" name="$2" alg="$3"
  local key="${dir}/${name}.key" pub="${dir}/${name}.pub.pem"
  if [[ -f "${key}" && -f "${pub}" ]]; then
    pki_say "kept      ${name}.key"
    return 0
  fi
  local what="derived  "
  if [[ ! -f "${key}" ]]; then
    [[ -f "${pub}" ]] && pki_die "${pub} exists without ${name}.key; remove it to make a new pair"
    openssl genpkey -algorithm "${alg}" -out "${key}" 2>/dev/null ||
      pki_die "could not generate ${name}.key"
    what="created  "
  fi
  chmod 600 "${key}"
  openssl pkey -in "${key}" -pubout -out "${pub}" 2>/dev/null ||
    pki_die "could not write ${name}.pub.pem"
  chmod 644 "${pub}"
  pki_say "${what} ${name}.key + ${name}.pub.pem (${alg})"
}

# Prints "partnership <id>", "org <id>" and "auditor <value>" lines for a
# Partnership textproto (proto/accord/v1/config.proto). A small scanner that
# tracks nesting and quoted strings, so ids of nested messages (services,
# contacts) and braces inside strings are not mistaken for organisations.
pki_parse_partnership() {
  awk '
    function emit(field, value) {
      if (depth == 0 && field == "id") print "partnership " value
      else if (depth == 0 && field == "auditors") print "auditor " value
      else if (depth == 1 && stack[1] == "organisations" && field == "id") print "org " value
    }
    {
      line = $0; n = length(line); i = 1
      while (i <= n) {
        c = substr(line, i, 1)
        if (c == "#") break
        if (c == "\"" || c == "\047") {
          q = c; s = ""; i++
          while (i <= n) {
            c = substr(line, i, 1)
            if (c == "\\") { s = s substr(line, i, 2); i += 2; continue }
            if (c == q) break
            s = s c; i++
          }
          i++
          emit(field, s)
          continue
        }
        if (c == "{" || c == "<") { depth++; stack[depth] = name; name = ""; i++; continue }
        if (c == "}" || c == ">") { if (depth > 0) depth--; name = ""; i++; continue }
        if (c == ":") { field = name; i++; continue }
        if (c ~ /[A-Za-z_]/) {
          j = i
          while (j <= n && substr(line, j, 1) ~ /[A-Za-z0-9_.]/) j++
          name = substr(line, i, j - i); field = ""
          i = j
          continue
        }
        i++
      }
    }
  ' "$1"
}
