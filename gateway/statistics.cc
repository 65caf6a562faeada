#include "gateway/statistics.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "policy/statistics.h"
#include "runtime/crypto.h"
#include "runtime/textproto.h"
#include "stats/combine.h"
#include "stats/dataset.h"

namespace accord::gateway {
namespace {

using accord::v1::AuditEntry;

std::string RangeText(const stats::CountRequest& r) {
  return absl::StrCat(
      "by ", stats::ReportingPeriodCode(r.period), " from ",
      absl::FormatTime("%Y-%m-%d", r.from, absl::UTCTimeZone()), " until ",
      absl::FormatTime("%Y-%m-%d", r.until, absl::UTCTimeZone()));
}

}  // namespace

struct StatisticsRuns::Run {
  std::shared_ptr<const Call> call;
  std::string request_id;
  stats::CountRequest count;
  stats::SuppressionRule rule{0, 1};
  // One per holder asked, same order.
  std::vector<std::string> orgs;
  std::vector<AuditEntry> entries;
  std::vector<accord::v1::HolderStatisticsResponse> answers;
  std::vector<absl::Status> statuses;
  // Holders denied or unavailable before any call.
  std::vector<accord::v1::HolderAnswer> missing;
  std::vector<AuditEntry> denied_entries;
  std::atomic<int> outstanding{0};
  Done<accord::v1::StatisticsResponse> done;
};

StatisticsRuns::StatisticsRuns(Pipeline* pipeline, policy::Engine* policy,
                               HolderClients* holders,
                               StatisticsOptions options)
    : pipeline_(pipeline),
      policy_(policy),
      holders_(holders),
      options_(options) {}

void StatisticsRuns::Statistics(Caller caller,
                                const accord::v1::StatisticsRequest& request,
                                Done<accord::v1::StatisticsResponse> reply) {
  pipeline_->Run<accord::v1::StatisticsResponse>(
      methods::kStatistics, std::move(caller), std::move(reply),
      [this, &request](std::shared_ptr<const Call> call,
                       Done<accord::v1::StatisticsResponse> done) {
        Start(std::move(call), request, std::move(done));
      },
      [&request](AuditEntry& e) {
        e.set_request_id(AuditText(request.request_id()));
        e.set_purpose(AuditText(request.purpose()));
      });
}

void StatisticsRuns::Start(std::shared_ptr<const Call> call,
                           const accord::v1::StatisticsRequest& req,
                           Done<accord::v1::StatisticsResponse> done) {
  auto run = std::make_shared<Run>();
  run->call = call;
  run->request_id =
      req.request_id().empty() ? HexEncode(RandomBytes(12)) : req.request_id();
  run->done = std::move(done);
  const PartnershipDirectory& partnership = pipeline_->partnership();

  AuditEntry base = call->Entry();
  base.set_request_id(AuditText(run->request_id));
  base.set_purpose(AuditText(req.purpose()));
  for (int i = 0; i < req.dimensions_size() && i < 8; ++i) {
    base.add_fields_released(
        absl::StrCat("dimension:", AuditText(req.dimensions(i))));
  }
  auto refuse = [&](absl::Status s) {
    pipeline_->Refuse(*call, base, std::move(s), run->done);
  };

  if (auto s = ValidateMessage(req); !s.ok()) return refuse(s);
  if (!req.range().has_from() || !req.range().has_until()) {
    return refuse(absl::InvalidArgumentError(
        "field range: both 'from' and 'until' are required"));
  }
  stats::CountRequest& count = run->count;
  count.period = req.period();
  count.from = FromProtoTime(req.range().from());
  count.until = FromProtoTime(req.range().until());
  count.completeness = req.completeness();
  count.outcomes = req.outcomes();
  if (auto s = stats::CheckRange(count.period, count.from, count.until);
      !s.ok()) {
    return refuse(s);
  }
  policy::StatisticsScope scope;
  scope.period = count.period;
  scope.completeness = count.completeness;
  scope.outcomes = count.outcomes;
  for (int i = 0; i < req.dimensions_size(); ++i) {
    const auto dim = stats::DimensionNamed(req.dimensions(i));
    if (!dim) {
      return refuse(absl::InvalidArgumentError(absl::StrCat(
          "field dimensions[", i, "]: '", req.dimensions(i),
          "' is not a dimension of the monitoring dataset; the dimensions "
          "are: ",
          stats::DimensionNames())));
    }
    if (std::find(count.dimensions.begin(), count.dimensions.end(), *dim) !=
        count.dimensions.end()) {
      return refuse(absl::InvalidArgumentError(absl::StrCat(
          "field dimensions[", i, "]: '", req.dimensions(i), "' is repeated")));
    }
    count.dimensions.push_back(*dim);
    scope.dimensions.push_back(req.dimensions(i));
  }
  if (!partnership.HasPurpose(req.purpose())) {
    return refuse(absl::InvalidArgumentError(
        absl::StrCat("field purpose: '", req.purpose(),
                     "' is not a purpose of this partnership")));
  }
  base.set_detail(RangeText(count));

  const absl::Time now = pipeline_->clock()->Now();
  std::vector<std::string> holders;
  if (req.holders_size() > 0) {
    for (const auto& h : req.holders()) {
      if (partnership.FindOrg(h) == nullptr) {
        return refuse(absl::InvalidArgumentError(absl::StrCat(
            "field holders: '", h, "' is not a member of this partnership")));
      }
      holders.push_back(h);
    }
  } else {
    holders = policy_->CandidateHolders(
        call->org_id(), accord::v1::ACTION_STATISTICS, req.purpose(), now);
  }
  std::sort(holders.begin(), holders.end());
  holders.erase(std::unique(holders.begin(), holders.end()), holders.end());

  policy::Request decide;
  decide.requester_org = call->org_id();
  decide.action = accord::v1::ACTION_STATISTICS;
  decide.purpose = req.purpose();
  decide.at = now;
  // The run id the agents key their people's values under (stats/people.h).
  const std::string run_id = RandomBytes(16);
  std::vector<std::pair<std::string, policy::Decision>> allowed;
  std::string first_denial;
  for (const auto& holder : holders) {
    decide.holder_org = holder;
    policy::Decision d = policy_->Decide(decide);
    absl::Status within = policy::CheckStatisticsScope(d, scope);
    AuditEntry entry = base;
    entry.set_holder(holder);
    entry.set_agreement_id(std::string(d.agreement_id()));
    entry.set_agreement_version(d.agreement_version());
    entry.set_rule_id(std::string(d.rule_id()));
    entry.set_lawful_basis(d.lawful_basis());
    if (!within.ok() || !holders_->Knows(holder)) {
      accord::v1::HolderAnswer a;
      a.set_holder(holder);
      if (!within.ok()) {
        a.set_status(accord::v1::HOLDER_STATUS_DENIED);
        a.set_detail(std::string(within.message()));
        entry.set_decision(accord::v1::AUDIT_DECISION_DENY);
        entry.set_deny_reason(a.detail());
        if (first_denial.empty()) first_denial = a.detail();
      } else {
        a.set_status(accord::v1::HOLDER_STATUS_UNAVAILABLE);
        a.set_detail("this organisation has no agent to ask");
        entry.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
        entry.set_detail(absl::StrCat(base.detail(), "; ", a.detail()));
      }
      run->missing.push_back(std::move(a));
      run->denied_entries.push_back(std::move(entry));
      continue;
    }
    entry.set_decision(accord::v1::AUDIT_DECISION_ALLOW);
    const stats::SuppressionRule r = policy::SuppressionOf(d);
    run->rule.threshold = std::max(run->rule.threshold, r.threshold);
    run->rule.rounding = std::max(run->rule.rounding, r.rounding);
    run->orgs.push_back(holder);
    run->entries.push_back(std::move(entry));
    allowed.emplace_back(holder, std::move(d));
  }
  if (allowed.empty()) {
    return refuse(absl::PermissionDeniedError(
        !first_denial.empty()
            ? first_denial
            : absl::StrCat("no agreement permits ", call->org_id(),
                           " to ask for statistics for '", req.purpose(),
                           "'")));
  }

  const absl::Duration deadline =
      call->HolderDeadline(options_.holder_deadline, now);

  accord::v1::HolderStatisticsRequest common;
  common.set_purpose(req.purpose());
  *common.mutable_range() = req.range();
  *common.mutable_dimensions() = req.dimensions();
  common.set_request_id(run->request_id);
  common.set_requester_org(call->org_id());
  common.set_period(req.period());
  common.set_run_id(run_id);
  common.set_completeness(req.completeness());
  common.set_outcomes(req.outcomes());
  *common.mutable_actor() = call->caller().actor;

  run->answers.resize(allowed.size());
  run->statuses.resize(allowed.size());
  run->outstanding = static_cast<int>(allowed.size());
  for (size_t i = 0; i < allowed.size(); ++i) {
    accord::v1::HolderStatisticsRequest hr = common;
    *hr.mutable_decision() = allowed[i].second.ToProto();
    holders_->Statistics(
        allowed[i].first, std::move(hr), deadline,
        [this, run, i](absl::Status status,
                       accord::v1::HolderStatisticsResponse answer) {
          if (status.ok()) status = stats::CheckAnswer(run->count, answer);
          run->statuses[i] = std::move(status);
          run->answers[i] = std::move(answer);
          if (run->outstanding.fetch_sub(1) == 1) Finish(run);
        });
  }
}

void StatisticsRuns::Finish(const std::shared_ptr<Run>& run) {
  std::vector<stats::HolderPart> parts;
  std::vector<accord::v1::HolderAnswer> missing = std::move(run->missing);
  for (size_t i = 0; i < run->orgs.size(); ++i) {
    AuditEntry& e = run->entries[i];
    const absl::Status& s = run->statuses[i];
    if (!s.ok()) {
      accord::v1::HolderAnswer a;
      a.set_holder(run->orgs[i]);
      if (s.code() == absl::StatusCode::kDeadlineExceeded) {
        a.set_status(accord::v1::HOLDER_STATUS_TIMED_OUT);
        a.set_detail(std::string(s.message()));
      } else if (s.code() == absl::StatusCode::kPermissionDenied) {
        a.set_status(accord::v1::HOLDER_STATUS_REFUSED);
        a.set_detail(AuditText(s.message(), 300));
        e.set_decision(accord::v1::AUDIT_DECISION_DENY);
        e.set_deny_reason(absl::StrCat("holder refused: ", a.detail()));
      } else if (s.code() == absl::StatusCode::kInvalidArgument &&
                 run->answers[i].periods_size() > 0) {
        a.set_status(accord::v1::HOLDER_STATUS_UNAVAILABLE);
        a.set_detail(absl::StrCat("the holder's answer was left out: ",
                                  AuditText(s.message(), 300)));
      } else {
        a.set_status(accord::v1::HOLDER_STATUS_UNAVAILABLE);
        a.set_detail(AuditText(s.message(), 300));
      }
      e.set_detail(absl::StrCat(e.detail(), "; ", a.detail()));
      missing.push_back(std::move(a));
      continue;
    }
    uint64_t engagements = 0;
    for (const auto& p : run->answers[i].periods())
      engagements += p.engagements();
    e.set_record_count(
        static_cast<uint32_t>(std::min<uint64_t>(engagements, UINT32_MAX)));
    e.set_detail(absl::StrCat(e.detail(), "; counted"));
    parts.push_back({run->orgs[i], std::move(run->answers[i])});
  }
  accord::v1::StatisticsResponse response;
  if (!parts.empty()) {
    response = stats::Combine(run->count, run->rule, std::move(parts));
  } else {
    response.set_suppression_threshold(run->rule.threshold);
    response.set_rounding(run->rule.rounding);
    response.set_period(run->count.period);
  }
  std::sort(missing.begin(), missing.end(), [](const auto& a, const auto& b) {
    return a.holder() < b.holder();
  });
  for (auto& m : missing) *response.add_holders_missing() = std::move(m);
  response.set_request_id(run->request_id);

  std::vector<AuditEntry> entries = std::move(run->entries);
  for (auto& e : run->denied_entries) entries.push_back(std::move(e));
  pipeline_->Release<accord::v1::StatisticsResponse>(
      std::move(entries), std::move(response), std::move(run->done),
      [](accord::v1::StatisticsResponse& r, uint64_t seq) {
        r.set_audit_seq(seq);
      });
}

}  // namespace accord::gateway
