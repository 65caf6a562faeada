// The agent's local API logic: what the partner's own systems do with their
// agent (ingest subjects, records, consent and engagements; read tokens).
// Only the partner's own organisation identity may call it. Every request's
// text is checked first (agent/input_text.h), consents against the terms
// every path shares (agent/consent_terms.h), engagements against the
// monitoring dataset's rules (agent/engagement_check.h), and subjects so that
// one person has one local id (agent/duplicates.h). Every write is a single
// transaction: a refused request leaves nothing half-written; an import
// applies each row all-or-nothing.
// Thread-safe.
#ifndef ACCORD_AGENT_LOCAL_API_H_
#define ACCORD_AGENT_LOCAL_API_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "accord/v1/agent.pb.h"
#include "agent/import.h"
#include "agent/store.h"
#include "linkage/tokens.h"
#include "runtime/clock.h"
#include "runtime/identity.h"
#include "runtime/partnership.h"

namespace accord::agent {

// Checks a subject's fields against the field catalogue, rewrites its date of
// birth, postcode and NHS number in their canonical forms (so matching and
// minimisation see one form however the partner's system wrote them) and
// derives its tokens. Errors start with the field name ("postcode: ...") and
// never contain its value: InvalidArgument for a malformed field,
// FailedPrecondition when no token can be derived from what is given.
absl::StatusOr<std::vector<accord::v1::SubjectToken>> PrepareSubject(
    const linkage::LinkageKey& key, accord::v1::Subject* subject);

class LocalApi {
 public:
  // `partnership`, when given, lets RecordConsent and imports check consent
  // recipients and purposes against the partnership's organisations and
  // purposes (accord-agent always gives it).
  LocalApi(std::string self_org, std::string partnership_id, AgentStore* store,
           const linkage::LinkageKey* linkage_key, const Clock* clock,
           const PartnershipDirectory* partnership = nullptr);

  // OK only for spiffe://<partnership>/org/<self_org>.
  absl::Status Authorise(const absl::StatusOr<Principal>& caller) const;

  absl::StatusOr<accord::v1::UpsertSubjectResponse> UpsertSubject(
      const accord::v1::UpsertSubjectRequest& request);
  absl::StatusOr<accord::v1::UpsertRecordResponse> UpsertRecord(
      const accord::v1::UpsertRecordRequest& request);
  absl::StatusOr<accord::v1::RecordConsentResponse> RecordConsent(
      const accord::v1::RecordConsentRequest& request);
  absl::StatusOr<accord::v1::WithdrawConsentResponse> WithdrawConsent(
      const accord::v1::WithdrawConsentRequest& request);
  absl::StatusOr<accord::v1::ListConsentsResponse> ListConsents(
      const accord::v1::ListConsentsRequest& request);
  absl::StatusOr<accord::v1::RecordEngagementResponse> RecordEngagement(
      const accord::v1::RecordEngagementRequest& request);
  absl::StatusOr<accord::v1::SubjectTokensResponse> SubjectTokens(
      const accord::v1::SubjectTokensRequest& request);
  // A bulk import in `format` (agent/import.h); InvalidArgument when the
  // format is unspecified.
  absl::StatusOr<std::unique_ptr<ImportSession>> StartImport(
      accord::v1::ImportFormat format);

  // The tokens of a subject's identifiers; InvalidArgument names a malformed
  // field (never its value).
  absl::StatusOr<std::vector<accord::v1::SubjectToken>> TokensFor(
      const accord::v1::Subject& subject) const;

 private:
  const std::string self_org_;
  const std::string partnership_id_;
  AgentStore* store_;
  const linkage::LinkageKey* linkage_key_;
  const Clock* clock_;
  const PartnershipDirectory* partnership_;
};

}  // namespace accord::agent

#endif  // ACCORD_AGENT_LOCAL_API_H_
