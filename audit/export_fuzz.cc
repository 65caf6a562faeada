// libFuzzer target: the JSON Lines export parser and verifier, fed arbitrary
// export text, verified against a fixed key. Must never crash, hang or leak;
// a successful verification must describe a self-consistent export.
#include <cstddef>
#include <cstdint>
#include <string>

#include "audit/entry.h"
#include "audit/export_format.h"
#include "audit/tree_head.h"
#include "audit/verify.h"

namespace {
const accord::audit::TreeHeadVerifier& Key() {
  static const auto* key = [] {
    auto pem = accord::audit::TreeHeadKeyPemFromSeed(std::string(32, '\x11'));
    auto signer = *accord::audit::TreeHeadSigner::FromPrivateKeyPem(*pem);
    return accord::audit::TreeHeadVerifier::FromPublicKeyPem(
               signer->public_key_pem())
        ->release();
  }();
  return *key;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto lines = accord::audit::LinesFromString(text);
  auto summary = accord::audit::VerifyJsonlExport(*lines, Key());
  if (summary.ok() && summary->to_seq != summary->tree_head.tree_size())
    __builtin_trap();
  // The line parsers on their own, on every line.
  auto again = accord::audit::LinesFromString(text);
  absl::string_view line;
  while (*again->Next(&line)) {
    auto row = accord::audit::ParseJsonLine(line);
    if (row.ok()) {
      // A row that parses re-renders and re-parses to the same entry.
      const std::string leaf = accord::audit::EncodeLeaf(row->entry);
      auto back = accord::audit::ParseJsonLine(
          accord::audit::JsonLine(row->entry, leaf));
      if (back.ok() && accord::audit::EncodeLeaf(back->entry) != leaf)
        __builtin_trap();
      (void)accord::audit::DecodeLeaf(row->leaf);
    }
    (void)accord::audit::ParseExportHeaderLine(line);
    (void)accord::audit::ParseTreeHeadLine(line);
  }
  (void)accord::audit::VerifyProofBundle(text, Key());
  return 0;
}
