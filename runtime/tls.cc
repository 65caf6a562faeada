#include "runtime/tls.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/support/channel_arguments.h>

#include <cstdio>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/crypto.h"
#include "runtime/handshake.h"

namespace accord {
namespace {

using grpc::experimental::FileWatcherCertificateProvider;

// How often watched certificate files are checked for rotation.
constexpr unsigned kRefreshSeconds = 5;
constexpr int kMaxMessageBytes = 4 * 1024 * 1024;

absl::Status CheckFiles(const accord::v1::TlsFiles& files) {
  for (const std::string* path : {&files.ca_file(), &files.cert_file()}) {
    auto text = ReadFile(*path);
    if (!text.ok()) return text.status();
    if (text->find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(*path, ": no PEM certificate found"));
    }
  }
  return CheckSecretFilePermissions(files.key_file());
}

// Accepts a server only if its certificate's single URI SAN is the expected
// identity and, given a CRL, the certificate is not revoked. Chain
// verification against the CA has already happened. Synchronous: the
// revocation verdict is normally cached (runtime/revocation.h).
class ServerCertificateCheck final
    : public grpc::experimental::ExternalCertificateVerifier {
 public:
  ServerCertificateCheck(std::string expected, const RevocationList* revocation,
                         ServerVerdictHook on_verdict)
      : expected_(std::move(expected)),
        revocation_(revocation),
        on_verdict_(std::move(on_verdict)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/,
              grpc::Status* sync_status) override {
    const ServerVerdict verdict = Decide(*request);
    if (verdict.outcome == ServerVerdict::Outcome::kAccepted) {
      *sync_status = grpc::Status::OK;
    } else {
      *sync_status =
          grpc::Status(grpc::StatusCode::UNAUTHENTICATED, verdict.detail);
    }
    return true;  // synchronous
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {
  }

 private:
  ServerVerdict Decide(
      const grpc::experimental::TlsCustomVerificationCheckRequest& request) {
    ServerVerdict v;
    const auto uris = request.uri_names();
    std::vector<std::string> presented;
    for (const auto& uri : uris)
      presented.push_back(PrintableClaim(absl::string_view(uri.data(), uri.size())));
    v.presented_identity = PrintableClaim(absl::StrJoin(presented, ","));
    if (uris.size() != 1 ||
        absl::string_view(uris[0].data(), uris[0].size()) != expected_) {
      v.outcome = ServerVerdict::Outcome::kWrongIdentity;
      v.detail = absl::StrCat(
          "server certificate identity is ",
          v.presented_identity.empty() ? "(none)" : v.presented_identity,
          ", not ", expected_);
      return Report(std::move(v));
    }
    if (revocation_ == nullptr) return Report(std::move(v));
    const grpc::string_ref leaf = request.peer_cert();
    v.leaf_pem.assign(leaf.data(), leaf.size());
    // Each acceptance is reported with the CRL it was checked against; if a
    // newer CRL was installed meanwhile, the holder of the report may have
    // re-checked its certificates already, so check again under the new one.
    while (true) {
      const absl::Status s = revocation_->Check(v.leaf_pem, &v.crl_generation);
      if (!s.ok()) {
        v.outcome = s.code() == absl::StatusCode::kPermissionDenied
                        ? ServerVerdict::Outcome::kRevoked
                    : s.code() == absl::StatusCode::kUnavailable
                        ? ServerVerdict::Outcome::kCrlLapsed
                        : ServerVerdict::Outcome::kUnreadable;
        v.detail = absl::StrCat("server certificate: ", s.message());
        return Report(std::move(v));
      }
      Report(v);
      if (revocation_->generation() == v.crl_generation) return v;
    }
  }

  ServerVerdict Report(ServerVerdict v) {
    if (on_verdict_) on_verdict_(v);
    return v;
  }

  const std::string expected_;
  const RevocationList* revocation_;
  const ServerVerdictHook on_verdict_;
};

// Decides every client certificate a server is presented (gRPC's own
// verification is off: see MakeServerCredentials), so that a refusal reaches
// `on_refusal`. Synchronous: verification is a few signature checks.
class ClientCertificateCheck final
    : public grpc::experimental::ExternalCertificateVerifier {
 public:
  ClientCertificateCheck(std::shared_ptr<ClientCertificateVerifier> verifier,
                         HandshakeRefusalHook on_refusal)
      : verifier_(std::move(verifier)), on_refusal_(std::move(on_refusal)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/,
              grpc::Status* sync_status) override {
    // The CA bundle follows its file, like gRPC's watcher does for the
    // server's own certificate; a bad new file leaves the old bundle.
    if (auto reloaded = verifier_->ReloadIfDue(); !reloaded.ok()) {
      std::fprintf(stderr,
                   "accord: CA bundle not reloaded, previous one stays: %s\n",
                   std::string(reloaded.status().message()).c_str());
    }
    const grpc::string_ref leaf = request->peer_cert();
    const grpc::string_ref chain = request->peer_cert_full_chain();
    auto refusal =
        verifier_->Verify(absl::string_view(leaf.data(), leaf.size()),
                          absl::string_view(chain.data(), chain.size()));
    if (!refusal.has_value()) {
      *sync_status = grpc::Status::OK;
      return true;
    }
    if (on_refusal_) on_refusal_(*refusal);
    *sync_status =
        grpc::Status(grpc::StatusCode::UNAUTHENTICATED, refusal->reason);
    return true;  // synchronous
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {
  }

 private:
  const std::shared_ptr<ClientCertificateVerifier> verifier_;
  const HandshakeRefusalHook on_refusal_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const accord::v1::TlsFiles& files, HandshakeRefusalHook on_refusal) {
  if (auto s = CheckFiles(files); !s.ok()) return s;
  std::shared_ptr<ClientCertificateVerifier> verifier;
  {
    auto v = ClientCertificateVerifier::Create(files.ca_file());
    if (!v.ok()) return v.status();
    verifier = *std::move(v);
  }
  auto provider = std::make_shared<FileWatcherCertificateProvider>(
      files.key_file(), files.cert_file(), files.ca_file(), kRefreshSeconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  // The roots still go to OpenSSL: they name the acceptable CAs in the
  // certificate request.
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  // A client certificate is required (a client without one fails inside
  // OpenSSL), but judged by ClientCertificateCheck rather than by OpenSSL,
  // so that refusals reach Accord. gRPC calls the verifier after every
  // handshake in this mode and fails the handshake when it refuses.
  options.set_cert_request_type(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<
          ClientCertificateCheck>(std::move(verifier), std::move(on_refusal)));
  auto creds = grpc::experimental::TlsServerCredentials(options);
  if (!creds)
    return absl::InternalError("cannot create TLS server credentials");
  return creds;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const accord::v1::TlsFiles& files,
                       const std::string& expected_server_identity,
                       const RevocationList* revocation,
                       ServerVerdictHook on_verdict) {
  if (auto s = CheckFiles(files); !s.ok()) return s;
  auto provider = std::make_shared<FileWatcherCertificateProvider>(
      files.key_file(), files.cert_file(), files.ca_file(), kRefreshSeconds);
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  options.set_check_call_host(false);
  options.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<
          ServerCertificateCheck>(expected_server_identity, revocation,
                                  std::move(on_verdict)));
  auto creds = grpc::experimental::TlsCredentials(options);
  if (!creds)
    return absl::InternalError("cannot create TLS channel credentials");
  return creds;
}

grpc::ChannelArguments DefaultChannelArguments() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  return args;
}

}  // namespace accord
