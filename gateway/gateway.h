// The gateway's logic, independent of gRPC: authorise the caller, decide with
// the information-sharing agreements, fan queries out to permitted holders,
// merge their answers, and record every decision in the audit log before any
// data is released.
//
// Every public method is asynchronous: `done` runs exactly once, possibly on
// another thread, after the audit entries for the call are durable.
// Thread-safe.
#ifndef ACCORD_GATEWAY_GATEWAY_H_
#define ACCORD_GATEWAY_GATEWAY_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "accord/v1/gateway.pb.h"
#include "audit/audit_log.h"
#include "gateway/holder_client.h"
#include "gateway/limits.h"
#include "policy/policy.h"
#include "runtime/clock.h"
#include "runtime/identity.h"
#include "runtime/partnership.h"
#include "runtime/revocation.h"

namespace accord::gateway {

// Who is calling, as established by the transport.
struct Caller {
  // The certificate identity, or why there is none usable.
  absl::StatusOr<Principal> principal =
      absl::UnauthenticatedError("no identity");
  std::string peer_uris;  // raw URI SANs, for the audit of refusals
  accord::v1::Actor actor;
  // When the caller stops waiting; calls to holders never outlive it.
  absl::Time deadline = absl::InfiniteFuture();
};

struct GatewayOptions {
  // Longest a holder may take to answer a fanned-out query (shortened to
  // the caller's own deadline when that is sooner).
  absl::Duration holder_deadline = absl::Seconds(2);
  // Per-organisation rate and concurrency limits.
  LimitOptions limits;
  // The partnership CA's CRL, checked on every call; null when none is
  // configured. Must outlive the Gateway.
  const RevocationList* revocation = nullptr;
};

template <typename T>
using Done = std::function<void(absl::StatusOr<T>)>;

class Gateway {
 public:
  Gateway(std::shared_ptr<const PartnershipDirectory> partnership,
          policy::Engine* policy, audit::AuditLog* audit,
          HolderClients* holders, const Clock* clock, GatewayOptions options);

  void Query(const Caller& caller, const accord::v1::QueryRequest& request,
             Done<accord::v1::QueryResponse> done);
  void ListAgreements(const Caller& caller,
                      const accord::v1::ListAgreementsRequest& request,
                      Done<accord::v1::ListAgreementsResponse> done);

  // Authorises an auditor-API call (auditors only) and records the access:
  // reading the audit log is itself audited. `done` runs once the entry for
  // the access (or its refusal) is durable.
  void AuthoriseAuditor(const Caller& caller, const std::string& method,
                        const std::string& detail,
                        std::function<void(absl::Status)> done);

  const PartnershipDirectory& partnership() const { return *partnership_; }
  const RevocationList* revocation() const { return options_.revocation; }

  // Admits one call from the caller's organisation (or other principal)
  // under the rate and concurrency limits; ResourceExhausted when over. The
  // permit is held until the call finishes. Every entry point calls this
  // after authentication and audits a refusal.
  absl::StatusOr<OrgLimits::Permit> Admit(const Caller& caller);

  // Records the refusal of a call that never reached the logic (e.g. a
  // request gRPC could not parse). Fire and forget.
  void AuditRefusal(const Caller& caller, const std::string& method,
                    absl::Status status);

 private:
  struct QueryCall;

  // The caller's organisation when it is an organisation of this partnership.
  absl::StatusOr<const accord::v1::Organisation*> CallerOrg(
      const Caller& caller) const;
  // Appends a denial and reports `status` once it is durable.
  void Refuse(const Caller& caller, const std::string& method,
              absl::Status status, accord::v1::AuditEntry entry,
              std::function<void(absl::Status)> done);
  accord::v1::AuditEntry BaseEntry(const Caller& caller,
                                   const std::string& method) const;
  void FinishQuery(std::shared_ptr<QueryCall> call);

  std::shared_ptr<const PartnershipDirectory> partnership_;
  policy::Engine* policy_;
  audit::AuditLog* audit_;
  HolderClients* holders_;
  const Clock* clock_;
  const GatewayOptions options_;
  OrgLimits limits_;
};

}  // namespace accord::gateway

#endif  // ACCORD_GATEWAY_GATEWAY_H_
