#include "policy/statistics.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "policy/compiled.h"
#include "stats/dataset.h"

namespace accord::policy {
namespace {

std::string RuleName(const Decision& d) {
  return absl::StrCat("rule ", d.rule_id(), " of agreement ", d.agreement_id(),
                      " v", d.agreement_version());
}

}  // namespace

absl::Status CheckStatisticsScope(const Decision& d,
                                  const StatisticsScope& scope) {
  if (!d.allowed() || d.rule == nullptr) {
    return absl::PermissionDeniedError(d.Explanation());
  }
  const accord::v1::StatisticsClause& clause = d.rule->proto->statistics();
  for (const std::string& dim : scope.dimensions) {
    if (std::find(clause.dimensions().begin(), clause.dimensions().end(),
                  dim) == clause.dimensions().end()) {
      return absl::PermissionDeniedError(absl::StrCat(
          RuleName(d), " does not allow figures by ", dim, "; it allows ",
          clause.dimensions().empty()
              ? std::string("totals only")
              : absl::StrCat("totals and figures by ",
                             absl::StrJoin(clause.dimensions(), ", "))));
    }
  }
  if (clause.periods_size() > 0 &&
      std::find(clause.periods().begin(), clause.periods().end(),
                scope.period) == clause.periods().end()) {
    std::vector<std::string> allowed;
    for (int p : clause.periods()) {
      allowed.push_back(stats::ReportingPeriodCode(
          static_cast<accord::v1::ReportingPeriod>(p)));
    }
    return absl::PermissionDeniedError(
        absl::StrCat(RuleName(d), " does not allow the reporting period ",
                     stats::ReportingPeriodCode(scope.period), "; it allows ",
                     absl::StrJoin(allowed, ", ")));
  }
  if (scope.completeness && !clause.completeness()) {
    return absl::PermissionDeniedError(
        absl::StrCat(RuleName(d), " does not allow data completeness figures"));
  }
  if (scope.outcomes && !clause.outcomes()) {
    return absl::PermissionDeniedError(
        absl::StrCat(RuleName(d), " does not allow outcome figures"));
  }
  return absl::OkStatus();
}

stats::SuppressionRule SuppressionOf(const Decision& d) {
  stats::SuppressionRule rule;
  if (d.rule == nullptr) return rule;
  const auto& s = d.rule->proto->statistics().suppression();
  if (s.has_threshold()) rule.threshold = s.threshold();
  if (s.has_rounding()) rule.rounding = s.rounding();
  return rule;
}

}  // namespace accord::policy
