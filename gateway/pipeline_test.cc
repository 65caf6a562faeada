#include "gateway/pipeline.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/test_fakes.h"

namespace accord::gateway {
namespace {

using ::testing::HasSubstr;
using testing::ExamplePartnership;
using testing::Result;

struct Empty {};

// Runs `method` through the pipeline with a body that answers at once and
// records that it ran.
absl::StatusOr<Empty> RunOnce(Pipeline& pipeline, const Method& method,
                              Caller caller, bool* ran = nullptr) {
  Result<Empty> result;
  pipeline.Run<Empty>(method, std::move(caller), result.Callback(),
                      [ran](std::shared_ptr<const Call>, Done<Empty> done) {
                        if (ran) *ran = true;
                        done(Empty{});
                      });
  return result.Get();
}

TEST(PipelineTest, CallerWithoutIdentityIsRefusedAndAuditedOnce) {
  ExamplePartnership p;
  Caller nobody;
  nobody.principal = absl::PermissionDeniedError("certificate is revoked");
  nobody.peer_uris = "spiffe://northdale.accord/org/refuge";
  bool ran = false;
  auto r = RunOnce(*p.pipeline, methods::kQuery, nobody, &ran);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(ran);
  auto entries = p.log.EntriesOf("Query");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].decision(), accord::v1::AUDIT_DECISION_DENY);
  EXPECT_EQ(entries[0].caller(), "spiffe://northdale.accord/org/refuge");
  EXPECT_THAT(entries[0].deny_reason(), HasSubstr("revoked"));
}

TEST(PipelineTest, EachMethodIsOpenOnlyToItsKindOfCaller) {
  ExamplePartnership p;
  struct Case {
    const Method* method;
    Caller caller;
    std::string message;
  };
  const std::vector<Case> cases = {
      {&methods::kQuery, p.As(PrincipalKind::kAuditor, "dpo"),
       "Query is open to organisations' systems only"},
      {&methods::kQuery, p.As(PrincipalKind::kAgent, "police"),
       "Query is open to organisations' systems only"},
      {&methods::kSendReferral, p.Org("rape-crisis"),
       "SendReferral is open to agents only"},
      {&methods::kAuditSearch, p.Org("police"),
       "AuditSearch is open to auditors only"},
      {&methods::kAuditExport, p.As(PrincipalKind::kGateway, ""),
       "AuditExport is open to auditors only"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.message);
    auto r = RunOnce(*p.pipeline, *c.method, c.caller);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(r.status().message(), HasSubstr(c.message));
  }
  EXPECT_EQ(p.log.entries().size(), cases.size());
  for (const auto& e : p.log.entries())
    EXPECT_EQ(e.decision(), accord::v1::AUDIT_DECISION_DENY);
}

TEST(PipelineTest, OrganisationOutsideThePartnershipIsRefused) {
  ExamplePartnership p;
  auto r = RunOnce(*p.pipeline, methods::kQuery, p.Org("unknown-org"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(r.status().message(),
              HasSubstr("'unknown-org' is not a member of this partnership"));
  auto entries = p.log.entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_TRUE(entries[0].caller_org().empty());
}

TEST(PipelineTest, UnknownAuditorIsRefused) {
  ExamplePartnership p;
  auto r = RunOnce(*p.pipeline, methods::kAuditSearch,
                   p.As(PrincipalKind::kAuditor, "not-listed"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(r.status().message(),
              HasSubstr("is not an auditor of this partnership"));
}

TEST(PipelineTest, ThePractitionerActingIsRequiredNamingTheMetadataKeys) {
  ExamplePartnership p;
  Caller c = p.Org("police", /*with_actor=*/false);
  c.actor.set_user_id("pc-4471");  // a role is missing
  bool ran = false;
  auto r = RunOnce(*p.pipeline, methods::kQuery, c, &ran);
  EXPECT_FALSE(ran);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("'x-accord-user'"));
  EXPECT_THAT(r.status().message(), HasSubstr("'x-accord-role'"));
  // Methods where no person acts need none.
  EXPECT_TRUE(RunOnce(*p.pipeline, methods::kListAgreements,
                      p.Org("police", false))
                  .ok());
}

TEST(PipelineTest, AdmittedCallSeesItsCallerAndBuildsItsEntry) {
  ExamplePartnership p;
  Result<Empty> result;
  accord::v1::AuditEntry seen;
  p.pipeline->Run<Empty>(methods::kQuery, p.Org("police"), result.Callback(),
                         [&](std::shared_ptr<const Call> call, Done<Empty> done) {
                           EXPECT_EQ(call->org_id(), "police");
                           seen = call->Entry();
                           done(Empty{});
                         });
  ASSERT_TRUE(result.Get().ok());
  EXPECT_EQ(seen.caller(), "spiffe://northdale.accord/org/police");
  EXPECT_EQ(seen.caller_org(), "police");
  EXPECT_EQ(seen.method(), "Query");
  EXPECT_EQ(seen.action(), accord::v1::ACTION_QUERY);
  EXPECT_EQ(seen.actor().user_id(), "pc-4471");
  EXPECT_EQ(p.pipeline->counters().admitted.load(), 1u);
}

TEST(PipelineTest, PermitIsHeldUntilTheCallAnswers) {
  PipelineOptions options;
  options.limits.max_in_flight = 1;
  ExamplePartnership p(options);
  Done<Empty> first_done;
  Result<Empty> first;
  p.pipeline->Run<Empty>(methods::kQuery, p.Org("police"), first.Callback(),
                         [&](std::shared_ptr<const Call>, Done<Empty> done) {
                           first_done = std::move(done);  // answers later
                         });
  auto second = RunOnce(*p.pipeline, methods::kQuery, p.Org("police"));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted);
  // Another organisation has its own allowance.
  EXPECT_TRUE(RunOnce(*p.pipeline, methods::kQuery, p.Org("refuge")).ok());
  first_done(Empty{});
  first_done = nullptr;
  EXPECT_TRUE(first.Get().ok());
  EXPECT_TRUE(RunOnce(*p.pipeline, methods::kQuery, p.Org("police")).ok());
}

TEST(PipelineTest, RateLimitRefusalIsAudited) {
  PipelineOptions options;
  options.limits.requests_per_second = 1;
  options.limits.burst = 2;
  ExamplePartnership p(options);
  EXPECT_TRUE(RunOnce(*p.pipeline, methods::kQuery, p.Org("police")).ok());
  EXPECT_TRUE(RunOnce(*p.pipeline, methods::kQuery, p.Org("police")).ok());
  auto r = RunOnce(*p.pipeline, methods::kQuery, p.Org("police"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  auto entries = p.log.EntriesOf("Query");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].caller_org(), "police");
  EXPECT_THAT(entries[0].deny_reason(), HasSubstr("rate limit"));
}

TEST(PipelineTest, ShortOfDiskNewWorkIsRefusedBeforeTheLogCannotCommit) {
  uint64_t free_bytes = uint64_t{1} << 30;
  PipelineOptions options;
  options.disk_floor.path = "/state";
  options.disk_floor.min_free_bytes = uint64_t{256} << 20;
  options.disk_floor.check_every = absl::ZeroDuration();
  options.disk_floor.free_bytes = [&](const std::string& path) {
    EXPECT_EQ(path, "/state");
    return absl::StatusOr<uint64_t>(free_bytes);
  };
  ExamplePartnership p(options);
  EXPECT_TRUE(RunOnce(*p.pipeline, methods::kQuery, p.Org("police")).ok());
  free_bytes = uint64_t{100} << 20;
  bool ran = false;
  auto r = RunOnce(*p.pipeline, methods::kQuery, p.Org("police"), &ran);
  EXPECT_FALSE(ran);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("short of disk space"));
  EXPECT_TRUE(p.pipeline->disk_floor().below_floor());
  free_bytes = uint64_t{2} << 30;
  EXPECT_TRUE(RunOnce(*p.pipeline, methods::kQuery, p.Org("police")).ok());
}

TEST(PipelineTest, ReleaseWaitsUntilEveryEntryIsDurable) {
  ExamplePartnership p;
  p.log.Hold();
  Result<int> result;
  std::vector<accord::v1::AuditEntry> entries(3);
  for (auto& e : entries) e.set_method("Query");
  p.pipeline->Release<int>(std::move(entries), 7, result.Callback(),
                           [](int& v, uint64_t first) {
                             v += static_cast<int>(first);
                           });
  EXPECT_FALSE(result.ready());
  EXPECT_EQ(p.log.held(), 3u);
  p.log.Commit();
  auto r = result.Get();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 7);  // stamped with the first seq, 0
}

TEST(PipelineTest, AuditFailureReleasesNothing) {
  ExamplePartnership p;
  p.log.FailNext(1);
  Result<std::string> result;
  std::vector<accord::v1::AuditEntry> entries(2);
  p.pipeline->Release<std::string>(std::move(entries), "record content",
                                   result.Callback());
  auto r = result.Get();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("nothing was released"));
  EXPECT_EQ(p.pipeline->counters().audit_failures.load(), 1u);
}

TEST(PipelineTest, RefusedFloodCostsBoundedEntriesAndEveryRefusalIsCounted) {
  ExamplePartnership p;
  Caller revoked;
  revoked.principal = absl::PermissionDeniedError("certificate is revoked");
  revoked.peer_uris = "spiffe://northdale.accord/org/refuge";
  constexpr int kFlood = 20000;
  for (int i = 0; i < kFlood; ++i) {
    auto r = RunOnce(*p.pipeline, methods::kQuery, revoked);
    ASSERT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  }
  p.refusals->Flush();
  uint64_t written = 0, summarised = 0;
  for (const auto& e : p.log.entries()) {
    if (e.refusals_summarised() > 0) {
      summarised += e.refusals_summarised();
      EXPECT_EQ(e.method(), "Query");
      EXPECT_EQ(e.caller(), "spiffe://northdale.accord/org/refuge");
      EXPECT_THAT(e.deny_reason(), HasSubstr("revoked"));
    } else {
      ++written;
    }
  }
  EXPECT_LE(p.log.entries().size(), 10u);
  EXPECT_EQ(written + summarised, static_cast<uint64_t>(kFlood));
}

TEST(PipelineTest, AuditTextIsBoundedValidUtf8WithoutControlCharacters) {
  EXPECT_EQ(AuditText("safeguarding"), "safeguarding");
  EXPECT_EQ(AuditText("\x1b[2K\rallow", 64), "\xEF\xBF\xBD[2K\xEF\xBF\xBD" "allow");
  // Cut on a character boundary: "é" is two bytes.
  EXPECT_EQ(AuditText("ab\xC3\xA9", 3), "ab");
  EXPECT_EQ(AuditText(std::string(100, 'x')).size(), 64u);
}

}  // namespace
}  // namespace accord::gateway
