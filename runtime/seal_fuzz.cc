// libFuzzer target: the bytes of a SealedPayload as a receiving agent gets
// them from the wire, opened with a fixed key. Must never crash or accept an
// altered payload; a payload sealed by the harness itself must open.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "runtime/seal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const accord::X25519KeyPair* key =
      new accord::X25519KeyPair(accord::GenerateX25519KeyPair());
  const std::string aad =
      accord::ReferralAssociatedData("ref-fuzz-0001", "from", "to");
  accord::v1::SealedPayload payload;
  if (payload.ParseFromArray(data, static_cast<int>(size))) {
    (void)accord::Open(*key, payload, aad);
  }
  // Round trip of the input as content.
  const std::string content(reinterpret_cast<const char*>(data), size);
  auto sealed = accord::Seal(key->public_key, content, aad);
  if (!sealed.ok()) std::abort();
  auto opened = accord::Open(*key, *sealed, aad);
  if (!opened.ok() || *opened != content) std::abort();
  return 0;
}
