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
// host-name checking. Thread-safe.
#ifndef ACCORD_RUNTIME_TLS_H_
#define ACCORD_RUNTIME_TLS_H_

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "accord/v1/config.pb.h"
#include "runtime/handshake.h"

namespace accord {

// Paths in `files` must already be resolved. Fails when a file is missing,
// when the private key is readable by group or others, or when the
// certificate cannot be parsed. `on_refusal`, when set, is called (on a
// handshake thread; it must not block) for every client certificate refused
// at the handshake.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const accord::v1::TlsFiles& files,
    HandshakeRefusalHook on_refusal = nullptr);

// Credentials for a channel to a server whose certificate must carry the URI
// SAN `expected_server_identity`.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const accord::v1::TlsFiles& files,
                       const std::string& expected_server_identity);

// Resolves the paths of `files` relative to the config file that named them.
accord::v1::TlsFiles ResolveTlsFiles(const std::string& config_path,
                                     const accord::v1::TlsFiles& files);

// Channel arguments every Accord channel uses (keepalive, message limits).
grpc::ChannelArguments DefaultChannelArguments();

}  // namespace accord

#endif  // ACCORD_RUNTIME_TLS_H_
