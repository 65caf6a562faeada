#include "runtime/partnership.h"

#include <functional>
#include <set>

#include "absl/strings/str_cat.h"
#include "runtime/settings.h"
#include "runtime/textproto.h"

namespace accord {
namespace {
bool ValidId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
      return false;
  }
  return true;
}

// Every agent address is host:port with a port the gateway can dial.
absl::Status CheckAgentAddresses(
    const accord::v1::Partnership& partnership,
    const std::function<std::string(int)>& where) {
  for (int i = 0; i < partnership.organisations_size(); ++i) {
    const std::string& address = partnership.organisations(i).agent_address();
    if (address.empty()) continue;
    if (auto s = CheckHostPort(address, 1, where(i)); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const PartnershipDirectory>>
PartnershipDirectory::Load(const std::string& path) {
  accord::v1::Partnership p;
  TextLocations at;
  if (auto s = LoadTextProto(path, &p, &at); !s.ok()) return s;
  if (auto s = CheckAgentAddresses(p,
                                   [&](int i) {
                                     const std::string field = absl::StrCat(
                                         "organisations[", i,
                                         "].agent_address");
                                     return absl::StrCat(at.Where(field),
                                                         ": field ", field);
                                   });
      !s.ok()) {
    return s;
  }
  return FromProto(std::move(p), path);
}

absl::StatusOr<std::shared_ptr<const PartnershipDirectory>>
PartnershipDirectory::FromProto(accord::v1::Partnership partnership,
                                const std::string& name) {
  if (auto s = CheckAgentAddresses(partnership,
                                   [&](int i) {
                                     return absl::StrCat(name,
                                                         ": organisations[", i,
                                                         "].agent_address");
                                   });
      !s.ok()) {
    return s;
  }
  auto dir = std::shared_ptr<PartnershipDirectory>(new PartnershipDirectory);
  std::set<std::string> purposes;
  for (int i = 0; i < partnership.organisations_size(); ++i) {
    const auto& org = partnership.organisations(i);
    if (!ValidId(org.id())) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": organisations[", i, "].id '", org.id(),
                       "' must be 1-64 lower-case letters, digits or '-'"));
    }
    if (!dir->org_index_.emplace(org.id(), i).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": organisations[", i, "].id '", org.id(), "' is a duplicate"));
    }
  }
  for (int i = 0; i < partnership.purposes_size(); ++i) {
    if (!purposes.insert(partnership.purposes(i).id()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": purposes[", i, "].id '",
                       partnership.purposes(i).id(), "' is a duplicate"));
    }
  }
  dir->partnership_ = std::move(partnership);
  return std::shared_ptr<const PartnershipDirectory>(std::move(dir));
}

const accord::v1::Organisation* PartnershipDirectory::FindOrg(
    const std::string& org_id) const {
  auto it = org_index_.find(org_id);
  return it == org_index_.end() ? nullptr
                                : &partnership_.organisations(it->second);
}

const accord::v1::Service* PartnershipDirectory::FindService(
    const std::string& org_id, const std::string& service_id) const {
  const auto* org = FindOrg(org_id);
  if (!org) return nullptr;
  for (const auto& s : org->services()) {
    if (s.id() == service_id) return &s;
  }
  return nullptr;
}

bool PartnershipDirectory::IsAuditor(const std::string& identity) const {
  for (const auto& a : partnership_.auditors()) {
    if (a == identity) return true;
  }
  return false;
}

bool PartnershipDirectory::HasPurpose(const std::string& purpose) const {
  for (const auto& p : partnership_.purposes()) {
    if (p.id() == purpose) return true;
  }
  return false;
}

}  // namespace accord
