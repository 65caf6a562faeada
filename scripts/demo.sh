#!/usr/bin/env bash
# The Northdale example partnership, end to end on loopback with SQLite:
# sets up what is missing, builds, creates the partnership's PKI and keys,
# starts the gateway and seven agents, loads synthetic records, runs sample
# queries through the gateway, follows a referral along a pathway (Rape Crisis
# -> Law Centre -> employment support) through each status change, shows the
# audit log and an agent's own log reconciled with it, and stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
ACCORD_BUILD_TARGETS="accord-gateway accord-agent accordctl" scripts/build.sh
bin="$root/build/bin"
run="$root/.demo"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# A fresh run directory laid out as the example configs expect.
rm -rf "$run/state" "$run/logs"
mkdir -p "$run/state" "$run/logs" "$run/keys"
chmod 700 "$run" "$run/keys"
cp deploy/examples/partnership.textproto "$run/"
rm -rf "$run/agreements" && cp -r deploy/examples/agreements "$run/agreements"
cp deploy/examples/config/*.textproto "$run/"
deploy/pki/make-pki.sh --partnership "$run/partnership.textproto" --out "$run/pki" >"$run/logs/pki.log"
orgs=(womens-centre rape-crisis refuge law-centre employment police childrens-services)
newkey() { [[ -f "$1" ]] || { openssl rand -hex 32 >"$1"; chmod 600 "$1"; }; }
newkey "$run/keys/linkage.key"
for org in "${orgs[@]}"; do newkey "$run/keys/pseudonym-$org.key"; done

pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT

wait_for() {  # wait_for LOG TEXT
  for _ in $(seq 1 200); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "demo: timed out waiting for '$2' in $1:" >&2
  cat "$1" >&2
  exit 1
}

say "Starting the gateway and seven agents on 127.0.0.1"
"$bin/accord-gateway" --config "$run/gateway.textproto" >"$run/logs/gateway.log" 2>&1 &
pids+=($!)
wait_for "$run/logs/gateway.log" "serving"
cat "$run/logs/gateway.log"
for org in "${orgs[@]}"; do
  "$bin/accord-agent" --config "$run/agent-$org.textproto" >"$run/logs/agent-$org.log" 2>&1 &
  pids+=($!)
done
for org in "${orgs[@]}"; do
  wait_for "$run/logs/agent-$org.log" "local API on port"
  cat "$run/logs/agent-$org.log"
done

export ACCORD_PKI="$run/pki" ACCORD_GATEWAY=127.0.0.1:17443
ctl() { "$bin/accordctl" "$@"; }
# Every call from a partner's system names the person acting; the data loads
# and inbox reads below run as each partner's IT lead, and each practitioner
# who acts is named with --user and --role.
export ACCORD_USER=partner-it ACCORD_ROLE=it-lead
agent_port() { grep -o 'local_listen_address: "[^"]*"' "$run/agent-$1.textproto" | cut -d'"' -f2; }

say "Each partner's own system loads its (synthetic) records into its agent"
for org in rape-crisis womens-centre refuge employment; do
  printf '%-14s ' "$org:"
  ctl agent load "deploy/examples/data/$org.textproto" --as "org-$org" --agent "$(agent_port "$org")"
done

say "The register of agreements in force"
ctl agreements --as org-police

say "Police: which partners are working with Zoë Ashworth-Hale, and whom do we contact?"
echo "(the police system derives tokens locally; her name never reaches the gateway)"
ctl query --as org-police --user pc-4471 --role public-protection-officer \
  --purpose safeguarding --involvement --linkage-key "$run/keys/linkage.key" \
  --given-name "Zoe" --family-name "Ashworth Hale" --dob 14/05/1991

say "Police: her risk information, which she consented to share with the police"
ctl query --as org-police --user pc-4471 --role public-protection-officer \
  --purpose safeguarding --category RISK --field date_of_birth,postcode,phone,ethnicity \
  --linkage-key "$run/keys/linkage.key" \
  --given-name "Zoë" --family-name "Ashworth-Hale" --dob 1991-05-14

say "Police: risk of serious harm to Precious Mbeki-Lund, without consent (approved, justified)"
ctl query --as org-police --user ds-1182 --role detective-sergeant \
  --purpose safeguarding --category RISK --field date_of_birth,postcode \
  --no-consent RISK_OF_SERIOUS_HARM --reason WOULD_PREJUDICE_PROTECTION \
  --justification "Ex-partner on bail, threats escalating; need current risk to plan protection" \
  --approver insp-0042:duty-inspector --not-told "telling her now could alert the ex-partner" \
  --linkage-key "$run/keys/linkage.key" \
  --given-name "Precious" --family-name "Mbeki-Lund" --dob 1986-11-02 || true

say "The employment charity asks the police for records: no agreement permits it"
ctl query --as org-employment --user coach-hana --role employment-coach --purpose crime-prevention --holder police \
  --linkage-key "$run/keys/linkage.key" \
  --given-name "Zoe" --family-name "Ashworth-Hale" --dob 1991-05-14 || true

say "Referral: Rape Crisis refers Zoë to the Law Centre for a protective order"
echo "(her agent finds her consent, keeps back what the agreement does not release,"
echo " and seals the content to the Law Centre agent's published key; the gateway"
echo " routes and audits it but cannot read it)"
# Rape Crisis's case system watches its outbox: every status change arrives.
# The watch runs until it is stopped (heartbeats keep it open while idle).
ctl referral watch --box outbox --as org-rape-crisis --agent "$(agent_port rape-crisis)" \
  >"$run/logs/rape-crisis-outbox.log" 2>&1 &
watch_pid=$!
pids+=($watch_pid)
sleep 0.5
sent=$(ctl referral send --as org-rape-crisis --agent "$(agent_port rape-crisis)" \
  --user isva-carys --role isva \
  --subject RC-2041 --to law-centre --service family-law --urgency soon \
  --contact given_name=Zoë --contact family_name=Ashworth-Hale \
  --contact phone="07700 900412" --contact safe_contact="Text first; weekdays 10:00-15:00" \
  --need "non-molestation order" --need "help returning to work" \
  --summary "Reported a sexual assault by a former partner in January 2026; he knows her address." \
  --idempotency-key demo-rc-2041-law)
echo "$sent"
rc_ref=$(awk '{print $2}' <<<"$sent")
referral_wait() {  # referral_wait ORG inbox|outbox ID STATE
  for _ in $(seq 1 100); do
    ctl referral "$2" --as "org-$1" --agent "$(agent_port "$1")" 2>/dev/null |
      grep -q "^$3 .* $4\$" && return 0
    sleep 0.1
  done
  echo "demo: $3 did not reach '$4' at $1" >&2
  exit 1
}
referral_wait rape-crisis outbox "$rc_ref" delivered

say "The Law Centre's inbox: the referral, opened by its own agent"
ctl referral inbox --as org-law-centre --agent "$(agent_port law-centre)"

say "The Law Centre works the referral; each change reaches Rape Crisis"
lc() { ctl referral update "$rc_ref" --as org-law-centre --agent "$(agent_port law-centre)" --user sol-farah --role solicitor "$@"; }
lc --state acknowledged
echo "Rape Crisis may not accept on the Law Centre's behalf:"
ctl referral update "$rc_ref" --state accepted --as org-rape-crisis --agent "$(agent_port rape-crisis)" || true
echo "Nor may the Law Centre close a referral it never accepted:"
lc --state closed --outcome need-met || true
lc --state accepted

say "The Law Centre refers her on to employment support (her story stays behind)"
ctl agent load deploy/examples/data/law-centre-intake.textproto --as org-law-centre --agent "$(agent_port law-centre)"
echo "Sending the case summary is refused by the Law Centre's own agent:"
ctl referral send --as org-law-centre --agent "$(agent_port law-centre)" \
  --subject LC-0007 --to employment --service skills --after "$rc_ref" \
  --contact given_name=Zoë --need "return to work" --summary "her story" || true
sent=$(ctl referral send --as org-law-centre --agent "$(agent_port law-centre)" \
  --user sol-farah --role solicitor \
  --subject LC-0007 --to employment --service skills --after "$rc_ref" \
  --contact given_name=Zoë --contact family_name=Ashworth-Hale --contact email=zoe.ah@mail.example \
  --need "return to work" --need "flexible hours" --idempotency-key demo-lc-0007-emp)
echo "$sent"
lc_ref=$(awk '{print $2}' <<<"$sent")
referral_wait law-centre outbox "$lc_ref" delivered
ctl referral inbox --as org-employment --agent "$(agent_port employment)"
ctl referral update "$lc_ref" --state accepted --as org-employment --agent "$(agent_port employment)" --user coach-hana --role employment-coach

say "The Law Centre closes its part: she got her order"
lc --state engaged
lc --state closed --outcome need-met
referral_wait rape-crisis outbox "$rc_ref" closed
sleep 0.3
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
echo "Rape Crisis's outbox watch saw, as each happened:"
cat "$run/logs/rape-crisis-outbox.log"

say "Rape Crisis follows the referral and the chain onwards"
ctl referral status "$rc_ref" --chain --as org-rape-crisis

say "Monitoring: each partner's system loads its engagements in the common dataset"
for org in womens-centre rape-crisis refuge law-centre employment; do
  printf '%-14s ' "$org:"
  ctl agent load "deploy/examples/data/monitoring/$org.textproto" --as "org-$org" --agent "$(agent_port "$org")"
done

say "The partnership coordinator's quarterly return: engagements by ethnic group, unique people,"
echo "data completeness and outcome change. Each agent counts its own; the gateway adds them up,"
echo "counts a woman known to two partners once without learning who she is, and hides small numbers"
ctl stats --as org-womens-centre --user coordinator-ag --role partnership-coordinator \
  --purpose monitoring --from 2026-04-01 --until 2027-04-01 --period quarter --by ethnic_group \
  --completeness --outcomes

say "Statistics for a purpose no agreement allows are refused (and audited)"
ctl stats --as org-womens-centre --user coordinator-ag --role partnership-coordinator \
  --purpose safeguarding --from 2026-04-01 --until 2027-04-01 || true

say "The audit log, as the partnership's data protection officer sees it"
ctl audit search --as auditor-dpo --all

say "Signed tree head, and an inclusion proof checked offline with the gateway's public key"
ctl audit tree-head --as auditor-dpo
ctl audit proof 0 --as auditor-dpo --public-key "$run/pki/audit-signing.pub.pem"

say "Each agent's own log: the Law Centre's data protection officer sees the referral its agent refused"
ctl audit search --agent "$(agent_port law-centre)" --as org-law-centre --user dpo-lc --decision deny

say "Rape Crisis's log, exported and verified with its agent's own key, reconciled with the gateway's"
ctl audit tree-head --as auditor-dpo >/dev/null
ctl audit export --as auditor-dpo --out "$run/gateway-audit.jsonl"
rc_log=(--agent "$(agent_port rape-crisis)" --as org-rape-crisis --user dpo-rc)
ctl audit tree-head "${rc_log[@]}" >/dev/null
ctl audit export "${rc_log[@]}" --out "$run/rape-crisis-audit.jsonl"
ctl audit verify "$run/rape-crisis-audit.jsonl" --public-key "$run/pki/audit-signing-rape-crisis.pub.pem"
ctl audit reconcile --gateway "$run/gateway-audit.jsonl" --gateway-key "$run/pki/audit-signing.pub.pem" \
  --agent "$run/rape-crisis-audit.jsonl" --agent-key "$run/pki/audit-signing-rape-crisis.pub.pem"

say "Stopping everything"
stop_all
trap - EXIT
echo "demo: done (logs in .demo/logs)"
