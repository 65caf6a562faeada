// How accordctl reaches the gateway or an agent: which certificate it
// presents, which identity it expects of the server, and the practitioner it
// acts for. Certificates come from --pki DIR --as NAME (DIR/NAME.pem and
// DIR/NAME.key, DIR/ca.pem), or --ca/--cert/--key, or the environment
// variables ACCORD_PKI and ACCORD_AS. The server's certificate is checked
// against the partnership CRL at the handshake: --crl FILE (env ACCORD_CRL),
// else DIR/crl.pem with --pki; `--crl none` connects without the check.
#ifndef ACCORD_CLI_CONNECTION_H_
#define ACCORD_CLI_CONNECTION_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "accord/v1/config.pb.h"
#include "cli/args.h"
#include "runtime/identity.h"

namespace accord::cli {

// Flags every connecting command accepts.
inline const std::set<std::string> kConnectionFlags = {
    "pki",     "as",    "ca",   "cert", "key",    "crl",
    "gateway", "agent", "user", "role", "timeout"};

// The certificate files, and the CRL file (crl_file; empty for --crl none).
absl::StatusOr<accord::v1::TlsFiles> TlsFromArgs(const Args& args);

// The single URI SAN of a PEM certificate file.
absl::StatusOr<Principal> CertificateIdentity(const std::string& cert_file);

// A channel to the gateway (--gateway, env ACCORD_GATEWAY, default
// 127.0.0.1:17443) that insists on spiffe://<partnership>/gateway.
absl::StatusOr<std::shared_ptr<grpc::Channel>> GatewayChannel(const Args& args);
// A channel to an agent's local API (--agent, env ACCORD_AGENT) that insists
// on spiffe://<partnership>/agent/<org>: `org`, or by default the
// organisation of our own certificate (an auditor's certificate names none,
// so an auditor must give the agent's organisation).
absl::StatusOr<std::shared_ptr<grpc::Channel>> AgentChannel(
    const Args& args, const std::string& org = "");

// Sets the deadline (--timeout SECONDS, else ACCORD_TIMEOUT, else 30) and
// the acting practitioner (--user/--role or ACCORD_USER/ACCORD_ROLE) on a
// call. A stream meant to run until it is ended (`until_ended`, e.g. a watch)
// gets a deadline only from an explicit --timeout.
void PrepareContext(const Args& args, grpc::ClientContext* ctx,
                    bool until_ended = false);

}  // namespace accord::cli

#endif  // ACCORD_CLI_CONNECTION_H_
