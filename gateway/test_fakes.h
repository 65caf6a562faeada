// Test doubles for the gateway's orchestration: an in-memory AuditLog whose
// durability the test controls, and HolderClients whose agents the test
// scripts, plus the example partnership's pipeline set up around them.
// Test-only. MemoryAuditLog and FakeHolderClients are thread-safe.
#ifndef ACCORD_GATEWAY_TEST_FAKES_H_
#define ACCORD_GATEWAY_TEST_FAKES_H_

#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "audit/memory_audit_log.h"
#include "audit/refusal_log.h"
#include "gateway/holder_client.h"
#include "gateway/pipeline.h"
#include "policy/policy.h"
#include "runtime/clock.h"
#include "runtime/partnership.h"

namespace accord::gateway::testing {

using audit::testing::MemoryAuditLog;

// Agents the test scripts. An agent without a script answers NO_MATCH at
// once; a script receives each request and answers through `done` whenever
// it likes (or never, to play a silent holder).
class FakeHolderClients final : public HolderClients {
 public:
  using Script = std::function<void(const accord::v1::DiscloseRequest&,
                                    DiscloseDone done)>;

  explicit FakeHolderClients(std::vector<std::string> orgs) {
    for (auto& o : orgs) known_[o] = nullptr;
  }

  void SetScript(const std::string& org, Script script) {
    absl::MutexLock lock(&mu_);
    known_[org] = std::move(script);
  }
  // An agent that answers `answer` at once.
  void Answer(const std::string& org, accord::v1::DiscloseResponse answer) {
    SetScript(org,
              [answer](const accord::v1::DiscloseRequest&, DiscloseDone done) {
                done(absl::OkStatus(), answer);
              });
  }

  void Disclose(const std::string& holder_org,
                accord::v1::DiscloseRequest request, absl::Duration deadline,
                DiscloseDone done) override {
    Script script;
    {
      absl::MutexLock lock(&mu_);
      requests_[holder_org].push_back(request);
      deadlines_[holder_org].push_back(deadline);
      script = known_[holder_org];
    }
    if (!script) {
      accord::v1::DiscloseResponse none;
      none.set_status(accord::v1::HOLDER_STATUS_NO_MATCH);
      return done(absl::OkStatus(), std::move(none));
    }
    script(request, std::move(done));
  }

  bool Knows(const std::string& holder_org) const override {
    absl::MutexLock lock(&mu_);
    return known_.count(holder_org) > 0;
  }

  // Statistics: `org` answers `answer` (or `status`) at once.
  void AnswerStatistics(const std::string& org,
                        accord::v1::HolderStatisticsResponse answer,
                        absl::Status status = absl::OkStatus()) {
    absl::MutexLock lock(&mu_);
    statistics_[org] = {std::move(status), std::move(answer)};
  }
  void Statistics(const std::string& holder_org,
                  accord::v1::HolderStatisticsRequest request, absl::Duration,
                  StatisticsDone done) override {
    std::pair<absl::Status, accord::v1::HolderStatisticsResponse> answer{
        absl::UnavailableError("the holder's agent is unreachable"), {}};
    {
      absl::MutexLock lock(&mu_);
      statistics_requests_[holder_org].push_back(std::move(request));
      if (auto it = statistics_.find(holder_org); it != statistics_.end())
        answer = it->second;
    }
    done(answer.first, std::move(answer.second));
  }
  std::vector<accord::v1::HolderStatisticsRequest> StatisticsRequests(
      const std::string& org) const {
    absl::MutexLock lock(&mu_);
    auto it = statistics_requests_.find(org);
    return it == statistics_requests_.end()
               ? std::vector<accord::v1::HolderStatisticsRequest>{}
               : it->second;
  }

  void DeliverReferral(const std::string& org,
                       const accord::v1::DeliverReferralRequest& request,
                       absl::Duration, ReferralDone done) override {
    absl::Status status;
    {
      absl::MutexLock lock(&mu_);
      delivered_[org].push_back(request.referral());
      status = referral_status_[org];
    }
    done(status);
  }
  void NotifyReferralStatus(
      const std::string& org,
      const accord::v1::NotifyReferralStatusRequest& request, absl::Duration,
      ReferralDone done) override {
    absl::Status status;
    {
      absl::MutexLock lock(&mu_);
      notified_[org].push_back(request.referral());
      status = referral_status_[org];
    }
    done(status);
  }
  // What referral calls to `org` answer (OK by default).
  void SetReferralStatus(const std::string& org, absl::Status status) {
    absl::MutexLock lock(&mu_);
    referral_status_[org] = std::move(status);
  }

  std::vector<accord::v1::DiscloseRequest> requests(
      const std::string& org) const {
    absl::MutexLock lock(&mu_);
    auto it = requests_.find(org);
    return it == requests_.end() ? std::vector<accord::v1::DiscloseRequest>()
                                 : it->second;
  }
  std::vector<absl::Duration> deadlines(const std::string& org) const {
    absl::MutexLock lock(&mu_);
    auto it = deadlines_.find(org);
    return it == deadlines_.end() ? std::vector<absl::Duration>() : it->second;
  }
  std::vector<accord::v1::Referral> delivered(const std::string& org) const {
    absl::MutexLock lock(&mu_);
    auto it = delivered_.find(org);
    return it == delivered_.end() ? std::vector<accord::v1::Referral>()
                                  : it->second;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, Script> known_ ABSL_GUARDED_BY(mu_);
  std::map<std::string,
           std::pair<absl::Status, accord::v1::HolderStatisticsResponse>>
      statistics_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<accord::v1::HolderStatisticsRequest>>
      statistics_requests_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<accord::v1::DiscloseRequest>> requests_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<absl::Duration>> deadlines_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<accord::v1::Referral>> delivered_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<accord::v1::Referral>> notified_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Status> referral_status_ ABSL_GUARDED_BY(mu_);
};

inline std::string ExampleFile(const std::string& relative) {
  const char* dir = std::getenv("ACCORD_SOURCE_DIR");
  return absl::StrCat(dir ? dir : ".", "/deploy/examples/", relative);
}

// A moment inside the example agreements' validity.
inline absl::Time ExampleNow() {
  return absl::FromCivil(absl::CivilSecond(2026, 6, 1, 10, 0, 0),
                         absl::UTCTimeZone());
}

// The example partnership's directory and policy, a pipeline over a
// MemoryAuditLog (or over `other_log`, which must outlive it), and callers
// of every kind.
struct ExamplePartnership {
  ExamplePartnership(PipelineOptions options = {},
                     audit::RefusalBudget budget = {},
                     audit::AuditLog* other_log = nullptr)
      : clock(ExampleNow()) {
    audit::AuditLog* appends_to = other_log ? other_log : &log;
    auto dir = PartnershipDirectory::Load(ExampleFile("partnership.textproto"));
    if (!dir.ok()) std::abort();
    directory = *dir;
    std::vector<std::string> agreements;
    for (const char* a : {"agreements/police-dasv.textproto",
                          "agreements/referral-pathways.textproto",
                          "agreements/support-coordination.textproto",
                          "agreements/childrens-mash.textproto",
                          "agreements/monitoring.textproto"}) {
      agreements.push_back(ExampleFile(a));
    }
    auto engine = policy::Engine::Create(ExampleFile("partnership.textproto"),
                                         agreements, &clock);
    if (!engine.ok()) std::abort();
    policy = std::move(*engine);
    refusals = std::make_unique<audit::RefusalLog>(appends_to, &clock, budget);
    pipeline = std::make_unique<Pipeline>(directory, appends_to, refusals.get(),
                                          &clock, std::move(options));
  }

  Caller As(PrincipalKind kind, const std::string& name,
            bool with_actor = true) const {
    Caller c;
    Principal p;
    p.kind = kind;
    p.partnership = directory->id();
    p.name = name;
    p.uri = SpiffeId(directory->id(), kind, name);
    c.principal = p;
    c.peer_uris = p.uri;
    if (with_actor) {
      c.actor.set_user_id("pc-4471");
      c.actor.set_role("public-protection-officer");
    }
    return c;
  }
  Caller Org(const std::string& org, bool with_actor = true) const {
    return As(PrincipalKind::kOrg, org, with_actor);
  }

  FakeClock clock;
  MemoryAuditLog log;
  std::shared_ptr<const PartnershipDirectory> directory;
  std::unique_ptr<policy::Engine> policy;
  std::unique_ptr<audit::RefusalLog> refusals;
  std::unique_ptr<Pipeline> pipeline;
};

// Waits for a Done's result.
template <typename T>
struct Result {
  absl::Mutex mu;
  bool done = false;
  absl::StatusOr<T> value = absl::UnknownError("not answered");

  Done<T> Callback() {
    return [this](absl::StatusOr<T> v) {
      absl::MutexLock lock(&mu);
      value = std::move(v);
      done = true;
    };
  }
  bool ready() {
    absl::MutexLock lock(&mu);
    return done;
  }
  // The result, waiting up to `timeout` for it.
  absl::StatusOr<T> Get(absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu);
    mu.AwaitWithTimeout(absl::Condition(&done), timeout);
    return value;
  }
};

}  // namespace accord::gateway::testing

#endif  // ACCORD_GATEWAY_TEST_FAKES_H_
