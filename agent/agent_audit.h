// The agent's own tamper-evident audit log: what this agent disclosed,
// refused and recorded, so that "every decision, allowed or refused" holds
// for the decisions an agent makes, not only for the gateway's. It is the
// same log as the gateway's (audit/: RFC 6962 tree, signed tree heads,
// exports verified offline), signed with this agent's own key, and read
// through the Auditor API on the agent's local port by the organisation's
// own data protection officer and the partnership's auditors
// (docs/AUDIT.md, "The agent's log").
//
// AgentAudit has one method per kind of event; each call site is one line.
// Every entry names this agent (agent_org) and holds no record value: only
// identities, subject tokens, field and category names, record and consent
// ids, and counts.
//
// Disclosures fail closed: the answer is handed on only once its entry is
// durable, and nothing is released when it cannot be recorded (as at the
// gateway). The local API's events are synchronous, as that API's calls
// already wait for their own SQLite commit: they return the call's result
// once the entry is durable, or Unavailable when it could not be written
// (a change already made, such as a withdrawal, stands: it is never held
// back by the log). Reads of the log are recorded through AuditorAccess.
//
// Implementations are thread-safe. The synchronous methods block until the
// entry is durable: never call them from an audit log callback.
#ifndef ACCORD_AGENT_AGENT_AUDIT_H_
#define ACCORD_AGENT_AGENT_AUDIT_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "accord/v1/agent.pb.h"
#include "accord/v1/gateway.pb.h"
#include "audit/audit_log.h"
#include "auditor/auditor_api.h"
#include "runtime/partnership.h"

namespace accord::agent {

class AgentStore;

// Who called this agent (certificate identity, raw URIs, practitioner).
using Caller = auditor::Caller;

template <typename T>
using Release = std::function<void(absl::StatusOr<T>)>;

class AgentAudit : public auditor::AuditorAccess {
 public:
  using Recorded = std::function<void(absl::Status)>;
  ~AgentAudit() override = default;

  // --- Holder API (the gateway calls) -------------------------------------

  // Disclose answered: released, refused by this agent's own checks (its
  // re-check of the gateway's decision, the subject's consent), or no match.
  // `record_ids` are this agent's ids of the records in `response`.
  // `release` gets the response once its entry is durable, or Unavailable
  // (and nothing) when it cannot be recorded.
  virtual void Disclosure(const accord::v1::DiscloseRequest& request,
                          accord::v1::DiscloseResponse response,
                          std::vector<std::string> record_ids,
                          Release<accord::v1::DiscloseResponse> release) = 0;
  // A statistics run answered with counts (the dimensions and the number of
  // engagements counted are recorded; no count by value) or refused by this
  // agent's own checks. `release` gets the result once its entry is
  // durable, or Unavailable (and nothing).
  virtual void Statistics(
      const accord::v1::HolderStatisticsRequest& request,
      absl::StatusOr<accord::v1::HolderStatisticsResponse> result,
      Release<accord::v1::HolderStatisticsResponse> release) = 0;
  // A holder API call refused before its logic (identity, malformed
  // request). `done` gets `why` once recorded, or Unavailable.
  virtual void HolderCallRefused(const Caller& caller,
                                 const std::string& method,
                                 const absl::Status& why, Recorded done) = 0;
  // The gateway delivered a referral to this agent's inbox (or it was
  // refused: not for this agent, a pathway its agreements do not permit, a
  // payload that does not open). `done` gets the delivery's own status once
  // recorded, or Unavailable, so the gateway retries until it is recorded.
  virtual void ReferralDelivered(
      const accord::v1::Referral& referral,
      const absl::StatusOr<accord::v1::DeliverReferralResponse>& result,
      Recorded done) = 0;
  // The gateway reported a status change of a referral to or from here.
  virtual void ReferralStatusNotified(const accord::v1::Referral& referral,
                                      const absl::Status& result,
                                      Recorded done) = 0;

  // --- Local API (this organisation's own systems) ------------------------

  // A local API call refused (identity, validation, the store): returns
  // `why` once recorded, or Unavailable.
  virtual absl::Status LocalCallRefused(const Caller& caller,
                                        const std::string& method,
                                        const absl::Status& why) = 0;
  virtual absl::Status ConsentRecorded(const Caller& caller,
                                       const accord::v1::ConsentRecord& consent,
                                       const std::string& consent_id) = 0;
  virtual absl::Status ConsentWithdrawn(
      const Caller& caller,
      const accord::v1::WithdrawConsentRequest& request) = 0;
  // Local ids found to be one person, merged into `into_local_id`
  // (UpsertSubjectRequest.merge_local_ids): which ids, and her tokens.
  virtual absl::Status SubjectsMerged(
      const Caller& caller, const std::string& into_local_id,
      const std::vector<std::string>& merged_local_ids) = 0;
  // An import's counts (never a row's content).
  virtual absl::Status Imported(const Caller& caller,
                                const accord::v1::ImportReport& report) = 0;
  // The inbox referrals whose content this agent opened for the caller.
  virtual absl::Status ReferralsOpened(
      const Caller& caller,
      const accord::v1::ListReferralsResponse& listed) = 0;
  // A watcher started: the content of each inbox referral that arrives while
  // it watches is opened for it.
  virtual absl::Status WatchStarted(const Caller& caller,
                                    accord::v1::ReferralBox box) = 0;
  // A status change this organisation made through its agent (or the
  // gateway's refusal of it); returns `result` once recorded.
  virtual absl::StatusOr<accord::v1::UpdateReferralResponse> ReferralUpdated(
      const Caller& caller, const accord::v1::UpdateReferralRequest& request,
      absl::StatusOr<accord::v1::UpdateReferralResponse> result) = 0;

  // --- Referrals this agent sends (agent/referrals.cc) --------------------

  // A referral this agent would not send (a partner no agreement allows, a
  // field the rule does not release, no consent): returns `why` once
  // recorded, or Unavailable.
  virtual absl::Status ReferralRefused(
      const accord::v1::LocalSendReferralRequest& request,
      const accord::v1::Actor& actor, const absl::Status& why) = 0;
  // About to hand a sealed referral to the gateway: what it carries (field
  // and category names, the consent relied on). OK once durable; the
  // referral is sent only then.
  virtual absl::Status ReferralSending(
      const accord::v1::LocalSendReferralRequest& request,
      const accord::v1::Referral& referral, const accord::v1::Actor& actor) = 0;
  // The gateway's answer to it. Nothing is held back any more, so a failure
  // to record this is reported on the agent's log output only.
  virtual void ReferralSent(
      const accord::v1::Referral& referral, const accord::v1::Actor& actor,
      const absl::StatusOr<accord::v1::SendReferralResponse>& result) = 0;
};

// AgentAudit on an audit::AuditLog (the agent opens an SqliteAuditLog over
// AgentConfig.audit_db, signed with AgentConfig.audit_signing_key_file).
// `store` gives the subject tokens consent entries are found by; the log,
// the store and the partnership outlive this object. `log_prefix` starts the
// lines it writes to stderr ("accord-agent[refuge]").
std::unique_ptr<AgentAudit> NewAgentAuditLog(
    std::string self_org,
    std::shared_ptr<const PartnershipDirectory> partnership,
    audit::AuditLog* log, AgentStore* store, std::string log_prefix);

}  // namespace accord::agent

#endif  // ACCORD_AGENT_AGENT_AUDIT_H_
