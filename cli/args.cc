#include "cli/args.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace accord::cli {

absl::StatusOr<Args> Args::Parse(const std::vector<std::string>& argv,
                                 const std::set<std::string>& booleans) {
  Args args;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "--") {
      for (++i; i < argv.size(); ++i) args.positional_.push_back(argv[i]);
      break;
    }
    if (!absl::StartsWith(a, "--") || a.size() == 2) {
      args.positional_.push_back(a);
      continue;
    }
    std::string name = a.substr(2);
    const size_t eq = name.find('=');
    if (eq != std::string::npos) {
      args.flags_[name.substr(0, eq)].push_back(name.substr(eq + 1));
      continue;
    }
    if (booleans.count(name)) {
      args.flags_[name].push_back("true");
      continue;
    }
    if (i + 1 >= argv.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", name, " needs a value"));
    }
    args.flags_[name].push_back(argv[++i]);
  }
  return args;
}

std::string Args::Get(const std::string& name,
                      const std::string& fallback) const {
  auto it = flags_.find(name);
  return it == flags_.end() ? fallback : it->second.back();
}

std::vector<std::string> Args::GetAll(const std::string& name) const {
  auto it = flags_.find(name);
  return it == flags_.end() ? std::vector<std::string>{} : it->second;
}

absl::StatusOr<std::string> Args::Require(const std::string& name) const {
  auto it = flags_.find(name);
  if (it == flags_.end() || it->second.back().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("missing required flag --", name));
  }
  return it->second.back();
}

absl::Status Args::CheckKnown(const std::set<std::string>& known) const {
  for (const auto& [name, values] : flags_) {
    if (!known.count(name))
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
  }
  return absl::OkStatus();
}

}  // namespace accord::cli
