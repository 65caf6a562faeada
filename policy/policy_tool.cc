#include "policy/policy_tool.h"

#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "accord/v1/policy.pb.h"
#include "policy/compiled.h"
#include "policy/policy.h"
#include "runtime/textproto.h"

namespace accord::policy {
namespace {

std::string ReleaseName(const accord::v1::Release& r) {
  const std::string target =
      r.has_field() ? r.field()
                    : ShortEnumName(accord::v1::DataCategory_Name(r.category()),
                                    "DATA_CATEGORY_");
  return absl::StrCat(
      target, "→",
      ShortEnumName(accord::v1::Transform_Name(r.transform()), "TRANSFORM_"));
}

std::set<std::string> PlanNames(const accord::v1::FieldPlan& plan) {
  std::set<std::string> out;
  for (const auto& r : plan.releases()) out.insert(ReleaseName(r));
  return out;
}

std::string VerdictName(accord::v1::Verdict v) {
  return ShortEnumName(accord::v1::Verdict_Name(v), "VERDICT_");
}

std::string DenyName(accord::v1::DenyReason r) {
  return ShortEnumName(accord::v1::DenyReason_Name(r), "DENY_REASON_");
}

// The mismatches between a case's expectations and the decision.
std::vector<std::string> Mismatches(const accord::v1::PolicyTestCase& c,
                                    const accord::v1::Decision& d) {
  std::vector<std::string> out;
  if (d.verdict() != c.expect()) {
    out.push_back(absl::StrCat(
        "expected ", VerdictName(c.expect()), " got ", VerdictName(d.verdict()),
        d.verdict() == accord::v1::VERDICT_DENY
            ? absl::StrCat(" (", DenyName(d.deny_reason()), ")")
            : absl::StrCat(" (rule '", d.rule_id(), "')")));
    return out;
  }
  if (!c.expect_rule_id().empty() && c.expect_rule_id() != d.rule_id()) {
    out.push_back(absl::StrCat("wrong rule: expected '", c.expect_rule_id(),
                               "' got '", d.rule_id(), "'"));
  }
  if (c.expect_deny_reason() != accord::v1::DENY_REASON_UNSPECIFIED &&
      c.expect_deny_reason() != d.deny_reason()) {
    out.push_back(absl::StrCat("wrong deny reason: expected ",
                               DenyName(c.expect_deny_reason()), " got ",
                               DenyName(d.deny_reason())));
  }
  if (c.has_expect_plan()) {
    const auto want = PlanNames(c.expect_plan());
    const auto got = PlanNames(d.plan());
    std::vector<std::string> missing, extra;
    for (const auto& w : want) {
      if (!got.count(w)) missing.push_back(w);
    }
    for (const auto& g : got) {
      if (!want.count(g)) extra.push_back(g);
    }
    if (!missing.empty() || !extra.empty()) {
      std::string s = "plan differs:";
      if (!missing.empty())
        absl::StrAppend(&s, " missing ", absl::StrJoin(missing, ", "));
      if (!missing.empty() && !extra.empty()) absl::StrAppend(&s, ";");
      if (!extra.empty())
        absl::StrAppend(&s, " extra ", absl::StrJoin(extra, ", "));
      out.push_back(s);
    }
  }
  return out;
}

}  // namespace

int CheckPolicy(const std::string& partnership_file,
                const std::vector<std::string>& agreement_files, absl::Time now,
                std::ostream& out) {
  auto policy = PolicySet::Load(partnership_file, agreement_files);
  if (!policy.ok()) {
    for (absl::string_view line :
         absl::StrSplit(policy.status().message(), '\n')) {
      out << "error: " << line << "\n";
    }
    out << "FAIL: the policy does not load\n";
    return 1;
  }
  const auto warnings = (*policy)->Warnings(now);
  for (const auto& w : warnings) out << "warning: " << w << "\n";
  out << "OK: " << (*policy)->agreement_count() << " agreements, "
      << (*policy)->rule_count() << " rules, " << warnings.size()
      << " warnings\n";
  return 0;
}

int TestPolicy(const std::string& partnership_file,
               const std::vector<std::string>& agreement_files,
               const std::vector<std::string>& test_files, absl::Time now,
               bool require_every_rule, std::ostream& out) {
  auto policy = PolicySet::Load(partnership_file, agreement_files);
  if (!policy.ok()) {
    out << "error: " << policy.status().message() << "\n";
    return 1;
  }
  int passed = 0, failed = 0;
  // Rules some passing case was allowed by: a rule no case exercises is
  // untested, and the summary names it.
  std::set<std::pair<std::string, std::string>> exercised;
  for (const auto& file : test_files) {
    accord::v1::PolicyTestSuite suite;
    if (auto s = LoadTextProto(file, &suite); !s.ok()) {
      out << "error: " << s.message() << "\n";
      return 2;
    }
    out << file << ":\n";
    for (const auto& c : suite.cases()) {
      const accord::v1::Decision d = (*policy)->DecideProto(c.request(), now);
      const auto problems = Mismatches(c, d);
      if (problems.empty()) {
        ++passed;
        if (d.verdict() == accord::v1::VERDICT_ALLOW)
          exercised.emplace(d.agreement_id(), d.rule_id());
        out << "PASS: " << c.name() << "\n";
      } else {
        ++failed;
        out << "FAIL: " << c.name() << ": " << absl::StrJoin(problems, "; ")
            << "\n"
            << "      " << d.explanation() << "\n";
      }
    }
  }
  out << "---------------------------------------------------------------------"
         "-----------\n";
  const auto& rules = (*policy)->data().rules;
  for (const CompiledRule& r : rules) {
    if (!exercised.count({r.agreement->proto.id(), r.proto->id()})) {
      out << "UNTESTED: agreement '" << r.agreement->proto.id() << "' rule '"
          << r.proto->id() << "' (" << r.where
          << "): no passing case is allowed by it\n";
    }
  }
  out << "rules exercised: " << exercised.size() << "/" << rules.size() << "\n";
  if (failed == 0) {
    out << "PASS: " << passed << "/" << passed << "\n";
    return require_every_rule && exercised.size() < rules.size() ? 1 : 0;
  }
  out << "FAIL: " << failed << "/" << (passed + failed) << "\n";
  return 1;
}

int ExplainPolicy(const std::string& partnership_file,
                  const std::vector<std::string>& agreement_files,
                  const std::string& request_file, absl::Time now,
                  std::ostream& out) {
  auto policy = PolicySet::Load(partnership_file, agreement_files);
  if (!policy.ok()) {
    out << "error: " << policy.status().message() << "\n";
    return 1;
  }
  accord::v1::DecisionRequest request;
  if (auto s = LoadTextProto(request_file, &request); !s.ok()) {
    out << "error: " << s.message() << "\n";
    return 2;
  }
  NoConsentAssertion assertion;
  const Request q = Request::FromProto(request, now, &assertion);
  out << (*policy)->Explain(q);
  return 0;
}

}  // namespace accord::policy
