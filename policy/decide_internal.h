// Internal to the policy library: how one rule is evaluated against a
// request, and the wording decisions and explanations share. Included by
// decide.cc, explain.cc and register.cc only.
#ifndef ACCORD_POLICY_DECIDE_INTERNAL_H_
#define ACCORD_POLICY_DECIDE_INTERNAL_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "policy/compiled.h"
#include "policy/policy.h"

namespace accord::policy::internal {

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

absl::string_view FileName(absl::string_view where);
ClauseFailure CheckClause(const CompiledRule& r, const NoConsentAssertion& a);
DenyReason ReasonOf(ClauseFailure f);
Evaluation Evaluate(const CompiledRule& r, const Request& q, int purpose);
bool Better(const CompiledRule& a, int na, const CompiledRule& b, int nb,
            bool involvement);
std::string ActionName(accord::v1::Action a);
std::string ReasonName(DenyReason r);
std::string TransformName(accord::v1::Transform t);
std::string Q(absl::string_view s);
std::string RuleName(const CompiledRule& r);
std::string PlanText(const CompiledRule& r, ItemSet plan);
std::string ItemsText(ItemSet items);
std::string PurposesText(const PolicyData& d, uint64_t bits);
std::string ClauseText(const CompiledRule& r, ClauseFailure f,
                       accord::v1::NoConsentBasis asserted_basis,
                       accord::v1::ConsentNotSoughtReason asserted_reason);
std::string MissText(const PolicyData& d, const CompiledRule& r,
                     const Evaluation& e, const Request& q, int purpose);
std::string ConsentText(const Decision& dec);

}  // namespace accord::policy::internal

#endif  // ACCORD_POLICY_DECIDE_INTERNAL_H_
