#include "cli/connection.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/revocation.h"
#include "runtime/server_channel.h"
#include "runtime/tls.h"

namespace accord::cli {
namespace {

std::string Env(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

}  // namespace

absl::StatusOr<accord::v1::TlsFiles> TlsFromArgs(const Args& args) {
  accord::v1::TlsFiles tls;
  const std::string pki = args.Get("pki", Env("ACCORD_PKI"));
  const std::string as = args.Get("as", Env("ACCORD_AS"));
  if (!pki.empty() && !as.empty()) {
    tls.set_ca_file(pki + "/ca.pem");
    tls.set_cert_file(pki + "/" + as + ".pem");
    tls.set_key_file(pki + "/" + as + ".key");
  }
  if (args.Has("ca")) tls.set_ca_file(args.Get("ca"));
  if (args.Has("cert")) tls.set_cert_file(args.Get("cert"));
  if (args.Has("key")) tls.set_key_file(args.Get("key"));
  if (tls.ca_file().empty() || tls.cert_file().empty() ||
      tls.key_file().empty()) {
    return absl::InvalidArgumentError(
        "no client certificate: give --pki DIR --as NAME (e.g. --as "
        "org-police), or --ca, "
        "--cert and --key");
  }
  const std::string crl =
      args.Get("crl", Env("ACCORD_CRL", pki.empty() ? "" : pki + "/crl.pem"));
  if (crl.empty()) {
    return absl::InvalidArgumentError(
        "no CRL: give --crl FILE (the partnership CRL) or --pki DIR, or "
        "--crl none to connect without checking the server's certificate "
        "for revocation");
  }
  if (crl != "none") tls.set_crl_file(crl);
  return tls;
}

absl::StatusOr<Principal> CertificateIdentity(const std::string& cert_file) {
  FILE* f = std::fopen(cert_file.c_str(), "r");
  if (!f) return absl::NotFoundError(absl::StrCat(cert_file, ": cannot open"));
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (!cert)
    return absl::InvalidArgumentError(
        absl::StrCat(cert_file, ": not a PEM certificate"));
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  std::string uri;
  int count = 0;
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type != GEN_URI) continue;
    ++count;
    uri.assign(reinterpret_cast<const char*>(
                   ASN1_STRING_get0_data(n->d.uniformResourceIdentifier)),
               ASN1_STRING_length(n->d.uniformResourceIdentifier));
  }
  GENERAL_NAMES_free(names);
  X509_free(cert);
  if (count != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        cert_file, ": certificate must carry exactly one URI SAN identity"));
  }
  return ParseSpiffeId(uri);
}

namespace {
// What a channel needs for as long as it is used: the CRL its certificate
// check reads, and the ServerChannel.
struct Dialled {
  std::unique_ptr<RevocationList> crl;
  std::unique_ptr<ServerChannel> server;
  std::shared_ptr<grpc::Channel> channel;
};

// `agent_org` empty: the gateway; else the agent of that organisation
// ("-": of our own).
absl::StatusOr<std::shared_ptr<grpc::Channel>> Channel(
    const Args& args, const std::string& address,
    const std::string& agent_org) {
  auto tls = TlsFromArgs(args);
  if (!tls.ok()) return tls.status();
  auto me = CertificateIdentity(tls->cert_file());
  if (!me.ok()) return me.status();
  std::string org = agent_org;
  if (org == "-") {
    if (me->kind != PrincipalKind::kOrg) {
      return absl::InvalidArgumentError(absl::StrCat(
          me->uri,
          " is not an organisation's identity: name the agent's organisation "
          "with --agent-org ORG"));
    }
    org = me->name;
  }
  auto dialled = std::make_shared<Dialled>();
  if (!tls->crl_file().empty()) {
    auto crl = RevocationList::Load(tls->crl_file(), tls->ca_file());
    if (!crl.ok()) return crl.status();
    dialled->crl = *std::move(crl);
  }
  ServerChannelOptions options;
  options.address = address;
  options.tls = *tls;
  options.expected_identity =
      !org.empty() ? SpiffeId(me->partnership, PrincipalKind::kAgent, org)
                   : SpiffeId(me->partnership, PrincipalKind::kGateway);
  options.server_name = !org.empty() ? "the agent" : "the gateway";
  options.revocation = dialled->crl.get();
  auto server = ServerChannel::Open(std::move(options));
  if (!server.ok()) return server.status();
  dialled->server = *std::move(server);
  dialled->channel = dialled->server->Get();
  // The channel handed out keeps what it depends on alive.
  grpc::Channel* channel = dialled->channel.get();
  return std::shared_ptr<grpc::Channel>(std::move(dialled), channel);
}
}  // namespace

absl::StatusOr<std::shared_ptr<grpc::Channel>> GatewayChannel(
    const Args& args) {
  return Channel(
      args, args.Get("gateway", Env("ACCORD_GATEWAY", "127.0.0.1:17443")), "");
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> AgentChannel(
    const Args& args, const std::string& org) {
  const std::string address = args.Get("agent", Env("ACCORD_AGENT"));
  if (address.empty()) {
    return absl::InvalidArgumentError(
        "give the agent's local API address with --agent HOST:PORT");
  }
  return Channel(args, address, org.empty() ? "-" : org);
}

void PrepareContext(const Args& args, grpc::ClientContext* ctx,
                    bool until_ended) {
  if (!until_ended || args.Has("timeout")) {
    int seconds = 30;
    if (!absl::SimpleAtoi(args.Get("timeout", Env("ACCORD_TIMEOUT", "30")),
                          &seconds) ||
        seconds <= 0) {
      seconds = 30;
    }
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(seconds));
  }
  const std::string user = args.Get("user", Env("ACCORD_USER"));
  const std::string role = args.Get("role", Env("ACCORD_ROLE"));
  if (!user.empty()) ctx->AddMetadata(kUserMetadataKey, user);
  if (!role.empty()) ctx->AddMetadata(kRoleMetadataKey, role);
}

}  // namespace accord::cli
