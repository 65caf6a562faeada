// SPIFFE-style URI SAN identities: every certificate the partnership CA
// issues carries exactly one URI SAN:
//   spiffe://<partnership>/org/<org-id>      an organisation's systems
//   spiffe://<partnership>/agent/<org-id>    that organisation's agent
//   spiffe://<partnership>/gateway           the gateway
//   spiffe://<partnership>/auditor/<name>    an auditor
// Building and parsing them; runtime/identity.h takes them from a mutual-TLS
// call. Pure functions, thread-safe.
#ifndef ACCORD_RUNTIME_SPIFFE_H_
#define ACCORD_RUNTIME_SPIFFE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace accord {

enum class PrincipalKind { kOrg, kAgent, kGateway, kAuditor };

struct Principal {
  PrincipalKind kind;
  std::string partnership;
  std::string name;  // org id or auditor name; empty for the gateway
  std::string uri;   // the full identity, for the audit log

  bool operator==(const Principal& o) const { return uri == o.uri; }
};

std::string SpiffeId(absl::string_view partnership, PrincipalKind kind,
                     absl::string_view name = "");

// Parses a URI SAN; InvalidArgument names what is wrong with it.
absl::StatusOr<Principal> ParseSpiffeId(absl::string_view uri);

}  // namespace accord

#endif  // ACCORD_RUNTIME_SPIFFE_H_
