// The agent's gRPC services: thin callback-API adapters. The Holder API
// accepts only the gateway's identity; the local API only the partner's own
// organisation identity. Handlers do the (short, local) work inline on the
// callback thread; each call's event (a disclosure, a refusal, a consent
// change...) goes to the agent's audit log (agent/agent_audit.h), and a
// disclosure is answered only once its entry is durable.
#ifndef ACCORD_AGENT_SERVICE_H_
#define ACCORD_AGENT_SERVICE_H_

#include <string>

#include "accord/v1/agent.grpc.pb.h"
#include "agent/agent_audit.h"
#include "agent/disclosure.h"
#include "agent/local_api.h"
#include "agent/referrals.h"
#include "agent/statistics.h"
#include "runtime/revocation.h"

namespace accord::agent {

class HolderService final : public accord::v1::Holder::CallbackService {
 public:
  // `revocation` is the CRL checked on every call (null: none configured);
  // `referrals` receives deliveries and status notices (null: refused).
  // `audit` records every call's event and outlives the service.
  HolderService(std::string partnership_id, const Discloser* discloser,
                AgentAudit* audit, const RevocationList* revocation,
                Referrals* referrals = nullptr,
                const StatisticsCounter* statistics = nullptr)
      : partnership_id_(std::move(partnership_id)),
        discloser_(discloser),
        audit_(audit),
        revocation_(revocation),
        referrals_(referrals),
        statistics_(statistics) {}

  grpc::ServerUnaryReactor* Disclose(
      grpc::CallbackServerContext* ctx,
      const accord::v1::DiscloseRequest* request,
      accord::v1::DiscloseResponse* response) override;
  grpc::ServerUnaryReactor* DeliverReferral(
      grpc::CallbackServerContext* ctx,
      const accord::v1::DeliverReferralRequest* request,
      accord::v1::DeliverReferralResponse* response) override;
  grpc::ServerUnaryReactor* NotifyReferralStatus(
      grpc::CallbackServerContext* ctx,
      const accord::v1::NotifyReferralStatusRequest* request,
      accord::v1::NotifyReferralStatusResponse* response) override;
  // Counts run on the callback thread: a run is one read snapshot and a few
  // table scans (docs/PERFORMANCE.md, statistics_10x100k_s).
  grpc::ServerUnaryReactor* Statistics(
      grpc::CallbackServerContext* ctx,
      const accord::v1::HolderStatisticsRequest* request,
      accord::v1::HolderStatisticsResponse* response) override;

 private:
  Caller CallerOf(grpc::CallbackServerContext* ctx) const;
  static absl::Status AuthoriseGateway(const Caller& caller);
  // Records `why` as the refusal of `method` and finishes with it.
  grpc::ServerUnaryReactor* Refuse(grpc::CallbackServerContext* ctx,
                                   const Caller& caller, const char* method,
                                   const absl::Status& why);
  const std::string partnership_id_;
  const Discloser* discloser_;
  AgentAudit* audit_;
  const RevocationList* revocation_;
  Referrals* referrals_;
  const StatisticsCounter* statistics_;
};

class LocalService final : public accord::v1::AgentLocal::CallbackService {
 public:
  LocalService(std::string partnership_id, LocalApi* api, AgentAudit* audit,
               const RevocationList* revocation, Referrals* referrals = nullptr)
      : partnership_id_(std::move(partnership_id)),
        api_(api),
        audit_(audit),
        revocation_(revocation),
        referrals_(referrals) {}

  grpc::ServerUnaryReactor* UpsertSubject(
      grpc::CallbackServerContext* ctx,
      const accord::v1::UpsertSubjectRequest* request,
      accord::v1::UpsertSubjectResponse* response) override;
  grpc::ServerUnaryReactor* UpsertRecord(
      grpc::CallbackServerContext* ctx,
      const accord::v1::UpsertRecordRequest* request,
      accord::v1::UpsertRecordResponse* response) override;
  grpc::ServerUnaryReactor* RecordConsent(
      grpc::CallbackServerContext* ctx,
      const accord::v1::RecordConsentRequest* request,
      accord::v1::RecordConsentResponse* response) override;
  grpc::ServerUnaryReactor* WithdrawConsent(
      grpc::CallbackServerContext* ctx,
      const accord::v1::WithdrawConsentRequest* request,
      accord::v1::WithdrawConsentResponse* response) override;
  grpc::ServerUnaryReactor* ListConsents(
      grpc::CallbackServerContext* ctx,
      const accord::v1::ListConsentsRequest* request,
      accord::v1::ListConsentsResponse* response) override;
  grpc::ServerUnaryReactor* RecordEngagement(
      grpc::CallbackServerContext* ctx,
      const accord::v1::RecordEngagementRequest* request,
      accord::v1::RecordEngagementResponse* response) override;
  grpc::ServerUnaryReactor* SubjectTokens(
      grpc::CallbackServerContext* ctx,
      const accord::v1::SubjectTokensRequest* request,
      accord::v1::SubjectTokensResponse* response) override;
  // Client-streaming: chunks of a CSV or JSON Lines file; each chunk is
  // parsed and its full batches applied on the callback thread (bounded work
  // per message), the report sent when the stream ends.
  grpc::ServerReadReactor<accord::v1::ImportRow>* Import(
      grpc::CallbackServerContext* ctx,
      accord::v1::ImportReport* response) override;
  grpc::ServerUnaryReactor* SendReferral(
      grpc::CallbackServerContext* ctx,
      const accord::v1::LocalSendReferralRequest* request,
      accord::v1::SendReferralResponse* response) override;
  grpc::ServerUnaryReactor* ListReferrals(
      grpc::CallbackServerContext* ctx,
      const accord::v1::ListReferralsRequest* request,
      accord::v1::ListReferralsResponse* response) override;
  grpc::ServerUnaryReactor* UpdateReferral(
      grpc::CallbackServerContext* ctx,
      const accord::v1::UpdateReferralRequest* request,
      accord::v1::UpdateReferralResponse* response) override;
  grpc::ServerWriteReactor<accord::v1::ReferralEvent>* WatchReferrals(
      grpc::CallbackServerContext* ctx,
      const accord::v1::WatchReferralsRequest* request) override;

 private:
  // Authorises, runs `fn(request)`, records the call's event (its refusal,
  // or what it changed) and finishes the reactor with the result.
  template <typename Req, typename Resp, typename Fn>
  grpc::ServerUnaryReactor* Handle(grpc::CallbackServerContext* ctx,
                                   const char* method, const Req* request,
                                   Resp* response, Fn fn);
  Caller CallerOf(grpc::CallbackServerContext* ctx) const;
  const std::string partnership_id_;
  LocalApi* api_;
  AgentAudit* audit_;
  const RevocationList* revocation_;
  Referrals* referrals_;
};

}  // namespace accord::agent

#endif  // ACCORD_AGENT_SERVICE_H_
