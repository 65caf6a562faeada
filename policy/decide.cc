// Deciding one request against a compiled PolicySet, and explaining it.
#include <algorithm>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "policy/compiled.h"
#include "policy/fields.h"
#include "policy/policy.h"

namespace accord::policy {
namespace {

// A rule's place without its directory: decision explanations reach callers
// and the audit log, which need not learn the gateway's directory layout.
absl::string_view FileName(absl::string_view where) {
  if (const size_t slash = where.rfind('/'); slash != absl::string_view::npos)
    where.remove_prefix(slash + 1);
  return where;
}

using accord::v1::ConsentRequirement;
using accord::v1::DenyReason;

// How far a rule got before it failed; a denial reports the furthest.
enum Stage {
  kStageInForce = 1,
  kStagePurpose,
  kStageInvolvement,
  kStageReleasable,
  kStageConsent,
  kStageAllowed,
};

struct Evaluation {
  Stage reached = kStageInForce;
  DenyReason reason = accord::v1::DENY_REASON_UNSPECIFIED;
  ItemSet plan;
  ConsentRequirement consent = accord::v1::CONSENT_REQUIREMENT_UNSPECIFIED;
  bool flag_for_review = false;
  ClauseFailure clause_failure = ClauseFailure::kNone;
};

ClauseFailure CheckClause(const CompiledRule& r, const NoConsentAssertion& a) {
  if (!r.has_clause) return ClauseFailure::kNoClause;
  const auto& clause = r.proto->no_consent();
  if (clause.basis() != a.basis) return ClauseFailure::kBasisMismatch;
  const int reason = static_cast<int>(a.reason);
  if (reason <= 0 || reason >= 32 || !((r.accepted_reasons >> reason) & 1u)) {
    return ClauseFailure::kReasonNotAccepted;
  }
  if (clause.require_justification() && !a.has_justification) {
    return ClauseFailure::kJustificationMissing;
  }
  if (!clause.approver_role().empty()) {
    if (!a.has_approver) return ClauseFailure::kApproverMissing;
    if (a.approver_role != clause.approver_role())
      return ClauseFailure::kApproverWrongRole;
  }
  if (clause.record_whether_told() &&
      a.told == NoConsentAssertion::Told::kNotRecorded) {
    return ClauseFailure::kToldNotRecorded;
  }
  return ClauseFailure::kNone;
}

DenyReason ReasonOf(ClauseFailure f) {
  switch (f) {
    case ClauseFailure::kNoClause:
      return accord::v1::DENY_REASON_NO_CONSENT_CLAUSE_ABSENT;
    case ClauseFailure::kBasisMismatch:
    case ClauseFailure::kReasonNotAccepted:
      return accord::v1::DENY_REASON_NO_CONSENT_BASIS_MISMATCH;
    case ClauseFailure::kJustificationMissing:
      return accord::v1::DENY_REASON_JUSTIFICATION_MISSING;
    case ClauseFailure::kApproverMissing:
    case ClauseFailure::kApproverWrongRole:
      return accord::v1::DENY_REASON_APPROVER_MISSING;
    case ClauseFailure::kToldNotRecorded:
      return accord::v1::DENY_REASON_SUBJECT_TOLD_NOT_RECORDED;
    case ClauseFailure::kNone:
      break;
  }
  return accord::v1::DENY_REASON_UNSPECIFIED;
}

// Evaluates one rule already known to cover (requester, action, holder).
Evaluation Evaluate(const CompiledRule& r, const Request& q, int purpose) {
  Evaluation e;
  if (!r.agreement->InForce(q.at)) {
    e.reason = accord::v1::DENY_REASON_AGREEMENT_NOT_IN_FORCE;
    return e;
  }
  e.reached = kStagePurpose;
  if (purpose < 0 || !((r.purposes >> purpose) & 1u)) {
    e.reason = accord::v1::DENY_REASON_PURPOSE_NOT_AGREED;
    return e;
  }
  e.reached = kStageInvolvement;
  if (r.involvement_only && !q.involvement_only) {
    e.reason = accord::v1::DENY_REASON_INVOLVEMENT_ONLY;
    return e;
  }
  e.reached = kStageReleasable;
  if (!q.involvement_only) {
    e.plan = q.asked_anything() ? (q.asked & r.releases) : r.releases;
    if (e.plan.empty()) {
      e.reason = accord::v1::DENY_REASON_NOTHING_RELEASABLE;
      return e;
    }
  }
  e.reached = kStageConsent;
  if (!r.consent_required) {
    e.consent = accord::v1::CONSENT_REQUIREMENT_NOT_REQUIRED;
  } else if (q.no_consent == nullptr) {
    e.consent = accord::v1::CONSENT_REQUIREMENT_REQUIRED;
  } else {
    e.clause_failure = CheckClause(r, *q.no_consent);
    if (e.clause_failure != ClauseFailure::kNone) {
      e.reason = ReasonOf(e.clause_failure);
      return e;
    }
    e.consent = accord::v1::CONSENT_REQUIREMENT_SET_ASIDE;
    e.flag_for_review = r.proto->no_consent().flag_for_review();
  }
  e.reached = kStageAllowed;
  return e;
}

// Whether allowing rule `a` (with plan size `na`) is preferred over `b`.
bool Better(const CompiledRule& a, int na, const CompiledRule& b, int nb,
            bool involvement) {
  if (na != nb) return na > nb;
  if (involvement && a.involvement_only != b.involvement_only)
    return a.involvement_only;
  return a.order < b.order;
}

std::string ActionName(accord::v1::Action a) {
  return ShortEnumName(accord::v1::Action_Name(a), "ACTION_");
}
std::string ReasonName(DenyReason r) {
  return ShortEnumName(accord::v1::DenyReason_Name(r), "DENY_REASON_");
}
std::string TransformName(accord::v1::Transform t) {
  return ShortEnumName(accord::v1::Transform_Name(t), "TRANSFORM_");
}
std::string Q(absl::string_view s) { return absl::StrCat("'", s, "'"); }

std::string RuleName(const CompiledRule& r) {
  return absl::StrCat("agreement ", Q(r.agreement->proto.id()), " v",
                      r.agreement->proto.version(), " rule ", Q(r.id()));
}

std::string PlanText(const CompiledRule& r, ItemSet plan) {
  std::vector<std::string> parts;
  for (int i = 0; i < kItemCount; ++i) {
    if (plan.Has(i))
      parts.push_back(
          absl::StrCat(ItemName(i), "→", TransformName(r.transforms[i])));
  }
  return absl::StrJoin(parts, ", ");
}

std::string ItemsText(ItemSet items) {
  std::vector<std::string> parts;
  for (int i = 0; i < kItemCount; ++i) {
    if (items.Has(i)) parts.push_back(ItemName(i));
  }
  return absl::StrJoin(parts, ", ");
}

std::string PurposesText(const PolicyData& d, uint64_t bits) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < d.purposes.size(); ++i) {
    if ((bits >> i) & 1u) parts.push_back(d.purposes[i]);
  }
  return absl::StrJoin(parts, ", ");
}

std::string ClauseText(const CompiledRule& r, ClauseFailure f,
                       accord::v1::NoConsentBasis asserted_basis,
                       accord::v1::ConsentNotSoughtReason asserted_reason) {
  const auto& c = r.proto->no_consent();
  switch (f) {
    case ClauseFailure::kNoClause:
      return absl::StrCat(RuleName(r),
                          " requires consent and has no no-consent clause, so "
                          "consent cannot be "
                          "set aside under it");
    case ClauseFailure::kBasisMismatch:
      return absl::StrCat(
          RuleName(r), " allows consent to be set aside only on ",
          accord::v1::NoConsentBasis_Name(c.basis()), "; the request asserted ",
          accord::v1::NoConsentBasis_Name(asserted_basis));
    case ClauseFailure::kReasonNotAccepted: {
      std::vector<std::string> ok;
      for (int reason : c.accepted_reasons()) {
        ok.push_back(accord::v1::ConsentNotSoughtReason_Name(
            static_cast<accord::v1::ConsentNotSoughtReason>(reason)));
      }
      return absl::StrCat(
          RuleName(r), "'s no-consent clause accepts ", absl::StrJoin(ok, ", "),
          " as the reason consent was not sought; the request gave ",
          accord::v1::ConsentNotSoughtReason_Name(asserted_reason));
    }
    case ClauseFailure::kJustificationMissing:
      return absl::StrCat(RuleName(r),
                          "'s no-consent clause requires a written "
                          "justification; none was given");
    case ClauseFailure::kApproverMissing:
      return absl::StrCat(RuleName(r),
                          "'s no-consent clause requires approval by a ",
                          Q(c.approver_role()), "; no approver was given");
    case ClauseFailure::kApproverWrongRole:
      return absl::StrCat(
          RuleName(r), "'s no-consent clause requires approval by a ",
          Q(c.approver_role()), "; the approver given does not hold that role");
    case ClauseFailure::kToldNotRecorded:
      return absl::StrCat(
          RuleName(r),
          "'s no-consent clause requires recording whether the person was told "
          "(subject_told, or not_told_reason when she was not)");
    case ClauseFailure::kNone:
      break;
  }
  return "";
}

// Why rule `r` did not allow the request (one sentence).
std::string MissText(const PolicyData& d, const CompiledRule& r,
                     const Evaluation& e, const Request& q, int purpose) {
  switch (e.reason) {
    case accord::v1::DENY_REASON_AGREEMENT_NOT_IN_FORCE:
      return absl::StrCat("agreement ", Q(r.agreement->proto.id()), " v",
                          r.agreement->proto.version(), " is in force from ",
                          TimeText(r.agreement->valid_from), " until ",
                          TimeText(r.agreement->valid_until), ", not at ",
                          TimeText(q.at));
    case accord::v1::DENY_REASON_PURPOSE_NOT_AGREED:
      return absl::StrCat(
          RuleName(r), " permits purposes [", PurposesText(d, r.purposes),
          "], not ", purpose < 0 ? "this purpose" : Q(d.purposes[purpose]));
    case accord::v1::DENY_REASON_INVOLVEMENT_ONLY:
      return absl::StrCat(
          RuleName(r),
          " permits only involvement answers (who works with the person and "
          "whom to contact); the request asked for record content");
    case accord::v1::DENY_REASON_NOTHING_RELEASABLE:
      return absl::StrCat(RuleName(r), " releases [", ItemsText(r.releases),
                          "], none of what was asked for");
    default:
      return ClauseText(
          r, e.clause_failure,
          q.no_consent ? q.no_consent->basis
                       : accord::v1::NO_CONSENT_BASIS_UNSPECIFIED,
          q.no_consent ? q.no_consent->reason
                       : accord::v1::CONSENT_NOT_SOUGHT_REASON_UNSPECIFIED);
  }
}

std::string ConsentText(const Decision& dec) {
  switch (dec.consent) {
    case accord::v1::CONSENT_REQUIREMENT_REQUIRED:
      return "the holder must find the person's current consent";
    case accord::v1::CONSENT_REQUIREMENT_NOT_REQUIRED:
      return dec.assertion_present ? "consent is not required by this rule "
                                     "(the no-consent assertion was not needed)"
                                   : "consent is not required by this rule";
    case accord::v1::CONSENT_REQUIREMENT_SET_ASIDE:
      return absl::StrCat(
          "consent is set aside under the no-consent clause (",
          accord::v1::NoConsentBasis_Name(
              dec.rule->proto->no_consent().basis()),
          ")",
          dec.flag_for_review ? "; the disclosure is flagged for review" : "");
    default:
      return "";
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// Items and requests

int ItemOfField(absl::string_view field) {
  const FieldSpec* spec = FindField(field);
  return spec == nullptr ? -1 : FieldIndex(*spec);
}

int ItemOfCategory(accord::v1::DataCategory category) {
  const int c = static_cast<int>(category);
  if (c < 1 || c > kItemCount - kFieldItems) return -1;
  return kFieldItems + c - 1;
}

std::string ItemName(int item) {
  if (item >= 0 && item < kFieldItems)
    return std::string(AllFields()[item].name);
  if (item >= kFieldItems && item < kItemCount) {
    return ShortEnumName(
        accord::v1::DataCategory_Name(
            static_cast<accord::v1::DataCategory>(item - kFieldItems + 1)),
        "DATA_CATEGORY_");
  }
  return "?";
}

void Request::AskField(absl::string_view field) {
  const int item = ItemOfField(field);
  if (item < 0) {
    ++unknown_fields_asked;
  } else {
    asked.Add(item);
  }
}

void Request::AskCategory(accord::v1::DataCategory category) {
  const int item = ItemOfCategory(category);
  if (item < 0) {
    ++unknown_fields_asked;
  } else {
    asked.Add(item);
  }
}

NoConsentAssertion NoConsentAssertion::FromProto(
    const accord::v1::NoConsentAssertion& a) {
  NoConsentAssertion out;
  out.basis = a.basis();
  out.reason = a.reason();
  out.has_justification =
      !absl::StripAsciiWhitespace(absl::string_view(a.justification())).empty();
  out.has_approver = a.has_approver() && !a.approver().user_id().empty();
  out.approver_role = a.approver().role();
  switch (a.told_case()) {
    case accord::v1::NoConsentAssertion::kSubjectTold:
      out.told = a.subject_told() ? Told::kTold : Told::kNotRecorded;
      break;
    case accord::v1::NoConsentAssertion::kNotToldReason:
      out.told =
          absl::StripAsciiWhitespace(absl::string_view(a.not_told_reason()))
                  .empty()
              ? Told::kNotRecorded
              : Told::kNotTold;
      break;
    default:
      out.told = Told::kNotRecorded;
  }
  return out;
}

Request Request::FromProto(const accord::v1::DecisionRequest& proto,
                           absl::Time default_at,
                           NoConsentAssertion* assertion_storage) {
  Request q;
  q.requester_org = proto.requester_org();
  q.holder_org = proto.holder_org();
  q.action = proto.action();
  q.purpose = proto.purpose();
  for (const auto& f : proto.fields()) q.AskField(f);
  for (int c : proto.categories())
    q.AskCategory(static_cast<accord::v1::DataCategory>(c));
  q.involvement_only = proto.involvement_only();
  if (proto.has_no_consent()) {
    *assertion_storage = NoConsentAssertion::FromProto(proto.no_consent());
    q.no_consent = assertion_storage;
  }
  q.at = proto.has_at() ? FromProtoTime(proto.at()) : default_at;
  return q;
}

// ---------------------------------------------------------------------------
// Deciding

Decision PolicySet::Decide(const Request& q) const {
  const PolicyData& d = *data_;
  Decision dec;
  dec.data = &d;
  dec.action = q.action;
  dec.at = q.at;
  dec.asked = q.asked;
  dec.asked_anything = q.asked_anything();
  dec.involvement_only = q.involvement_only;
  dec.assertion_present = q.no_consent != nullptr;
  if (q.no_consent) {
    dec.asserted_basis = q.no_consent->basis;
    dec.asserted_reason = q.no_consent->reason;
  }
  dec.requester = d.OrgOf(q.requester_org);
  dec.holder = d.OrgOf(q.holder_org);
  dec.purpose = d.PurposeOf(q.purpose);
  if (dec.requester < 0 || dec.holder < 0) {
    dec.deny_reason = accord::v1::DENY_REASON_UNKNOWN_ORGANISATION;
    return dec;
  }
  const auto it = d.by_parties_action.find(
      PartiesActionKey(dec.requester, dec.holder, q.action));
  if (it == d.by_parties_action.end()) {
    dec.deny_reason =
        d.pairs.contains(PairKey(dec.requester, dec.holder))
            ? accord::v1::DENY_REASON_ACTION_NOT_AGREED
            : accord::v1::DENY_REASON_NO_AGREEMENT_BETWEEN_PARTIES;
    return dec;
  }
  const CompiledRule* best = nullptr;
  Evaluation best_eval;
  const CompiledRule* nearest = nullptr;
  Evaluation nearest_eval;
  for (const CompiledRule* r : it->second) {
    Evaluation e = Evaluate(*r, q, dec.purpose);
    if (e.reached == kStageAllowed) {
      ++dec.allowing_rules;
      if (best == nullptr ||
          Better(*r, e.plan.size(), *best, best_eval.plan.size(),
                 q.involvement_only)) {
        best = r;
        best_eval = e;
      }
    } else if (nearest == nullptr || e.reached > nearest_eval.reached) {
      nearest = r;
      nearest_eval = e;
    }
  }
  if (best != nullptr) {
    dec.verdict = accord::v1::VERDICT_ALLOW;
    dec.rule = best;
    dec.plan = best_eval.plan;
    dec.consent = best_eval.consent;
    dec.flag_for_review = best_eval.flag_for_review;
    return dec;
  }
  dec.rule = nearest;
  dec.deny_reason = nearest_eval.reason;
  dec.clause_failure = nearest_eval.clause_failure;
  return dec;
}

accord::v1::Decision PolicySet::DecideProto(
    const accord::v1::DecisionRequest& request, absl::Time default_at) const {
  NoConsentAssertion assertion;
  const Request q = Request::FromProto(request, default_at, &assertion);
  return Decide(q).ToProto();
}

absl::string_view Decision::agreement_id() const {
  return rule ? absl::string_view(rule->agreement->proto.id())
              : absl::string_view();
}
uint32_t Decision::agreement_version() const {
  return rule ? rule->agreement->proto.version() : 0;
}
absl::string_view Decision::rule_id() const {
  return rule ? absl::string_view(rule->id()) : absl::string_view();
}
accord::v1::LawfulBasis Decision::lawful_basis() const {
  return allowed() && rule != nullptr ? rule->proto->lawful_basis()
                                      : accord::v1::LAWFUL_BASIS_UNSPECIFIED;
}

accord::v1::Transform Decision::TransformOf(int item) const {
  if (rule == nullptr || item < 0 || item >= kItemCount || !plan.Has(item)) {
    return accord::v1::TRANSFORM_UNSPECIFIED;
  }
  return rule->transforms[item];
}

std::string Decision::Explanation() const {
  if (data == nullptr) return "no policy";
  const PolicyData& d = *data;
  const std::string requester_name =
      requester >= 0 ? Q(d.org_ids[requester]) : std::string("the requester");
  const std::string holder_name =
      holder >= 0 ? Q(d.org_ids[holder]) : std::string("the holder");
  if (allowed()) {
    std::string s =
        absl::StrCat("ALLOW: ", RuleName(*rule), " (", FileName(rule->where),
                     ") lets ", requester_name, " ", ActionName(action), " ",
                     holder_name, " for ", Q(d.purposes[purpose]), " on ",
                     accord::v1::LawfulBasis_Name(rule->proto->lawful_basis()));
    if (rule->proto->art9_condition() !=
        accord::v1::ART9_CONDITION_UNSPECIFIED) {
      absl::StrAppend(
          &s, ", ",
          accord::v1::Art9Condition_Name(rule->proto->art9_condition()));
    }
    if (rule->proto->art10_condition() !=
        accord::v1::ART10_CONDITION_UNSPECIFIED) {
      absl::StrAppend(
          &s, ", ",
          accord::v1::Art10Condition_Name(rule->proto->art10_condition()));
    }
    absl::StrAppend(&s, "; ", ConsentText(*this));
    if (involvement_only) {
      absl::StrAppend(
          &s,
          "; involvement only: who works with the person and whom to contact");
    } else {
      absl::StrAppend(&s, "; releases ", PlanText(*rule, plan));
      if (asked_anything) {
        const ItemSet withheld(asked.bits() & ~plan.bits());
        if (!withheld.empty()) {
          absl::StrAppend(&s, "; withheld (not released by this rule): ",
                          ItemsText(withheld));
        }
      }
    }
    if (allowing_rules > 1) {
      absl::StrAppend(&s, "; chosen from ", allowing_rules,
                      " matching rules: the one releasing most of what was "
                      "asked for, then by "
                      "agreement id and rule id");
    }
    return s;
  }
  std::string s = absl::StrCat("DENY (", ReasonName(deny_reason), "): ");
  switch (deny_reason) {
    case accord::v1::DENY_REASON_UNKNOWN_ORGANISATION:
      absl::StrAppend(&s, requester < 0 ? "the requester" : "the holder",
                      " is not an organisation of this partnership");
      return s;
    case accord::v1::DENY_REASON_NO_AGREEMENT_BETWEEN_PARTIES:
      absl::StrAppend(&s, "no agreement has a rule between requester ",
                      requester_name, " and holder ", holder_name);
      return s;
    case accord::v1::DENY_REASON_ACTION_NOT_AGREED:
      absl::StrAppend(&s, "agreements between ", requester_name, " and ",
                      holder_name, " do not permit ", ActionName(action));
      return s;
    default:
      break;
  }
  if (rule == nullptr) return absl::StrCat(s, "nothing permits this request");
  Evaluation e;
  e.reason = deny_reason;
  e.clause_failure = clause_failure;
  NoConsentAssertion a;
  a.basis = asserted_basis;
  a.reason = asserted_reason;
  Request q;
  q.at = at;
  q.no_consent = assertion_present ? &a : nullptr;
  absl::StrAppend(&s, MissText(d, *rule, e, q, purpose), " (nearest rule, ",
                  FileName(rule->where), ")");
  return s;
}

accord::v1::Decision Decision::ToProto() const {
  accord::v1::Decision out;
  out.set_verdict(verdict);
  if (rule != nullptr) {
    out.set_agreement_id(rule->agreement->proto.id());
    out.set_agreement_version(rule->agreement->proto.version());
    out.set_rule_id(rule->id());
  }
  if (allowed()) {
    for (int i = 0; i < kItemCount; ++i) {
      if (!plan.Has(i)) continue;
      auto* rel = out.mutable_plan()->add_releases();
      if (i < kFieldItems) {
        rel->set_field(std::string(AllFields()[i].name));
      } else {
        rel->set_category(
            static_cast<accord::v1::DataCategory>(i - kFieldItems + 1));
      }
      rel->set_transform(rule->transforms[i]);
    }
    out.set_consent(consent);
    out.set_lawful_basis(rule->proto->lawful_basis());
    out.set_art9_condition(rule->proto->art9_condition());
    out.set_art10_condition(rule->proto->art10_condition());
    out.set_flag_for_review(flag_for_review);
    out.set_involvement_only(involvement_only);
    if (rule->proto->has_delivery_limit()) {
      *out.mutable_delivery_limit() = rule->proto->delivery_limit();
    }
  } else {
    out.set_deny_reason(deny_reason);
  }
  out.set_explanation(Explanation());
  return out;
}

namespace {
std::set<std::tuple<int, std::string, int, int>> PlanSet(
    const accord::v1::FieldPlan& plan) {
  std::set<std::tuple<int, std::string, int, int>> out;
  for (const auto& r : plan.releases()) {
    out.emplace(static_cast<int>(r.target_case()), r.field(),
                static_cast<int>(r.category()),
                static_cast<int>(r.transform()));
  }
  return out;
}
}  // namespace

bool SameDecision(const accord::v1::Decision& a,
                  const accord::v1::Decision& b) {
  return a.verdict() == b.verdict() && a.agreement_id() == b.agreement_id() &&
         a.agreement_version() == b.agreement_version() &&
         a.rule_id() == b.rule_id() && a.consent() == b.consent() &&
         PlanSet(a.plan()) == PlanSet(b.plan());
}

// ---------------------------------------------------------------------------
// Explaining, fan-out, register, warnings

std::string PolicySet::Explain(const Request& q) const {
  const PolicyData& d = *data_;
  std::string out;
  absl::StrAppend(&out, "Request: ", Q(q.requester_org), " ",
                  ActionName(q.action), " ", Q(q.holder_org), " for purpose ",
                  Q(q.purpose), " at ", TimeText(q.at),
                  q.involvement_only ? " (involvement only)" : "", "\n");
  absl::StrAppend(&out, "  asked for: ",
                  q.asked_anything()
                      ? ItemsText(q.asked)
                      : std::string("everything the rule releases"),
                  q.unknown_fields_asked
                      ? absl::StrCat(" (+", q.unknown_fields_asked,
                                     " names not in the field catalogue)")
                      : "",
                  "\n");
  if (q.no_consent != nullptr) {
    absl::StrAppend(
        &out, "  no-consent assertion: ",
        accord::v1::NoConsentBasis_Name(q.no_consent->basis), ", ",
        accord::v1::ConsentNotSoughtReason_Name(q.no_consent->reason),
        q.no_consent->has_justification ? ", justification given"
                                        : ", no justification",
        q.no_consent->has_approver
            ? absl::StrCat(", approver role ", Q(q.no_consent->approver_role))
            : ", no approver",
        "\n");
  }
  const int requester = d.OrgOf(q.requester_org);
  const int holder = d.OrgOf(q.holder_org);
  const int purpose = d.PurposeOf(q.purpose);
  if (requester < 0)
    absl::StrAppend(&out,
                    "  requester is not an organisation of the partnership\n");
  if (holder < 0)
    absl::StrAppend(&out,
                    "  holder is not an organisation of the partnership\n");
  if (purpose < 0)
    absl::StrAppend(&out, "  purpose is not a purpose of the partnership\n");

  int considered = 0;
  for (const auto& a : d.agreements) {
    std::set<std::string> parties(a.proto.parties().begin(),
                                  a.proto.parties().end());
    if (!parties.count(std::string(q.requester_org)) ||
        !parties.count(std::string(q.holder_org))) {
      continue;
    }
    ++considered;
    absl::StrAppend(&out, "\nAgreement ", Q(a.proto.id()), " v",
                    a.proto.version(), " (", a.where, ") \"", a.proto.title(),
                    "\", in force ", TimeText(a.valid_from), " to ",
                    TimeText(a.valid_until),
                    a.InForce(q.at) ? "" : " — NOT in force then", "\n");
    for (const auto& r : d.rules) {
      if (r.agreement != &a) continue;
      absl::StrAppend(&out, "  rule ", Q(r.id()), " (", r.where, "): ");
      const bool req_ok =
          requester >= 0 && std::count(r.requesters.begin(), r.requesters.end(),
                                       static_cast<uint32_t>(requester));
      const bool hold_ok =
          holder >= 0 && std::count(r.holders.begin(), r.holders.end(),
                                    static_cast<uint32_t>(holder));
      if (!req_ok) {
        absl::StrAppend(&out, "does not match: its requesters do not include ",
                        Q(q.requester_org), "\n");
        continue;
      }
      if (!hold_ok) {
        absl::StrAppend(&out, "does not match: its holders do not include ",
                        Q(q.holder_org), "\n");
        continue;
      }
      if (r.action != q.action) {
        absl::StrAppend(&out, "does not match: it permits ",
                        ActionName(r.action), ", not ", ActionName(q.action),
                        "\n");
        continue;
      }
      const Evaluation e = Evaluate(r, q, purpose);
      if (e.reached == kStageAllowed) {
        Decision one;
        one.verdict = accord::v1::VERDICT_ALLOW;
        one.rule = &r;
        one.consent = e.consent;
        one.flag_for_review = e.flag_for_review;
        one.assertion_present = q.no_consent != nullptr;
        absl::StrAppend(&out, "MATCHES; ", ConsentText(one));
        if (!q.involvement_only)
          absl::StrAppend(&out, "; would release ", PlanText(r, e.plan));
        absl::StrAppend(&out, "\n");
      } else {
        absl::StrAppend(&out, "does not match (", ReasonName(e.reason),
                        "): ", MissText(d, r, e, q, purpose), "\n");
      }
    }
  }
  if (considered == 0) {
    absl::StrAppend(&out, "\nNo agreement has both ", Q(q.requester_org),
                    " and ", Q(q.holder_org), " as parties.\n");
  }
  const Decision dec = Decide(q);
  absl::StrAppend(&out, "\nDecision: ", dec.Explanation(), "\n");
  if (dec.allowed() && !dec.involvement_only) {
    absl::StrAppend(&out, "Field plan:\n");
    for (int i = 0; i < kItemCount; ++i) {
      if (dec.plan.Has(i)) {
        absl::StrAppend(&out, "  ", i < kFieldItems ? "field " : "category ",
                        ItemName(i), " → ",
                        TransformName(dec.rule->transforms[i]), "\n");
      }
    }
  }
  return out;
}

std::vector<std::string> PolicySet::CandidateHolders(
    absl::string_view requester, accord::v1::Action action,
    absl::string_view purpose, absl::Time at) const {
  const PolicyData& d = *data_;
  std::vector<std::string> out;
  const int q = d.OrgOf(requester);
  const int p = d.PurposeOf(purpose);
  if (q < 0 || p < 0) return out;
  const auto it = d.by_requester_action.find(RequesterActionKey(q, action));
  if (it == d.by_requester_action.end()) return out;
  std::vector<uint32_t> holders;
  for (const auto& [holder, rule] : it->second) {
    if (holder == static_cast<uint32_t>(q)) continue;
    if (!rule->agreement->InForce(at) || !((rule->purposes >> p) & 1u))
      continue;
    holders.push_back(holder);
  }
  std::sort(holders.begin(), holders.end());
  holders.erase(std::unique(holders.begin(), holders.end()), holders.end());
  for (uint32_t h : holders) out.push_back(d.org_ids[h]);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<accord::v1::AgreementSummary> PolicySet::Register(
    absl::Time now, bool include_inactive) const {
  std::vector<accord::v1::AgreementSummary> out;
  for (const auto& a : data_->agreements) {
    const bool in_force = a.InForce(now);
    if (!in_force && !include_inactive) continue;
    const auto& p = a.proto;
    accord::v1::AgreementSummary s;
    s.set_id(p.id());
    s.set_version(p.version());
    s.set_title(p.title());
    *s.mutable_parties() = p.parties();
    *s.mutable_valid_from() = p.valid_from();
    *s.mutable_valid_until() = p.valid_until();
    if (p.has_review_by()) *s.mutable_review_by() = p.review_by();
    s.set_dpia_reference(p.dpia_reference());
    s.set_in_force(in_force);
    s.set_rule_count(static_cast<uint32_t>(p.rules_size()));
    *s.mutable_sign_off() = p.sign_off();
    *s.mutable_statutory_powers() = p.statutory_powers();
    *s.mutable_joint_controllers() = p.joint_controllers();
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<std::string> PolicySet::Warnings(absl::Time now) const {
  const PolicyData& d = *data_;
  std::vector<std::string> out = d.compile_warnings;
  for (const auto& a : d.agreements) {
    const std::string name =
        absl::StrCat("agreement ", Q(a.proto.id()), " v", a.proto.version());
    if (now >= a.valid_until) {
      out.push_back(absl::StrCat(a.where, ": ", name, " expired on ",
                                 TimeText(a.valid_until),
                                 "; its rules can never match again"));
    } else if (now < a.valid_from) {
      out.push_back(absl::StrCat(a.where, ": ", name, " is not in force until ",
                                 TimeText(a.valid_from)));
    }
    if (a.has_review_by && now >= a.review_by && now < a.valid_until) {
      out.push_back(absl::StrCat(a.where, ": ", name,
                                 " is past its review date ",
                                 TimeText(a.review_by)));
    }
    if (!a.has_review_by) {
      out.push_back(
          absl::StrCat(a.where, ": ", name, " has no review_by date"));
    }
  }
  // Overlaps: two rules covering the same requester, action, holder and
  // purpose at overlapping times, whose plans treat an item differently.
  std::set<std::pair<int, int>> reported;
  std::vector<uint64_t> keys;
  keys.reserve(d.by_parties_action.size());
  for (const auto& [key, rules] : d.by_parties_action) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  for (uint64_t key : keys) {
    const auto& rules = d.by_parties_action.at(key);
    for (size_t i = 0; i < rules.size(); ++i) {
      for (size_t j = i + 1; j < rules.size(); ++j) {
        const CompiledRule& x = *rules[i];
        const CompiledRule& y = *rules[j];
        if (reported.count({x.order, y.order})) continue;
        if ((x.purposes & y.purposes) == 0) continue;
        if (x.agreement->valid_until <= y.agreement->valid_from ||
            y.agreement->valid_until <= x.agreement->valid_from) {
          continue;
        }
        std::vector<std::string> conflicts;
        for (int item = 0; item < kItemCount; ++item) {
          const auto tx = x.transforms[item];
          const auto ty = y.transforms[item];
          if (tx != ty) {
            conflicts.push_back(absl::StrCat(
                ItemName(item), " (",
                tx == accord::v1::TRANSFORM_UNSPECIFIED ? "withheld"
                                                        : TransformName(tx),
                " vs ",
                ty == accord::v1::TRANSFORM_UNSPECIFIED ? "withheld"
                                                        : TransformName(ty),
                ")"));
          }
        }
        const bool consent_differs = x.consent_required != y.consent_required;
        if (conflicts.empty() && !consent_differs) continue;
        if (x.involvement_only != y.involvement_only)
          continue;  // complementary by design
        reported.insert({x.order, y.order});
        const uint32_t q = static_cast<uint32_t>(key >> 32);
        const uint32_t h = static_cast<uint32_t>((key >> 4) & 0x0fffffff);
        out.push_back(absl::StrCat(
            y.where, ": ", RuleName(y), " overlaps ", RuleName(x), " (",
            x.where, ") for ", Q(d.org_ids[q]), " ", ActionName(x.action), " ",
            Q(d.org_ids[h]), " purposes [",
            PurposesText(d, x.purposes & y.purposes), "]",
            conflicts.empty() ? ""
                              : absl::StrCat(" with conflicting field plans: ",
                                             absl::StrJoin(conflicts, ", ")),
            consent_differs ? "; one requires consent and the other does not"
                            : ""));
      }
    }
  }
  return out;
}

const accord::v1::Partnership& PolicySet::partnership() const {
  return data_->partnership;
}
int PolicySet::agreement_count() const {
  return static_cast<int>(data_->agreements.size());
}
int PolicySet::rule_count() const {
  return static_cast<int>(data_->rules.size());
}

}  // namespace accord::policy
