// What a PolicySet can tell beyond one decision: the holders a request may
// reach, the register of agreements, warnings, sizes.
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
using internal::PurposesText;
using internal::Q;
using internal::RuleName;
using internal::TransformName;

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
    if (holder == static_cast<uint32_t>(q) &&
        action != accord::v1::ACTION_STATISTICS) {
      continue;
    }
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
