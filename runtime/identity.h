// Who is calling: SPIFFE-style URI SAN identities and their extraction from a
// mutual-TLS call.
//
// Every certificate the partnership CA issues carries exactly one URI SAN:
//   spiffe://<partnership>/org/<org-id>      an organisation's systems
//   spiffe://<partnership>/agent/<org-id>    that organisation's agent
//   spiffe://<partnership>/gateway           the gateway
//   spiffe://<partnership>/auditor/<name>    an auditor
// The organisation's identity is only ever taken from the certificate; the
// acting practitioner travels as metadata and is recorded, never trusted for
// the organisation. Building and parsing identities: runtime/spiffe.h. Pure
// functions, thread-safe.
#ifndef ACCORD_RUNTIME_IDENTITY_H_
#define ACCORD_RUNTIME_IDENTITY_H_

#include <grpcpp/security/auth_context.h>
#include <grpcpp/server_context.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "accord/v1/common.pb.h"
#include "runtime/spiffe.h"

namespace accord {

// The caller of a call: exactly one URI SAN, a well-formed identity in
// `partnership`'s trust domain. Unauthenticated when the peer presented no
// certificate; PermissionDenied for a certificate without a usable identity.
absl::StatusOr<Principal> PeerPrincipal(const grpc::AuthContext& auth,
                                        absl::string_view partnership);

// The raw URI SANs of the peer, for audit entries of refused calls.
std::string PeerUris(const grpc::AuthContext& auth);

// The acting practitioner from metadata (x-accord-user, x-accord-role),
// bounded and stripped of control characters.
accord::v1::Actor ActorFromMetadata(const grpc::ServerContextBase& ctx);

inline constexpr char kUserMetadataKey[] = "x-accord-user";
inline constexpr char kRoleMetadataKey[] = "x-accord-role";

}  // namespace accord

#endif  // ACCORD_RUNTIME_IDENTITY_H_
