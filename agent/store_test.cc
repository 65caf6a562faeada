// The agent store's schema upgrades: a store written by an earlier version of
// the agent opens with everything it held, on a real SQLite file.

#include "agent/store.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/local_api.h"
#include "agent/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "linkage/tokens.h"
#include "runtime/sqlite.h"

namespace accord::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::SizeIs;

// Schema version 3 kept tokens as 64 hex characters; version 4 keeps their
// 32 bytes.
constexpr int kHexTokenVersion = 3;

class StoreMigrationTest : public ::testing::Test {
 protected:
  StoreMigrationTest()
      : dir_(testing::FreshDir("store_migration")),
        path_(dir_ + "/agent.db"),
        key_(*linkage::LinkageKey::FromBytes(std::string(32, 'k'))) {}
  ~StoreMigrationTest() override { std::filesystem::remove_all(dir_); }

  // A store as version 3 of the schema left it.
  std::unique_ptr<sqlite::Database> OpenVersion3() {
    auto db = sqlite::Database::Open(path_);
    EXPECT_TRUE(db.ok()) << db.status();
    const auto& all = AgentStoreMigrations();
    EXPECT_GT(all.size(), static_cast<size_t>(kHexTokenVersion));
    const std::vector<std::string> v3(all.begin(),
                                      all.begin() + kHexTokenVersion);
    EXPECT_TRUE((*db)->Migrate(v3).ok());
    return std::move(*db);
  }

  // Writes subject `local_id` with its tokens (as hex text) and a consent,
  // the way version 3 of the store did.
  std::vector<accord::v1::SubjectToken> WriteVersion3Subject(
      sqlite::Database& db, const std::string& local_id,
      const std::string& family_name) {
    accord::v1::Subject subject;
    subject.set_local_id(local_id);
    (*subject.mutable_fields())["given_name"] = "Nadia";
    (*subject.mutable_fields())["family_name"] = family_name;
    (*subject.mutable_fields())["date_of_birth"] = "1992-02-29";
    (*subject.mutable_fields())["postcode"] = "LS6 2AB";
    linkage::IdentifierSet ids;
    ids.given_name = "Nadia";
    ids.family_name = family_name;
    ids.date_of_birth = "1992-02-29";
    ids.postcode = "LS6 2AB";
    auto tokens = linkage::DeriveTokens(key_, ids);
    EXPECT_TRUE(tokens.ok());
    EXPECT_THAT(*tokens, SizeIs(2));
    auto ins = db.Prepare(
        "INSERT INTO subjects(local_id, body, updated_at) VALUES(?,?,0)");
    EXPECT_TRUE(ins.ok());
    ins->Bind(1, local_id).BindBlob(2, subject.SerializeAsString());
    EXPECT_TRUE(ins->Run().ok());
    const int64_t id = db.LastInsertRowId();
    for (const auto& t : *tokens) {
      auto tok = db.Prepare(
          "INSERT INTO subject_tokens(token, kind, subject_id) VALUES(?,?,?)");
      EXPECT_TRUE(tok.ok());
      tok->Bind(1, t.value())
          .Bind(2, static_cast<int64_t>(t.kind()))
          .Bind(3, id);
      EXPECT_TRUE(tok->Run().ok());
    }
    accord::v1::ConsentRecord consent;
    consent.set_id("C-" + local_id);
    consent.set_subject_local_id(local_id);
    consent.add_granted_to_orgs("vol-b");
    consent.add_purposes("support");
    consent.set_recorded_by("ISVA Isla Vance");
    auto c =
        db.Prepare("INSERT INTO consents(id, subject_id, body) VALUES(?,?,?)");
    EXPECT_TRUE(c.ok());
    c->Bind(1, consent.id())
        .Bind(2, id)
        .BindBlob(3, consent.SerializeAsString());
    EXPECT_TRUE(c->Run().ok());
    return *tokens;
  }

  int64_t SchemaVersion() {
    auto db = sqlite::Database::Open(path_);
    EXPECT_TRUE(db.ok());
    auto q = (*db)->Prepare("PRAGMA user_version");
    EXPECT_TRUE(q.ok());
    EXPECT_TRUE(q->Next().ok());
    return q->Int(0);
  }

  std::string dir_;
  std::string path_;
  linkage::LinkageKey key_;
};

TEST_F(StoreMigrationTest, Version3StoreUpgradesWithItsTokensStillMatching) {
  std::vector<accord::v1::SubjectToken> kaur, shah;
  {
    auto db = OpenVersion3();
    kaur = WriteVersion3Subject(*db, "WC-1", "Kaur");
    shah = WriteVersion3Subject(*db, "WC-2", "Shah");
  }
  ASSERT_EQ(SchemaVersion(), kHexTokenVersion);

  auto store = AgentStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(SchemaVersion(),
            static_cast<int64_t>(AgentStoreMigrations().size()));

  // Every token is still there, read back in its hex form, and still finds
  // its person (and only her).
  auto tokens = (*store)->TokensOf("WC-1");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  ASSERT_THAT(*tokens, SizeIs(2));
  for (size_t i = 0; i < kaur.size(); ++i) {
    EXPECT_EQ((*tokens)[i].value(), kaur[i].value());
    EXPECT_EQ((*tokens)[i].kind(), kaur[i].kind());
  }
  auto kaur_ids = (*store)->FindByToken(kaur[0]);
  auto shah_ids = (*store)->FindByToken(shah[0]);
  ASSERT_TRUE(kaur_ids.ok());
  ASSERT_TRUE(shah_ids.ok());
  ASSERT_THAT(*kaur_ids, SizeIs(1));
  ASSERT_THAT(*shah_ids, SizeIs(1));
  EXPECT_NE((*kaur_ids)[0], (*shah_ids)[0]);
  // Kept as the token's 32 bytes.
  {
    auto db = sqlite::Database::Open(path_);
    ASSERT_TRUE(db.ok());
    auto q = (*db)->Prepare(
        "SELECT count(*) FROM subject_tokens WHERE typeof(token) = 'blob' "
        "AND length(token) = 32");
    ASSERT_TRUE(q.ok());
    ASSERT_TRUE(q->Next().ok());
    EXPECT_EQ(q->Int(0), 4);
  }
  // The person's consent came through unchanged.
  auto consents = (*store)->Consents("WC-1");
  ASSERT_TRUE(consents.ok());
  ASSERT_THAT(*consents, SizeIs(1));
  EXPECT_EQ((*consents)[0].recorded_by(), "ISVA Isla Vance");

  // The upgraded store takes writes: new identifiers replace the old tokens.
  accord::v1::Subject renamed;
  renamed.set_local_id("WC-1");
  (*renamed.mutable_fields())["given_name"] = "Nadia";
  (*renamed.mutable_fields())["family_name"] = "Kaur-Bell";
  (*renamed.mutable_fields())["date_of_birth"] = "1992-02-29";
  linkage::IdentifierSet ids;
  ids.given_name = "Nadia";
  ids.family_name = "Kaur-Bell";
  ids.date_of_birth = "1992-02-29";
  auto fresh = linkage::DeriveTokens(key_, ids);
  ASSERT_TRUE(fresh.ok());
  ASSERT_TRUE((*store)
                  ->Write([&](AgentStore::Writer& w) -> absl::Status {
                    return w.UpsertSubject(renamed, *fresh).status();
                  })
                  .ok());
  EXPECT_THAT(*(*store)->FindByToken(kaur[0]), SizeIs(0));
  EXPECT_THAT(*(*store)->FindByToken((*fresh)[0]), ElementsAre((*kaur_ids)[0]));
  EXPECT_THAT(*(*store)->FindByToken(shah[0]), ElementsAre((*shah_ids)[0]));
}

TEST_F(StoreMigrationTest,
       AMalformedStoredTokenStopsTheUpgradeAndLosesNothing) {
  {
    auto db = OpenVersion3();
    WriteVersion3Subject(*db, "WC-1", "Kaur");
    ASSERT_TRUE(db->Exec("INSERT INTO subject_tokens(token, kind, subject_id) "
                         "VALUES('not-a-token', 1, 1)")
                    .ok());
  }
  auto store = AgentStore::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(std::string(store.status().message()),
              ::testing::HasSubstr("not 64 hex digits"));
  // Still version 3, every token as it was.
  EXPECT_EQ(SchemaVersion(), kHexTokenVersion);
  auto db = sqlite::Database::Open(path_);
  ASSERT_TRUE(db.ok());
  auto q = (*db)->Prepare("SELECT count(*) FROM subject_tokens");
  ASSERT_TRUE(q.ok());
  ASSERT_TRUE(q->Next().ok());
  EXPECT_EQ(q->Int(0), 3);
}

TEST(StoreTokensTest, AValueNotShapedLikeATokenMatchesNobody) {
  testing::AgentFixture f("store_tokens");
  accord::v1::SubjectToken token;
  token.set_kind(accord::v1::TOKEN_KIND_NHS_NUMBER);
  for (const char* value : {"", "abc", "not hex at all",
                            "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789"
                            "ABCDEF0123456789"}) {
    token.set_value(value);
    auto ids = f.store->FindByToken(token);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_THAT(*ids, SizeIs(0)) << value;
  }
}

TEST(StoreWriterTest, NeverStoresWhatItCouldNotReadBack) {
  testing::AgentFixture f("store_reads_back");
  accord::v1::Subject subject;
  subject.set_local_id("S-1");
  (*subject.mutable_fields())["given_name"] = "Ann";
  auto tokens = PrepareSubject(*f.key, &subject);
  ASSERT_FALSE(tokens.ok());  // no token from a name alone
  (*subject.mutable_fields())["nhs_number"] = "943 476 5919";
  tokens = PrepareSubject(*f.key, &subject);
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  ASSERT_TRUE(f.store
                  ->Write([&](AgentStore::Writer& w) {
                    return w.UpsertSubject(subject, *tokens).status();
                  })
                  .ok());
  accord::v1::Record record;
  record.set_local_id("R-1");
  record.set_subject_local_id("S-1");
  record.set_category(accord::v1::DATA_CATEGORY_NEEDS);
  record.set_text("\xff\xfe");
  accord::v1::Engagement engagement;
  engagement.set_subject_local_id("S-1");
  engagement.set_service("isva");
  engagement.add_needs("hous\xc3");
  accord::v1::Subject renamed = subject;
  (*renamed.mutable_fields())["family_name"] = "\xc0\xaf";  // overlong '/'
  const std::vector<
      std::pair<std::string, std::function<absl::Status(AgentStore::Writer&)>>>
      writes = {
          {"record",
           [&](AgentStore::Writer& w) {
             return w.UpsertRecord(record).status();
           }},
          {"engagement",
           [&](AgentStore::Writer& w) {
             return w.RecordEngagement(engagement).status();
           }},
          {"subject",
           [&](AgentStore::Writer& w) {
             return w.UpsertSubject(renamed, *tokens).status();
           }},
      };
  for (const auto& [what, write] : writes) {
    absl::Status s = f.store->Write(write);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << what;
    EXPECT_THAT(std::string(s.message()),
                ::testing::StartsWith(what + ": not stored"));
  }
  // Nothing of them was written; the person still reads back whole.
  auto ids = f.store->FindByToken((*tokens)[0]);
  ASSERT_TRUE(ids.ok());
  ASSERT_THAT(*ids, SizeIs(1));
  auto view = f.store->LoadSubject((*ids)[0], true);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_THAT(view->records, SizeIs(0));
  EXPECT_THAT(view->skipped, SizeIs(0));
  EXPECT_EQ(view->subject.fields().count("family_name"), 0u);
  EXPECT_THAT(*f.store->EngagementsOf((*ids)[0]), SizeIs(0));
}

}  // namespace
}  // namespace accord::agent
