// accordctl policy: check, test and explain agreements offline.

#include "absl/time/clock.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "policy/policy_tool.h"

namespace accord::cli {
namespace {

constexpr char kPolicyUsage[] = R"(usage:
  accordctl policy check   --partnership FILE AGREEMENT...
  accordctl policy test    --partnership FILE AGREEMENT... --tests TESTFILE [--tests ...]
  accordctl policy explain --partnership FILE AGREEMENT... --request REQUESTFILE
Flags: --at RFC3339   judge as at this time (default now)

check: schema errors with file:line, unknown organisations, fields and purposes, rules that
       can never match, overlapping rules with conflicting field plans, agreements past review.
test:  runs each case of the test files (accord.v1.PolicyTestSuite) and names every mismatch,
       then every rule no passing case was allowed by (an error with --require-every-rule).
explain: the full reasoning for one request (accord.v1.DecisionRequest in text format).
)";

}  // namespace

int PolicyCommand(const Argv& argv, std::ostream& out, std::ostream& err) {
  auto args = Args::Parse(argv, {"help", "require-every-rule"});
  if (!args.ok()) return UsageError(err, args.status(), kPolicyUsage);
  if (args->Has("help") || args->positional().empty()) {
    out << kPolicyUsage;
    return args->Has("help") ? 0 : 2;
  }
  if (auto s = args->CheckKnown({"help", "partnership", "tests", "request",
                                 "at", "require-every-rule"});
      !s.ok()) {
    return UsageError(err, s, kPolicyUsage);
  }
  auto partnership = args->Require("partnership");
  if (!partnership.ok())
    return UsageError(err, partnership.status(), kPolicyUsage);
  absl::Time at = absl::Now();
  if (args->Has("at")) {
    std::string e;
    if (!absl::ParseTime(absl::RFC3339_full, args->Get("at"), &at, &e)) {
      return UsageError(
          err,
          absl::InvalidArgumentError("--at must be an RFC 3339 time: " + e),
          kPolicyUsage);
    }
  }
  const auto& pos = args->positional();
  const std::vector<std::string> agreements(pos.begin() + 1, pos.end());
  if (agreements.empty()) {
    return UsageError(
        err, absl::InvalidArgumentError("name at least one agreement file"),
        kPolicyUsage);
  }
  if (pos[0] == "check")
    return policy::CheckPolicy(*partnership, agreements, at, out);
  if (pos[0] == "test") {
    const auto tests = args->GetAll("tests");
    if (tests.empty()) {
      return UsageError(err, absl::InvalidArgumentError("missing --tests FILE"),
                        kPolicyUsage);
    }
    return policy::TestPolicy(*partnership, agreements, tests, at,
                              args->Has("require-every-rule"), out);
  }
  if (pos[0] == "explain") {
    auto request = args->Require("request");
    if (!request.ok()) return UsageError(err, request.status(), kPolicyUsage);
    return policy::ExplainPolicy(*partnership, agreements, *request, at, out);
  }
  return UsageError(
      err,
      absl::InvalidArgumentError("unknown policy subcommand '" + pos[0] + "'"),
      kPolicyUsage);
}

}  // namespace accord::cli
