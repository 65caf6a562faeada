// accord-agent: a partner's agent. Serves the holder API (gateway only) and
// the local API (the partner's own systems only), both over mutual TLS.
//
//   accord-agent --config /etc/accord/agent.textproto

#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "accord/v1/config.pb.h"
#include "accord/v1/gateway.grpc.pb.h"
#include "agent/disclosure.h"
#include "agent/local_api.h"
#include "agent/referrals.h"
#include "agent/service.h"
#include "agent/store.h"
#include "linkage/tokens.h"
#include "policy/policy.h"
#include "runtime/clock.h"
#include "runtime/crypto.h"
#include "runtime/handshake.h"
#include "runtime/identity.h"
#include "runtime/partnership.h"
#include "runtime/revocation.h"
#include "runtime/seal.h"
#include "runtime/server.h"
#include "runtime/textproto.h"
#include "runtime/tls.h"

namespace {

constexpr char kProgram[] = "accord-agent";

int Run(const std::string& config_path) {
  using namespace accord;
  accord::v1::AgentConfig config;
  if (auto s = LoadTextProto(config_path, &config); !s.ok())
    return StartupFailure(kProgram, s);
  auto path = [&](const std::string& p) { return ResolvePath(config_path, p); };

  auto limits = ServerLimits::FromProto(config.server_limits(), config_path);
  if (!limits.ok()) return StartupFailure(kProgram, limits.status());
  auto partnership =
      PartnershipDirectory::Load(path(config.partnership_file()));
  if (!partnership.ok()) return StartupFailure(kProgram, partnership.status());
  if ((*partnership)->FindOrg(config.org_id()) == nullptr) {
    return StartupFailure(kProgram,
                          absl::InvalidArgumentError(absl::StrCat(
                              config_path, ": field org_id: '", config.org_id(),
                              "' is not an organisation of the partnership")));
  }
  std::vector<std::string> agreement_files;
  for (const auto& f : config.agreement_files())
    agreement_files.push_back(path(f));

  SystemClock clock;
  auto policy = policy::Engine::Create(path(config.partnership_file()),
                                       agreement_files, &clock);
  if (!policy.ok()) return StartupFailure(kProgram, policy.status());
  auto store = agent::AgentStore::Open(path(config.store_db()));
  if (!store.ok()) return StartupFailure(kProgram, store.status());
  auto linkage_key = linkage::LinkageKey::Load(path(config.linkage_key_file()));
  if (!linkage_key.ok()) return StartupFailure(kProgram, linkage_key.status());
  auto pseudonym_key = LoadHexSecretFile(path(config.pseudonym_key_file()), 32);
  if (!pseudonym_key.ok())
    return StartupFailure(kProgram, pseudonym_key.status());

  const accord::v1::TlsFiles tls = ResolveTlsFiles(config_path, config.tls());
  // Client certificates refused at the TLS handshake are logged (the
  // gateway audits its own), rate-limited like the gateway's audit of them.
  auto handshake_log = [&](const char* api) -> HandshakeRefusalHook {
    auto limiter = std::make_shared<RefusalRateLimiter>(5, 20, &clock);
    std::string prefix =
        absl::StrCat(kProgram, "[", config.org_id(), "]: ", api, ": ");
    return [limiter, prefix](const HandshakeRefusal& refusal) {
      const auto left_out = limiter->Admit();
      if (!left_out.has_value()) return;
      std::string line = DescribeRefusal(refusal);
      if (*left_out > 0) {
        absl::StrAppend(&line, "; ", *left_out,
                        " earlier handshake refusals not logged (rate limit)");
      }
      std::fprintf(stderr, "%s%s\n", prefix.c_str(), line.c_str());
    };
  };
  auto holder_creds = MakeServerCredentials(tls, handshake_log("holder API"));
  if (!holder_creds.ok())
    return StartupFailure(kProgram, holder_creds.status());
  auto local_creds = MakeServerCredentials(tls, handshake_log("local API"));
  if (!local_creds.ok()) return StartupFailure(kProgram, local_creds.status());
  auto revocation = RevocationList::Load(tls.crl_file(), tls.ca_file());
  if (!revocation.ok()) return StartupFailure(kProgram, revocation.status());
  if (!(*revocation)->configured()) {
    std::fprintf(stderr,
                 "%s[%s]: warning: tls.crl_file is not set; revoked "
                 "certificates will be accepted\n",
                 kProgram, config.org_id().c_str());
  }

  agent::Discloser discloser(config.org_id(), *partnership, store->get(),
                             policy->get(), *pseudonym_key, &clock);
  agent::LocalApi local_api(config.org_id(), (*partnership)->id(), store->get(),
                            &*linkage_key, &clock, partnership->get());
  // Referrals: the published keys of every partner, this agent's own key,
  // and a channel to the gateway presenting this agent's identity.
  auto referral_keys = LoadReferralPublicKeys((*partnership)->proto(),
                                              path(config.partnership_file()));
  if (!referral_keys.ok())
    return StartupFailure(kProgram, referral_keys.status());
  std::optional<X25519KeyPair> referral_key;
  if (!config.referral_key_file().empty()) {
    auto key = LoadX25519PrivateKey(path(config.referral_key_file()));
    if (!key.ok()) return StartupFailure(kProgram, key.status());
    auto published = referral_keys->find(config.org_id());
    if (published == referral_keys->end() ||
        published->second != key->public_key) {
      return StartupFailure(
          kProgram, absl::FailedPreconditionError(absl::StrCat(
                        config_path,
                        ": field referral_key_file: its public key is not "
                        "the one the partnership file publishes for ",
                        config.org_id())));
    }
    referral_key = std::move(*key);
  }
  std::unique_ptr<accord::v1::Gateway::StubInterface> gateway_stub;
  if (!config.gateway_address().empty()) {
    auto creds = MakeChannelCredentials(
        tls, SpiffeId((*partnership)->id(), PrincipalKind::kGateway));
    if (!creds.ok()) return StartupFailure(kProgram, creds.status());
    grpc::ChannelArguments args = DefaultChannelArguments();
    // Reconnect to a restarted gateway within seconds, not minutes.
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
    gateway_stub = accord::v1::Gateway::NewStub(
        grpc::CreateCustomChannel(config.gateway_address(), *creds, args));
  }
  agent::Referrals referrals(config.org_id(), *partnership, store->get(),
                             policy->get(), std::move(*referral_keys),
                             std::move(referral_key), std::move(gateway_stub),
                             &clock);
  agent::HolderService holder_service((*partnership)->id(), &discloser,
                                      revocation->get(), &referrals);
  agent::LocalService local_service((*partnership)->id(), &local_api,
                                    revocation->get(), &referrals);

  // Both APIs share one memory quota; connections that churn streams are
  // closed and logged (the gateway audits its own).
  auto memory = MakeMemoryQuota(*limits, kProgram);
  auto server_options = [&](const char* api) {
    ServerOptions o;
    o.limits = *limits;
    o.memory = memory;
    o.clock = &clock;
    LogStreamGuardReports(
        absl::StrCat(kProgram, "[", config.org_id(), "]: ", api), &o);
    return o;
  };
  auto holder =
      StartServer(config.holder_listen_address(), *holder_creds,
                  {&holder_service}, {}, server_options("holder API"));
  if (!holder.ok()) return StartupFailure(kProgram, holder.status());
  auto local = StartServer(config.local_listen_address(), *local_creds,
                           {&local_service}, {}, server_options("local API"));
  if (!local.ok()) return StartupFailure(kProgram, local.status());
  std::printf("%s[%s]: holder API on port %d, local API on port %d\n", kProgram,
              config.org_id().c_str(), holder->port, local->port);
  std::fflush(stdout);

  // Agreements and the CRL are re-read when their files change (certificates
  // and keys are watched by the TLS credentials); a bad file is reported and
  // what is in force stays.
  Reloader reloader(absl::StrCat(kProgram, "[", config.org_id(), "]"),
                    {{"agreements not reloaded, previous policy stays",
                      [&] { return (*policy)->ReloadIfChanged(); }, nullptr},
                     {"CRL not reloaded, previous one stays",
                      [&] { return (*revocation)->ReloadIfChanged(); },
                      [&] {
                        return absl::StrCat("CRL reloaded (",
                                            (*revocation)->revoked_count(),
                                            " revoked)");
                      }}});

  WaitForShutdownSignal();
  reloader.Stop();
  const auto deadline =
      std::chrono::system_clock::now() + std::chrono::seconds(5);
  holder->Shutdown(deadline);
  local->Shutdown(deadline);
  std::printf("%s[%s]: stopped\n", kProgram, config.org_id().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  accord::BlockShutdownSignals();
  // As in accord-gateway: Debian's Abseil keeps deadlock detection on, a
  // process-wide lock graph updated on every lock; lock order is checked by
  // -Wthread-safety and the tests instead.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const auto config =
      accord::ParseConfigFlag(argc, argv, kProgram, "AGENT.textproto");
  if (!config.has_value()) return 2;
  return Run(*config);
}
