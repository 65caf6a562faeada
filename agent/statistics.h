// An agent's answer to a statistics run (Holder.Statistics): its own counts
// of the monitoring dataset, unsuppressed, and each counted person's keyed
// values (stats/people.h), never a row, a name or a token.
//
// As for a disclosure, the agent trusts nothing it is told: it re-derives
// the decision from its own copy of the agreements and refuses when the
// gateway's differs, and checks the dimensions, period and extras asked for
// against its own copy of the rule's statistics clause. Thread-safe.
#ifndef ACCORD_AGENT_STATISTICS_H_
#define ACCORD_AGENT_STATISTICS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "accord/v1/agent.pb.h"
#include "agent/store.h"
#include "linkage/tokens.h"
#include "policy/policy.h"
#include "runtime/clock.h"
#include "runtime/partnership.h"

namespace accord::agent {

class StatisticsCounter {
 public:
  // Every pointer must outlive the counter.
  StatisticsCounter(std::string self_org,
                    std::shared_ptr<const PartnershipDirectory> partnership,
                    AgentStore* store, const policy::Engine* policy,
                    const linkage::LinkageKey* linkage_key, const Clock* clock);

  // The counts, or PermissionDenied (this agent's agreements do not allow
  // it, or the gateway's decision differs), InvalidArgument (the request is
  // not one), Unavailable (the store could not be read).
  absl::StatusOr<accord::v1::HolderStatisticsResponse> Answer(
      const accord::v1::HolderStatisticsRequest& request) const;

 private:
  const std::string self_org_;
  std::shared_ptr<const PartnershipDirectory> partnership_;
  AgentStore* store_;
  const policy::Engine* policy_;
  const linkage::LinkageKey* linkage_key_;
  const Clock* clock_;
};

}  // namespace accord::agent

#endif  // ACCORD_AGENT_STATISTICS_H_
