// The logic behind `accordctl policy check|test|explain`: each takes file
// paths, writes a report to `out` and returns the process exit code (0 on
// success, 1 on invalid policy or failing tests, 2 on unreadable input).
// `now` is the moment used for warnings and for requests without `at`.
// Thread-safe (no shared state).
#ifndef ACCORD_POLICY_POLICY_TOOL_H_
#define ACCORD_POLICY_POLICY_TOOL_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace accord::policy {

// Loads and validates; prints every error with file:line, then warnings
// (past review date, expired, rules that can never match, overlapping rules
// with conflicting plans).
int CheckPolicy(const std::string& partnership_file,
                const std::vector<std::string>& agreement_files, absl::Time now,
                std::ostream& out);

// Runs every case of each accord.v1.PolicyTestSuite file; prints PASS/FAIL
// per case naming the mismatch, then the rules no passing case was allowed
// by, then a summary. With `require_every_rule`, an untested rule fails the
// run too.
int TestPolicy(const std::string& partnership_file,
               const std::vector<std::string>& agreement_files,
               const std::vector<std::string>& test_files, absl::Time now,
               bool require_every_rule, std::ostream& out);

// Decides one accord.v1.DecisionRequest (text format) and prints the full
// reasoning: agreements considered, each rule and why it did or did not
// match, and the field plan.
int ExplainPolicy(const std::string& partnership_file,
                  const std::vector<std::string>& agreement_files,
                  const std::string& request_file, absl::Time now,
                  std::ostream& out);

}  // namespace accord::policy

#endif  // ACCORD_POLICY_POLICY_TOOL_H_
