// accord-gateway: the partnership's gateway. Authenticates every caller by
// certificate, enforces the information-sharing agreements, routes queries to
// holders and records every decision in the tamper-evident audit log.
//
//   accord-gateway --config /etc/accord/gateway.textproto

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "accord/v1/config.pb.h"
#include "audit/refusal_log.h"
#include "audit/sqlite_audit_log.h"
#include "auditor/auditor_service.h"
#include "gateway/auditor_access.h"
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
#include "runtime/settings.h"
#include "runtime/tls.h"

namespace {

constexpr char kProgram[] = "accord-gateway";

// The directory holding `file` ("." for a bare name).
std::string StateDirectory(const std::string& file) {
  const size_t slash = file.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : file.substr(0, slash);
}

int Run(const std::string& config_path) {
  using namespace accord;
  // Every setting checked (ranges, TLS key and identity, CRL) before
  // anything starts.
  auto settings = LoadGatewaySettings(config_path);
  if (!settings.ok()) return StartupFailure(kProgram, settings.status());
  const std::shared_ptr<const PartnershipDirectory>& partnership =
      settings->partnership;
  auto limits = ServerLimits::FromProto(settings->server_limits, config_path);
  if (!limits.ok()) return StartupFailure(kProgram, limits.status());

  SystemClock clock;
  auto policy = policy::Engine::Create(settings->partnership_file,
                                       settings->agreement_files, &clock);
  if (!policy.ok()) return StartupFailure(kProgram, policy.status());

  audit::SqliteAuditLogOptions audit_options;
  audit_options.db_path = settings->audit_db;
  audit_options.signing_key_file = settings->audit_signing_key_file;
  audit_options.clock = &clock;
  if (settings->group_commit_max_delay)
    audit_options.max_delay = *settings->group_commit_max_delay;
  if (settings->group_commit_max_batch)
    audit_options.max_batch = *settings->group_commit_max_batch;
  auto audit_log = audit::OpenSqliteAuditLog(audit_options);
  if (!audit_log.ok()) return StartupFailure(kProgram, audit_log.status());

  const accord::v1::TlsFiles& tls = settings->tls;
  auto revocation = RevocationList::Load(tls.crl_file(), tls.ca_file());
  if (!revocation.ok()) return StartupFailure(kProgram, revocation.status());
  if (!(*revocation)->configured()) {
    std::fprintf(stderr,
                 "%s: warning: tls.allow_no_crl is set: revoked certificates "
                 "will be accepted\n",
                 kProgram);
  }
  // Agents' server certificates are checked against the same CRL.
  auto holders = gateway::MakeHolderClients(
      partnership->proto(), tls,
      (*revocation)->configured() ? revocation->get() : nullptr, kProgram);
  if (!holders.ok()) return StartupFailure(kProgram, holders.status());
  // Client certificates refused at the TLS handshake are audited too
  // (rate-limited: anyone who can reach the port can cause them).
  gateway::HandshakeAudit handshake_audit(audit_log->get(), &clock, {},
                                          kProgram);
  auto creds = MakeServerCredentials(tls, handshake_audit.Hook());
  if (!creds.ok()) return StartupFailure(kProgram, creds.status());

  // Every method goes through one pipeline: authorise, admit, audit
  // refusals (at a bounded cost), release only what is durable.
  audit::RefusalLog refusals(
      audit_log->get(), &clock,
      audit::RefusalBudget::FromProto(settings->refusal_audit));
  gateway::PipelineOptions pipeline_options;
  pipeline_options.limits =
      gateway::LimitOptions::FromProto(settings->rate_limit);
  pipeline_options.disk_floor.path = StateDirectory(settings->audit_db);
  if (settings->min_free_disk_mb) {
    pipeline_options.disk_floor.min_free_bytes = *settings->min_free_disk_mb
                                                 << 20;
  }
  gateway::Pipeline pipeline(partnership, audit_log->get(), &refusals, &clock,
                             pipeline_options);
  gateway::GatewayOptions options;
  if (settings->holder_deadline)
    options.holder_deadline = *settings->holder_deadline;
  gateway::Gateway gateway(&pipeline, policy->get(), holders->get(), options);
  // Referrals: queued in their own SQLite database, delivered in the
  // background.
  auto referral_store = gateway::ReferralStore::Open(settings->referral_db);
  if (!referral_store.ok())
    return StartupFailure(kProgram, referral_store.status());
  auto referral_keys =
      LoadReferralPublicKeys(partnership->proto(), settings->partnership_file);
  if (!referral_keys.ok())
    return StartupFailure(kProgram, referral_keys.status());
  gateway::ReferralRouterOptions referral_options;
  if (settings->referral_initial_backoff)
    referral_options.initial_backoff = *settings->referral_initial_backoff;
  if (settings->referral_max_backoff)
    referral_options.max_backoff = *settings->referral_max_backoff;
  gateway::ReferralRouter referrals(
      &pipeline, policy->get(), holders->get(), referral_store->get(),
      std::move(*referral_keys), referral_options);
  referrals.Start();
  auditor::AuditorApiOptions auditor_options;
  if (settings->max_concurrent_exports > 0)
    auditor_options.max_concurrent_exports = settings->max_concurrent_exports;
  gateway::GatewayAuditorAccess auditor_access(&pipeline);
  auditor::AuditorApi auditor_api(audit_log->get(), &auditor_access,
                                  auditor_options);
  const PartnershipDirectory* directory = partnership.get();
  gateway::StatisticsRuns statistics(&pipeline, policy->get(), holders->get());
  gateway::GatewayService gateway_service(&gateway, &referrals, directory,
                                          revocation->get(), &statistics);
  auditor::AuditorService auditor_service(&auditor_api, directory->id(),
                                          revocation->get());
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(gateway::MakeMalformedRequestAuditor(
      &pipeline, directory, revocation->get()));
  // Connections that churn streams are closed; each closure and the
  // per-identity summaries are audited (never one entry per stream).
  gateway::StreamAudit stream_audit(audit_log->get(), partnership->id(),
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
  auto server = StartServer(settings->listen_address, *creds,
                            {&gateway_service, &auditor_service},
                            std::move(interceptors), std::move(server_options));
  if (!server.ok()) return StartupFailure(kProgram, server.status());
  std::printf("%s: serving %s on port %d\n", kProgram,
              partnership->id().c_str(), server->port);
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
  referrals.Stop();
  refusals.Stop();
  handshake_audit.Stop();
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
