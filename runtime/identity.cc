#include "runtime/identity.h"

#include <grpc/grpc_security_constants.h>

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace accord {
namespace {

constexpr absl::string_view kScheme = "spiffe://";
constexpr size_t kMaxMetadata = 128;

bool ValidSegment(absl::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string SpiffeId(absl::string_view partnership, PrincipalKind kind,
                     absl::string_view name) {
  switch (kind) {
    case PrincipalKind::kOrg:
      return absl::StrCat(kScheme, partnership, "/org/", name);
    case PrincipalKind::kAgent:
      return absl::StrCat(kScheme, partnership, "/agent/", name);
    case PrincipalKind::kGateway:
      return absl::StrCat(kScheme, partnership, "/gateway");
    case PrincipalKind::kAuditor:
      return absl::StrCat(kScheme, partnership, "/auditor/", name);
  }
  return "";
}

absl::StatusOr<Principal> ParseSpiffeId(absl::string_view uri) {
  if (!absl::StartsWith(uri, kScheme)) {
    return absl::InvalidArgumentError("identity is not a spiffe:// URI");
  }
  std::vector<absl::string_view> parts =
      absl::StrSplit(uri.substr(kScheme.size()), '/');
  if (parts.empty() || !ValidSegment(parts[0])) {
    return absl::InvalidArgumentError("identity has no valid trust domain");
  }
  Principal p;
  p.partnership = std::string(parts[0]);
  p.uri = std::string(uri);
  if (parts.size() == 2 && parts[1] == "gateway") {
    p.kind = PrincipalKind::kGateway;
    return p;
  }
  if (parts.size() == 3 && ValidSegment(parts[2])) {
    p.name = std::string(parts[2]);
    if (parts[1] == "org") {
      p.kind = PrincipalKind::kOrg;
      return p;
    }
    if (parts[1] == "agent") {
      p.kind = PrincipalKind::kAgent;
      return p;
    }
    if (parts[1] == "auditor") {
      p.kind = PrincipalKind::kAuditor;
      return p;
    }
  }
  return absl::InvalidArgumentError(
      "identity path must be /org/<id>, /agent/<id>, /auditor/<name> or "
      "/gateway");
}

namespace {
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
