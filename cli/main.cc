// accordctl: the command-line tool for partner IT, administrators and
// auditors of an Accord partnership.

#include <iostream>
#include <string>

#include "cli/commands.h"
#include "cli/output.h"

namespace {

constexpr char kUsage[] = R"(usage: accordctl COMMAND [flags]

Commands:
  query        ask the partnership what it holds about a person (via the gateway)
  agreements   list the register of information-sharing agreements in force
  token        derive a person's partnership tokens from their identifiers
  agent        use your organisation's agent: load data, add subjects, consent
  import       load a CSV or JSON Lines file into your agent; report rejected rows
  audit        auditors: search, subject access, review queue, proofs, export, verify
  policy       check, test and explain information-sharing agreements offline
  referral     send referrals, read your inbox and outbox, follow and update them
  stats        the partnership's monitoring figures, small numbers suppressed

Connection flags (query, agreements, agent, import, audit, stats):
  --pki DIR --as NAME     use DIR/NAME.pem, DIR/NAME.key and DIR/ca.pem (env ACCORD_PKI, ACCORD_AS)
  --ca F --cert F --key F use these files instead
  --crl FILE              the partnership CRL the server's certificate is checked against
                          (env ACCORD_CRL; default DIR/crl.pem with --pki); 'none': no check
  --gateway HOST:PORT     the gateway (env ACCORD_GATEWAY, default 127.0.0.1:17443)
  --agent HOST:PORT       your agent's local API (env ACCORD_AGENT)
  --user ID --role ROLE   the practitioner acting (env ACCORD_USER, ACCORD_ROLE); recorded in the audit log

Run 'accordctl COMMAND --help' for a command's flags.
)";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string command = argv[1];
  const accord::cli::Argv rest(argv + 2, argv + argc);
  if (command == "query")
    return accord::cli::QueryCommand(rest, std::cout, std::cerr);
  if (command == "agreements")
    return accord::cli::AgreementsCommand(rest, std::cout, std::cerr);
  if (command == "token")
    return accord::cli::TokenCommand(rest, std::cout, std::cerr);
  if (command == "agent")
    return accord::cli::AgentCommand(rest, std::cout, std::cerr);
  if (command == "import")
    return accord::cli::ImportCommand(rest, std::cout, std::cerr);
  if (command == "audit")
    return accord::cli::AuditCommand(rest, std::cout, std::cerr);
  if (command == "referral")
    return accord::cli::ReferralCommand(rest, std::cout, std::cerr);
  if (command == "policy")
    return accord::cli::PolicyCommand(rest, std::cout, std::cerr);
  if (command == "stats")
    return accord::cli::StatsCommand(rest, std::cout, std::cerr);
  if (command == "help" || command == "--help" || command == "-h") {
    std::cout << kUsage;
    return 0;
  }
  std::cerr << "accordctl: unknown command '" << accord::cli::Printable(command)
            << "'\n"
            << kUsage;
  return 2;
}
