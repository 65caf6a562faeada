#include "audit/entry.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "audit/json.h"
#include "audit/printable.h"
#include "runtime/clock.h"

namespace accord::audit {
namespace {

using accord::v1::Actor;
using accord::v1::AuditEntry;

std::string SerializeDeterministic(const AuditEntry& entry) {
  std::string out;
  out.push_back(kLeafVersion);
  {
    google::protobuf::io::StringOutputStream sos(&out);
    google::protobuf::io::CodedOutputStream cos(&sos);
    cos.SetSerializationDeterministic(true);
    entry.SerializeToCodedStream(&cos);
  }
  return out;
}

template <typename NameFn>
void AppendEnum(std::string* out, int value, NameFn name) {
  const std::string& n = name(value);
  if (n.empty()) {
    absl::StrAppend(out, value);
  } else {
    AppendJsonString(out, n);
  }
}

void AppendActor(std::string* out, bool present, const Actor& a) {
  if (!present) {
    out->append("null");
    return;
  }
  out->append("{\"user_id\":");
  AppendJsonString(out, a.user_id());
  out->append(",\"role\":");
  AppendJsonString(out, a.role());
  out->push_back('}');
}

// Enum names to values, built once from the descriptor (the generated
// X_Parse looks names up in the descriptor pool under a lock).
template <typename Enum>
const absl::flat_hash_map<std::string, int>& EnumValues() {
  static const auto* values = [] {
    auto* m = new absl::flat_hash_map<std::string, int>;
    const auto* d = google::protobuf::GetEnumDescriptor<Enum>();
    for (int i = 0; i < d->value_count(); ++i)
      m->emplace(d->value(i)->name(), d->value(i)->number());
    return m;
  }();
  return *values;
}

template <typename Enum>
absl::Status ParseEnum(JsonCursor& c, bool (*)(const std::string&, Enum*),
                       Enum* out) {
  if (c.AtString()) {
    std::string name;
    if (auto s = c.String(&name); !s.ok()) return s;
    const auto& values = EnumValues<Enum>();
    auto it = values.find(name);
    if (it == values.end())
      return c.Error(absl::StrCat("unknown enum value ", name));
    *out = static_cast<Enum>(it->second);
    return absl::OkStatus();
  }
  uint64_t v;
  if (auto s = c.Uint(&v); !s.ok()) return s;
  if (v > INT32_MAX) return c.Error("enum value out of range");
  *out = static_cast<Enum>(v);
  return absl::OkStatus();
}

absl::Status ParseActor(JsonCursor& c, Actor* a, bool* present) {
  if (c.Null()) {
    *present = false;
    return absl::OkStatus();
  }
  *present = true;
  return c.Object([&](absl::string_view key) -> absl::Status {
    if (key == "user_id") return c.String(a->mutable_user_id());
    if (key == "role") return c.String(a->mutable_role());
    return c.Error(absl::StrCat("unknown actor field ", key));
  });
}

absl::Status ParseU32(JsonCursor& c, uint32_t* out) {
  uint64_t v;
  if (auto s = c.Uint(&v); !s.ok()) return s;
  if (v > UINT32_MAX) return c.Error("value out of range");
  *out = static_cast<uint32_t>(v);
  return absl::OkStatus();
}

enum Key {
  kSeq,
  kTime,
  kRequestId,
  kCaller,
  kCallerOrg,
  kActor,
  kMethod,
  kAction,
  kPurpose,
  kLawfulBasis,
  kAgreementId,
  kAgreementVersion,
  kRuleId,
  kHolder,
  kSubjects,
  kFieldsReleased,
  kRecordCount,
  kDecision,
  kDenyReason,
  kNoConsentJustification,
  kNoConsentApprover,
  kFlagForReview,
  kReviewsSeq,
  kReviewNote,
  kReferralId,
  kDetail,
  kAgentOrg,
  kRecordIds,
  kConsentId,
  kRefusalsSummarised,
  kSummarisedSince,
  kOverShared,
  kLeaf,
  kNumKeys
};

absl::string_view KeyName(Key k) {
  static constexpr absl::string_view kNames[] = {"seq",
                                                 "time",
                                                 "request_id",
                                                 "caller",
                                                 "caller_org",
                                                 "actor",
                                                 "method",
                                                 "action",
                                                 "purpose",
                                                 "lawful_basis",
                                                 "agreement_id",
                                                 "agreement_version",
                                                 "rule_id",
                                                 "holder",
                                                 "subjects",
                                                 "fields_released",
                                                 "record_count",
                                                 "decision",
                                                 "deny_reason",
                                                 "no_consent_justification",
                                                 "no_consent_approver",
                                                 "flag_for_review",
                                                 "reviews_seq",
                                                 "review_note",
                                                 "referral_id",
                                                 "detail",
                                                 "agent_org",
                                                 "record_ids",
                                                 "consent_id",
                                                 "refusals_summarised",
                                                 "summarised_since",
                                                 "over_shared",
                                                 "leaf"};
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == kNumKeys);
  return kNames[k];
}

const absl::flat_hash_map<absl::string_view, Key>& KeyIndex() {
  static const auto* index = new absl::flat_hash_map<absl::string_view, Key>{
      {"seq", kSeq},
      {"time", kTime},
      {"request_id", kRequestId},
      {"caller", kCaller},
      {"caller_org", kCallerOrg},
      {"actor", kActor},
      {"method", kMethod},
      {"action", kAction},
      {"purpose", kPurpose},
      {"lawful_basis", kLawfulBasis},
      {"agreement_id", kAgreementId},
      {"agreement_version", kAgreementVersion},
      {"rule_id", kRuleId},
      {"holder", kHolder},
      {"subjects", kSubjects},
      {"fields_released", kFieldsReleased},
      {"record_count", kRecordCount},
      {"decision", kDecision},
      {"deny_reason", kDenyReason},
      {"no_consent_justification", kNoConsentJustification},
      {"no_consent_approver", kNoConsentApprover},
      {"flag_for_review", kFlagForReview},
      {"reviews_seq", kReviewsSeq},
      {"review_note", kReviewNote},
      {"referral_id", kReferralId},
      {"detail", kDetail},
      {"agent_org", kAgentOrg},
      {"record_ids", kRecordIds},
      {"consent_id", kConsentId},
      {"refusals_summarised", kRefusalsSummarised},
      {"summarised_since", kSummarisedSince},
      {"over_shared", kOverShared},
      {"leaf", kLeaf},
  };
  return *index;
}

// CSV cell: quoted when it holds a separator or quote. Text cells are shown
// as text (control characters escaped, a leading apostrophe before what a
// spreadsheet would run as a formula: audit/printable.h); numbers, times and
// enum names are written as they are.
void AppendCsvCell(std::string* out, absl::string_view v, bool text = true) {
  std::string cell;
  if (text) {
    cell = SpreadsheetText(v);
    v = cell;
  }
  if (v.find_first_of(",\"\r\n") == absl::string_view::npos) {
    out->append(v.data(), v.size());
    return;
  }
  out->push_back('"');
  for (char c : v) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

std::string SubjectsText(const AuditEntry& e) {
  std::vector<std::string> parts;
  for (const auto& s : e.subjects()) {
    parts.push_back(
        absl::StrCat(accord::v1::TokenKind_Name(s.kind()), ":", s.value()));
  }
  return absl::StrJoin(parts, ";");
}

}  // namespace

std::string EncodeLeaf(const AuditEntry& entry) {
  return SerializeDeterministic(entry);
}

void EncodeLeafTo(const AuditEntry& entry, std::string* leaf) {
  leaf->clear();
  leaf->push_back(kLeafVersion);
  google::protobuf::io::StringOutputStream sos(leaf);
  google::protobuf::io::CodedOutputStream cos(&sos);
  cos.SetSerializationDeterministic(true);
  entry.SerializeToCodedStream(&cos);
}

std::string EncodeLeafBody(const AuditEntry& entry) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream sos(&out);
    google::protobuf::io::CodedOutputStream cos(&sos);
    cos.SetSerializationDeterministic(true);
    entry.SerializeToCodedStream(&cos);
  }
  return out;
}

namespace {
void AppendVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool ReadVarint(const char*& p, const char* end, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && p < end; shift += 7) {
    const uint8_t b = static_cast<uint8_t>(*p++);
    *v |= uint64_t{b & 0x7fu} << shift;
    if (b < 0x80) return true;
  }
  return false;
}

// RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
bool IsUtf8(absl::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const uint8_t c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n;
    uint8_t lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return false;
    }
    if (end - p <= n) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (int i = 2; i <= n; ++i) {
      if (p[i] < 0x80 || p[i] > 0xbf) return false;
    }
    p += n + 1;
  }
  return true;
}

bool StringsAreUtf8(absl::string_view bytes,
                    const google::protobuf::Descriptor* type, int depth) {
  if (depth > 16) return false;
  const char* p = bytes.data();
  const char* end = p + bytes.size();
  while (p < end) {
    uint64_t tag, v;
    if (!ReadVarint(p, end, &tag)) return false;
    switch (tag & 7) {
      case 0:
        if (!ReadVarint(p, end, &v)) return false;
        break;
      case 1:
        if (end - p < 8) return false;
        p += 8;
        break;
      case 5:
        if (end - p < 4) return false;
        p += 4;
        break;
      case 2: {
        if (!ReadVarint(p, end, &v) || v > static_cast<uint64_t>(end - p))
          return false;
        const absl::string_view value(p, v);
        p += v;
        const auto* field = type->FindFieldByNumber(static_cast<int>(tag >> 3));
        if (field == nullptr) break;
        if (field->type() == google::protobuf::FieldDescriptor::TYPE_STRING &&
            !IsUtf8(value))
          return false;
        if (field->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE &&
            !StringsAreUtf8(value, field->message_type(), depth + 1))
          return false;
        break;
      }
      default:
        return false;
    }
  }
  return true;
}
}  // namespace

void AppendLeaf(uint64_t seq, const google::protobuf::Timestamp& time,
                absl::string_view body, std::string* leaf) {
  leaf->push_back(kLeafVersion);
  if (seq != 0) {
    leaf->push_back(0x08);  // field 1, varint
    AppendVarint(seq, leaf);
  }
  // Field 2, the Timestamp message: seconds (1, int64) and nanos (2, int32),
  // each omitted when zero; negative values are 10-byte varints.
  std::string ts;
  if (time.seconds() != 0) {
    ts.push_back(0x08);
    AppendVarint(static_cast<uint64_t>(time.seconds()), &ts);
  }
  if (time.nanos() != 0) {
    ts.push_back(0x10);
    AppendVarint(static_cast<uint64_t>(int64_t{time.nanos()}), &ts);
  }
  leaf->push_back(0x12);
  AppendVarint(ts.size(), leaf);
  leaf->append(ts);
  leaf->append(body.data(), body.size());
}

bool LeafBodyIsUtf8(absl::string_view body) {
  return StringsAreUtf8(body, AuditEntry::descriptor(), 0);
}

absl::StatusOr<AuditEntry> DecodeLeaf(absl::string_view leaf) {
  if (leaf.empty() || leaf[0] != kLeafVersion) {
    return absl::InvalidArgumentError("leaf has an unknown encoding version");
  }
  AuditEntry entry;
  if (!entry.ParseFromArray(leaf.data() + 1,
                            static_cast<int>(leaf.size() - 1))) {
    return absl::InvalidArgumentError("leaf is not an AuditEntry");
  }
  if (EncodeLeaf(entry) != leaf) {
    return absl::InvalidArgumentError("leaf is not canonically encoded");
  }
  return entry;
}

std::string FormatTimestamp(const google::protobuf::Timestamp& ts) {
  return absl::StrCat(absl::FormatTime("%Y-%m-%d%ET%H:%M:%E*S",
                                       FromProtoTime(ts), absl::UTCTimeZone()),
                      "Z");
}

namespace {
// Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar.
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// The exact shape FormatTimestamp writes, "YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z"
// with every field in range; anything else goes to the general parser.
bool ParseTimestampFast(absl::string_view t, google::protobuf::Timestamp* out) {
  if (t.size() < 20 || t.size() > 30 || t[4] != '-' || t[7] != '-' ||
      t[10] != 'T' || t[13] != ':' || t[16] != ':' || t.back() != 'Z') {
    return false;
  }
  auto num = [&](size_t at, size_t len, int* v) {
    *v = 0;
    for (size_t i = at; i < at + len; ++i) {
      if (t[i] < '0' || t[i] > '9') return false;
      *v = *v * 10 + (t[i] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, sec;
  if (!num(0, 4, &y) || !num(5, 2, &mo) || !num(8, 2, &d) || !num(11, 2, &h) ||
      !num(14, 2, &mi) || !num(17, 2, &sec)) {
    return false;
  }
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo < 1 || mo > 12 || d < 1 ||
      d > kDays[mo - 1] + (mo == 2 && leap ? 1 : 0) || h > 23 || mi > 59 ||
      sec > 59) {
    return false;
  }
  int nanos = 0;
  const size_t frac_end = t.size() - 1;
  if (frac_end > 19) {
    if (t[19] != '.' || frac_end == 20) return false;
    for (size_t i = 20; i < 29; ++i) {
      nanos *= 10;
      if (i < frac_end) {
        if (t[i] < '0' || t[i] > '9') return false;
        nanos += t[i] - '0';
      }
    }
  }
  out->set_seconds(DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec);
  out->set_nanos(nanos);
  return true;
}
}  // namespace

absl::StatusOr<google::protobuf::Timestamp> ParseTimestamp(
    absl::string_view text) {
  google::protobuf::Timestamp fast;
  if (ParseTimestampFast(text, &fast)) return fast;
  absl::Time t;
  std::string err;
  if (text.empty() || text.back() != 'Z' ||
      !absl::ParseTime("%Y-%m-%d%ET%H:%M:%E*S", text.substr(0, text.size() - 1),
                       absl::UTCTimeZone(), &t, &err)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "time must be RFC 3339 UTC (…Z)", err.empty() ? "" : ": ", err));
  }
  return ToProtoTime(t);
}

std::string JsonLine(const AuditEntry& e, absl::string_view leaf) {
  std::string out;
  out.reserve(512 + leaf.size() * 4 / 3);
  absl::StrAppend(&out, "{\"seq\":", e.seq(), ",\"time\":");
  if (e.has_time()) {
    AppendJsonString(&out, FormatTimestamp(e.time()));
  } else {
    out.append("null");
  }
  out.append(",\"request_id\":");
  AppendJsonString(&out, e.request_id());
  out.append(",\"caller\":");
  AppendJsonString(&out, e.caller());
  out.append(",\"caller_org\":");
  AppendJsonString(&out, e.caller_org());
  out.append(",\"actor\":");
  AppendActor(&out, e.has_actor(), e.actor());
  out.append(",\"method\":");
  AppendJsonString(&out, e.method());
  out.append(",\"action\":");
  AppendEnum(&out, e.action(), [](int v) -> const std::string& {
    return accord::v1::Action_Name(static_cast<accord::v1::Action>(v));
  });
  out.append(",\"purpose\":");
  AppendJsonString(&out, e.purpose());
  out.append(",\"lawful_basis\":");
  AppendEnum(&out, e.lawful_basis(), [](int v) -> const std::string& {
    return accord::v1::LawfulBasis_Name(
        static_cast<accord::v1::LawfulBasis>(v));
  });
  out.append(",\"agreement_id\":");
  AppendJsonString(&out, e.agreement_id());
  absl::StrAppend(&out, ",\"agreement_version\":", e.agreement_version(),
                  ",\"rule_id\":");
  AppendJsonString(&out, e.rule_id());
  out.append(",\"holder\":");
  AppendJsonString(&out, e.holder());
  out.append(",\"subjects\":[");
  for (int i = 0; i < e.subjects_size(); ++i) {
    if (i) out.push_back(',');
    out.append("{\"kind\":");
    AppendEnum(&out, e.subjects(i).kind(), [](int v) -> const std::string& {
      return accord::v1::TokenKind_Name(static_cast<accord::v1::TokenKind>(v));
    });
    out.append(",\"value\":");
    AppendJsonString(&out, e.subjects(i).value());
    out.push_back('}');
  }
  out.append("],\"fields_released\":[");
  for (int i = 0; i < e.fields_released_size(); ++i) {
    if (i) out.push_back(',');
    AppendJsonString(&out, e.fields_released(i));
  }
  absl::StrAppend(&out, "],\"record_count\":", e.record_count(),
                  ",\"decision\":");
  AppendEnum(&out, e.decision(), [](int v) -> const std::string& {
    return accord::v1::AuditDecision_Name(
        static_cast<accord::v1::AuditDecision>(v));
  });
  out.append(",\"deny_reason\":");
  AppendJsonString(&out, e.deny_reason());
  out.append(",\"no_consent_justification\":");
  AppendJsonString(&out, e.no_consent_justification());
  out.append(",\"no_consent_approver\":");
  AppendActor(&out, e.has_no_consent_approver(), e.no_consent_approver());
  absl::StrAppend(
      &out, ",\"flag_for_review\":", e.flag_for_review() ? "true" : "false",
      ",\"reviews_seq\":", e.reviews_seq(), ",\"review_note\":");
  AppendJsonString(&out, e.review_note());
  out.append(",\"referral_id\":");
  AppendJsonString(&out, e.referral_id());
  out.append(",\"detail\":");
  AppendJsonString(&out, e.detail());
  // Fields only an agent's log sets are written when set, so that the
  // gateway's rows (and exports made before these fields) are unchanged.
  if (!e.agent_org().empty()) {
    out.append(",\"agent_org\":");
    AppendJsonString(&out, e.agent_org());
  }
  if (e.record_ids_size() > 0) {
    out.append(",\"record_ids\":[");
    for (int i = 0; i < e.record_ids_size(); ++i) {
      if (i) out.push_back(',');
      AppendJsonString(&out, e.record_ids(i));
    }
    out.push_back(']');
  }
  if (!e.consent_id().empty()) {
    out.append(",\"consent_id\":");
    AppendJsonString(&out, e.consent_id());
  }
  if (e.refusals_summarised() > 0) {
    absl::StrAppend(&out, ",\"refusals_summarised\":",
                    e.refusals_summarised());
  }
  if (e.has_summarised_since()) {
    out.append(",\"summarised_since\":");
    AppendJsonString(&out, FormatTimestamp(e.summarised_since()));
  }
  if (e.over_shared_size() > 0) {
    out.append(",\"over_shared\":[");
    for (int i = 0; i < e.over_shared_size(); ++i) {
      if (i) out.push_back(',');
      AppendJsonString(&out, e.over_shared(i));
    }
    out.push_back(']');
  }
  out.append(",\"leaf\":\"");
  out.append(absl::Base64Escape(leaf));
  out.append("\"}\n");
  return out;
}

absl::StatusOr<JsonRow> ParseJsonLine(absl::string_view line) {
  JsonRow row;
  if (auto s = ParseJsonLineInto(line, &row); !s.ok()) return s;
  return row;
}

absl::Status ParseJsonLineInto(absl::string_view line, JsonRow* out) {
  JsonRow& row = *out;
  AuditEntry& e = row.entry;
  e.Clear();
  row.leaf.clear();
  JsonCursor c(line);
  uint64_t seen = 0;
  int next_key = 0;  // rows are written in Key order: try that first
  bool have_leaf = false;
  std::string& scratch = row.scratch;
  auto status = c.Object([&](absl::string_view key) -> absl::Status {
    Key which;
    if (next_key < kNumKeys && key == KeyName(static_cast<Key>(next_key))) {
      which = static_cast<Key>(next_key);
    } else {
      const auto& index = KeyIndex();
      auto it = index.find(key);
      if (it == index.end())
        return c.Error(absl::StrCat("unknown field \"", key, "\""));
      which = it->second;
    }
    next_key = which + 1;
    const uint64_t bit = uint64_t{1} << which;
    if (seen & bit)
      return c.Error(absl::StrCat("field \"", key, "\" repeated"));
    seen |= bit;
    switch (which) {
      case kSeq: {
        uint64_t v;
        if (auto s = c.Uint(&v); !s.ok()) return s;
        e.set_seq(v);
        return absl::OkStatus();
      }
      case kTime: {
        if (c.Null()) return absl::OkStatus();
        absl::string_view text;
        if (auto s = c.StringView(&text, &scratch); !s.ok()) return s;
        auto ts = ParseTimestamp(text);
        if (!ts.ok()) return c.Error(ts.status().message());
        *e.mutable_time() = *ts;
        return absl::OkStatus();
      }
      case kRequestId:
        return c.String(e.mutable_request_id());
      case kCaller:
        return c.String(e.mutable_caller());
      case kCallerOrg:
        return c.String(e.mutable_caller_org());
      case kActor: {
        Actor a;
        bool present;
        if (auto s = ParseActor(c, &a, &present); !s.ok()) return s;
        if (present) *e.mutable_actor() = std::move(a);
        return absl::OkStatus();
      }
      case kMethod:
        return c.String(e.mutable_method());
      case kAction: {
        accord::v1::Action v = {};
        if (auto s = ParseEnum(c, &accord::v1::Action_Parse, &v); !s.ok())
          return s;
        e.set_action(v);
        return absl::OkStatus();
      }
      case kPurpose:
        return c.String(e.mutable_purpose());
      case kLawfulBasis: {
        accord::v1::LawfulBasis v = {};
        if (auto s = ParseEnum(c, &accord::v1::LawfulBasis_Parse, &v); !s.ok())
          return s;
        e.set_lawful_basis(v);
        return absl::OkStatus();
      }
      case kAgreementId:
        return c.String(e.mutable_agreement_id());
      case kAgreementVersion: {
        uint32_t v;
        if (auto s = ParseU32(c, &v); !s.ok()) return s;
        e.set_agreement_version(v);
        return absl::OkStatus();
      }
      case kRuleId:
        return c.String(e.mutable_rule_id());
      case kHolder:
        return c.String(e.mutable_holder());
      case kSubjects:
        return c.Array([&]() -> absl::Status {
          auto* t = e.add_subjects();
          return c.Object([&](absl::string_view k) -> absl::Status {
            if (k == "kind") {
              accord::v1::TokenKind v = {};
              if (auto s = ParseEnum(c, &accord::v1::TokenKind_Parse, &v);
                  !s.ok())
                return s;
              t->set_kind(v);
              return absl::OkStatus();
            }
            if (k == "value") return c.String(t->mutable_value());
            return c.Error(absl::StrCat("unknown subject field ", k));
          });
        });
      case kFieldsReleased:
        return c.Array([&] { return c.String(e.add_fields_released()); });
      case kRecordCount: {
        uint32_t v;
        if (auto s = ParseU32(c, &v); !s.ok()) return s;
        e.set_record_count(v);
        return absl::OkStatus();
      }
      case kDecision: {
        accord::v1::AuditDecision v = {};
        if (auto s = ParseEnum(c, &accord::v1::AuditDecision_Parse, &v);
            !s.ok())
          return s;
        e.set_decision(v);
        return absl::OkStatus();
      }
      case kDenyReason:
        return c.String(e.mutable_deny_reason());
      case kNoConsentJustification:
        return c.String(e.mutable_no_consent_justification());
      case kNoConsentApprover: {
        Actor a;
        bool present;
        if (auto s = ParseActor(c, &a, &present); !s.ok()) return s;
        if (present) *e.mutable_no_consent_approver() = std::move(a);
        return absl::OkStatus();
      }
      case kFlagForReview: {
        bool b;
        if (auto s = c.Bool(&b); !s.ok()) return s;
        e.set_flag_for_review(b);
        return absl::OkStatus();
      }
      case kReviewsSeq: {
        uint64_t v;
        if (auto s = c.Uint(&v); !s.ok()) return s;
        e.set_reviews_seq(v);
        return absl::OkStatus();
      }
      case kReviewNote:
        return c.String(e.mutable_review_note());
      case kReferralId:
        return c.String(e.mutable_referral_id());
      case kDetail:
        return c.String(e.mutable_detail());
      case kAgentOrg:
        return c.String(e.mutable_agent_org());
      case kRecordIds:
        return c.Array([&] { return c.String(e.add_record_ids()); });
      case kConsentId:
        return c.String(e.mutable_consent_id());
      case kRefusalsSummarised: {
        uint64_t v;
        if (auto s = c.Uint(&v); !s.ok()) return s;
        e.set_refusals_summarised(v);
        return absl::OkStatus();
      }
      case kSummarisedSince: {
        if (c.Null()) return absl::OkStatus();
        absl::string_view text;
        if (auto s = c.StringView(&text, &scratch); !s.ok()) return s;
        auto ts = ParseTimestamp(text);
        if (!ts.ok()) return c.Error(ts.status().message());
        *e.mutable_summarised_since() = *ts;
        return absl::OkStatus();
      }
      case kOverShared:
        return c.Array([&] { return c.String(e.add_over_shared()); });
      case kLeaf: {
        absl::string_view b64;
        if (auto s = c.StringView(&b64, &scratch); !s.ok()) return s;
        if (!absl::Base64Unescape(b64, &row.leaf))
          return c.Error("leaf is not base64");
        have_leaf = true;
        return absl::OkStatus();
      }
      case kNumKeys:
        break;
    }
    return c.Error("unreachable");
  });
  if (!status.ok()) return status;
  if (auto s = c.End(); !s.ok()) return s;
  if (!have_leaf) return absl::InvalidArgumentError("row has no \"leaf\"");
  if (!(seen & (uint64_t{1} << kSeq)))
    return absl::InvalidArgumentError("row has no \"seq\"");
  return absl::OkStatus();
}

std::vector<std::string> DifferingFields(const AuditEntry& a,
                                         const AuditEntry& b) {
  std::vector<std::string> out;
  const auto* desc = AuditEntry::descriptor();
  for (int i = 0; i < desc->field_count(); ++i) {
    const auto* f = desc->field(i);
    AuditEntry ca = a, cb = b, fa, fb;
    ca.GetReflection()->SwapFields(&ca, &fa, {f});
    cb.GetReflection()->SwapFields(&cb, &fb, {f});
    if (EncodeLeaf(fa) != EncodeLeaf(fb)) out.push_back(f->name());
  }
  return out;
}

std::string CsvHeader() {
  return "seq,time,request_id,caller,caller_org,user_id,role,method,action,"
         "purpose,"
         "lawful_basis,agreement_id,agreement_version,rule_id,holder,subjects,"
         "fields_released,record_count,decision,deny_reason,no_consent_"
         "justification,"
         "no_consent_approver_user_id,no_consent_approver_role,flag_for_review,"
         "reviews_seq,"
         "review_note,referral_id,detail,agent_org,record_ids,consent_id,"
         "refusals_summarised,summarised_since,over_shared,leaf\r\n";
}

std::string CsvLine(const AuditEntry& e, absl::string_view leaf) {
  std::string out;
  auto cell = [&](absl::string_view v, bool text = true) {
    if (!out.empty()) out.push_back(',');
    AppendCsvCell(&out, v, text);
  };
  cell(absl::StrCat(e.seq()), false);
  cell(e.has_time() ? FormatTimestamp(e.time()) : "", false);
  cell(e.request_id());
  cell(e.caller());
  cell(e.caller_org());
  cell(e.actor().user_id());
  cell(e.actor().role());
  cell(e.method());
  cell(accord::v1::Action_Name(e.action()), false);
  cell(e.purpose());
  cell(accord::v1::LawfulBasis_Name(e.lawful_basis()), false);
  cell(e.agreement_id());
  cell(absl::StrCat(e.agreement_version()), false);
  cell(e.rule_id());
  cell(e.holder());
  cell(SubjectsText(e));
  cell(absl::StrJoin(e.fields_released(), ";"));
  cell(absl::StrCat(e.record_count()), false);
  cell(accord::v1::AuditDecision_Name(e.decision()), false);
  cell(e.deny_reason());
  cell(e.no_consent_justification());
  cell(e.no_consent_approver().user_id());
  cell(e.no_consent_approver().role());
  cell(e.flag_for_review() ? "true" : "false", false);
  cell(absl::StrCat(e.reviews_seq()), false);
  cell(e.review_note());
  cell(e.referral_id());
  cell(e.detail());
  cell(e.agent_org());
  cell(absl::StrJoin(e.record_ids(), ";"));
  cell(e.consent_id());
  cell(absl::StrCat(e.refusals_summarised()), false);
  cell(e.has_summarised_since() ? FormatTimestamp(e.summarised_since()) : "",
       false);
  cell(absl::StrJoin(e.over_shared(), ";"));
  cell(absl::Base64Escape(leaf), false);
  out.append("\r\n");
  return out;
}

std::string SubjectAccessReport(absl::Span<const AuditEntry> entries) {
  // Every value comes from a caller, so each is made printable
  // (audit/printable.h): the report is read by people.
  const auto p = [](absl::string_view v) { return Printable(v); };
  std::string out;
  absl::StrAppend(
      &out, "Audit entries mentioning the subject: ", entries.size(), "\n");
  for (const AuditEntry& e : entries) {
    absl::StrAppend(&out, "\n#", e.seq(), " ", FormatTimestamp(e.time()), ": ",
                    p(e.caller_org().empty() ? e.caller() : e.caller_org()));
    if (!e.actor().user_id().empty()) {
      absl::StrAppend(&out, " (user ", p(e.actor().user_id()),
                      e.actor().role().empty() ? "" : ", role ",
                      p(e.actor().role()), ")");
    }
    absl::StrAppend(&out, " ", p(e.method()), " for purpose \"", p(e.purpose()),
                    "\": ", accord::v1::AuditDecision_Name(e.decision()),
                    ".\n");
    if (!e.agreement_id().empty()) {
      absl::StrAppend(&out, "  Agreement ", p(e.agreement_id()), " v",
                      e.agreement_version(),
                      e.rule_id().empty() ? "" : ", rule ", p(e.rule_id()),
                      ", lawful basis ",
                      accord::v1::LawfulBasis_Name(e.lawful_basis()), ".\n");
    }
    if (!e.holder().empty())
      absl::StrAppend(&out, "  Holder: ", p(e.holder()), ".\n");
    if (e.fields_released_size() > 0 || e.record_count() > 0) {
      absl::StrAppend(&out, "  Released fields: ",
                      p(absl::StrJoin(e.fields_released(), ", ")),
                      "; records: ", e.record_count(), ".\n");
    }
    if (!e.deny_reason().empty())
      absl::StrAppend(&out, "  Refused: ", p(e.deny_reason()), ".\n");
    if (!e.no_consent_justification().empty()) {
      absl::StrAppend(
          &out, "  Shared without consent: ", p(e.no_consent_justification()),
          "; approved by ", p(e.no_consent_approver().user_id()), ".\n");
    }
    if (!e.referral_id().empty())
      absl::StrAppend(&out, "  Referral ", p(e.referral_id()), ".\n");
  }
  return out;
}

}  // namespace accord::audit
