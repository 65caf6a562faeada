// accordctl query / agreements / token.

#include <google/protobuf/util/json_util.h>

#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "accord/v1/gateway.grpc.pb.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/connection.h"
#include "cli/output.h"
#include "linkage/tokens.h"
#include "runtime/clock.h"
#include "runtime/status.h"

namespace accord::cli {
namespace {

constexpr char kQueryUsage[] =
    R"(usage: accordctl query --purpose PURPOSE (--token KIND:HEX ... | identifiers) [flags]

Identifiers (tokens are derived locally; names never leave this machine):
  --linkage-key FILE  the partnership linkage key
  --given-name N --family-name N --dob DATE --postcode P --nhs NUMBER
Tokens: --token name-dob:HEX | nhs:HEX | dob-postcode:HEX (repeatable)
What to ask:
  --involvement       only which partners work with the person and whom to contact
  --field NAME        a subject field wanted (repeatable or comma-separated)
  --category NAME     a record category wanted, e.g. RISK, NEEDS (repeatable)
  --holder ORG        ask only this holder (repeatable)
Without consent (the agreement's no-consent clause):
  --no-consent BASIS  e.g. RISK_OF_SERIOUS_HARM
  --reason REASON     CANNOT_BE_GIVEN | CANNOT_REASONABLY_BE_OBTAINED | WOULD_PREJUDICE_PROTECTION
  --justification TEXT --approver USER:ROLE (--told | --not-told REASON)
Output: --json for the raw answer.
)";

template <typename E>
absl::StatusOr<E> ParseEnum(const std::string& prefix, const std::string& value,
                            bool (*parse)(const std::string&, E*),
                            const std::string& flag) {
  std::string name = absl::AsciiStrToUpper(value);
  for (char& c : name) {
    if (c == '-') c = '_';
  }
  E e;
  if (parse(name, &e) || parse(prefix + name, &e)) return e;
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, ": unknown value '", value, "'"));
}

}  // namespace

absl::StatusOr<std::vector<accord::v1::SubjectToken>> TokensFromArgs(
    const Args& args) {
  std::vector<accord::v1::SubjectToken> tokens;
  for (const auto& t : args.GetAll("token")) {
    const size_t colon = t.find(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError(
          "--token must be KIND:HEX, e.g. name-dob:3fa2...");
    }
    const std::string kind = t.substr(0, colon);
    accord::v1::SubjectToken token;
    if (kind == "name-dob") {
      token.set_kind(accord::v1::TOKEN_KIND_NAME_DOB);
    } else if (kind == "nhs") {
      token.set_kind(accord::v1::TOKEN_KIND_NHS_NUMBER);
    } else if (kind == "dob-postcode") {
      token.set_kind(accord::v1::TOKEN_KIND_DOB_POSTCODE);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "--token kind '", kind, "' is not name-dob, nhs or dob-postcode"));
    }
    token.set_value(t.substr(colon + 1));
    if (auto s = linkage::ValidateTokenValue(token.value()); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--token: ", s.message()));
    }
    tokens.push_back(std::move(token));
  }
  const bool identifiers = args.Has("given-name") || args.Has("family-name") ||
                           args.Has("dob") || args.Has("postcode") ||
                           args.Has("nhs");
  if (identifiers) {
    auto key_file = args.Require("linkage-key");
    if (!key_file.ok()) return key_file.status();
    auto key = linkage::LinkageKey::Load(*key_file);
    if (!key.ok()) return key.status();
    linkage::IdentifierSet ids;
    auto opt = [&](const char* flag) -> std::optional<std::string> {
      if (!args.Has(flag)) return std::nullopt;
      return args.Get(flag);
    };
    ids.given_name = opt("given-name");
    ids.family_name = opt("family-name");
    ids.date_of_birth = opt("dob");
    ids.postcode = opt("postcode");
    ids.nhs_number = opt("nhs");
    auto derived = linkage::DeriveTokens(*key, ids);
    if (!derived.ok()) return derived.status();
    for (auto& t : *derived) tokens.push_back(std::move(t));
  }
  if (tokens.empty()) {
    return absl::InvalidArgumentError(
        "no subject given: use --token, or identifiers with --linkage-key");
  }
  return tokens;
}

int QueryCommand(const Argv& argv, std::ostream& out, std::ostream& err) {
  auto args = Args::Parse(argv, {"involvement", "json", "told", "help"});
  if (!args.ok()) return UsageError(err, args.status(), kQueryUsage);
  if (args->Has("help")) {
    out << kQueryUsage;
    return 0;
  }
  std::set<std::string> known = kConnectionFlags;
  known.insert({"purpose",     "token",    "linkage-key",   "given-name",
                "family-name", "dob",      "postcode",      "nhs",
                "involvement", "field",    "category",      "holder",
                "no-consent",  "reason",   "justification", "approver",
                "told",        "not-told", "json",          "request-id",
                "help"});
  if (auto s = args->CheckKnown(known); !s.ok())
    return UsageError(err, s, kQueryUsage);

  accord::v1::QueryRequest request;
  auto purpose = args->Require("purpose");
  if (!purpose.ok()) return UsageError(err, purpose.status(), kQueryUsage);
  request.set_purpose(*purpose);
  request.set_request_id(args->Get("request-id"));
  auto tokens = TokensFromArgs(*args);
  if (!tokens.ok()) return UsageError(err, tokens.status(), kQueryUsage);
  for (auto& t : *tokens) *request.add_subjects() = std::move(t);
  request.set_mode(args->Has("involvement") ? accord::v1::QUERY_MODE_INVOLVEMENT
                                            : accord::v1::QUERY_MODE_RECORDS);
  for (const auto& f : args->GetAll("field")) {
    for (absl::string_view part : absl::StrSplit(f, ',', absl::SkipEmpty())) {
      request.add_fields(std::string(part));
    }
  }
  for (const auto& c : args->GetAll("category")) {
    for (absl::string_view part : absl::StrSplit(c, ',', absl::SkipEmpty())) {
      auto cat = ParseEnum<accord::v1::DataCategory>(
          "DATA_CATEGORY_", std::string(part), accord::v1::DataCategory_Parse,
          "category");
      if (!cat.ok()) return UsageError(err, cat.status(), kQueryUsage);
      request.add_categories(*cat);
    }
  }
  for (const auto& h : args->GetAll("holder")) request.add_holders(h);
  if (args->Has("no-consent")) {
    auto* nc = request.mutable_no_consent();
    auto basis = ParseEnum<accord::v1::NoConsentBasis>(
        "NO_CONSENT_BASIS_", args->Get("no-consent"),
        accord::v1::NoConsentBasis_Parse, "no-consent");
    if (!basis.ok()) return UsageError(err, basis.status(), kQueryUsage);
    nc->set_basis(*basis);
    auto reason = ParseEnum<accord::v1::ConsentNotSoughtReason>(
        "CONSENT_NOT_SOUGHT_REASON_", args->Get("reason", "unspecified"),
        accord::v1::ConsentNotSoughtReason_Parse, "reason");
    if (!reason.ok()) return UsageError(err, reason.status(), kQueryUsage);
    nc->set_reason(*reason);
    nc->set_justification(args->Get("justification"));
    const std::string approver = args->Get("approver");
    if (!approver.empty()) {
      std::vector<std::string> parts =
          absl::StrSplit(approver, absl::MaxSplits(':', 1));
      nc->mutable_approver()->set_user_id(parts[0]);
      if (parts.size() > 1) nc->mutable_approver()->set_role(parts[1]);
    }
    if (args->Has("told")) nc->set_subject_told(true);
    if (args->Has("not-told")) nc->set_not_told_reason(args->Get("not-told"));
  }

  auto channel = GatewayChannel(*args);
  if (!channel.ok()) return Failure(err, channel.status());
  auto stub = accord::v1::Gateway::NewStub(*channel);
  grpc::ClientContext ctx;
  PrepareContext(*args, &ctx);
  accord::v1::QueryResponse response;
  const grpc::Status status = stub->Query(&ctx, request, &response);
  if (!status.ok()) return Failure(err, FromGrpcStatus(status));
  if (args->Has("json")) {
    PrintJson(out, response);
  } else {
    PrintQueryResponse(out, response);
  }
  return 0;
}

int AgreementsCommand(const Argv& argv, std::ostream& out, std::ostream& err) {
  auto args = Args::Parse(argv, {"all", "json"});
  if (!args.ok())
    return UsageError(err, args.status(),
                      "usage: accordctl agreements [--all] [--json]\n");
  auto channel = GatewayChannel(*args);
  if (!channel.ok()) return Failure(err, channel.status());
  auto stub = accord::v1::Gateway::NewStub(*channel);
  grpc::ClientContext ctx;
  PrepareContext(*args, &ctx);
  accord::v1::ListAgreementsRequest request;
  request.set_include_inactive(args->Has("all"));
  accord::v1::ListAgreementsResponse response;
  const grpc::Status status = stub->ListAgreements(&ctx, request, &response);
  if (!status.ok()) return Failure(err, FromGrpcStatus(status));
  if (args->Has("json")) {
    PrintJson(out, response);
    return 0;
  }
  for (const auto& a : response.agreements()) {
    out << Printable(a.id()) << " v" << a.version()
        << (a.in_force() ? "  in force" : "  NOT in force") << "\n  "
        << Printable(a.title()) << "\n  parties: ";
    for (int i = 0; i < a.parties_size(); ++i)
      out << (i ? ", " : "") << Printable(a.parties(i));
    out << "\n  valid " << FormatDate(a.valid_from()) << " to "
        << FormatDate(a.valid_until()) << ", review by "
        << FormatDate(a.review_by()) << ", " << a.rule_count() << " rules"
        << (a.dpia_reference().empty()
                ? ""
                : ", DPIA " + Printable(a.dpia_reference()))
        << "\n";
  }
  return 0;
}

int TokenCommand(const Argv& argv, std::ostream& out, std::ostream& err) {
  static constexpr char kUsage[] =
      "usage: accordctl token --linkage-key FILE [--given-name N --family-name "
      "N] [--dob DATE]\n"
      "                       [--postcode P] [--nhs NUMBER]\n";
  auto args = Args::Parse(argv, {"help"});
  if (!args.ok()) return UsageError(err, args.status(), kUsage);
  if (auto s = args->CheckKnown({"linkage-key", "given-name", "family-name",
                                 "dob", "postcode", "nhs", "help"});
      !s.ok()) {
    return UsageError(err, s, kUsage);
  }
  auto tokens = TokensFromArgs(*args);
  if (!tokens.ok()) return UsageError(err, tokens.status(), kUsage);
  for (const auto& t : *tokens) out << TokenFlag(t) << "\n";
  return 0;
}

}  // namespace accord::cli
