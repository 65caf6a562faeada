// Queries at the gateway, independent of gRPC: decide with the
// information-sharing agreements which holders may be asked and what each
// may release, fan the query out to them, hold every answer to its decision's
// plan, merge the answers, and release the merged answer only once every
// decision is durable in the audit log.
//
// Record content leaves a holder's agent once the gateway has decided (the
// agent records its disclosure in its own log, docs/AUDIT.md); it reaches the
// requester only after the gateway's entries for every holder are durable.
// A crash in between leaves an agent entry with no gateway twin, which
// `accordctl audit reconcile` reports, and nothing released to the
// requester.
//
// Every method goes through the Pipeline (authorise, admit, audit refusals).
// `done` runs exactly once, possibly on another thread. Thread-safe.
#ifndef ACCORD_GATEWAY_GATEWAY_H_
#define ACCORD_GATEWAY_GATEWAY_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/time/time.h"
#include "accord/v1/gateway.pb.h"
#include "gateway/holder_client.h"
#include "gateway/pipeline.h"
#include "policy/policy.h"

namespace accord::gateway {

struct GatewayOptions {
  // Longest a holder may take to answer a fanned-out query (shortened to
  // the caller's own deadline when that is sooner).
  absl::Duration holder_deadline = absl::Seconds(2);
};

class Gateway {
 public:
  // Every pointer must outlive the Gateway.
  Gateway(Pipeline* pipeline, policy::Engine* policy, HolderClients* holders,
          GatewayOptions options);

  void Query(Caller caller, const accord::v1::QueryRequest& request,
             Done<accord::v1::QueryResponse> done);
  void ListAgreements(Caller caller,
                      const accord::v1::ListAgreementsRequest& request,
                      Done<accord::v1::ListAgreementsResponse> done);

  // Answers in which a holder returned more than its decision's plan (for
  // tests and metrics).
  uint64_t over_shared_answers() const { return over_shared_.load(); }

 private:
  struct QueryCall;
  void RunQuery(std::shared_ptr<const Call> call,
                const accord::v1::QueryRequest& request,
                Done<accord::v1::QueryResponse> done);
  void OnAnswer(const std::shared_ptr<QueryCall>& q, int index,
                absl::Status status, accord::v1::DiscloseResponse answer);
  void FinishQuery(const std::shared_ptr<QueryCall>& q);

  Pipeline* pipeline_;
  policy::Engine* policy_;
  HolderClients* holders_;
  const GatewayOptions options_;
  std::atomic<uint64_t> over_shared_{0};
};

}  // namespace accord::gateway

#endif  // ACCORD_GATEWAY_GATEWAY_H_
