#include "agent/service.h"

#include <deque>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "auditor/auditor_service.h"
#include "runtime/caller.h"
#include "runtime/identity.h"
#include "runtime/status.h"
#include "runtime/textproto.h"

namespace accord::agent {
namespace {

// A call to the local API: this organisation's own system, naming the person
// acting (x-accord-user and x-accord-role), who is recorded with what the
// call does.
absl::Status AuthoriseLocal(LocalApi* api, const Caller& caller) {
  if (auto s = api->Authorise(caller.principal); !s.ok()) return s;
  if (caller.actor.user_id().empty() || caller.actor.role().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the acting practitioner is missing: every call from an "
        "organisation's system names the person acting, in metadata '",
        kUserMetadataKey, "' (their user id) and '", kRoleMetadataKey,
        "' (their role)"));
  }
  return absl::OkStatus();
}

template <typename T>
ReferralDone<T> FinishInto(grpc::ServerUnaryReactor* reactor, T* response) {
  return [reactor, response](absl::StatusOr<T> result) {
    if (!result.ok()) return reactor->Finish(ToGrpcStatus(result.status()));
    *response = std::move(*result);
    reactor->Finish(grpc::Status::OK);
  };
}

}  // namespace

Caller HolderService::CallerOf(grpc::CallbackServerContext* ctx) const {
  // A revoked certificate makes the principal an error: the call is refused
  // and the refusal recorded in the agent's log.
  return CallerFromContext(*ctx, partnership_id_, revocation_);
}

absl::Status HolderService::AuthoriseGateway(const Caller& caller) {
  if (!caller.principal.ok()) return caller.principal.status();
  if (caller.principal->kind != PrincipalKind::kGateway) {
    return absl::PermissionDeniedError(
        absl::StrCat(caller.principal->uri,
                     " may not call the holder API; only the gateway may"));
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* HolderService::Refuse(
    grpc::CallbackServerContext* ctx, const Caller& caller, const char* method,
    const absl::Status& why) {
  auto* reactor = ctx->DefaultReactor();
  audit_->HolderCallRefused(caller, method, why, [reactor](absl::Status s) {
    reactor->Finish(ToGrpcStatus(s));
  });
  return reactor;
}

grpc::ServerUnaryReactor* HolderService::Disclose(
    grpc::CallbackServerContext* ctx,
    const accord::v1::DiscloseRequest* request,
    accord::v1::DiscloseResponse* response) {
  const Caller caller = CallerOf(ctx);
  absl::Status s = AuthoriseGateway(caller);
  if (s.ok()) s = ValidateMessage(*request);
  if (!s.ok()) return Refuse(ctx, caller, "Disclose", s);
  // Released only once the agent's own log holds the disclosure.
  auto* reactor = ctx->DefaultReactor();
  std::vector<std::string> record_ids;
  auto answer = discloser_->Disclose(*request, &record_ids);
  audit_->Disclosure(*request, std::move(answer), std::move(record_ids),
                     FinishInto(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* HolderService::Statistics(
    grpc::CallbackServerContext* ctx,
    const accord::v1::HolderStatisticsRequest* request,
    accord::v1::HolderStatisticsResponse* response) {
  const Caller caller = CallerOf(ctx);
  absl::Status s = AuthoriseGateway(caller);
  if (s.ok()) s = ValidateMessage(*request);
  if (s.ok() && statistics_ == nullptr) {
    s = absl::UnimplementedError("this agent answers no statistics runs");
  }
  if (!s.ok()) return Refuse(ctx, caller, "Statistics", s);
  auto* reactor = ctx->DefaultReactor();
  audit_->Statistics(*request, statistics_->Answer(*request),
                     FinishInto(reactor, response));
  return reactor;
}

namespace {

// What the agent's log records of a local call: its refusal, and for the
// calls that change or open what the agent holds, the change.
template <typename Req, typename Resp>
absl::StatusOr<Resp> Recorded(AgentAudit& audit, const Caller& caller,
                              const char* method, const Req&,
                              absl::StatusOr<Resp> result) {
  if (!result.ok())
    return audit.LocalCallRefused(caller, method, result.status());
  return result;
}
absl::StatusOr<accord::v1::RecordConsentResponse> Recorded(
    AgentAudit& audit, const Caller& caller, const char* method,
    const accord::v1::RecordConsentRequest& request,
    absl::StatusOr<accord::v1::RecordConsentResponse> result) {
  if (!result.ok())
    return audit.LocalCallRefused(caller, method, result.status());
  if (auto s = audit.ConsentRecorded(caller, request.consent(),
                                     result->consent_id());
      !s.ok())
    return s;
  return result;
}
absl::StatusOr<accord::v1::UpsertSubjectResponse> Recorded(
    AgentAudit& audit, const Caller& caller, const char* method,
    const accord::v1::UpsertSubjectRequest& request,
    absl::StatusOr<accord::v1::UpsertSubjectResponse> result) {
  if (!result.ok())
    return audit.LocalCallRefused(caller, method, result.status());
  if (result->merged_local_ids_size() > 0) {
    auto s = audit.SubjectsMerged(
        caller, request.subject().local_id(),
        {result->merged_local_ids().begin(), result->merged_local_ids().end()});
    if (!s.ok()) return s;
  }
  return result;
}
absl::StatusOr<accord::v1::WithdrawConsentResponse> Recorded(
    AgentAudit& audit, const Caller& caller, const char* method,
    const accord::v1::WithdrawConsentRequest& request,
    absl::StatusOr<accord::v1::WithdrawConsentResponse> result) {
  if (!result.ok())
    return audit.LocalCallRefused(caller, method, result.status());
  if (auto s = audit.ConsentWithdrawn(caller, request); !s.ok()) return s;
  return result;
}
absl::StatusOr<accord::v1::ListReferralsResponse> Recorded(
    AgentAudit& audit, const Caller& caller, const char* method,
    const accord::v1::ListReferralsRequest&,
    absl::StatusOr<accord::v1::ListReferralsResponse> result) {
  if (!result.ok())
    return audit.LocalCallRefused(caller, method, result.status());
  if (auto s = audit.ReferralsOpened(caller, *result); !s.ok()) return s;
  return result;
}

}  // namespace

Caller LocalService::CallerOf(grpc::CallbackServerContext* ctx) const {
  // A revoked certificate makes the principal an error: the call is refused
  // and the refusal recorded in the agent's log.
  return CallerFromContext(*ctx, partnership_id_, revocation_);
}

template <typename Req, typename Resp, typename Fn>
grpc::ServerUnaryReactor* LocalService::Handle(grpc::CallbackServerContext* ctx,
                                               const char* method,
                                               const Req* request,
                                               Resp* response, Fn fn) {
  const Caller caller = CallerOf(ctx);
  const absl::Status authorised = AuthoriseLocal(api_, caller);
  absl::StatusOr<Resp> result =
      authorised.ok() ? fn(*request) : absl::StatusOr<Resp>(authorised);
  auto* reactor = ctx->DefaultReactor();
  FinishInto(reactor, response)(
      Recorded(*audit_, caller, method, *request, std::move(result)));
  return reactor;
}

#define ACCORD_LOCAL_METHOD(Name)                                              \
  grpc::ServerUnaryReactor* LocalService::Name(                                \
      grpc::CallbackServerContext* ctx,                                        \
      const accord::v1::Name##Request* request,                                \
      accord::v1::Name##Response* response) {                                  \
    return Handle(                                                             \
        ctx, #Name, request, response,                                         \
        [this](const accord::v1::Name##Request& r) { return api_->Name(r); }); \
  }

ACCORD_LOCAL_METHOD(UpsertSubject)
ACCORD_LOCAL_METHOD(UpsertRecord)
ACCORD_LOCAL_METHOD(RecordConsent)
ACCORD_LOCAL_METHOD(WithdrawConsent)
ACCORD_LOCAL_METHOD(ListConsents)
ACCORD_LOCAL_METHOD(RecordEngagement)
ACCORD_LOCAL_METHOD(SubjectTokens)

#undef ACCORD_LOCAL_METHOD

namespace {

// One import stream. The session does the work; this only moves chunks in
// and the report (or the first whole-file error) out.
class ImportReactor final
    : public grpc::ServerReadReactor<accord::v1::ImportRow> {
 public:
  ImportReactor(LocalApi* api, AgentAudit* audit, Caller caller,
                accord::v1::ImportReport* report)
      : api_(api), audit_(audit), caller_(std::move(caller)), report_(report) {
    if (auto s = AuthoriseLocal(api_, caller_); !s.ok()) {
      Refuse(s);
      return;
    }
    StartRead(&chunk_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client has sent the whole file
      if (session_ == nullptr) {
        Refuse(absl::InvalidArgumentError(
            "field format: the import stream was empty"));
        return;
      }
      auto report = session_->Finish();
      if (!report.ok()) {
        Refuse(report.status());
        return;
      }
      *report_ = std::move(*report);
      Finish(ToGrpcStatus(audit_->Imported(caller_, *report_)));
      return;
    }
    if (session_ == nullptr) {
      auto session = api_->StartImport(chunk_.format());
      if (!session.ok()) {
        Refuse(session.status());
        return;
      }
      session_ = std::move(*session);
    } else if (chunk_.format() != accord::v1::IMPORT_FORMAT_UNSPECIFIED &&
               chunk_.format() != format_) {
      Refuse(absl::InvalidArgumentError(
          "field format: changed in the middle of an import"));
      return;
    }
    if (format_ == accord::v1::IMPORT_FORMAT_UNSPECIFIED)
      format_ = chunk_.format();
    if (auto s = session_->Feed(chunk_.chunk()); !s.ok()) {
      Refuse(s);
      return;
    }
    StartRead(&chunk_);
  }

  void OnDone() override { delete this; }

 private:
  void Refuse(const absl::Status& why) {
    Finish(ToGrpcStatus(audit_->LocalCallRefused(caller_, "Import", why)));
  }

  LocalApi* const api_;
  AgentAudit* const audit_;
  const Caller caller_;
  accord::v1::ImportReport* const report_;
  accord::v1::ImportRow chunk_;
  accord::v1::ImportFormat format_ = accord::v1::IMPORT_FORMAT_UNSPECIFIED;
  std::unique_ptr<ImportSession> session_;
};

}  // namespace

grpc::ServerReadReactor<accord::v1::ImportRow>* LocalService::Import(
    grpc::CallbackServerContext* ctx, accord::v1::ImportReport* response) {
  return new ImportReactor(api_, audit_, CallerOf(ctx), response);
}

// ---------------------------------------------------------------------------
// Referrals

namespace {
grpc::ServerUnaryReactor* Unimplemented(grpc::CallbackServerContext* ctx) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                               "this agent handles no referrals"));
  return reactor;
}
}  // namespace

// Finishes with `result` once its event is recorded (`recorded` OK), else
// with the recording's failure.
template <typename T>
AgentAudit::Recorded FinishWhenRecorded(grpc::ServerUnaryReactor* reactor,
                                        T* response, absl::StatusOr<T> result) {
  return [reactor, response, result = std::move(result)](absl::Status s) {
    if (!s.ok()) return reactor->Finish(ToGrpcStatus(s));
    FinishInto(reactor, response)(std::move(result));
  };
}

grpc::ServerUnaryReactor* HolderService::DeliverReferral(
    grpc::CallbackServerContext* ctx,
    const accord::v1::DeliverReferralRequest* request,
    accord::v1::DeliverReferralResponse* response) {
  if (referrals_ == nullptr) return Unimplemented(ctx);
  const Caller caller = CallerOf(ctx);
  if (auto s = AuthoriseGateway(caller); !s.ok())
    return Refuse(ctx, caller, "DeliverReferral", s);
  auto* reactor = ctx->DefaultReactor();
  auto result = referrals_->Deliver(*request);
  audit_->ReferralDelivered(request->referral(), result,
                            FinishWhenRecorded(reactor, response, result));
  return reactor;
}

grpc::ServerUnaryReactor* HolderService::NotifyReferralStatus(
    grpc::CallbackServerContext* ctx,
    const accord::v1::NotifyReferralStatusRequest* request,
    accord::v1::NotifyReferralStatusResponse* response) {
  if (referrals_ == nullptr) return Unimplemented(ctx);
  const Caller caller = CallerOf(ctx);
  if (auto s = AuthoriseGateway(caller); !s.ok())
    return Refuse(ctx, caller, "NotifyReferralStatus", s);
  auto* reactor = ctx->DefaultReactor();
  auto result = referrals_->Notify(*request);
  audit_->ReferralStatusNotified(request->referral(), result.status(),
                                 FinishWhenRecorded(reactor, response, result));
  return reactor;
}

grpc::ServerUnaryReactor* LocalService::SendReferral(
    grpc::CallbackServerContext* ctx,
    const accord::v1::LocalSendReferralRequest* request,
    accord::v1::SendReferralResponse* response) {
  if (referrals_ == nullptr) return Unimplemented(ctx);
  auto* reactor = ctx->DefaultReactor();
  const Caller caller = CallerOf(ctx);
  if (auto s = AuthoriseLocal(api_, caller); !s.ok()) {
    reactor->Finish(
        ToGrpcStatus(audit_->LocalCallRefused(caller, "SendReferral", s)));
    return reactor;
  }
  referrals_->Send(*request, caller.actor, FinishInto(reactor, response));
  return reactor;
}

grpc::ServerUnaryReactor* LocalService::ListReferrals(
    grpc::CallbackServerContext* ctx,
    const accord::v1::ListReferralsRequest* request,
    accord::v1::ListReferralsResponse* response) {
  if (referrals_ == nullptr) return Unimplemented(ctx);
  return Handle(ctx, "ListReferrals", request, response,
                [this](const accord::v1::ListReferralsRequest& r) {
                  return referrals_->List(r);
                });
}

grpc::ServerUnaryReactor* LocalService::UpdateReferral(
    grpc::CallbackServerContext* ctx,
    const accord::v1::UpdateReferralRequest* request,
    accord::v1::UpdateReferralResponse* response) {
  if (referrals_ == nullptr) return Unimplemented(ctx);
  auto* reactor = ctx->DefaultReactor();
  const Caller caller = CallerOf(ctx);
  if (auto s = AuthoriseLocal(api_, caller); !s.ok()) {
    reactor->Finish(
        ToGrpcStatus(audit_->LocalCallRefused(caller, "UpdateReferral", s)));
    return reactor;
  }
  referrals_->Update(
      *request, caller.actor,
      [this, caller, request, reactor,
       response](absl::StatusOr<accord::v1::UpdateReferralResponse> result) {
        FinishInto(reactor, response)(
            audit_->ReferralUpdated(caller, *request, std::move(result)));
      });
  return reactor;
}

namespace {
// One watch stream. The ReferralWatch decides what comes next; this writes
// it, one event at a time, when the last write is done and something new
// was stored (or, when idle, a heartbeat is due). The first heartbeat says
// the watch has caught up.
class WatchReactor final
    : public grpc::ServerWriteReactor<accord::v1::ReferralEvent> {
 public:
  WatchReactor(ReferralEvents* events, std::unique_ptr<ReferralWatch> watch,
               absl::Duration heartbeat)
      : events_(events), watch_(std::move(watch)) {
    subscription_ = events_->Subscribe(
        [this](bool stored) { stored ? Pump() : Heartbeat(); }, heartbeat);
    Pump();
  }
  // Ends at once (refused before any event).
  explicit WatchReactor(const absl::Status& refusal) {
    Finish(ToGrpcStatus(refusal));
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) return FinishLocked(grpc::Status::CANCELLED);
    WriteNextLocked();
  }
  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status::CANCELLED);
  }
  void OnDone() override {
    if (events_ != nullptr) events_->Unsubscribe(subscription_);
    delete this;
  }

 private:
  static constexpr int kBatch = 100;

  // Something may have been stored since the last read.
  void Pump() {
    absl::MutexLock lock(&mu_);
    unread_ = true;
    WriteNextLocked();
  }

  void Heartbeat() {
    absl::MutexLock lock(&mu_);
    if (finished_ || writing_ || !queue_.empty() || !caught_up_) return;
    queue_.push_back(watch_->Heartbeat());
    WriteNextLocked();
  }

  // Unless a write is running: reads more when nothing is queued and
  // something may be unread, then writes the next event.
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || writing_) return;
    if (queue_.empty() && unread_) {
      auto next = watch_->Next(kBatch);
      if (!next.ok()) return FinishLocked(ToGrpcStatus(next.status()));
      unread_ = !next->empty();  // there may be more behind a full read
      for (auto& e : *next) queue_.push_back(std::move(e));
      if (queue_.empty() && !caught_up_) {
        caught_up_ = true;
        queue_.push_back(watch_->Heartbeat());
      }
    }
    if (queue_.empty()) return;
    current_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    StartWrite(&current_);
  }

  void FinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(std::move(status));
  }

  ReferralEvents* events_ = nullptr;
  std::unique_ptr<ReferralWatch> watch_;
  int64_t subscription_ = 0;
  absl::Mutex mu_;
  std::deque<accord::v1::ReferralEvent> queue_ ABSL_GUARDED_BY(mu_);
  accord::v1::ReferralEvent current_ ABSL_GUARDED_BY(mu_);  // being written
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool unread_ ABSL_GUARDED_BY(mu_) = true;
  bool caught_up_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};
}  // namespace

grpc::ServerWriteReactor<accord::v1::ReferralEvent>*
LocalService::WatchReferrals(grpc::CallbackServerContext* ctx,
                             const accord::v1::WatchReferralsRequest* request) {
  if (referrals_ == nullptr) {
    return new WatchReactor(
        absl::UnimplementedError("this agent handles no referrals"));
  }
  const Caller caller = CallerOf(ctx);
  absl::Status s = AuthoriseLocal(api_, caller);
  if (s.ok()) s = ValidateMessage(*request);
  if (!s.ok())
    return new WatchReactor(
        audit_->LocalCallRefused(caller, "WatchReferrals", s));
  auto watch = referrals_->Watch(*request);
  if (!watch.ok()) {
    return new WatchReactor(
        audit_->LocalCallRefused(caller, "WatchReferrals", watch.status()));
  }
  if (s = audit_->WatchStarted(caller, request->box()); !s.ok())
    return new WatchReactor(s);
  return new WatchReactor(&referrals_->events(), std::move(*watch),
                          HeartbeatInterval(*request));
}

}  // namespace accord::agent
