// libFuzzer target over the identifier normalisers and token derivation.
// Checks that no input crashes them and that each normaliser is idempotent:
// normalising its own output gives the same output (otherwise two partners
// could hold one person under two tokens).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "linkage/normalise.h"
#include "linkage/tokens.h"

namespace {

using accord::linkage::NormaliseDateOfBirth;
using accord::linkage::NormaliseNamePart;
using accord::linkage::NormaliseNhsNumber;
using accord::linkage::NormalisePostcode;

template <typename F>
void CheckIdempotent(F normalise, const std::string& input) {
  auto once = normalise(input);
  if (!once.ok()) return;
  auto twice = normalise(*once);
  if (!twice.ok() || *twice != *once) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  CheckIdempotent(
      [](const std::string& s) { return NormaliseNamePart(s, "given_name"); },
      input);
  CheckIdempotent([](const std::string& s) { return NormaliseDateOfBirth(s); },
                  input);
  CheckIdempotent([](const std::string& s) { return NormalisePostcode(s); },
                  input);
  CheckIdempotent([](const std::string& s) { return NormaliseNhsNumber(s); },
                  input);

  // Split on '|' into the five identifiers and derive tokens from them.
  static const auto* const key = new accord::linkage::LinkageKey(
      *accord::linkage::LinkageKey::FromBytes(std::string(32, 'k')));
  accord::linkage::IdentifierSet ids;
  std::optional<std::string>* fields[] = {&ids.given_name, &ids.family_name,
                                          &ids.date_of_birth, &ids.postcode,
                                          &ids.nhs_number};
  size_t start = 0;
  for (auto* field : fields) {
    if (start > input.size()) break;
    size_t end = input.find('|', start);
    if (end == std::string::npos) end = input.size();
    *field = input.substr(start, end - start);
    start = end + 1;
  }
  auto tokens = accord::linkage::DeriveTokens(*key, ids);
  if (tokens.ok()) {
    for (const auto& t : *tokens) {
      if (!accord::linkage::ValidateTokenValue(t.value()).ok()) abort();
    }
  }
  return 0;
}
