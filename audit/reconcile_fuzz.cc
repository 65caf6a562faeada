// libFuzzer target: reconciliation of two arbitrary "exports" (the input cut
// at its first NUL byte: gateway before, agent after) and the display
// escaping of arbitrary text. Must never crash, hang or leak; escaped text
// holds no control byte, escaping (and making UTF-8) twice equals doing it
// once, and a reconciliation that succeeds counts its findings consistently.
#include <cstddef>
#include <cstdint>
#include <string>

#include "audit/printable.h"
#include "audit/reconcile.h"
#include "audit/verify.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const size_t cut = text.find('\0');
  const std::string gateway = text.substr(0, cut);
  const std::string agent =
      cut == std::string::npos ? "" : text.substr(cut + 1);
  auto g = accord::audit::LinesFromString(gateway);
  auto a = accord::audit::LinesFromString(agent);
  auto report = accord::audit::ReconcileExports(*g, {}, *a, {});
  if (report.ok()) {
    uint64_t near = 0;
    for (const auto& f : report->findings) near += f.near_edge;
    if (near + report->discrepancies != report->findings.size())
      __builtin_trap();
    (void)accord::audit::FormatReconcileReport(*report);
  }

  for (const std::string& shown :
       {accord::audit::Printable(text), accord::audit::SpreadsheetText(text)}) {
    for (char c : shown) {
      const auto b = static_cast<unsigned char>(c);
      if (b < 0x20 || b == 0x7f) __builtin_trap();
    }
  }
  const std::string once = accord::audit::Printable(text);
  if (accord::audit::Printable(once) != once) __builtin_trap();
  const std::string block = accord::audit::PrintableBlock(text, "  ");
  for (char c : block) {
    const auto b = static_cast<unsigned char>(c);
    if ((b < 0x20 && c != '\n' && c != '\t') || b == 0x7f) __builtin_trap();
  }
  const std::string utf8 = accord::audit::ValidUtf8(text);
  if (accord::audit::ValidUtf8(utf8) != utf8) __builtin_trap();
  return 0;
}
