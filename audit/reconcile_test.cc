// Reconciliation of the gateway's export with an agent's: both logs are
// real SQLite audit logs with their own keys, written as the gateway and the
// agent write them, exported and verified; a mismatch is made by leaving an
// entry out of one log, never by editing an export's bytes.

#include "audit/reconcile.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "audit/test_util.h"

namespace accord::audit {
namespace {

using accord::v1::AuditEntry;
using Kind = ReconcileFinding::Kind;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The agent's entry for its answer to one holder request (agent/agent_audit).
AuditEntry AgentAnswer(const std::string& request, const std::string& status,
                       std::vector<std::string> fields = {}) {
  AuditEntry e;
  e.set_agent_org("refuge");
  e.set_method("Disclose");
  e.set_action(accord::v1::ACTION_QUERY);
  e.set_caller("spiffe://test/gateway");
  e.set_request_id(request);
  e.set_caller_org("police");
  e.set_holder("refuge");
  e.set_purpose("safeguarding");
  e.set_detail(status);
  for (auto& f : fields) e.add_fields_released(f);
  e.set_decision(status == "HOLDER_STATUS_REFUSED"
                     ? accord::v1::AUDIT_DECISION_DENY
                     : accord::v1::AUDIT_DECISION_ALLOW);
  return e;
}

// The gateway's entry for that holder in its Query decision (gateway.cc).
AuditEntry GatewayAnswer(const std::string& request, const std::string& detail,
                         std::vector<std::string> fields = {},
                         const std::string& holder = "refuge") {
  AuditEntry e = testing::QueryEntry("police", "pc-1", "safeguarding");
  e.clear_fields_released();
  e.set_request_id(request);
  e.set_holder(holder);
  e.set_detail(detail);
  for (auto& f : fields) e.add_fields_released(f);
  return e;
}

class ReconcileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    gateway_ = Open("gw", gateway_signer_);
    agent_ = Open("agent", agent_signer_);
  }

  std::unique_ptr<AuditLog> Open(const std::string& name,
                                 std::shared_ptr<const TreeHeadSigner> signer) {
    SqliteAuditLogOptions o;
    o.db_path = testing::TempDbPath(absl::StrCat(
        ::testing::UnitTest::GetInstance()->current_test_info()->name(), "_",
        name));
    o.signer = std::move(signer);
    o.clock = &clock_;
    auto log = OpenSqliteAuditLog(o);
    EXPECT_TRUE(log.ok()) << log.status();
    return std::move(*log);
  }

  void Record(AuditLog& log, const AuditEntry& e) {
    ASSERT_TRUE(log.AppendAndWait(e).ok());
    clock_.Advance(absl::Milliseconds(100));
  }

  // The holder answers, then the gateway records its decision.
  void Both(const std::string& request, const std::string& status,
            std::vector<std::string> fields) {
    Record(*agent_, AgentAnswer(request, status, fields));
    Record(*gateway_, GatewayAnswer(request, status, fields));
  }

  std::string ExportTo(AuditLog& log, const std::string& name) {
    EXPECT_TRUE(log.SignTreeHeadNow().ok());
    const std::string path = testing::TempDbPath(absl::StrCat(
        ::testing::UnitTest::GetInstance()->current_test_info()->name(), "_",
        name, ".jsonl"));
    std::ofstream out(path, std::ios::trunc | std::ios::binary);
    EXPECT_TRUE(log.Export(0, 0, ExportFormat::kJsonLines,
                           [&](absl::string_view chunk, const ExportProgress&) {
                             out.write(chunk.data(), chunk.size());
                             return absl::OkStatus();
                           })
                    .ok());
    return path;
  }

  absl::StatusOr<ReconcileReport> Reconcile() {
    const std::string g = ExportTo(*gateway_, "gateway");
    const std::string a = ExportTo(*agent_, "agent");
    return ReconcileExportFiles(g, *testing::VerifierFor(*gateway_signer_), a,
                                *testing::VerifierFor(*agent_signer_));
  }

  // Later traffic on both sides, so that earlier answers are well inside
  // both exports.
  void Later() {
    clock_.Advance(absl::Minutes(5));
    Record(*agent_, AgentAnswer("req-late", "HOLDER_STATUS_NO_MATCH"));
    Record(*gateway_, GatewayAnswer("req-late", "HOLDER_STATUS_NO_MATCH"));
  }

  FakeClock clock_{absl::FromUnixSeconds(1767225600)};
  std::shared_ptr<const TreeHeadSigner> gateway_signer_ =
      testing::TestSigner(1);
  std::shared_ptr<const TreeHeadSigner> agent_signer_ = testing::TestSigner(2);
  std::unique_ptr<AuditLog> gateway_, agent_;
};

TEST_F(ReconcileTest, TwinsOnBothSidesMatch) {
  Both("req-1", "HOLDER_STATUS_ANSWERED",
       {"date_of_birth", "record:DATA_CATEGORY_RISK"});
  Both("req-2", "HOLDER_STATUS_REFUSED", {});
  // Another holder's answers and the gateway's other entries are not this
  // agent's business.
  Record(*gateway_, GatewayAnswer("req-3", "HOLDER_STATUS_ANSWERED", {"x"},
                                  "womens-centre"));
  Later();
  auto r = Reconcile();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->agent_org, "refuge");
  EXPECT_EQ(r->gateway_answers, 3u);
  EXPECT_EQ(r->agent_answers, 3u);
  EXPECT_EQ(r->matched, 3u);
  EXPECT_EQ(r->disclosures_matched, 1u);
  EXPECT_EQ(r->discrepancies, 0u);
  EXPECT_THAT(FormatReconcileReport(*r), HasSubstr("no discrepancies"));
}

TEST_F(ReconcileTest, NamesEveryAnswerWithoutItsTwinAndEveryDifference) {
  Both("req-ok", "HOLDER_STATUS_ANSWERED", {"date_of_birth"});
  // The gateway stopped between the holder's answer and its own entry.
  Record(*agent_, AgentAnswer("req-crash", "HOLDER_STATUS_ANSWERED",
                              {"date_of_birth", "record:DATA_CATEGORY_RISK"}));
  // The gateway passed on a field the holder never released.
  Record(*agent_, AgentAnswer("req-fields", "HOLDER_STATUS_ANSWERED",
                              {"date_of_birth"}));
  Record(*gateway_, GatewayAnswer("req-fields", "HOLDER_STATUS_ANSWERED",
                                  {"date_of_birth", "phone"}));
  // An answer the holder has no record of.
  Record(*gateway_, GatewayAnswer("req-ghost", "HOLDER_STATUS_ANSWERED",
                                  {"record:DATA_CATEGORY_RISK"}));
  // The answer came after the gateway had given up on it.
  Record(*agent_, AgentAnswer("req-late-answer", "HOLDER_STATUS_ANSWERED",
                              {"postcode"}));
  Record(*gateway_, GatewayAnswer("req-late-answer",
                                  "holder did not answer: Deadline Exceeded"));
  // The two sides disagree on what the holder said.
  Record(*agent_, AgentAnswer("req-status", "HOLDER_STATUS_REFUSED"));
  Record(*gateway_, GatewayAnswer("req-status", "HOLDER_STATUS_ANSWERED"));
  // The gateway never reached the holder: nothing on either side to match.
  Record(*gateway_, GatewayAnswer("req-down", "holder did not answer: down"));
  Later();

  auto r = Reconcile();
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<std::pair<Kind, std::string>> found;
  for (const auto& f : r->findings) {
    found.push_back({f.kind, f.request_id});
    EXPECT_FALSE(f.near_edge) << f.request_id;
  }
  EXPECT_THAT(
      found,
      ElementsAre(
          std::pair{Kind::kMissingAtGateway, std::string("req-crash")},
          std::pair{Kind::kFieldsDiffer, std::string("req-fields")},
          std::pair{Kind::kMissingAtAgent, std::string("req-ghost")},
          std::pair{Kind::kGatewayHadNoAnswer, std::string("req-late-answer")},
          std::pair{Kind::kStatusDiffers, std::string("req-status")}));
  EXPECT_EQ(r->discrepancies, 5u);
  EXPECT_EQ(r->matched, 2u);  // req-ok, req-late (req-down: never reached)
  const auto& fields = r->findings[1];
  EXPECT_THAT(fields.only_at_gateway, ElementsAre("phone"));
  EXPECT_TRUE(fields.only_at_agent.empty());

  const std::string text = FormatReconcileReport(*r);
  EXPECT_THAT(text, HasSubstr("5 discrepancies"));
  EXPECT_THAT(text,
              HasSubstr("MISSING AT THE GATEWAY: request req-crash, police "
                        "asked refuge (agent entry #1 at "));
  EXPECT_THAT(text, HasSubstr("the agent released date_of_birth, "
                              "record:DATA_CATEGORY_RISK, but the gateway's "
                              "log has no entry for this answer. Nothing "
                              "reached police"));
  EXPECT_THAT(text, HasSubstr("FIELDS DIFFER: request req-fields"));
  EXPECT_THAT(text, HasSubstr("only in the gateway's entry: phone"));
  EXPECT_THAT(text, HasSubstr("MISSING AT THE AGENT: request req-ghost"));
  EXPECT_THAT(text, HasSubstr("ANSWER NOT RECEIVED BY THE GATEWAY"));
  EXPECT_THAT(text, HasSubstr("ANSWER DIFFERS: request req-status"));
}

TEST_F(ReconcileTest, AnswersNearTheEndOfTheOtherExportAreNotCounted) {
  Both("req-1", "HOLDER_STATUS_ANSWERED", {"date_of_birth"});
  Later();
  // Answered just now: the gateway's entry may not be in its export yet.
  Record(*agent_, AgentAnswer("req-now", "HOLDER_STATUS_ANSWERED", {"x"}));
  auto r = Reconcile();
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->findings.size(), 1u);
  EXPECT_TRUE(r->findings[0].near_edge);
  EXPECT_EQ(r->discrepancies, 0u);
  EXPECT_THAT(FormatReconcileReport(*r),
              HasSubstr("1 answers near the edge of an export"));
}

TEST_F(ReconcileTest, RefusesExportsThatAreNotWhatTheySay) {
  Both("req-1", "HOLDER_STATUS_ANSWERED", {"date_of_birth"});
  const std::string g = ExportTo(*gateway_, "gateway");
  const std::string a = ExportTo(*agent_, "agent");
  const auto gk = testing::VerifierFor(*gateway_signer_);
  const auto ak = testing::VerifierFor(*agent_signer_);
  // Each is checked with its own key.
  auto r = ReconcileExportFiles(g, *ak, a, *ak);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(r.status().message(), HasSubstr(g));
  // Swapped: the agent's export is not the gateway's.
  r = ReconcileExportFiles(a, *ak, g, *gk);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("not one agent's log"));
  // The same export twice.
  r = ReconcileExportFiles(a, *ak, a, *ak);
  EXPECT_THAT(r.status().message(), HasSubstr("signed by the same key"));
}

}  // namespace
}  // namespace accord::audit
