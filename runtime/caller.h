// Who is calling: what the transport of one call establishes, for the logic
// behind every Accord server (the gateway's pipeline, the auditor API, the
// agents' services). The caller's identity comes only from its client
// certificate; the acting practitioner travels as metadata and is recorded,
// never trusted for the organisation. Pure value; thread-compatible.
#ifndef ACCORD_RUNTIME_CALLER_H_
#define ACCORD_RUNTIME_CALLER_H_

#include <grpcpp/server_context.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "accord/v1/common.pb.h"
#include "runtime/identity.h"
#include "runtime/revocation.h"

namespace accord {

struct Caller {
  // The certificate identity, or why there is none usable (no certificate,
  // no identity of this partnership, revoked).
  absl::StatusOr<Principal> principal =
      absl::UnauthenticatedError("no identity");
  std::string peer_uris;  // raw URI SANs, for the entry of a refusal
  accord::v1::Actor actor;
  // When the caller stops waiting; work on its behalf never outlives it.
  absl::Time deadline = absl::InfiniteFuture();
};

// The caller of a call to a server of `partnership`: its certificate
// identity, checked against `revocation` (null when no CRL is configured),
// the practitioner from metadata, and the call's deadline.
Caller CallerFromContext(const grpc::ServerContextBase& ctx,
                         const std::string& partnership,
                         const RevocationList* revocation);

}  // namespace accord

#endif  // ACCORD_RUNTIME_CALLER_H_
