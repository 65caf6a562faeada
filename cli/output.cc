#include "cli/output.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "runtime/clock.h"

namespace accord::cli {

int UsageError(std::ostream& err, const absl::Status& status,
               const char* usage) {
  err << "accordctl: " << Printable(status.message()) << "\n" << usage;
  return 2;
}

int Failure(std::ostream& err, const absl::Status& status) {
  err << "accordctl: " << absl::StatusCodeToString(status.code()) << ": "
      << Printable(status.message()) << "\n";
  if (absl::StrContains(status.message(), "acting practitioner is missing")) {
    err << "accordctl: name yourself with --user ID --role ROLE (or set "
           "ACCORD_USER and ACCORD_ROLE)\n";
  }
  return 1;
}

void PrintJson(std::ostream& out, const google::protobuf::Message& msg) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(msg, &json, options);
  out << json << "\n";
}

std::string FormatDate(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return "-";
  return absl::FormatTime("%Y-%m-%d", FromProtoTime(ts), absl::UTCTimeZone());
}

std::string FormatTime(const google::protobuf::Timestamp& ts) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%E3SZ", FromProtoTime(ts),
                          absl::UTCTimeZone());
}

std::string Readable(const std::string& enum_name, const std::string& prefix) {
  std::string s = absl::StartsWith(enum_name, prefix)
                      ? enum_name.substr(prefix.size())
                      : enum_name;
  for (char& c : s)
    c = c == '_' ? ' ' : absl::ascii_tolower(static_cast<unsigned char>(c));
  return s;
}

std::string TokenFlag(const accord::v1::SubjectToken& token) {
  switch (token.kind()) {
    case accord::v1::TOKEN_KIND_NAME_DOB:
      return "name-dob:" + Printable(token.value());
    case accord::v1::TOKEN_KIND_NHS_NUMBER:
      return "nhs:" + Printable(token.value());
    case accord::v1::TOKEN_KIND_DOB_POSTCODE:
      return "dob-postcode:" + Printable(token.value());
    default:
      return "unknown:" + Printable(token.value());
  }
}

void PrintQueryResponse(std::ostream& out,
                        const accord::v1::QueryResponse& response) {
  out << "request " << Printable(response.request_id()) << " (audit entry "
      << response.audit_seq() << ")\n";
  for (const auto& a : response.answers()) {
    out << "\n"
        << Printable(a.holder_name()) << " [" << Printable(a.holder()) << "]: "
        << Readable(accord::v1::HolderStatus_Name(a.status()),
                    "HOLDER_STATUS_");
    if (!a.rule_id().empty()) {
      out << " under agreement " << Printable(a.agreement_id()) << " v"
          << a.agreement_version() << ", rule " << Printable(a.rule_id());
    }
    out << "\n";
    if (!a.detail().empty()) out << "  " << Printable(a.detail()) << "\n";
    if (a.consent_set_aside()) {
      out << "  consent set aside under the agreement's no-consent clause; "
             "flagged for review\n";
    }
    std::vector<std::pair<std::string, std::string>> fields(a.fields().begin(),
                                                            a.fields().end());
    std::sort(fields.begin(), fields.end());
    for (const auto& [k, v] : fields)
      out << "  " << Printable(k) << ": " << Printable(v) << "\n";
    for (const auto& r : a.records()) {
      out << "  record " << Printable(r.ref()) << " ["
          << Readable(accord::v1::DataCategory_Name(r.category()),
                      "DATA_CATEGORY_")
          << ", "
          << Readable(accord::v1::Provenance_Name(r.provenance()),
                      "PROVENANCE_")
          << "] " << Printable(r.recorded())
          << (r.service().empty() ? "" : " " + Printable(r.service()))
          << (r.author_role().empty() ? ""
                                      : " by " + Printable(r.author_role()))
          << "\n    " << PrintableBlock(r.text(), "    ") << "\n";
    }
    for (const auto& i : a.involvement()) {
      out << "  involved: "
          << (i.service().empty() ? "(service not named)"
                                  : Printable(i.service()));
      if (i.since().seconds() != 0) out << " since " << FormatDate(i.since());
      out << "\n    contact: " << Printable(i.contact_name())
          << (i.contact_role().empty() ? ""
                                       : ", " + Printable(i.contact_role()))
          << (i.contact_phone().empty() ? ""
                                        : ", " + Printable(i.contact_phone()))
          << (i.contact_email().empty() ? ""
                                        : ", " + Printable(i.contact_email()))
          << "\n";
    }
    for (const auto& w : a.withheld())
      out << "  withheld " << Printable(w.what()) << ": "
          << Printable(w.reason()) << "\n";
  }
}

void PrintAuditEntry(std::ostream& out, const accord::v1::AuditEntry& e) {
  // Every text of an entry is what some caller sent (a refused request's
  // purpose, a forged actor): escaped, so the entry cannot rewrite the screen.
  const auto p = [](const std::string& v) { return Printable(v); };
  out << "#" << e.seq() << " " << FormatTime(e.time()) << " "
      << Readable(accord::v1::AuditDecision_Name(e.decision()),
                  "AUDIT_DECISION_")
      << " " << p(e.method()) << " by "
      << p(e.caller_org().empty() ? e.caller() : e.caller_org());
  if (!e.actor().user_id().empty()) {
    out << " (" << p(e.actor().user_id())
        << (e.actor().role().empty() ? "" : ", " + p(e.actor().role())) << ")";
  }
  if (!e.holder().empty()) out << " -> " << p(e.holder());
  if (!e.purpose().empty()) out << " for " << p(e.purpose());
  if (!e.agent_org().empty())
    out << " [recorded by " << p(e.agent_org()) << "'s agent]";
  out << "\n";
  if (!e.request_id().empty() || !e.referral_id().empty()) {
    out << "    ";
    if (!e.request_id().empty()) out << "request " << p(e.request_id());
    if (!e.request_id().empty() && !e.referral_id().empty()) out << ", ";
    if (!e.referral_id().empty()) out << "referral " << p(e.referral_id());
    out << "\n";
  }
  if (!e.agreement_id().empty()) {
    out << "    agreement " << p(e.agreement_id()) << " v"
        << e.agreement_version() << " rule " << p(e.rule_id()) << ", "
        << Readable(accord::v1::LawfulBasis_Name(e.lawful_basis()),
                    "LAWFUL_BASIS_")
        << "\n";
  }
  if (e.fields_released_size() > 0) {
    out << "    released: " << p(absl::StrJoin(e.fields_released(), ", "))
        << " (" << e.record_count() << " records)\n";
  }
  if (e.record_ids_size() > 0)
    out << "    records: " << p(absl::StrJoin(e.record_ids(), ", ")) << "\n";
  if (!e.consent_id().empty())
    out << "    consent " << p(e.consent_id()) << "\n";
  if (!e.deny_reason().empty())
    out << "    refused: " << p(e.deny_reason()) << "\n";
  if (!e.no_consent_justification().empty()) {
    out << "    without consent: " << p(e.no_consent_justification())
        << "; approved by " << p(e.no_consent_approver().user_id()) << " ("
        << p(e.no_consent_approver().role()) << ")\n";
  }
  if (e.flag_for_review()) out << "    flagged for review\n";
  if (!e.review_note().empty()) {
    out << "    reviews #" << e.reviews_seq() << ": " << p(e.review_note())
        << "\n";
  }
  if (!e.detail().empty()) out << "    " << p(e.detail()) << "\n";
  for (const auto& t : e.subjects())
    out << "    subject " << TokenFlag(t) << "\n";
}

}  // namespace accord::cli
