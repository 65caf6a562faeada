// Statistics runs at the gateway, independent of gRPC: decide with the
// agreements which holders may be counted and with what breakdowns, ask
// each holder's agent for its own counts under a fresh run id, check every
// answer (a broken or lying agent is left out, and says why), combine the
// answers into the partnership's tables with disclosure control
// (stats/combine.h), and release them once every holder's decision is
// durable in the audit log. The people's keyed values are counted and
// discarded; no count leaves unsuppressed.
//
// The suppression applied is the strictest of the rules of the holders
// counted (highest threshold, coarsest rounding).
//
// Every run goes through the Pipeline; `done` runs exactly once, possibly on
// another thread. Thread-safe.
#ifndef ACCORD_GATEWAY_STATISTICS_H_
#define ACCORD_GATEWAY_STATISTICS_H_

#include <memory>

#include "absl/time/time.h"
#include "accord/v1/gateway.pb.h"
#include "gateway/holder_client.h"
#include "gateway/pipeline.h"
#include "policy/policy.h"

namespace accord::gateway {

struct StatisticsOptions {
  // Longest a holder may take to count (shortened to the caller's own
  // deadline when that is sooner).
  absl::Duration holder_deadline = absl::Seconds(20);
};

class StatisticsRuns {
 public:
  // Every pointer must outlive the object.
  StatisticsRuns(Pipeline* pipeline, policy::Engine* policy,
                 HolderClients* holders, StatisticsOptions options = {});

  void Statistics(Caller caller, const accord::v1::StatisticsRequest& request,
                  Done<accord::v1::StatisticsResponse> done);

 private:
  struct Run;
  void Start(std::shared_ptr<const Call> call,
             const accord::v1::StatisticsRequest& request,
             Done<accord::v1::StatisticsResponse> done);
  void Finish(const std::shared_ptr<Run>& run);

  Pipeline* pipeline_;
  policy::Engine* policy_;
  HolderClients* holders_;
  const StatisticsOptions options_;
};

}  // namespace accord::gateway

#endif  // ACCORD_GATEWAY_STATISTICS_H_
