// The one request pipeline every gateway method goes through.
//
//   1. authenticate: the transport turns the client certificate into a
//      Principal (identity, revocation) and hands over a Caller;
//   2. authorise the caller's kind for the method (organisations query,
//      agents carry referrals, auditors read the log) and its membership of
//      the partnership; require the acting practitioner where a person acts;
//   3. admit under the caller's rate and concurrency limits, and only while
//      the state directory has room for the audit log to commit;
//   4. audit a refusal at any of these steps (through the RefusalLog, so a
//      refused flood costs bounded disk);
//   5. run the method's logic with the admitted Call;
//   6. release only what is durable: the logic hands its audit entries and
//      its response to Release/ReleaseAll, and the response reaches the
//      caller only after every entry has committed; an audit failure
//      releases nothing.
//
// The logic classes (Gateway for queries, ReferralRouter, AuditorApi) build
// on this and know nothing of gRPC; the gRPC services only convert types.
// Thread-safe.
#ifndef ACCORD_GATEWAY_PIPELINE_H_
#define ACCORD_GATEWAY_PIPELINE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "accord/v1/audit.pb.h"
#include "accord/v1/common.pb.h"
#include "accord/v1/config.pb.h"
#include "audit/audit_log.h"
#include "audit/refusal_log.h"
#include "gateway/disk_floor.h"
#include "gateway/limits.h"
#include "runtime/caller.h"
#include "runtime/clock.h"
#include "runtime/identity.h"
#include "runtime/partnership.h"

namespace accord::gateway {

// Who is calling, as established by the transport (runtime/caller.h).
using ::accord::Caller;

template <typename T>
using Done = std::function<void(absl::StatusOr<T>)>;

// Text from a request, fit for an audit entry whatever the request held: at
// most `max_bytes`, cut on a UTF-8 character boundary, control characters
// replaced by U+FFFD.
std::string AuditText(absl::string_view text, size_t max_bytes = 64);

// Which kinds of principal may call a method (a bit per PrincipalKind).
constexpr uint32_t CallerBit(PrincipalKind k) {
  return uint32_t{1} << static_cast<int>(k);
}
inline constexpr uint32_t kOrgCallers = CallerBit(PrincipalKind::kOrg);
inline constexpr uint32_t kAgentCallers = CallerBit(PrincipalKind::kAgent);
inline constexpr uint32_t kAuditorCallers = CallerBit(PrincipalKind::kAuditor);
inline constexpr uint32_t kMemberCallers =
    kOrgCallers | kAgentCallers | kAuditorCallers;

// A gateway method as the pipeline sees it.
struct Method {
  const char* name;  // as recorded in audit entries ("Query", "AuditSearch")
  accord::v1::Action action;
  uint32_t callers;  // CallerBit()s of the principals allowed
  // The acting practitioner (x-accord-user, x-accord-role) is required from
  // organisations' systems and agents.
  bool needs_actor;
};

namespace methods {
inline constexpr Method kQuery{"Query", accord::v1::ACTION_QUERY, kOrgCallers,
                               true};
inline constexpr Method kListAgreements{
    "ListAgreements", accord::v1::ACTION_UNSPECIFIED, kMemberCallers, false};
// Referrals travel only through agents, which check the sender's consent.
inline constexpr Method kSendReferral{
    "SendReferral", accord::v1::ACTION_REFERRAL, kAgentCallers, true};
inline constexpr Method kUpdateReferral{
    "UpdateReferral", accord::v1::ACTION_REFERRAL, kAgentCallers, true};
// Reading a referral's routing and status (parties only) and a receiver's
// public key is open to the parties' systems too.
inline constexpr Method kGetReferral{"GetReferral", accord::v1::ACTION_REFERRAL,
                                     kOrgCallers | kAgentCallers, false};
inline constexpr Method kGetReferralKey{"GetReferralKey",
                                        accord::v1::ACTION_REFERRAL,
                                        kOrgCallers | kAgentCallers, false};
inline constexpr Method kStatistics{"Statistics", accord::v1::ACTION_STATISTICS,
                                    kOrgCallers, true};
inline constexpr Method kAuditSearch{
    "AuditSearch", accord::v1::ACTION_UNSPECIFIED, kAuditorCallers, false};
inline constexpr Method kSubjectAccessReport{"SubjectAccessReport",
                                             accord::v1::ACTION_UNSPECIFIED,
                                             kAuditorCallers, false};
inline constexpr Method kReviewQueue{
    "ReviewQueue", accord::v1::ACTION_UNSPECIFIED, kAuditorCallers, false};
inline constexpr Method kMarkReviewed{
    "MarkReviewed", accord::v1::ACTION_UNSPECIFIED, kAuditorCallers, false};
inline constexpr Method kGetTreeHead{
    "GetTreeHead", accord::v1::ACTION_UNSPECIFIED, kAuditorCallers, false};
inline constexpr Method kGetInclusionProof{"GetInclusionProof",
                                           accord::v1::ACTION_UNSPECIFIED,
                                           kAuditorCallers, false};
inline constexpr Method kGetConsistencyProof{"GetConsistencyProof",
                                             accord::v1::ACTION_UNSPECIFIED,
                                             kAuditorCallers, false};
inline constexpr Method kAuditExport{
    "AuditExport", accord::v1::ACTION_UNSPECIFIED, kAuditorCallers, false};
}  // namespace methods

// An admitted call. Holds the caller's in-flight permit until the last
// reference goes, i.e. until the call has answered.
class Call {
 public:
  const Method& method() const { return *method_; }
  const Caller& caller() const { return caller_; }
  const Principal& principal() const { return *caller_.principal; }
  // The caller's organisation for organisation and agent callers; null for
  // auditors.
  const accord::v1::Organisation* org() const { return org_; }
  // org()->id(), or empty.
  const std::string& org_id() const;
  // The entry every audit record of this call starts from: caller identity
  // and organisation, actor, method and action.
  accord::v1::AuditEntry Entry() const;
  // How long holders may take for this call at `now`: `configured`, and
  // never after the caller has stopped waiting (a tenth of the caller's
  // remaining time, at least 50 ms, is kept to audit and reply).
  absl::Duration HolderDeadline(absl::Duration configured,
                                absl::Time now) const;

 private:
  friend class Pipeline;
  const Method* method_ = nullptr;
  Caller caller_;
  const accord::v1::Organisation* org_ = nullptr;
  std::shared_ptr<const PartnershipDirectory> partnership_;
  OrgLimits::Permit permit_;
};

struct PipelineOptions {
  LimitOptions limits;
  DiskFloorOptions disk_floor;
};

// Counters for tests and metrics.
struct PipelineCounters {
  std::atomic<uint64_t> admitted{0};
  std::atomic<uint64_t> refused_before_admission{0};
  std::atomic<uint64_t> refused_after_admission{0};
  std::atomic<uint64_t> audit_failures{0};
};

class Pipeline {
 public:
  // Every pointer must outlive the Pipeline.
  Pipeline(std::shared_ptr<const PartnershipDirectory> partnership,
           audit::AuditLog* audit, audit::RefusalLog* refusals,
           const Clock* clock, PipelineOptions options);

  // Steps 1-5: authorises and admits `caller` for `method`, then runs
  // `body` with the admitted call. A refusal is audited and reported to
  // `done`; `body` then never runs. `body` must answer through the `done` it
  // is given, exactly once.
  // `describe`, when given, adds what the request says (its id, purpose,
  // subjects) to a refusal's entry; it sees the request before validation,
  // so it must bound what it copies (AuditText).
  template <typename Resp>
  void Run(
      const Method& method, Caller caller, Done<Resp> done,
      absl::AnyInvocable<void(std::shared_ptr<const Call>, Done<Resp>) &&> body,
      const std::function<void(accord::v1::AuditEntry&)>& describe = nullptr);

  // Refuses an admitted call: `entry` (from call.Entry(), with the request's
  // details) is recorded as a denial with `status`, then `done(status)`.
  template <typename Resp>
  void Refuse(const Call& call, accord::v1::AuditEntry entry,
              absl::Status status, Done<Resp> done);

  // Step 6: appends `entries` and gives `done` the response once every one
  // is durable (`stamp`, when given, first sees the first entry's seq). Any
  // failure releases nothing.
  template <typename Resp>
  void Release(std::vector<accord::v1::AuditEntry> entries, Resp response,
               Done<Resp> done,
               std::function<void(Resp&, uint64_t first_seq)> stamp = nullptr);
  template <typename Resp>
  void Release(accord::v1::AuditEntry entry, Resp response, Done<Resp> done,
               std::function<void(Resp&, uint64_t seq)> stamp = nullptr);

  // Records the refusal of a call that never reached its method (gRPC could
  // not parse its request); `method` is the method's name. Fire and forget.
  void RefuseUnparsed(const std::string& method, const Caller& caller,
                      const absl::Status& status);
  // Records the refusal of `caller`'s call to `method` without admitting it
  // (its request is not valid), with `detail`, then `done(status)`.
  void RefuseRequest(const Method& method, const Caller& caller,
                     const std::string& detail, absl::Status status,
                     std::function<void(absl::Status)> done);

  // What the caller is told when its decision could not be made durable; the
  // failure also goes to the process log (rate-limited).
  absl::Status AuditFailure(const absl::Status& cause);

  const PartnershipDirectory& partnership() const { return *partnership_; }
  std::shared_ptr<const PartnershipDirectory> partnership_ptr() const {
    return partnership_;
  }
  const Clock* clock() const { return clock_; }
  audit::AuditLog* audit() const { return audit_; }
  const PipelineCounters& counters() const { return counters_; }
  const DiskFloor& disk_floor() const { return disk_floor_; }

 private:
  // Steps 2-3; on success the Call, otherwise the refusal to audit.
  absl::StatusOr<std::shared_ptr<Call>> Admit(const Method& method,
                                              Caller caller);
  // A refusal before admission: the entry names what the transport knew.
  accord::v1::AuditEntry RefusalEntry(const Method& method,
                                      const Caller& caller) const;
  // Records a refusal and calls `done` with `status` once recorded.
  void RecordRefusal(accord::v1::AuditEntry entry, const absl::Status& status,
                     audit::RefusalLog::Stage stage,
                     std::function<void(absl::Status)> done);
  void AppendAll(std::vector<accord::v1::AuditEntry> entries,
                 std::function<void(absl::StatusOr<uint64_t>)> done);

  std::shared_ptr<const PartnershipDirectory> partnership_;
  audit::AuditLog* audit_;
  audit::RefusalLog* refusals_;
  const Clock* clock_;
  OrgLimits limits_;
  DiskFloor disk_floor_;
  PipelineCounters counters_;
  std::atomic<int64_t> last_failure_log_ns_{0};
  std::atomic<uint64_t> unlogged_failures_{0};
};

// ---------------------------------------------------------------------------
// Implementation of the templates.

template <typename Resp>
void Pipeline::Run(
    const Method& method, Caller caller, Done<Resp> done,
    absl::AnyInvocable<void(std::shared_ptr<const Call>, Done<Resp>) &&> body,
    const std::function<void(accord::v1::AuditEntry&)>& describe) {
  auto call = Admit(method, caller);
  if (!call.ok()) {
    accord::v1::AuditEntry entry = RefusalEntry(method, caller);
    if (describe) describe(entry);
    RecordRefusal(std::move(entry), call.status(),
                  audit::RefusalLog::Stage::kBeforeAdmission,
                  [done = std::move(done)](absl::Status s) { done(s); });
    return;
  }
  std::shared_ptr<const Call> admitted = std::move(*call);
  // The permit is returned when the call answers.
  Done<Resp> answer =
      [admitted, done = std::move(done)](absl::StatusOr<Resp> result) mutable {
        done(std::move(result));
      };
  std::move(body)(std::move(admitted), std::move(answer));
}

template <typename Resp>
void Pipeline::Refuse(const Call& call, accord::v1::AuditEntry entry,
                      absl::Status status, Done<Resp> done) {
  (void)call;
  counters_.refused_after_admission.fetch_add(1, std::memory_order_relaxed);
  RecordRefusal(std::move(entry), status,
                audit::RefusalLog::Stage::kAfterAdmission,
                [done = std::move(done)](absl::Status s) { done(s); });
}

template <typename Resp>
void Pipeline::Release(std::vector<accord::v1::AuditEntry> entries,
                       Resp response, Done<Resp> done,
                       std::function<void(Resp&, uint64_t)> stamp) {
  AppendAll(std::move(entries),
            [this, response = std::move(response), done = std::move(done),
             stamp = std::move(stamp)](absl::StatusOr<uint64_t> first) mutable {
              if (!first.ok()) return done(AuditFailure(first.status()));
              if (stamp) stamp(response, *first);
              done(std::move(response));
            });
}

template <typename Resp>
void Pipeline::Release(accord::v1::AuditEntry entry, Resp response,
                       Done<Resp> done,
                       std::function<void(Resp&, uint64_t)> stamp) {
  std::vector<accord::v1::AuditEntry> entries;
  entries.push_back(std::move(entry));
  Release(std::move(entries), std::move(response), std::move(done),
          std::move(stamp));
}

}  // namespace accord::gateway

#endif  // ACCORD_GATEWAY_PIPELINE_H_
