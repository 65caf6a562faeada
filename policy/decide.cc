// Deciding one request against a compiled PolicySet.
#include <algorithm>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "policy/compiled.h"
#include "policy/decide_internal.h"
#include "policy/fields.h"
#include "policy/policy.h"

namespace accord::policy {

using internal::Better;
using internal::Evaluate;
using internal::Evaluation;
using internal::kStageAllowed;

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

}  // namespace accord::policy
