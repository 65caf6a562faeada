#include "audit/export_format.h"

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "audit/entry.h"
#include "runtime/crypto.h"

namespace accord::audit {

std::string HashHex(const Hash& h) { return HexEncode(h); }

absl::StatusOr<Hash> HashFromHex(absl::string_view hex) {
  if (hex.size() != 64)
    return absl::InvalidArgumentError("hash must be 64 hex digits");
  auto bytes = HexDecode(hex);
  if (!bytes.ok())
    return absl::InvalidArgumentError("hash must be 64 hex digits");
  return HashFromBytes(*bytes);
}

std::string ExportHeaderLine(const ExportHeader& header) {
  std::string out =
      absl::StrCat("{\"accord_audit_export\":", kExportFormatVersion,
                   ",\"from_seq\":", header.from_seq,
                   ",\"to_seq\":", header.to_seq, ",\"prefix\":[");
  for (size_t i = 0; i < header.prefix.size(); ++i) {
    if (i) out.push_back(',');
    absl::StrAppend(&out, "\"", HashHex(header.prefix[i]), "\"");
  }
  out.append("]}\n");
  return out;
}

absl::StatusOr<ExportHeader> ParseExportHeaderLine(absl::string_view line) {
  ExportHeader h;
  JsonCursor c(line);
  bool have_version = false, have_from = false, have_to = false;
  std::string s;
  auto st = c.Object([&](absl::string_view key) -> absl::Status {
    if (key == "accord_audit_export") {
      uint64_t v;
      if (auto e = c.Uint(&v); !e.ok()) return e;
      if (v != kExportFormatVersion) {
        return c.Error(absl::StrCat("unsupported export format version ", v));
      }
      have_version = true;
      return absl::OkStatus();
    }
    if (key == "from_seq") {
      have_from = true;
      return c.Uint(&h.from_seq);
    }
    if (key == "to_seq") {
      have_to = true;
      return c.Uint(&h.to_seq);
    }
    if (key == "prefix") {
      h.prefix.clear();
      return c.Array([&]() -> absl::Status {
        if (h.prefix.size() >= 64) return c.Error("prefix too long");
        if (auto e = c.String(&s); !e.ok()) return e;
        auto hash = HashFromHex(s);
        if (!hash.ok()) return c.Error(hash.status().message());
        h.prefix.push_back(*hash);
        return absl::OkStatus();
      });
    }
    return c.Error(absl::StrCat("unknown header field \"", key, "\""));
  });
  if (!st.ok()) return st;
  if (auto e = c.End(); !e.ok()) return e;
  if (!have_version || !have_from || !have_to) {
    return absl::InvalidArgumentError(
        "export header needs accord_audit_export, from_seq and to_seq");
  }
  if (h.from_seq > h.to_seq) {
    return absl::InvalidArgumentError(
        "export header: from_seq is after to_seq");
  }
  return h;
}

void AppendTreeHeadJson(std::string* out,
                        const accord::v1::SignedTreeHead& head) {
  absl::StrAppend(out, "{\"tree_size\":", head.tree_size(), ",\"root_hash\":\"",
                  HexEncode(head.root_hash()), "\",\"timestamp\":\"",
                  FormatTimestamp(head.timestamp()), "\",\"signature\":\"",
                  absl::Base64Escape(head.signature()), "\",\"key_id\":");
  AppendJsonString(out, head.key_id());
  out->push_back('}');
}

absl::StatusOr<accord::v1::SignedTreeHead> ParseTreeHeadJson(JsonCursor& c) {
  accord::v1::SignedTreeHead head;
  std::string s;
  int seen = 0;
  auto st = c.Object([&](absl::string_view key) -> absl::Status {
    if (key == "tree_size") {
      seen |= 1;
      uint64_t v;
      if (auto e = c.Uint(&v); !e.ok()) return e;
      head.set_tree_size(v);
      return absl::OkStatus();
    }
    if (auto e = (key == "key_id" || key == "root_hash" || key == "timestamp" ||
                  key == "signature")
                     ? c.String(&s)
                     : c.Error(absl::StrCat("unknown tree head field \"", key,
                                            "\""));
        !e.ok()) {
      return e;
    }
    if (key == "root_hash") {
      seen |= 2;
      auto h = HashFromHex(s);
      if (!h.ok()) return c.Error("root_hash must be 64 hex digits");
      head.set_root_hash(std::string(AsBytes(*h)));
    } else if (key == "timestamp") {
      seen |= 4;
      auto ts = ParseTimestamp(s);
      if (!ts.ok()) return c.Error(ts.status().message());
      *head.mutable_timestamp() = *ts;
    } else if (key == "signature") {
      seen |= 8;
      std::string sig;
      if (!absl::Base64Unescape(s, &sig))
        return c.Error("signature is not base64");
      head.set_signature(sig);
    } else {
      seen |= 16;
      head.set_key_id(s);
    }
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  if (seen != 31) {
    return absl::InvalidArgumentError(
        "tree head needs tree_size, root_hash, timestamp, signature and "
        "key_id");
  }
  return head;
}

std::string TreeHeadLine(const accord::v1::SignedTreeHead& head) {
  std::string out = "{\"tree_head\":";
  AppendTreeHeadJson(&out, head);
  out.append("}\n");
  return out;
}

bool IsTreeHeadLine(absl::string_view line) {
  return absl::StartsWith(line, "{\"tree_head\"");
}

absl::StatusOr<accord::v1::SignedTreeHead> ParseTreeHeadLine(
    absl::string_view line) {
  JsonCursor c(line);
  absl::StatusOr<accord::v1::SignedTreeHead> head =
      absl::InvalidArgumentError("tree head line has no \"tree_head\"");
  auto st = c.Object([&](absl::string_view key) -> absl::Status {
    if (key != "tree_head")
      return c.Error(absl::StrCat("unknown field \"", key, "\""));
    head = ParseTreeHeadJson(c);
    return head.status();
  });
  if (!st.ok()) return st;
  if (auto e = c.End(); !e.ok()) return e;
  return head;
}

}  // namespace accord::audit
