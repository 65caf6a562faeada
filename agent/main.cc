// accord-agent: a partner's agent. Serves the holder API (gateway only) and
// the local API (the partner's own systems only), both over mutual TLS, and
// keeps its own tamper-evident audit log, read through the Auditor API on
// the local API's port (this organisation's identity and the partnership's
// auditors only).
//
//   accord-agent --config /etc/accord/agent.textproto

#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "accord/v1/config.pb.h"
#include "accord/v1/gateway.grpc.pb.h"
#include "agent/agent_audit.h"
#include "agent/disclosure.h"
#include "agent/local_api.h"
#include "agent/referrals.h"
#include "agent/service.h"
#include "agent/store.h"
#include "audit/sqlite_audit_log.h"
#include "auditor/auditor_api.h"
#include "auditor/auditor_service.h"
#include "linkage/tokens.h"
#include "policy/policy.h"
#include "runtime/clock.h"
#include "runtime/crypto.h"
#include "runtime/gateway_stub.h"
#include "runtime/handshake.h"
#include "runtime/identity.h"
#include "runtime/partnership.h"
#include "runtime/revocation.h"
#include "runtime/seal.h"
#include "runtime/server.h"
#include "runtime/settings.h"
#include "runtime/tls.h"

namespace {

constexpr char kProgram[] = "accord-agent";

int Run(const std::string& config_path) {
  using namespace accord;
  // Every setting checked (ranges, TLS key and identity, CRL) before
  // anything starts.
  auto settings = LoadAgentSettings(config_path);
  if (!settings.ok()) return StartupFailure(kProgram, settings.status());
  const std::shared_ptr<const PartnershipDirectory>& partnership =
      settings->partnership;
  auto limits = ServerLimits::FromProto(settings->server_limits, config_path);
  if (!limits.ok()) return StartupFailure(kProgram, limits.status());

  SystemClock clock;
  auto policy = policy::Engine::Create(settings->partnership_file,
                                       settings->agreement_files, &clock);
  if (!policy.ok()) return StartupFailure(kProgram, policy.status());
  auto store = agent::AgentStore::Open(settings->store_db);
  if (!store.ok()) return StartupFailure(kProgram, store.status());
  auto linkage_key = linkage::LinkageKey::Load(settings->linkage_key_file);
  if (!linkage_key.ok()) return StartupFailure(kProgram, linkage_key.status());
  auto pseudonym_key = LoadHexSecretFile(settings->pseudonym_key_file, 32);
  if (!pseudonym_key.ok())
    return StartupFailure(kProgram, pseudonym_key.status());

  // The agent's own audit log: nothing is disclosed that it cannot record.
  auto audit_signer =
      audit::TreeHeadSigner::FromKeyFile(settings->audit_signing_key_file);
  if (!audit_signer.ok()) {
    return StartupFailure(
        kProgram,
        absl::Status(audit_signer.status().code(),
                     absl::StrCat(config_path, ": audit_signing_key_file: ",
                                  audit_signer.status().message())));
  }
  const std::string audit_key_id = (*audit_signer)->key_id();
  audit::SqliteAuditLogOptions audit_options;
  audit_options.db_path = settings->audit_db;
  audit_options.signer = std::move(*audit_signer);
  audit_options.clock = &clock;
  audit_options.max_delay = absl::ZeroDuration();  // commit at once when idle
  auto audit_log = audit::OpenSqliteAuditLog(audit_options);
  if (!audit_log.ok()) {
    return StartupFailure(
        kProgram, absl::Status(audit_log.status().code(),
                               absl::StrCat(config_path, ": audit log: ",
                                            audit_log.status().message())));
  }
  const std::string log_prefix =
      absl::StrCat(kProgram, "[", settings->org_id, "]");
  auto agent_audit =
      agent::NewAgentAuditLog(settings->org_id, partnership, audit_log->get(),
                              store->get(), log_prefix);

  const accord::v1::TlsFiles& tls = settings->tls;
  // Client certificates refused at the TLS handshake are logged (the
  // gateway audits its own), rate-limited like the gateway's audit of them.
  auto handshake_log = [&](const char* api) -> HandshakeRefusalHook {
    auto limiter = std::make_shared<RefusalRateLimiter>(5, 20, &clock);
    std::string prefix =
        absl::StrCat(kProgram, "[", settings->org_id, "]: ", api, ": ");
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
                 "%s[%s]: warning: tls.allow_no_crl is set: revoked "
                 "certificates will be accepted\n",
                 kProgram, settings->org_id.c_str());
  }

  agent::Discloser discloser(settings->org_id, partnership, store->get(),
                             policy->get(), *pseudonym_key, &clock);
  agent::LocalApi local_api(settings->org_id, partnership->id(), store->get(),
                            &*linkage_key, &clock, partnership.get());
  // Referrals: the published keys of every partner, this agent's own key,
  // and a channel to the gateway presenting this agent's identity.
  auto referral_keys =
      LoadReferralPublicKeys(partnership->proto(), settings->partnership_file);
  if (!referral_keys.ok())
    return StartupFailure(kProgram, referral_keys.status());
  std::optional<X25519KeyPair> referral_key;
  if (!settings->referral_key_file.empty()) {
    auto key = LoadX25519PrivateKey(settings->referral_key_file);
    if (!key.ok()) return StartupFailure(kProgram, key.status());
    auto published = referral_keys->find(settings->org_id);
    if (published == referral_keys->end() ||
        published->second != key->public_key) {
      return StartupFailure(
          kProgram, absl::FailedPreconditionError(absl::StrCat(
                        config_path,
                        ": field referral_key_file: its public key is not "
                        "the one the partnership file publishes for ",
                        settings->org_id)));
    }
    referral_key = std::move(*key);
  }
  std::unique_ptr<accord::v1::Gateway::StubInterface> gateway_stub;
  if (!settings->gateway_address.empty()) {
    // The gateway's certificate is checked at every handshake against the
    // same CRL as callers' certificates, reloads included.
    ServerChannelOptions dial;
    dial.address = settings->gateway_address;
    dial.tls = tls;
    dial.revocation = (*revocation)->configured() ? revocation->get() : nullptr;
    dial.log_prefix = absl::StrCat(kProgram, "[", settings->org_id, "]");
    // Reconnect to a restarted gateway within seconds, not minutes.
    dial.args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
    auto stub = DialGateway(std::move(dial), partnership->id());
    if (!stub.ok()) return StartupFailure(kProgram, stub.status());
    gateway_stub = *std::move(stub);
  }
  agent::Referrals referrals(settings->org_id, partnership, store->get(),
                             policy->get(), std::move(*referral_keys),
                             std::move(referral_key), std::move(gateway_stub),
                             &clock, agent_audit.get());
  agent::StatisticsCounter statistics(settings->org_id, partnership,
                                      store->get(), policy->get(),
                                      &*linkage_key, &clock);
  agent::HolderService holder_service(partnership->id(), &discloser,
                                      agent_audit.get(), revocation->get(),
                                      &referrals, &statistics);
  agent::LocalService local_service(partnership->id(), &local_api,
                                    agent_audit.get(), revocation->get(),
                                    &referrals);
  auditor::AuditorApi auditor_api(audit_log->get(), agent_audit.get());
  auditor::AuditorService auditor_service(&auditor_api, partnership->id(),
                                          revocation->get());

  // Both APIs share one memory quota; connections that churn streams are
  // closed and logged (the gateway audits its own).
  auto memory = MakeMemoryQuota(*limits, kProgram);
  auto server_options = [&](const char* api) {
    ServerOptions o;
    o.limits = *limits;
    o.memory = memory;
    o.clock = &clock;
    LogStreamGuardReports(
        absl::StrCat(kProgram, "[", settings->org_id, "]: ", api), &o);
    return o;
  };
  auto holder =
      StartServer(settings->holder_listen_address, *holder_creds,
                  {&holder_service}, {}, server_options("holder API"));
  if (!holder.ok()) return StartupFailure(kProgram, holder.status());
  auto local = StartServer(settings->local_listen_address, *local_creds,
                           {&local_service, &auditor_service}, {},
                           server_options("local API"));
  if (!local.ok()) return StartupFailure(kProgram, local.status());
  std::printf(
      "%s[%s]: holder API on port %d, local API on port %d (with this "
      "agent's audit log, key %s)\n",
      kProgram, settings->org_id.c_str(), holder->port, local->port,
      audit_key_id.c_str());
  std::fflush(stdout);

  // Agreements and the CRL are re-read when their files change (certificates
  // and keys are watched by the TLS credentials); a bad file is reported and
  // what is in force stays.
  Reloader reloader(absl::StrCat(kProgram, "[", settings->org_id, "]"),
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
  std::printf("%s[%s]: stopped\n", kProgram, settings->org_id.c_str());
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
