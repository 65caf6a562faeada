#include "linkage/tokens.h"

#include <openssl/crypto.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "linkage/normalise.h"
#include "runtime/crypto.h"

namespace accord::linkage {
namespace {

// Domain separation: each kind hashes its own tag, and the parts are joined
// by NUL, which no normalised identifier contains.
constexpr absl::string_view kNameDobTag("name_dob\0", 9);
constexpr absl::string_view kNhsTag("nhs\0", 4);
constexpr absl::string_view kDobPostcodeTag("dob_postcode\0", 13);
constexpr absl::string_view kSep("\0", 1);

// The value of a known field, or nullopt when absent or blank.
std::optional<absl::string_view> Known(
    const std::optional<std::string>& field) {
  if (!field.has_value()) return std::nullopt;
  const absl::string_view v = *field;
  if (absl::StripAsciiWhitespace(v).empty()) return std::nullopt;
  return v;
}

accord::v1::SubjectToken MakeToken(accord::v1::TokenKind kind,
                                   std::string value) {
  accord::v1::SubjectToken token;
  token.set_kind(kind);
  token.set_value(std::move(value));
  return token;
}

}  // namespace

absl::StatusOr<LinkageKey> LinkageKey::Load(const std::string& path) {
  auto bytes = LoadHexSecretFile(path, kMinLinkageKeyBytes);
  if (!bytes.ok()) return bytes.status();
  return LinkageKey(std::move(*bytes));
}

absl::StatusOr<LinkageKey> LinkageKey::FromBytes(absl::string_view bytes) {
  if (bytes.size() < kMinLinkageKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("linkage key is ", bytes.size(), " bytes; at least ",
                     kMinLinkageKeyBytes, " required"));
  }
  return LinkageKey(std::string(bytes));
}

LinkageKey::LinkageKey(LinkageKey&& other) noexcept
    : bytes_(std::move(other.bytes_)) {
  other.Wipe();
}

LinkageKey& LinkageKey::operator=(LinkageKey&& other) noexcept {
  if (this != &other) {
    Wipe();
    bytes_ = std::move(other.bytes_);
    other.Wipe();
  }
  return *this;
}

LinkageKey::~LinkageKey() { Wipe(); }

void LinkageKey::Wipe() {
  if (!bytes_.empty()) OPENSSL_cleanse(bytes_.data(), bytes_.size());
  bytes_.clear();
}

std::string LinkageKey::HexMac(absl::string_view message) const {
  return HexEncode(HmacSha256(bytes_, message));
}

absl::StatusOr<std::vector<accord::v1::SubjectToken>> DeriveTokens(
    const LinkageKey& key, const IdentifierSet& ids) {
  const auto given = Known(ids.given_name);
  const auto family = Known(ids.family_name);
  const auto dob_text = Known(ids.date_of_birth);
  const auto postcode_text = Known(ids.postcode);
  const auto nhs_text = Known(ids.nhs_number);

  // Validate every known field first, so an error does not depend on which
  // tokens happen to be derivable.
  std::optional<std::string> name, dob, postcode, nhs;
  if (given.has_value() && family.has_value()) {
    auto n = NormaliseFullName(*given, *family);
    if (!n.ok()) return n.status();
    name = std::move(*n);
  } else if (given.has_value() || family.has_value()) {
    auto n = given.has_value() ? NormaliseNamePart(*given, "given_name")
                               : NormaliseNamePart(*family, "family_name");
    if (!n.ok()) return n.status();
  }
  if (dob_text.has_value()) {
    auto d = NormaliseDateOfBirth(*dob_text);
    if (!d.ok()) return d.status();
    dob = std::move(*d);
  }
  if (postcode_text.has_value()) {
    auto p = NormalisePostcode(*postcode_text);
    if (!p.ok()) return p.status();
    postcode = std::move(*p);
  }
  if (nhs_text.has_value()) {
    auto n = NormaliseNhsNumber(*nhs_text);
    if (!n.ok()) return n.status();
    nhs = std::move(*n);
  }

  std::vector<accord::v1::SubjectToken> tokens;
  if (name.has_value() && dob.has_value()) {
    tokens.push_back(
        MakeToken(accord::v1::TOKEN_KIND_NAME_DOB,
                  key.HexMac(absl::StrCat(kNameDobTag, *name, kSep, *dob))));
  }
  if (nhs.has_value()) {
    tokens.push_back(MakeToken(accord::v1::TOKEN_KIND_NHS_NUMBER,
                               key.HexMac(absl::StrCat(kNhsTag, *nhs))));
  }
  if (dob.has_value() && postcode.has_value()) {
    tokens.push_back(MakeToken(
        accord::v1::TOKEN_KIND_DOB_POSTCODE,
        key.HexMac(absl::StrCat(kDobPostcodeTag, *dob, kSep, *postcode))));
  }
  return tokens;
}

absl::Status ValidateTokenValue(absl::string_view value) {
  if (value.size() != 64) {
    return absl::InvalidArgumentError(absl::StrCat(
        "must be 64 lower-case hex characters (a subject token); has ",
        value.size()));
  }
  for (char c : value) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return absl::InvalidArgumentError(
          "must be 64 lower-case hex characters (a subject token); has another "
          "character");
    }
  }
  return absl::OkStatus();
}

}  // namespace accord::linkage
