#include "runtime/identity.h"

#include <grpc/grpc_security_constants.h>

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace accord {
namespace {

constexpr size_t kMaxMetadata = 128;

std::vector<std::string> UriSans(const grpc::AuthContext& auth) {
  std::vector<std::string> uris;
  for (const auto& v : auth.FindPropertyValues(GRPC_X509_SAN_PROPERTY_NAME)) {
    const std::string s(v.data(), v.size());
    if (absl::StartsWith(s, "spiffe://") || absl::StrContains(s, "://"))
      uris.push_back(s);
  }
  if (uris.empty()) {
    for (const auto& v : auth.FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
      uris.emplace_back(v.data(), v.size());
    }
  }
  return uris;
}
}  // namespace

std::string PeerUris(const grpc::AuthContext& auth) {
  return absl::StrJoin(UriSans(auth), ",");
}

absl::StatusOr<Principal> PeerPrincipal(const grpc::AuthContext& auth,
                                        absl::string_view partnership) {
  if (!auth.IsPeerAuthenticated()) {
    return absl::UnauthenticatedError(
        "no client certificate: mutual TLS is required");
  }
  // gRPC sets peer_spiffe_id only when the certificate has exactly one URI SAN.
  const auto spiffe =
      auth.FindPropertyValues(GRPC_PEER_SPIFFE_ID_PROPERTY_NAME);
  const std::vector<std::string> uris = UriSans(auth);
  if (spiffe.size() != 1 || uris.size() > 1) {
    return absl::PermissionDeniedError(
        uris.empty()
            ? "client certificate has no URI SAN identity"
            : "client certificate must carry exactly one spiffe:// URI SAN");
  }
  auto p = ParseSpiffeId(absl::string_view(spiffe[0].data(), spiffe[0].size()));
  if (!p.ok()) return absl::PermissionDeniedError(p.status().message());
  if (p->partnership != partnership) {
    return absl::PermissionDeniedError(
        absl::StrCat("identity belongs to trust domain '", p->partnership,
                     "', not this partnership"));
  }
  return p;
}

namespace {
std::string CleanMetadata(
    const std::multimap<grpc::string_ref, grpc::string_ref>& md,
    const char* key) {
  auto it = md.find(key);
  if (it == md.end()) return "";
  std::string out;
  for (char c : absl::string_view(it->second.data(), it->second.size())) {
    if (out.size() >= kMaxMetadata) break;
    if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) out.push_back(c);
  }
  return out;
}
}  // namespace

accord::v1::Actor ActorFromMetadata(const grpc::ServerContextBase& ctx) {
  accord::v1::Actor actor;
  const auto& md = ctx.client_metadata();
  actor.set_user_id(CleanMetadata(md, kUserMetadataKey));
  actor.set_role(CleanMetadata(md, kRoleMetadataKey));
  return actor;
}

}  // namespace accord
