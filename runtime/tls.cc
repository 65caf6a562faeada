#include "runtime/tls.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/str_cat.h"
#include "runtime/crypto.h"
#include "runtime/textproto.h"

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
// identity. Chain verification against the CA has already happened.
class ServerIdentityVerifier final
    : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit ServerIdentityVerifier(std::string expected)
      : expected_(std::move(expected)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/,
              grpc::Status* sync_status) override {
    const auto uris = request->uri_names();
    if (uris.size() == 1 &&
        std::string(uris[0].data(), uris[0].size()) == expected_) {
      *sync_status = grpc::Status::OK;
    } else {
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                  absl::StrCat("server is not ", expected_));
    }
    return true;  // synchronous
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {
  }

 private:
  const std::string expected_;
};

}  // namespace

accord::v1::TlsFiles ResolveTlsFiles(const std::string& config_path,
                                     const accord::v1::TlsFiles& files) {
  accord::v1::TlsFiles out = files;
  out.set_ca_file(ResolvePath(config_path, files.ca_file()));
  out.set_cert_file(ResolvePath(config_path, files.cert_file()));
  out.set_key_file(ResolvePath(config_path, files.key_file()));
  if (!files.crl_file().empty())
    out.set_crl_file(ResolvePath(config_path, files.crl_file()));
  return out;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const accord::v1::TlsFiles& files) {
  if (auto s = CheckFiles(files); !s.ok()) return s;
  auto provider = std::make_shared<FileWatcherCertificateProvider>(
      files.key_file(), files.cert_file(), files.ca_file(), kRefreshSeconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  auto creds = grpc::experimental::TlsServerCredentials(options);
  if (!creds)
    return absl::InternalError("cannot create TLS server credentials");
  return creds;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const accord::v1::TlsFiles& files,
                       const std::string& expected_server_identity) {
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
          ServerIdentityVerifier>(expected_server_identity));
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
