// How one rule is evaluated against a request, and the wording decisions
// and explanations share (policy/decide_internal.h).
#include "policy/decide_internal.h"

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

namespace accord::policy::internal {

// A rule's place without its directory: decision explanations reach callers
// and the audit log, which need not learn the gateway's directory layout.
absl::string_view FileName(absl::string_view where) {
  if (const size_t slash = where.rfind('/'); slash != absl::string_view::npos)
    where.remove_prefix(slash + 1);
  return where;
}

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

}  // namespace accord::policy::internal
