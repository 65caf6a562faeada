// Command-line arguments for accordctl: `--name value`, `--name=value`,
// repeated flags, boolean `--flag`, and positional arguments. Flags named in
// `booleans` take no value. Not thread-safe (used once in main).
#ifndef ACCORD_CLI_ARGS_H_
#define ACCORD_CLI_ARGS_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace accord::cli {

class Args {
 public:
  static absl::StatusOr<Args> Parse(const std::vector<std::string>& argv,
                                    const std::set<std::string>& booleans);

  bool Has(const std::string& name) const { return flags_.count(name) > 0; }
  // The last value given, or `fallback`.
  std::string Get(const std::string& name,
                  const std::string& fallback = "") const;
  std::vector<std::string> GetAll(const std::string& name) const;
  // A required flag; InvalidArgument names it.
  absl::StatusOr<std::string> Require(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }
  // Flags given that are not in `known`: reported as an error so typos are
  // not silently ignored.
  absl::Status CheckKnown(const std::set<std::string>& known) const;

 private:
  std::map<std::string, std::vector<std::string>> flags_;
  std::vector<std::string> positional_;
};

}  // namespace accord::cli

#endif  // ACCORD_CLI_ARGS_H_
