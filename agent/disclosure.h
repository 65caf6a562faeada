// Disclosure: what a partner's agent releases when the gateway asks.
//
// The agent trusts nothing it is told: it matches the subject by token,
// re-derives the decision from its own copy of the agreements and refuses if
// the gateway's decision differs, checks the subject's consent at this moment
// (withdrawn or expired consent releases nothing) or that the no-consent
// clause was met, then applies the field plan field by field. Whatever was
// asked for and not released is listed as withheld, with the reason.
// Thread-safe.
#ifndef ACCORD_AGENT_DISCLOSURE_H_
#define ACCORD_AGENT_DISCLOSURE_H_

#include <memory>
#include <string>
#include <vector>

#include "accord/v1/agent.pb.h"
#include "agent/store.h"
#include "policy/policy.h"
#include "runtime/clock.h"
#include "runtime/partnership.h"

namespace accord::agent {

class Discloser {
 public:
  Discloser(std::string self_org,
            std::shared_ptr<const PartnershipDirectory> partnership,
            AgentStore* store, const policy::Engine* policy,
            std::string pseudonym_key, const Clock* clock);

  // The answer (nothing is recorded here: the caller records it in the
  // agent's audit log before releasing it, agent/agent_audit.h). When
  // `record_ids` is given it receives this agent's ids of the records in the
  // answer, in the answer's order.
  accord::v1::DiscloseResponse Disclose(
      const accord::v1::DiscloseRequest& request,
      std::vector<std::string>* record_ids = nullptr) const;

  // Whether `consent` covers a disclosure to `requester` for `purpose` of
  // `category` at `now`.
  static bool ConsentCovers(const accord::v1::ConsentRecord& consent,
                            const accord::v1::Organisation& requester,
                            const std::string& purpose,
                            accord::v1::DataCategory category, absl::Time now);

 private:
  // The subject the tokens identify, NotFound when none, FailedPrecondition
  // when they are ambiguous.
  absl::StatusOr<int64_t> Match(
      AgentStore::Snapshot& snap,
      const accord::v1::DiscloseRequest& request) const;

  const std::string self_org_;
  std::shared_ptr<const PartnershipDirectory> partnership_;
  AgentStore* store_;
  const policy::Engine* policy_;
  const std::string pseudonym_key_;
  const Clock* clock_;
};

}  // namespace accord::agent

#endif  // ACCORD_AGENT_DISCLOSURE_H_
