// Mutual-TLS credentials for every Accord port and channel.
//
// Certificates, keys and the CA bundle are watched on disk and reloaded when
// they change, so certificates rotate without a restart. Servers require a
// client certificate and verify it themselves (runtime/handshake.h: chained
// to the partnership CA, within its validity, clientAuth usage), so that every
// refused handshake can be reported; per-call identity checks
// (runtime/identity.h) decide what the caller may do. Channels verify
// that the server presents exactly the identity the caller expects (e.g. the
// gateway dialling agent/<org> refuses any other certificate), which replaces
// host-name checking, and, given the partnership CRL, that the server's
// certificate is not revoked; Accord's own channels are opened through
// runtime/server_channel.h, which also follows CRL reloads. Thread-safe.
#ifndef ACCORD_RUNTIME_TLS_H_
#define ACCORD_RUNTIME_TLS_H_

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "accord/v1/config.pb.h"
#include "runtime/handshake.h"
#include "runtime/revocation.h"

namespace accord {

// Paths in `files` must already be resolved. Fails when a file is missing,
// when the private key is readable by group or others, or when the
// certificate cannot be parsed. `on_refusal`, when set, is called (on a
// handshake thread; it must not block) for every client certificate refused
// at the handshake.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const accord::v1::TlsFiles& files,
    HandshakeRefusalHook on_refusal = nullptr);

// What a channel's TLS handshake decided about the server's certificate,
// which gRPC has already chained to the CA bundle.
struct ServerVerdict {
  enum class Outcome {
    kAccepted,
    kWrongIdentity,  // not exactly one URI SAN, or not the expected one
    kRevoked,        // listed in the partnership CRL
    kCrlLapsed,      // the CRL in force has lapsed: nothing can be checked
    kUnreadable,     // the certificate cannot be parsed for the check
  };
  Outcome outcome = Outcome::kAccepted;
  // The URI SANs the certificate carries (comma-separated, made printable:
  // runtime/handshake.h PrintableClaim); "" when none.
  std::string presented_identity;
  // Why it was refused (e.g. the revocation check's message); "" if accepted.
  std::string detail;
  // The certificate (PEM) and the RevocationList::generation() it was checked
  // against, so that a CRL reload can check it again.
  std::string leaf_pem;
  uint64_t crl_generation = 0;
};
// Called on a gRPC handshake thread after every handshake's verdict; must not
// block.
using ServerVerdictHook = std::function<void(const ServerVerdict&)>;

// Credentials for a channel to a server whose certificate must carry the URI
// SAN `expected_server_identity` and, when `revocation` is given (it must
// outlive the credentials), must not be revoked by it. `on_verdict`, when
// set, hears every verdict.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const accord::v1::TlsFiles& files,
                       const std::string& expected_server_identity,
                       const RevocationList* revocation = nullptr,
                       ServerVerdictHook on_verdict = nullptr);

// Channel arguments every Accord channel uses (keepalive, message limits).
grpc::ChannelArguments DefaultChannelArguments();

}  // namespace accord

#endif  // ACCORD_RUNTIME_TLS_H_
