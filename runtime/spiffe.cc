#include "runtime/spiffe.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace accord {
namespace {

constexpr absl::string_view kScheme = "spiffe://";

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

}  // namespace accord
