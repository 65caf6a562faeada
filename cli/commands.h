// accordctl's commands. Each takes the arguments after its name, writes its
// result to `out` and problems to `err`, and returns the process exit code
// (0 success, 1 refused or failed, 2 usage error).
#ifndef ACCORD_CLI_COMMANDS_H_
#define ACCORD_CLI_COMMANDS_H_

#include <ostream>
#include <string>
#include <vector>

namespace accord::cli {

using Argv = std::vector<std::string>;

int QueryCommand(const Argv& argv, std::ostream& out, std::ostream& err);
int AgreementsCommand(const Argv& argv, std::ostream& out, std::ostream& err);
int TokenCommand(const Argv& argv, std::ostream& out, std::ostream& err);
int AgentCommand(const Argv& argv, std::ostream& out, std::ostream& err);
int ImportCommand(const Argv& argv, std::ostream& out, std::ostream& err);
int AuditCommand(const Argv& argv, std::ostream& out, std::ostream& err);
int PolicyCommand(const Argv& argv, std::ostream& out, std::ostream& err);
int ReferralCommand(const Argv& argv, std::ostream& out, std::ostream& err);
int StatsCommand(const Argv& argv, std::ostream& out, std::ostream& err);

}  // namespace accord::cli

#endif  // ACCORD_CLI_COMMANDS_H_
