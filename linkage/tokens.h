// Subject tokens: how partners recognise the same person without the gateway
// or the audit log ever holding a name.
//
// Every partner holds the partnership linkage key. A token is
// HMAC-SHA256(linkage key, domain-separated normalised identifiers) as 64
// lower-case hex characters:
//   NAME_DOB      "name_dob\0" + full name + "\0" + date of birth
//   NHS_NUMBER    "nhs\0" + NHS number
//   DOB_POSTCODE  "dob_postcode\0" + date of birth + "\0" + postcode
// with each identifier normalised by linkage/normalise.h. Without the key a
// token cannot be computed from guessed identifiers, so tokens can travel
// through the gateway and be kept in the audit log.
//
// LinkageKey is immutable after construction; all functions are thread-safe.
#ifndef ACCORD_LINKAGE_TOKENS_H_
#define ACCORD_LINKAGE_TOKENS_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "accord/v1/common.pb.h"

namespace accord::linkage {

inline constexpr size_t kMinLinkageKeyBytes = 32;

// The partnership linkage key. Never printed or logged; the bytes are wiped
// when the key is destroyed. Movable, not copyable.
class LinkageKey {
 public:
  // Reads a key file of hex (whitespace ignored) holding at least
  // kMinLinkageKeyBytes bytes; refuses a file that group or others can read.
  static absl::StatusOr<LinkageKey> Load(const std::string& path);
  // A key from raw bytes (at least kMinLinkageKeyBytes), e.g. for tests.
  static absl::StatusOr<LinkageKey> FromBytes(absl::string_view bytes);

  LinkageKey(LinkageKey&& other) noexcept;
  LinkageKey& operator=(LinkageKey&& other) noexcept;
  LinkageKey(const LinkageKey&) = delete;
  LinkageKey& operator=(const LinkageKey&) = delete;
  ~LinkageKey();

  // HMAC-SHA256 of `message` under the key, as lower-case hex.
  [[nodiscard]] std::string HexMac(absl::string_view message) const;

 private:
  explicit LinkageKey(std::string bytes) : bytes_(std::move(bytes)) {}
  void Wipe();

  std::string bytes_;
};

// A subject's identifiers as the partner's system holds them, before
// normalisation. A field that is absent, empty or only whitespace counts as
// not known (partner systems commonly export unknown values as "").
struct IdentifierSet {
  std::optional<std::string> given_name;
  std::optional<std::string> family_name;
  std::optional<std::string> date_of_birth;
  std::optional<std::string> postcode;
  std::optional<std::string> nhs_number;
};

// Every token whose inputs are known, in the order NAME_DOB (given name,
// family name and date of birth), NHS_NUMBER, DOB_POSTCODE (date of birth and
// postcode). Every known field is validated, even one no token uses; a
// malformed field is InvalidArgument naming the field ("postcode: ..."),
// never its value. An empty result means no token could be derived.
absl::StatusOr<std::vector<accord::v1::SubjectToken>> DeriveTokens(
    const LinkageKey& key, const IdentifierSet& ids);

// OK when `value` has the form of a token: exactly 64 lower-case hex
// characters. The message reads after a field name ("must be ...").
absl::Status ValidateTokenValue(absl::string_view value);

}  // namespace accord::linkage

#endif  // ACCORD_LINKAGE_TOKENS_H_
