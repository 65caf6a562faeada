// A real partnership on loopback for integration tests: the example
// partnership's files copied into a temporary directory, certificates from
// deploy/pki, free ports, and real accord-gateway and accord-agent processes.
// Tests talk to it over mutual TLS exactly as partners would.
//
// Not thread-safe; one per test fixture.
#ifndef ACCORD_TESTS_HARNESS_H_
#define ACCORD_TESTS_HARNESS_H_

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "accord/v1/agent.grpc.pb.h"
#include "accord/v1/config.pb.h"
#include "accord/v1/gateway.grpc.pb.h"

namespace accord::testing {

// A child process whose stdout and stderr go to a log file.
class Process {
 public:
  Process(std::string name, std::vector<std::string> argv,
          std::string log_path);
  ~Process();
  absl::Status Start();
  // Waits until the log, as written since the last Start, contains
  // `needle`, or the process exits, or timeout.
  absl::Status WaitForLog(const std::string& needle, int timeout_ms);
  // SIGTERM, then SIGKILL after a grace period.
  void Stop();
  void Kill();  // SIGKILL at once
  // Sends `sig` (e.g. SIGSTOP to make a server fall silent, SIGCONT after).
  void Signal(int sig);
  bool Running();
  // Waits up to `timeout_ms` for the process to exit; its exit status (128 +
  // the signal when killed), or nullopt while it still runs.
  std::optional<int> WaitForExit(int timeout_ms);
  std::string Log() const;
  const std::string& name() const { return name_; }
  pid_t pid() const { return pid_; }  // -1 when not running

 private:
  std::string name_;
  std::vector<std::string> argv_;
  std::string log_path_;
  size_t log_offset_ = 0;  // log size when last started
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

// Sets the call's deadline and the acting practitioner (metadata
// x-accord-user, x-accord-role), which every call from an organisation's
// system must name.
void PrepareCall(grpc::ClientContext* ctx, int seconds = 10,
                 const std::string& user = "test-practitioner",
                 const std::string& role = "practitioner");

std::string SourceDir();
std::string BinDir();
// A TCP port on 127.0.0.1 free at the time of the call.
int FreePort();
// Runs a shell command, returning its exit status; output goes to `log`.
int RunCommand(const std::string& command, const std::string& log);

class TestPartnership {
 public:
  // Creates the directory, PKI, keys and configs; starts nothing.
  // `edit_gateway`, when given, adjusts the gateway's configuration.
  static absl::StatusOr<std::unique_ptr<TestPartnership>> Create(
      std::function<void(accord::v1::GatewayConfig*)> edit_gateway = {});
  ~TestPartnership();

  absl::Status StartGateway();
  absl::Status StartAgent(const std::string& org);
  absl::Status StartAll();
  // Loads deploy/examples/data/<org>.textproto through the agent's local API.
  absl::Status LoadExampleData(const std::string& org);

  Process* gateway() { return gateway_.get(); }
  Process* agent(const std::string& org) { return agents_[org].get(); }

  // Mutual-TLS channels presenting the certificate DIR/<cert_name>.pem.
  std::shared_ptr<grpc::Channel> GatewayChannel(const std::string& cert_name);
  std::shared_ptr<grpc::Channel> AgentHolderChannel(
      const std::string& org, const std::string& cert_name);
  std::shared_ptr<grpc::Channel> AgentLocalChannel(
      const std::string& org, const std::string& cert_name);
  // A channel with a custom CA/cert/key, e.g. from the test certificates.
  std::shared_ptr<grpc::Channel> Channel(const std::string& address,
                                         const std::string& ca,
                                         const std::string& cert,
                                         const std::string& key,
                                         const std::string& expected_server);
  // A TLS channel that presents no client certificate.
  std::shared_ptr<grpc::Channel> ChannelWithoutClientCert(
      const std::string& address);

  // Every audit entry matching `filter` (all pages), read through the
  // gateway's auditor API as `auditor` (a certificate name, as above).
  absl::StatusOr<std::vector<accord::v1::AuditEntry>> SearchAudit(
      accord::v1::AuditSearchRequest filter = {},
      const std::string& auditor = "auditor-dpo");

  // The same from the audit log of `org`'s own agent, read through the
  // Auditor service on its local API port as `reader` (default: the
  // organisation itself, org-<org>).
  absl::StatusOr<std::vector<accord::v1::AuditEntry>> SearchAgentAudit(
      const std::string& org, accord::v1::AuditSearchRequest filter = {},
      const std::string& reader = "");
  // Issues DIR/<name>.pem and .key from the partnership CA
  // (deploy/pki/pki-lib.sh) with the single URI SAN `uri` and the extended
  // key usages `eku`, valid for 30 days. A name already issued is kept.
  absl::Status IssueCertificate(
      const std::string& name, const std::string& uri,
      const std::string& eku = "serverAuth,clientAuth");
  // Revokes DIR/<name>.pem (deploy/pki/revoke.sh), then waits until the
  // gateway and every running agent have reloaded the CRL.
  absl::Status RevokeCertificate(const std::string& name);
  // The CA bundle, DIR/<name>.pem and DIR/<name>.key.
  accord::v1::TlsFiles CertificateFiles(const std::string& name) const;

  // A records query through the gateway by `requester` (a certificate name,
  // e.g. "org-police") about subject `local_id` of `holder`, by that
  // holder's tokens for her, as practitioner `user` in `role`.
  absl::StatusOr<accord::v1::QueryResponse> QueryAbout(
      const std::string& requester, const std::string& holder,
      const std::string& local_id, const std::string& purpose,
      const std::string& user, const std::string& role);

  // Tokens of a subject held by `org`'s agent.
  absl::StatusOr<std::vector<accord::v1::SubjectToken>> TokensOf(
      const std::string& org, const std::string& local_id);

  const std::string& dir() const { return dir_; }
  std::string pki() const { return dir_ + "/pki"; }
  std::string test_certs() const { return dir_ + "/pki/test"; }
  std::string gateway_address() const;
  std::string holder_address(const std::string& org) const;
  std::string local_address(const std::string& org) const;
  const std::string& partnership_id() const { return partnership_.id(); }
  std::string audit_db() const { return dir_ + "/state/gateway-audit.db"; }
  // The public keys that check the gateway's and an agent's tree heads.
  std::string gateway_audit_key() const {
    return pki() + "/audit-signing.pub.pem";
  }
  std::string agent_audit_key(const std::string& org) const {
    return pki() + "/audit-signing-" + org + ".pub.pem";
  }
  // Runs accordctl with `args` (as org-<org> etc. via --pki/--as in args),
  // returning exit code and capturing stdout+stderr.
  int Accordctl(const std::string& args, std::string* output);

 private:
  TestPartnership() = default;
  absl::Status Prepare(
      const std::function<void(accord::v1::GatewayConfig*)>& edit_gateway);
  std::string dir_;
  accord::v1::Partnership partnership_;
  int gateway_port_ = 0;
  std::map<std::string, int> holder_ports_, local_ports_;
  std::unique_ptr<Process> gateway_;
  std::map<std::string, std::unique_ptr<Process>> agents_;
};

}  // namespace accord::testing

#endif  // ACCORD_TESTS_HARNESS_H_
