// The partnership: who the partners are, loaded once from its textproto file
// and checked for consistency (unique ids, well-formed ids, unique purposes).
// Immutable after loading; thread-safe to share.
#ifndef ACCORD_RUNTIME_PARTNERSHIP_H_
#define ACCORD_RUNTIME_PARTNERSHIP_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "accord/v1/config.pb.h"

namespace accord {

class PartnershipDirectory {
 public:
  static absl::StatusOr<std::shared_ptr<const PartnershipDirectory>> Load(
      const std::string& path);
  static absl::StatusOr<std::shared_ptr<const PartnershipDirectory>> FromProto(
      accord::v1::Partnership partnership, const std::string& name);

  const accord::v1::Partnership& proto() const { return partnership_; }
  const std::string& id() const { return partnership_.id(); }
  // nullptr when unknown.
  const accord::v1::Organisation* FindOrg(const std::string& org_id) const;
  const accord::v1::Service* FindService(const std::string& org_id,
                                         const std::string& service_id) const;
  bool IsAuditor(const std::string& identity) const;
  bool HasPurpose(const std::string& purpose) const;

 private:
  accord::v1::Partnership partnership_;
  std::map<std::string, int> org_index_;
};

}  // namespace accord

#endif  // ACCORD_RUNTIME_PARTNERSHIP_H_
