// Referrals end to end: a real gateway and seven real agents on loopback.
// Rape Crisis refers a woman to the Law Centre; every status change the Law
// Centre makes reaches Rape Crisis and the audit log; refused changes are
// refused and audited; delivery survives the receiver being offline and the
// gateway being killed; a pathway no agreement permits is refused and
// audited; the gateway holds only ciphertext; the Law Centre's onward
// referral to employment support forms a chain both ends can follow; and
// nothing is sent to a server whose certificate is revoked or carries the
// wrong identity (a fake Law Centre agent, a fake gateway), the referral
// waiting for the real one.

#include <chrono>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "accord/v1/agent.grpc.pb.h"
#include "accord/v1/gateway.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/identity.h"
#include "runtime/seal.h"
#include "tests/checked.h"
#include "tests/fake_server.h"
#include "tests/harness.h"

namespace accord::testing {
namespace {

using accord::v1::AgentLocal;
using accord::v1::ReferralBox;
using accord::v1::ReferralState;
using ::testing::HasSubstr;

constexpr char kMarker[] = "PLAINTEXT-MARKER-7f3a9c";

std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ReferralIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto p = TestPartnership::Create();
    ASSERT_TRUE(p.ok()) << p.status();
    partnership_ = p->release();
    auto s = partnership_->StartAll();
    ASSERT_TRUE(s.ok()) << s;
    ASSERT_TRUE(partnership_->LoadExampleData("rape-crisis").ok());
  }
  static void TearDownTestSuite() { delete partnership_; }

  static void Deadline(grpc::ClientContext* ctx, int seconds = 15) {
    PrepareCall(ctx, seconds);
  }

  std::unique_ptr<AgentLocal::Stub> Local(const std::string& org) {
    return AgentLocal::NewStub(
        partnership_->AgentLocalChannel(org, "org-" + org));
  }

  accord::v1::LocalSendReferralRequest ZoeToLawCentre(const std::string& key) {
    accord::v1::LocalSendReferralRequest req;
    req.set_subject_local_id("RC-2041");
    req.set_to_org("law-centre");
    req.set_to_service("family-law");
    req.set_purpose("referral");
    req.set_urgency(accord::v1::URGENCY_SOON);
    req.set_idempotency_key(key);
    auto* c = req.mutable_content();
    (*c->mutable_contact_details())["given_name"] = "Zoë";
    (*c->mutable_contact_details())["family_name"] = "Ashworth-Hale";
    (*c->mutable_contact_details())["phone"] = "07700 900412";
    (*c->mutable_contact_details())["safe_contact"] = "Text first";
    c->add_needs("non-molestation order");
    c->set_case_summary(absl::StrCat(kMarker, " reported an assault in 2026"));
    return req;
  }

  absl::StatusOr<accord::v1::SendReferralResponse> Send(
      const std::string& org, const accord::v1::LocalSendReferralRequest& req) {
    grpc::ClientContext ctx;
    PrepareCall(&ctx, 15, "isva-carys", "isva");
    accord::v1::SendReferralResponse resp;
    auto status = Local(org)->SendReferral(&ctx, req, &resp);
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
    }
    return resp;
  }

  grpc::Status Update(
      const std::string& org, const std::string& id, ReferralState state,
      const std::string& reason = "",
      accord::v1::Outcome outcome = accord::v1::OUTCOME_UNSPECIFIED) {
    grpc::ClientContext ctx;
    Deadline(&ctx);
    accord::v1::UpdateReferralRequest req;
    req.set_referral_id(id);
    req.mutable_status()->set_state(state);
    req.mutable_status()->set_reason(reason);
    req.mutable_status()->set_outcome(outcome);
    accord::v1::UpdateReferralResponse resp;
    return Local(org)->UpdateReferral(&ctx, req, &resp);
  }

  std::vector<accord::v1::ReferralView> Box(const std::string& org,
                                            ReferralBox box) {
    grpc::ClientContext ctx;
    Deadline(&ctx);
    accord::v1::ListReferralsRequest req;
    req.set_box(box);
    accord::v1::ListReferralsResponse resp;
    auto status = Local(org)->ListReferrals(&ctx, req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {resp.referrals().begin(), resp.referrals().end()};
  }

  // How many times `id` is in `org`'s box, and its state there.
  std::pair<int, ReferralState> Find(const std::string& org, ReferralBox box,
                                     const std::string& id,
                                     accord::v1::ReferralView* view = nullptr) {
    int n = 0;
    ReferralState state = accord::v1::REFERRAL_STATE_UNSPECIFIED;
    for (const auto& v : Box(org, box)) {
      if (v.referral().id() != id) continue;
      ++n;
      state = v.referral().state();
      if (view != nullptr) *view = v;
    }
    return {n, state};
  }

  // Waits until `org` holds `id` in `box` in `state`.
  bool WaitFor(const std::string& org, ReferralBox box, const std::string& id,
               ReferralState state, int seconds = 20) {
    const auto end =
        std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < end) {
      if (Find(org, box, id).second == state) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  std::vector<accord::v1::AuditEntry> AuditOf(const std::string& referral_id) {
    std::vector<accord::v1::AuditEntry> out;
    for (auto& e : CheckedAudit(partnership_->SearchAudit())) {
      if (e.referral_id() == referral_id) out.push_back(std::move(e));
    }
    return out;
  }

  int CountAudit(const std::string& referral_id, const std::string& method,
                 accord::v1::AuditDecision decision) {
    int n = 0;
    for (const auto& e : AuditOf(referral_id)) {
      if (e.method() == method && e.decision() == decision) ++n;
    }
    return n;
  }

  // After the gateway is back: the agent's channel finds it again (its last
  // handshake may have refused an impostor) and a referral goes through.
  bool SendSucceedsAgain(const std::string& key) {
    for (int i = 0; i < 100; ++i) {
      if (Send("rape-crisis", ZoeToLawCentre(key)).ok()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  }

  static TestPartnership* partnership_;
};

TestPartnership* ReferralIntegrationTest::partnership_ = nullptr;

TEST_F(ReferralIntegrationTest, FullLifecycleEveryChangeReachesTheReferrer) {
  // Rape Crisis watches its outbox while the referral runs its course.
  std::vector<ReferralState> seen;
  grpc::ClientContext watch_ctx;
  Deadline(&watch_ctx, 60);
  auto watcher = Local("rape-crisis");
  accord::v1::WatchReferralsRequest watch_req;
  watch_req.set_box(accord::v1::REFERRAL_BOX_OUTBOX);
  auto reader = watcher->WatchReferrals(&watch_ctx, watch_req);
  std::thread watch_thread([&] {
    accord::v1::ReferralEvent e;
    while (reader->Read(&e)) {
      seen.push_back(e.referral().referral().state());
      if (e.referral().referral().state() == accord::v1::REFERRAL_STATE_CLOSED)
        break;
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  auto sent = Send("rape-crisis", ZoeToLawCentre("lifecycle-1"));
  ASSERT_TRUE(sent.ok()) << sent.status();
  const std::string id = sent->referral_id();
  EXPECT_EQ(sent->state(), accord::v1::REFERRAL_STATE_SENT);
  ASSERT_TRUE(WaitFor("rape-crisis", accord::v1::REFERRAL_BOX_OUTBOX, id,
                      accord::v1::REFERRAL_STATE_DELIVERED));

  // The Law Centre's inbox holds it once, opened for its own systems.
  accord::v1::ReferralView view;
  auto [count, state] =
      Find("law-centre", accord::v1::REFERRAL_BOX_INBOX, id, &view);
  EXPECT_EQ(count, 1);
  EXPECT_THAT(view.content().case_summary(), HasSubstr(kMarker));
  EXPECT_EQ(view.content().contact_details().at("given_name"), "Zoë");
  EXPECT_EQ(view.content().consent_reference(), "RC-2041-C2");
  EXPECT_EQ(view.referral().consent_reference(), "RC-2041-C2");
  EXPECT_EQ(view.content().referrer_contact().name(), "Carys Lindqvist");
  // Rape Crisis cannot open what it sealed to the Law Centre.
  accord::v1::ReferralView out_view;
  Find("rape-crisis", accord::v1::REFERRAL_BOX_OUTBOX, id, &out_view);
  EXPECT_FALSE(out_view.has_content());

  const std::vector<std::pair<ReferralState, accord::v1::Outcome>> steps = {
      {accord::v1::REFERRAL_STATE_ACKNOWLEDGED,
       accord::v1::OUTCOME_UNSPECIFIED},
      {accord::v1::REFERRAL_STATE_ACCEPTED, accord::v1::OUTCOME_UNSPECIFIED},
      {accord::v1::REFERRAL_STATE_ENGAGED, accord::v1::OUTCOME_UNSPECIFIED},
      {accord::v1::REFERRAL_STATE_CLOSED, accord::v1::OUTCOME_NEED_MET},
  };
  for (const auto& [next, outcome] : steps) {
    auto st = Update("law-centre", id, next, "", outcome);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_TRUE(
        WaitFor("rape-crisis", accord::v1::REFERRAL_BOX_OUTBOX, id, next))
        << accord::v1::ReferralState_Name(next)
        << " did not reach the referrer";
  }
  watch_thread.join();
  EXPECT_THAT(seen,
              ::testing::IsSupersetOf({accord::v1::REFERRAL_STATE_DELIVERED,
                                       accord::v1::REFERRAL_STATE_ACKNOWLEDGED,
                                       accord::v1::REFERRAL_STATE_ACCEPTED,
                                       accord::v1::REFERRAL_STATE_ENGAGED,
                                       accord::v1::REFERRAL_STATE_CLOSED}));

  Find("rape-crisis", accord::v1::REFERRAL_BOX_OUTBOX, id, &out_view);
  ASSERT_EQ(out_view.referral().history_size(), 6);
  EXPECT_EQ(out_view.referral().history(5).outcome(),
            accord::v1::OUTCOME_NEED_MET);
  EXPECT_EQ(out_view.referral().history(5).by_org(), "law-centre");

  // Every step is in the audit log.
  EXPECT_EQ(CountAudit(id, "SendReferral", accord::v1::AUDIT_DECISION_ALLOW),
            1);
  EXPECT_EQ(CountAudit(id, "DeliverReferral", accord::v1::AUDIT_DECISION_ALLOW),
            1);
  EXPECT_EQ(CountAudit(id, "UpdateReferral", accord::v1::AUDIT_DECISION_ALLOW),
            4);

  // Sending again with the same key is the same referral, not a new one.
  auto again = Send("rape-crisis", ZoeToLawCentre("lifecycle-1"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->referral_id(), id);
  EXPECT_EQ(Find("law-centre", accord::v1::REFERRAL_BOX_INBOX, id).first, 1);
}

TEST_F(ReferralIntegrationTest, RefusedTransitionsAreRefusedAndAudited) {
  auto sent = Send("rape-crisis", ZoeToLawCentre("refused-1"));
  ASSERT_TRUE(sent.ok()) << sent.status();
  const std::string id = sent->referral_id();
  ASSERT_TRUE(WaitFor("law-centre", accord::v1::REFERRAL_BOX_INBOX, id,
                      accord::v1::REFERRAL_STATE_DELIVERED));

  // Closing a referral never accepted.
  auto st = Update("law-centre", id, accord::v1::REFERRAL_STATE_CLOSED, "",
                   accord::v1::OUTCOME_NEED_MET);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(st.error_message(), HasSubstr("never accepted"));
  // The referrer moving it forward.
  st = Update("rape-crisis", id, accord::v1::REFERRAL_STATE_ACCEPTED);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(st.error_message(), HasSubstr("only the receiver"));
  // The receiver withdrawing it.
  st = Update("law-centre", id, accord::v1::REFERRAL_STATE_WITHDRAWN, "no");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // An organisation not on the referral, straight at the gateway.
  {
    auto gw = accord::v1::Gateway::NewStub(
        partnership_->GatewayChannel("agent-police"));
    grpc::ClientContext ctx;
    Deadline(&ctx);
    accord::v1::UpdateReferralRequest req;
    req.set_referral_id(id);
    req.mutable_status()->set_state(accord::v1::REFERRAL_STATE_ACCEPTED);
    accord::v1::UpdateReferralResponse resp;
    auto s = gw->UpdateReferral(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    grpc::ClientContext ctx2;
    Deadline(&ctx2);
    accord::v1::GetReferralRequest get;
    get.set_referral_id(id);
    accord::v1::GetReferralResponse got;
    EXPECT_EQ(gw->GetReferral(&ctx2, get, &got).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  // Declining needs a reason.
  st = Update("law-centre", id, accord::v1::REFERRAL_STATE_DECLINED);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("status.reason"));

  EXPECT_EQ(CountAudit(id, "UpdateReferral", accord::v1::AUDIT_DECISION_DENY),
            5);
  EXPECT_EQ(Find("rape-crisis", accord::v1::REFERRAL_BOX_OUTBOX, id).second,
            accord::v1::REFERRAL_STATE_DELIVERED);

  // Declined with a reason reaches the referrer; then it is final.
  ASSERT_TRUE(Update("law-centre", id, accord::v1::REFERRAL_STATE_DECLINED,
                     "outside our area")
                  .ok());
  ASSERT_TRUE(WaitFor("rape-crisis", accord::v1::REFERRAL_BOX_OUTBOX, id,
                      accord::v1::REFERRAL_STATE_DECLINED));
  accord::v1::ReferralView v;
  Find("rape-crisis", accord::v1::REFERRAL_BOX_OUTBOX, id, &v);
  EXPECT_EQ(v.referral().history().rbegin()->reason(), "outside our area");
  st = Update("law-centre", id, accord::v1::REFERRAL_STATE_ACCEPTED);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(ReferralIntegrationTest, ReferrerWithdrawsAndTheReceiverIsTold) {
  auto sent = Send("rape-crisis", ZoeToLawCentre("withdraw-1"));
  ASSERT_TRUE(sent.ok()) << sent.status();
  const std::string id = sent->referral_id();
  ASSERT_TRUE(WaitFor("law-centre", accord::v1::REFERRAL_BOX_INBOX, id,
                      accord::v1::REFERRAL_STATE_DELIVERED));
  ASSERT_TRUE(Update("rape-crisis", id, accord::v1::REFERRAL_STATE_WITHDRAWN,
                     "she has chosen another solicitor")
                  .ok());
  EXPECT_TRUE(WaitFor("law-centre", accord::v1::REFERRAL_BOX_INBOX, id,
                      accord::v1::REFERRAL_STATE_WITHDRAWN));
}

TEST_F(ReferralIntegrationTest, ReceiverOfflineThenBackIsDeliveredOnce) {
  partnership_->agent("law-centre")->Stop();
  auto sent = Send("rape-crisis", ZoeToLawCentre("offline-1"));
  ASSERT_TRUE(sent.ok()) << sent.status();
  const std::string id = sent->referral_id();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(Find("rape-crisis", accord::v1::REFERRAL_BOX_OUTBOX, id).second,
            accord::v1::REFERRAL_STATE_SENT);
  ASSERT_TRUE(partnership_->StartAgent("law-centre").ok());
  ASSERT_TRUE(WaitFor("rape-crisis", accord::v1::REFERRAL_BOX_OUTBOX, id,
                      accord::v1::REFERRAL_STATE_DELIVERED, 30));
  EXPECT_EQ(Find("law-centre", accord::v1::REFERRAL_BOX_INBOX, id).first, 1);
  EXPECT_EQ(CountAudit(id, "DeliverReferral", accord::v1::AUDIT_DECISION_ALLOW),
            1);
}

TEST_F(ReferralIntegrationTest,
       GatewayKilledMidDeliveryDeliversOnceAfterRestart) {
  // Queued while the receiver is away, then the gateway dies.
  partnership_->agent("law-centre")->Stop();
  auto queued = Send("rape-crisis", ZoeToLawCentre("killed-1"));
  ASSERT_TRUE(queued.ok()) << queued.status();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  partnership_->gateway()->Kill();
  ASSERT_TRUE(partnership_->StartAgent("law-centre").ok());
  ASSERT_TRUE(partnership_->StartGateway().ok());
  ASSERT_TRUE(WaitFor("rape-crisis", accord::v1::REFERRAL_BOX_OUTBOX,
                      queued->referral_id(),
                      accord::v1::REFERRAL_STATE_DELIVERED, 30));
  EXPECT_EQ(
      Find("law-centre", accord::v1::REFERRAL_BOX_INBOX, queued->referral_id())
          .first,
      1);

  // Killed while delivery is in flight: sent, and SIGKILL at once.
  for (int i = 0; i < 3; ++i) {
    auto sent = Send("rape-crisis", ZoeToLawCentre(absl::StrCat("race-", i)));
    ASSERT_TRUE(sent.ok()) << sent.status();
    partnership_->gateway()->Kill();
    ASSERT_TRUE(partnership_->StartGateway().ok());
    ASSERT_TRUE(WaitFor("rape-crisis", accord::v1::REFERRAL_BOX_OUTBOX,
                        sent->referral_id(),
                        accord::v1::REFERRAL_STATE_DELIVERED, 30));
    EXPECT_EQ(
        Find("law-centre", accord::v1::REFERRAL_BOX_INBOX, sent->referral_id())
            .first,
        1);
  }
}

TEST_F(ReferralIntegrationTest, UndeliveredWithinTheAgreementsLimitExpires) {
  // The partnership shortens the pathway's delivery limit to two seconds
  // (agreements are reloaded when their file changes).
  const std::string file =
      partnership_->dir() + "/agreements/referral-pathways.textproto";
  const std::string original = ReadFileBytes(file);
  std::string shortened = original;
  const std::string limit = "delivery_limit { seconds: 259200 }";
  for (size_t at = shortened.find(limit); at != std::string::npos;
       at = shortened.find(limit, at)) {
    shortened.replace(at, limit.size(), "delivery_limit { seconds: 2 }");
  }
  ASSERT_NE(shortened, original);
  auto write = [&](const std::string& content) {
    std::ofstream out(file, std::ios::trunc);
    out << content;
  };
  write(shortened);
  std::this_thread::sleep_for(std::chrono::milliseconds(4500));

  partnership_->agent("law-centre")->Stop();
  auto sent = Send("rape-crisis", ZoeToLawCentre("expiry-1"));
  write(original);
  ASSERT_TRUE(sent.ok()) << sent.status();
  const std::string id = sent->referral_id();
  EXPECT_TRUE(WaitFor("rape-crisis", accord::v1::REFERRAL_BOX_OUTBOX, id,
                      accord::v1::REFERRAL_STATE_EXPIRED, 30));
  accord::v1::ReferralView v;
  Find("rape-crisis", accord::v1::REFERRAL_BOX_OUTBOX, id, &v);
  EXPECT_THAT(v.referral().history().rbegin()->reason(),
              HasSubstr("not delivered to law-centre"));
  EXPECT_EQ(CountAudit(id, "ExpireReferral", accord::v1::AUDIT_DECISION_ALLOW),
            1);

  // Back online, the Law Centre never receives the expired referral.
  ASSERT_TRUE(partnership_->StartAgent("law-centre").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_EQ(Find("law-centre", accord::v1::REFERRAL_BOX_INBOX, id).first, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));
}

TEST_F(ReferralIntegrationTest, PathwayInNoAgreementIsRefusedAndAudited) {
  // Rape Crisis to the police: no agreement has that referral pathway. Its
  // own agent refuses before anything leaves.
  auto req = ZoeToLawCentre("no-pathway-1");
  req.set_to_org("police");
  req.clear_to_service();
  auto local = Send("rape-crisis", req);
  EXPECT_EQ(local.status().code(), absl::StatusCode::kPermissionDenied);

  // A partner system that seals for itself and goes straight to the gateway
  // is refused there, and the refusal is audited.
  auto police_key =
      LoadX25519PublicKey(partnership_->pki() + "/referral-police.pub.pem");
  ASSERT_TRUE(police_key.ok()) << police_key.status();
  const std::string id = "ref-no-pathway-0001";
  auto sealed = Seal(*police_key, "content",
                     ReferralAssociatedData(id, "employment", "police"));
  ASSERT_TRUE(sealed.ok());
  auto tokens = partnership_->TokensOf("rape-crisis", "RC-2041");
  ASSERT_TRUE(tokens.ok());
  accord::v1::SendReferralRequest direct;
  auto* r = direct.mutable_referral();
  r->set_id(id);
  r->set_to_org("police");
  r->set_purpose("referral");
  r->set_urgency(accord::v1::URGENCY_ROUTINE);
  for (const auto& t : *tokens) *r->add_subjects() = t;
  *r->mutable_payload() = *sealed;
  r->set_consent_reference("EMP-C1");
  auto gw = accord::v1::Gateway::NewStub(
      partnership_->GatewayChannel("agent-employment"));
  {
    // The key the gateway serves is the one the partnership file publishes.
    grpc::ClientContext kctx;
    Deadline(&kctx);
    accord::v1::GetReferralKeyRequest kreq;
    kreq.set_org_id("police");
    accord::v1::GetReferralKeyResponse key;
    ASSERT_TRUE(gw->GetReferralKey(&kctx, kreq, &key).ok());
    EXPECT_EQ(key.x25519_public_key(), *police_key);
    EXPECT_EQ(key.key_id(), SealKeyId(*police_key));
    EXPECT_EQ(sealed->recipient_key_id(), key.key_id());
  }
  grpc::ClientContext ctx;
  Deadline(&ctx);
  accord::v1::SendReferralResponse resp;
  auto status = gw->SendReferral(&ctx, direct, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(CountAudit(id, "SendReferral", accord::v1::AUDIT_DECISION_DENY), 1);
  EXPECT_EQ(CountAudit(id, "SendReferral", accord::v1::AUDIT_DECISION_ALLOW),
            0);
}

TEST_F(ReferralIntegrationTest, AKeyReusedForDifferentContentIsRefused) {
  auto first = Send("rape-crisis", ZoeToLawCentre("reused-key-1"));
  ASSERT_TRUE(first.ok()) << first.status();
  // A retry with the same key and content is the same referral.
  auto again = Send("rape-crisis", ZoeToLawCentre("reused-key-1"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->referral_id(), first->referral_id());
  // The same key for another service is not a retry: nothing is sent and it
  // does not pass as the earlier referral.
  auto other = ZoeToLawCentre("reused-key-1");
  other.set_to_service("immigration");
  auto refused = Send("rape-crisis", other);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr(first->referral_id()));
  // Ids are random: another key gives another id.
  auto second = Send("rape-crisis", ZoeToLawCentre("reused-key-2"));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(second->referral_id(), first->referral_id());
}

TEST_F(ReferralIntegrationTest, ALongCaseSummaryIsSentWhole) {
  // Her story as she told it, 5,000 characters and more: within the 65,536
  // bytes a case summary may hold, end to end.
  auto req = ZoeToLawCentre("long-summary-1");
  std::string summary = kMarker;
  while (summary.size() < 20000) summary += " She asked for help with housing.";
  req.mutable_content()->set_case_summary(summary);
  auto sent = Send("rape-crisis", req);
  ASSERT_TRUE(sent.ok()) << sent.status();
  ASSERT_TRUE(WaitFor("law-centre", accord::v1::REFERRAL_BOX_INBOX,
                      sent->referral_id(),
                      accord::v1::REFERRAL_STATE_DELIVERED));
}

TEST_F(ReferralIntegrationTest, OrganisationsOwnSystemMustSendThroughItsAgent) {
  // Only the sender's agent checks the person's consent, so the gateway takes
  // referrals from agents only: a partner system that seals a referral itself
  // and sends it with its organisation certificate, naming a consent record,
  // is refused and audited, and nothing is queued.
  auto law_key =
      LoadX25519PublicKey(partnership_->pki() + "/referral-law-centre.pub.pem");
  ASSERT_TRUE(law_key.ok()) << law_key.status();
  const std::string id = "ref-bypass-agent-0001";
  auto sealed = Seal(*law_key, "content",
                     ReferralAssociatedData(id, "rape-crisis", "law-centre"));
  ASSERT_TRUE(sealed.ok());
  auto tokens = partnership_->TokensOf("rape-crisis", "RC-2041");
  ASSERT_TRUE(tokens.ok());
  accord::v1::SendReferralRequest direct;
  auto* r = direct.mutable_referral();
  r->set_id(id);
  r->set_to_org("law-centre");
  r->set_purpose("referral");
  r->set_urgency(accord::v1::URGENCY_ROUTINE);
  for (const auto& t : *tokens) *r->add_subjects() = t;
  *r->mutable_payload() = *sealed;
  r->set_consent_reference("made-up-consent");
  auto gw = accord::v1::Gateway::NewStub(
      partnership_->GatewayChannel("org-rape-crisis"));
  grpc::ClientContext ctx;
  Deadline(&ctx);
  accord::v1::SendReferralResponse resp;
  auto status = gw->SendReferral(&ctx, direct, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(),
              HasSubstr("SendReferral is open to agents only"));
  EXPECT_EQ(CountAudit(id, "SendReferral", accord::v1::AUDIT_DECISION_DENY), 1);
  EXPECT_EQ(CountAudit(id, "SendReferral", accord::v1::AUDIT_DECISION_ALLOW),
            0);
}

TEST_F(ReferralIntegrationTest, GatewayHoldsOnlyCiphertext) {
  auto sent = Send("rape-crisis", ZoeToLawCentre("ciphertext-1"));
  ASSERT_TRUE(sent.ok()) << sent.status();
  ASSERT_TRUE(WaitFor("law-centre", accord::v1::REFERRAL_BOX_INBOX,
                      sent->referral_id(),
                      accord::v1::REFERRAL_STATE_DELIVERED));
  const std::string db = partnership_->dir() + "/state/gateway-referrals.db";
  const std::string stored = ReadFileBytes(db) + ReadFileBytes(db + "-wal") +
                             ReadFileBytes(partnership_->audit_db()) +
                             ReadFileBytes(partnership_->audit_db() + "-wal");
  ASSERT_NE(stored.find(sent->referral_id()), std::string::npos)
      << "the gateway should hold the referral's routing metadata";
  EXPECT_EQ(stored.find(kMarker), std::string::npos);
  EXPECT_EQ(stored.find("Ashworth"), std::string::npos);
  EXPECT_EQ(stored.find("07700 900412"), std::string::npos);
  // The receiving agent opens it.
  accord::v1::ReferralView v;
  Find("law-centre", accord::v1::REFERRAL_BOX_INBOX, sent->referral_id(), &v);
  EXPECT_THAT(v.content().case_summary(), HasSubstr(kMarker));
}

TEST_F(ReferralIntegrationTest, OnwardReferralFormsAChainBothEndsCanFollow) {
  auto first = Send("rape-crisis", ZoeToLawCentre("chain-1"));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(WaitFor("law-centre", accord::v1::REFERRAL_BOX_INBOX,
                      first->referral_id(),
                      accord::v1::REFERRAL_STATE_DELIVERED));
  ASSERT_TRUE(Update("law-centre", first->referral_id(),
                     accord::v1::REFERRAL_STATE_ACCEPTED)
                  .ok());

  // The Law Centre registers her as its client, with her consent to be
  // referred on for help into work.
  auto lc = Local("law-centre");
  {
    grpc::ClientContext ctx;
    Deadline(&ctx);
    accord::v1::UpsertSubjectRequest req;
    req.mutable_subject()->set_local_id("LC-0007");
    (*req.mutable_subject()->mutable_fields())["given_name"] = "Zoë";
    (*req.mutable_subject()->mutable_fields())["family_name"] = "Ashworth-Hale";
    (*req.mutable_subject()->mutable_fields())["date_of_birth"] = "1991-05-14";
    accord::v1::UpsertSubjectResponse resp;
    ASSERT_TRUE(lc->UpsertSubject(&ctx, req, &resp).ok());
  }
  {
    grpc::ClientContext ctx;
    Deadline(&ctx);
    accord::v1::RecordConsentRequest req;
    auto* c = req.mutable_consent();
    c->set_id("LC-0007-C1");
    c->set_subject_local_id("LC-0007");
    c->add_granted_to_orgs("employment");
    c->add_purposes("referral");
    c->add_categories(accord::v1::DATA_CATEGORY_IDENTITY);
    c->add_categories(accord::v1::DATA_CATEGORY_CONTACT);
    c->add_categories(accord::v1::DATA_CATEGORY_NEEDS);
    c->mutable_given_at()->set_seconds(1767225600);
    c->set_method(accord::v1::CONSENT_METHOD_WRITTEN);
    c->set_recorded_by("solicitor F. Quint");
    accord::v1::RecordConsentResponse resp;
    auto s = lc->RecordConsent(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  accord::v1::LocalSendReferralRequest onward;
  onward.set_subject_local_id("LC-0007");
  onward.set_to_org("employment");
  onward.set_to_service("skills");
  onward.set_purpose("referral");
  onward.set_urgency(accord::v1::URGENCY_ROUTINE);
  onward.set_previous_referral_id(first->referral_id());
  (*onward.mutable_content()->mutable_contact_details())["given_name"] = "Zoë";
  onward.mutable_content()->add_needs("return to work");
  // Her story stays behind: the employment rule does not release it.
  auto with_story = onward;
  with_story.mutable_content()->set_case_summary("the assault");
  auto refused = Send("law-centre", with_story);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("content.case_summary"));

  auto second = Send("law-centre", onward);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE(WaitFor("employment", accord::v1::REFERRAL_BOX_INBOX,
                      second->referral_id(),
                      accord::v1::REFERRAL_STATE_DELIVERED));

  // Rape Crisis, at the start of the chain, follows it to the end.
  for (const char* org : {"agent-rape-crisis", "agent-employment"}) {
    auto gw = accord::v1::Gateway::NewStub(partnership_->GatewayChannel(org));
    grpc::ClientContext ctx;
    Deadline(&ctx);
    accord::v1::GetReferralRequest req;
    req.set_referral_id(second->referral_id());
    req.set_include_chain(true);
    accord::v1::GetReferralResponse resp;
    auto s = gw->GetReferral(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << org << ": " << s.error_message();
    ASSERT_EQ(resp.chain_size(), 2) << org;
    EXPECT_EQ(resp.chain(0).id(), first->referral_id());
    EXPECT_EQ(resp.chain(0).state(), accord::v1::REFERRAL_STATE_ACCEPTED);
    EXPECT_EQ(resp.chain(1).id(), second->referral_id());
    EXPECT_EQ(resp.chain(1).from_org(), "law-centre");
    EXPECT_FALSE(resp.chain(0).has_payload());
  }
  // A referral onwards must continue one made to the sender.
  auto bogus = onward;
  bogus.set_idempotency_key("chain-bogus");
  bogus.set_previous_referral_id("ref-does-not-exist");
  EXPECT_EQ(Send("law-centre", bogus).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// --- The servers referrals are sent to -------------------------------------

TEST_F(ReferralIntegrationTest, RevokedReceiverGetsNothingAndTheRealOneLater) {
  // A fake Law Centre agent at its address, holding a Law Centre agent
  // certificate the CA has revoked.
  ASSERT_TRUE(
      partnership_
          ->IssueCertificate("revoked-agent-law-centre",
                             SpiffeId(partnership_->partnership_id(),
                                      PrincipalKind::kAgent, "law-centre"))
          .ok());
  ASSERT_TRUE(partnership_->RevokeCertificate("revoked-agent-law-centre").ok());
  partnership_->agent("law-centre")->Stop();
  auto fake = CountingServer::Start(
      partnership_->holder_address("law-centre"),
      partnership_->CertificateFiles("revoked-agent-law-centre"));
  ASSERT_TRUE(fake.ok()) << fake.status();

  auto sent = Send("rape-crisis", ZoeToLawCentre("revoked-receiver-1"));
  ASSERT_TRUE(sent.ok()) << sent.status();
  const std::string id = sent->referral_id();
  // Delivery is tried (back-off from 0.2 s) and refused at the handshake.
  ASSERT_TRUE(
      partnership_->gateway()
          ->WaitForLog("holder law-centre: refused the holder's agent", 20000)
          .ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_EQ((*fake)->calls(), 0)
      << ::testing::PrintToString((*fake)->methods());
  EXPECT_EQ(Find("rape-crisis", accord::v1::REFERRAL_BOX_OUTBOX, id).second,
            accord::v1::REFERRAL_STATE_SENT);
  EXPECT_EQ(CountAudit(id, "DeliverReferral", accord::v1::AUDIT_DECISION_ALLOW),
            0);

  // The real Law Centre agent on that address gets it, once.
  (*fake)->Stop();
  ASSERT_TRUE(partnership_->StartAgent("law-centre").ok());
  ASSERT_TRUE(WaitFor("rape-crisis", accord::v1::REFERRAL_BOX_OUTBOX, id,
                      accord::v1::REFERRAL_STATE_DELIVERED, 30));
  EXPECT_EQ(Find("law-centre", accord::v1::REFERRAL_BOX_INBOX, id).first, 1);
  EXPECT_EQ(CountAudit(id, "DeliverReferral", accord::v1::AUDIT_DECISION_ALLOW),
            1);
  EXPECT_EQ((*fake)->calls(), 0);
}

// The agent's channel to the gateway, when something else answers at the
// gateway's address: `cert` is what it presents. Returns the status the
// partner's system gets for a referral, and checks that nothing reached the
// impostor and that the caller did not wait for its deadline. The real
// gateway is back afterwards.
grpc::Status SendThroughImpostorGateway(
    TestPartnership* partnership, const std::string& cert,
    const std::function<absl::StatusOr<accord::v1::SendReferralResponse>()>&
        send,
    std::string* accordctl_output) {
  partnership->gateway()->Stop();
  auto fake = CountingServer::Start(partnership->gateway_address(),
                                    partnership->CertificateFiles(cert));
  EXPECT_TRUE(fake.ok()) << fake.status();
  if (!fake.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, "no fake");
  const auto start = std::chrono::steady_clock::now();
  const auto sent = send();
  const auto waited = std::chrono::steady_clock::now() - start;
  // The agent's calls to the gateway have a 10 s deadline and wait for the
  // gateway: the refusal must end them well before (a bound, not a speed
  // target).
  EXPECT_LT(waited, std::chrono::seconds(8));
  // accordctl refuses the impostor too.
  EXPECT_NE(
      partnership->Accordctl("agreements --as org-police", accordctl_output),
      0);
  EXPECT_EQ((*fake)->calls(), 0)
      << ::testing::PrintToString((*fake)->methods());
  (*fake)->Stop();
  EXPECT_TRUE(partnership->StartGateway().ok());
  return sent.ok()
             ? grpc::Status::OK
             : grpc::Status(static_cast<grpc::StatusCode>(sent.status().code()),
                            std::string(sent.status().message()));
}

TEST_F(ReferralIntegrationTest,
       AgentSendsNothingToAGatewayWhoseCertificateIsRevoked) {
  ASSERT_TRUE(partnership_
                  ->IssueCertificate("revoked-gateway",
                                     SpiffeId(partnership_->partnership_id(),
                                              PrincipalKind::kGateway))
                  .ok());
  ASSERT_TRUE(partnership_->RevokeCertificate("revoked-gateway").ok());
  std::string ctl;
  const grpc::Status status = SendThroughImpostorGateway(
      partnership_, "revoked-gateway",
      [&] { return Send("rape-crisis", ZoeToLawCentre("revoked-gateway-1")); },
      &ctl);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(),
            "the gateway presented a revoked certificate");
  EXPECT_THAT(ctl, HasSubstr("the gateway presented a revoked certificate"));
  EXPECT_THAT(partnership_->agent("rape-crisis")->Log(),
              HasSubstr("refused the gateway"));
  // Nothing was recorded as sent.
  for (const auto& v : Box("rape-crisis", accord::v1::REFERRAL_BOX_OUTBOX))
    EXPECT_NE(v.referral().idempotency_key(), "revoked-gateway-1");
  EXPECT_TRUE(SendSucceedsAgain("revoked-gateway-2"));
}

TEST_F(ReferralIntegrationTest, AgentHearsAtOnceThatTheGatewayIdentityIsWrong) {
  // A partnership certificate, but an agent's: not the gateway.
  std::string ctl;
  const grpc::Status status = SendThroughImpostorGateway(
      partnership_, "agent-police",
      [&] { return Send("rape-crisis", ZoeToLawCentre("wrong-gateway-1")); },
      &ctl);
  const std::string p = partnership_->partnership_id();
  const std::string expected = absl::StrCat(
      "the gateway presented the wrong certificate identity: expected "
      "spiffe://",
      p, "/gateway, presented spiffe://", p, "/agent/police");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), expected);
  EXPECT_THAT(ctl, HasSubstr(expected));
  EXPECT_TRUE(SendSucceedsAgain("wrong-gateway-2"));
}

// One watch stream, read on a thread of its own.
class Watcher {
 public:
  Watcher(AgentLocal::Stub* stub, accord::v1::WatchReferralsRequest request) {
    // No deadline: a watch lives until its client ends it.
    ctx_.AddMetadata("x-accord-user", "case-system");
    ctx_.AddMetadata("x-accord-role", "case-management");
    reader_ = stub->WatchReferrals(&ctx_, request);
    thread_ = std::thread([this] {
      accord::v1::ReferralEvent e;
      while (reader_->Read(&e)) {
        absl::MutexLock lock(&mu_);
        events_.push_back(e);
      }
      (void)reader_->Finish();
      absl::MutexLock lock(&mu_);
      ended_ = true;
    });
  }
  ~Watcher() { Stop(); }
  void Stop() {
    if (!thread_.joinable()) return;
    ctx_.TryCancel();
    thread_.join();
  }

  // Waits until an event satisfies `pred`, returning it.
  std::optional<accord::v1::ReferralEvent> WaitFor(
      const std::function<bool(const accord::v1::ReferralEvent&)>& pred,
      absl::Duration timeout = absl::Seconds(30)) {
    absl::MutexLock lock(&mu_);
    std::optional<accord::v1::ReferralEvent> found;
    auto cond = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const auto& e : events_) {
        if (pred(e)) {
          found = e;
          return true;
        }
      }
      return ended_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&cond), timeout);
    return found;
  }
  std::vector<accord::v1::ReferralEvent> Events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  bool Ended() {
    absl::MutexLock lock(&mu_);
    return ended_;
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderInterface<accord::v1::ReferralEvent>>
      reader_;
  absl::Mutex mu_;
  std::vector<accord::v1::ReferralEvent> events_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

bool IsHeartbeat(const accord::v1::ReferralEvent& e) {
  return e.kind() == accord::v1::REFERRAL_EVENT_KIND_HEARTBEAT;
}

TEST_F(ReferralIntegrationTest, WatchResumesFromItsCursorWithOnlyWhatItMissed) {
  auto stub = Local("rape-crisis");
  accord::v1::WatchReferralsRequest req;
  req.set_box(accord::v1::REFERRAL_BOX_OUTBOX);
  req.mutable_heartbeat_interval()->set_seconds(1);
  auto first = std::make_unique<Watcher>(stub.get(), req);
  ASSERT_TRUE(first->WaitFor(IsHeartbeat).has_value()) << "never caught up";

  auto sent = Send("rape-crisis", ZoeToLawCentre("watch-resume-1"));
  ASSERT_TRUE(sent.ok()) << sent.status();
  const std::string id = sent->referral_id();
  auto is = [&id](ReferralState state) {
    return [&id, state](const accord::v1::ReferralEvent& e) {
      return e.kind() == accord::v1::REFERRAL_EVENT_KIND_CHANGED &&
             e.referral().referral().id() == id &&
             e.referral().referral().state() == state;
    };
  };
  auto delivered = first->WaitFor(is(accord::v1::REFERRAL_STATE_DELIVERED));
  ASSERT_TRUE(delivered.has_value()) << "delivery never reached the watch";
  // The client goes away with the cursor of the last event it saw.
  uint64_t cursor = 0;
  for (const auto& e : first->Events()) cursor = std::max(cursor, e.cursor());
  first.reset();

  // Changes while nobody watches.
  ASSERT_TRUE(
      Update("law-centre", id, accord::v1::REFERRAL_STATE_ACKNOWLEDGED).ok());
  ASSERT_TRUE(WaitFor("rape-crisis", accord::v1::REFERRAL_BOX_OUTBOX, id,
                      accord::v1::REFERRAL_STATE_ACKNOWLEDGED));
  ASSERT_TRUE(
      Update("law-centre", id, accord::v1::REFERRAL_STATE_ACCEPTED).ok());
  ASSERT_TRUE(WaitFor("rape-crisis", accord::v1::REFERRAL_BOX_OUTBOX, id,
                      accord::v1::REFERRAL_STATE_ACCEPTED));

  // Resumed from the cursor: exactly the two missed changes, once each.
  req.set_after_cursor(cursor);
  Watcher resumed(stub.get(), req);
  ASSERT_TRUE(resumed.WaitFor(IsHeartbeat).has_value()) << "never caught up";
  std::vector<ReferralState> states;
  uint64_t last = cursor;
  for (const auto& e : resumed.Events()) {
    if (IsHeartbeat(e)) break;
    EXPECT_EQ(e.kind(), accord::v1::REFERRAL_EVENT_KIND_CHANGED);
    EXPECT_GT(e.cursor(), last) << "a repeat or out of order";
    last = e.cursor();
    if (e.referral().referral().id() == id)
      states.push_back(e.referral().referral().state());
  }
  EXPECT_THAT(states,
              ::testing::ElementsAre(accord::v1::REFERRAL_STATE_ACKNOWLEDGED,
                                     accord::v1::REFERRAL_STATE_ACCEPTED));

  // Idle, it stays open (heartbeats every second), and the next change
  // still arrives on it.
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  EXPECT_FALSE(resumed.Ended());
  int heartbeats = 0;
  for (const auto& e : resumed.Events()) heartbeats += IsHeartbeat(e);
  EXPECT_GE(heartbeats, 3);
  ASSERT_TRUE(
      Update("law-centre", id, accord::v1::REFERRAL_STATE_ENGAGED).ok());
  EXPECT_TRUE(
      resumed.WaitFor(is(accord::v1::REFERRAL_STATE_ENGAGED)).has_value());

  // A new watch begins with the state of the referrals open now.
  req.clear_after_cursor();
  Watcher fresh(stub.get(), req);
  auto current = fresh.WaitFor([&id](const accord::v1::ReferralEvent& e) {
    return e.kind() == accord::v1::REFERRAL_EVENT_KIND_CURRENT &&
           e.referral().referral().id() == id;
  });
  ASSERT_TRUE(current.has_value());
  EXPECT_EQ(current->referral().referral().state(),
            accord::v1::REFERRAL_STATE_ENGAGED);
  EXPECT_EQ(current->box(), accord::v1::REFERRAL_BOX_OUTBOX);
}

TEST_F(ReferralIntegrationTest, AccordctlWatchOutlivesTheCallTimeoutWhileIdle) {
  // Every other accordctl call gives up after ACCORD_TIMEOUT (here 1 s); a
  // watch runs until it is ended, kept open by heartbeats.
  Process watch("referral watch",
                {"/usr/bin/env", "ACCORD_TIMEOUT=1", BinDir() + "/accordctl",
                 "referral", "watch", "--box", "outbox", "--heartbeat", "1",
                 "--user", "case-system", "--role", "case-management", "--pki",
                 partnership_->pki(), "--as", "org-rape-crisis", "--agent",
                 partnership_->local_address("rape-crisis")},
                partnership_->dir() + "/logs/accordctl-watch.log");
  ASSERT_TRUE(watch.Start().ok());
  ASSERT_TRUE(watch.WaitForLog("up to date at cursor", 30000).ok())
      << watch.Log();
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));
  EXPECT_TRUE(watch.Running()) << watch.Log();
  auto sent = Send("rape-crisis", ZoeToLawCentre("watch-cli-1"));
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_TRUE(watch
                  .WaitForLog(absl::StrCat(sent->referral_id(),
                                           "  rape-crisis -> "
                                           "law-centre  "),
                              30000)
                  .ok())
      << watch.Log();
  EXPECT_TRUE(watch.Running()) << watch.Log();
  watch.Stop();
}

}  // namespace
}  // namespace accord::testing
