// accord-gateway: the partnership's gateway. Authenticates every caller by
// certificate, enforces the information-sharing agreements, routes queries to
// holders and records every decision in the tamper-evident audit log.
//
//   accord-gateway --config /etc/accord/gateway.textproto

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "accord/v1/config.pb.h"
#include "audit/sqlite_audit_log.h"
#include "gateway/auditor_service.h"
#include "gateway/gateway.h"
#include "gateway/handshake_audit.h"
#include "gateway/holder_client.h"
#include "gateway/referral_router.h"
#include "gateway/referral_store.h"
#include "gateway/service.h"
#include "gateway/stream_audit.h"
#include "policy/policy.h"
#include "runtime/clock.h"
#include "runtime/partnership.h"
#include "runtime/revocation.h"
#include "runtime/seal.h"
#include "runtime/server.h"
#include "runtime/textproto.h"
#include "runtime/tls.h"

namespace {

constexpr char kProgram[] = "accord-gateway";

int Run(const std::string& config_path) {
  using namespace accord;
  accord::v1::GatewayConfig config;
  if (auto s = LoadTextProto(config_path, &config); !s.ok())
    return StartupFailure(kProgram, s);
  auto path = [&](const std::string& p) { return ResolvePath(config_path, p); };

  auto limits = ServerLimits::FromProto(config.server_limits(), config_path);
  if (!limits.ok()) return StartupFailure(kProgram, limits.status());
  auto partnership =
      PartnershipDirectory::Load(path(config.partnership_file()));
  if (!partnership.ok()) return StartupFailure(kProgram, partnership.status());
  std::vector<std::string> agreement_files;
  for (const auto& f : config.agreement_files())
    agreement_files.push_back(path(f));

  SystemClock clock;
  auto policy = policy::Engine::Create(path(config.partnership_file()),
                                       agreement_files, &clock);
  if (!policy.ok()) return StartupFailure(kProgram, policy.status());

  audit::SqliteAuditLogOptions audit_options;
  audit_options.db_path = path(config.audit_db());
  audit_options.signing_key_file = path(config.audit_signing_key_file());
  audit_options.clock = &clock;
  if (config.has_group_commit()) {
    if (config.group_commit().has_max_delay()) {
      audit_options.max_delay =
          absl::Seconds(config.group_commit().max_delay().seconds()) +
          absl::Nanoseconds(config.group_commit().max_delay().nanos());
    }
    if (config.group_commit().max_batch() > 0) {
      audit_options.max_batch = config.group_commit().max_batch();
    }
  }
  auto audit_log = audit::OpenSqliteAuditLog(audit_options);
  if (!audit_log.ok()) return StartupFailure(kProgram, audit_log.status());

  const accord::v1::TlsFiles tls = ResolveTlsFiles(config_path, config.tls());
  auto holders = gateway::MakeHolderClients((*partnership)->proto(), tls);
  if (!holders.ok()) return StartupFailure(kProgram, holders.status());
  // Client certificates refused at the TLS handshake are audited too
  // (rate-limited: anyone who can reach the port can cause them).
  gateway::HandshakeAudit handshake_audit(audit_log->get(), &clock, {},
                                          kProgram);
  auto creds = MakeServerCredentials(tls, handshake_audit.Hook());
  if (!creds.ok()) return StartupFailure(kProgram, creds.status());
  auto revocation = RevocationList::Load(tls.crl_file(), tls.ca_file());
  if (!revocation.ok()) return StartupFailure(kProgram, revocation.status());
  if (!(*revocation)->configured()) {
    std::fprintf(stderr,
                 "%s: warning: tls.crl_file is not set; revoked certificates "
                 "will be accepted\n",
                 kProgram);
  }

  gateway::GatewayOptions options;
  options.revocation = revocation->get();
  options.limits = gateway::LimitOptions::FromProto(config.rate_limit());
  if (config.has_holder_deadline()) {
    options.holder_deadline =
        absl::Seconds(config.holder_deadline().seconds()) +
        absl::Nanoseconds(config.holder_deadline().nanos());
  }
  gateway::Gateway gateway(*partnership, policy->get(), audit_log->get(),
                           holders->get(), &clock, options);
  // Referrals: queued in their own SQLite database, delivered in the
  // background.
  const std::string referral_db =
      path(config.referral_db().empty() ? "state/gateway-referrals.db"
                                        : config.referral_db());
  auto referral_store = gateway::ReferralStore::Open(referral_db);
  if (!referral_store.ok())
    return StartupFailure(kProgram, referral_store.status());
  auto referral_keys = LoadReferralPublicKeys((*partnership)->proto(),
                                              path(config.partnership_file()));
  if (!referral_keys.ok())
    return StartupFailure(kProgram, referral_keys.status());
  gateway::ReferralRouterOptions referral_options;
  auto duration = [](const google::protobuf::Duration& d) {
    return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
  };
  if (config.referral_delivery().has_initial_backoff()) {
    referral_options.initial_backoff =
        duration(config.referral_delivery().initial_backoff());
  }
  if (config.referral_delivery().has_max_backoff()) {
    referral_options.max_backoff =
        duration(config.referral_delivery().max_backoff());
  }
  gateway::ReferralRouter referrals(
      *partnership, policy->get(), audit_log->get(), holders->get(),
      referral_store->get(), &clock, std::move(*referral_keys),
      referral_options);
  referrals.Start();
  gateway::GatewayService gateway_service(&gateway, &referrals);
  gateway::AuditorService auditor_service(&gateway, audit_log->get());
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(gateway::MakeMalformedRequestAuditor(&gateway));
  // Connections that churn streams are closed; each closure and the
  // per-identity summaries are audited (never one entry per stream).
  gateway::StreamAudit stream_audit(audit_log->get(), (*partnership)->id(),
                                    kProgram);
  ServerOptions server_options;
  server_options.limits = *limits;
  server_options.clock = &clock;
  server_options.on_closure = [&](const ConnectionClosure& c) {
    stream_audit.RecordClosure(c);
  };
  server_options.on_summary = [&](const StreamChurnSummary& s) {
    stream_audit.RecordSummary(s);
  };
  auto server = StartServer(config.listen_address(), *creds,
                            {&gateway_service, &auditor_service},
                            std::move(interceptors), std::move(server_options));
  if (!server.ok()) return StartupFailure(kProgram, server.status());
  std::printf("%s: serving %s on port %d\n", kProgram,
              (*partnership)->id().c_str(), server->port);
  std::fflush(stdout);

  // Agreements and the CRL are re-read when their files change (certificates
  // and keys are watched by the TLS credentials); a bad file is reported and
  // what is in force stays.
  Reloader reloader(kProgram,
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
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  handshake_audit.Stop();
  referrals.Stop();
  std::printf("%s: stopped\n", kProgram);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  accord::BlockShutdownSignals();
  // Debian's Abseil is built without NDEBUG, which turns on absl::Mutex
  // deadlock detection: every lock and unlock updates a process-wide lock
  // graph under a global lock, and every new Mutex gets a node in it. Under
  // load that was about 5% of the gateway's CPU (GraphCycles in the profile);
  // lock ordering is checked by -Wthread-safety and the tests instead.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const auto config =
      accord::ParseConfigFlag(argc, argv, kProgram, "GATEWAY.textproto");
  if (!config.has_value()) return 2;
  return Run(*config);
}
