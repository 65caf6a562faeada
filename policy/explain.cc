// Explaining a decision, and why a request was or was not allowed.
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

using internal::ActionName;
using internal::ConsentText;
using internal::Evaluate;
using internal::Evaluation;
using internal::FileName;
using internal::ItemsText;
using internal::kStageAllowed;
using internal::MissText;
using internal::PlanText;
using internal::Q;
using internal::ReasonName;
using internal::RuleName;
using internal::TransformName;

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

}  // namespace accord::policy
