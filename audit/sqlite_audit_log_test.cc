#include "audit/sqlite_audit_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "audit/entry.h"
#include "audit/test_util.h"
#include "audit/verify.h"
#include "runtime/sqlite.h"

namespace accord::audit {
namespace {

using accord::v1::AuditEntry;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::QueryEntry;
using testing::TempDbPath;
using testing::TestSigner;

class SqliteAuditLogTest : public ::testing::Test {
 protected:
  std::unique_ptr<AuditLog> Open() {
    SqliteAuditLogOptions o;
    o.db_path = path_;
    o.signer = signer_;
    o.clock = &clock_;
    o.index_batch = index_batch_;
    auto log = OpenSqliteAuditLog(o);
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? std::move(*log) : nullptr;
  }
  std::vector<uint64_t> Seqs(const EntryPage& page) {
    std::vector<uint64_t> out;
    for (const auto& e : page.entries) out.push_back(e.seq());
    return out;
  }
  absl::Status VerifyExport(AuditLog& log, uint64_t from, uint64_t to) {
    std::string text;
    auto s = log.Export(from, to, ExportFormat::kJsonLines,
                        [&](absl::string_view chunk, const ExportProgress&) {
                          text.append(chunk.data(), chunk.size());
                          return absl::OkStatus();
                        });
    if (!s.ok()) return s;
    auto lines = LinesFromString(text);
    return VerifyJsonlExport(*lines, *verifier_).status();
  }

  // A child appends with 64 requests in flight and reports each seq when
  // on_durable fires; it is SIGKILLed mid-stream. Every reported seq must be
  // in the reopened log, and the log must verify.
  void ReportedEntriesSurviveSigkill(AuditDurability durability);

  std::string path_ = TempDbPath(
      ::testing::UnitTest::GetInstance()->current_test_info()->name());
  FakeClock clock_{absl::FromUnixSeconds(1714550000)};
  size_t index_batch_ = SqliteAuditLogOptions{}.index_batch;
  std::shared_ptr<const TreeHeadSigner> signer_ = TestSigner();
  std::unique_ptr<TreeHeadVerifier> verifier_ = testing::VerifierFor(*signer_);
};

TEST_F(SqliteAuditLogTest, AppendAssignsSeqAndTime) {
  auto log = Open();
  EXPECT_EQ(*log->AppendAndWait(QueryEntry("police", "pc1", "safeguarding")),
            0u);
  clock_.Advance(absl::Seconds(5));
  EXPECT_EQ(*log->AppendAndWait(QueryEntry("police", "pc2", "safeguarding")),
            1u);
  auto e = log->GetEntry(1);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->seq(), 1u);
  EXPECT_EQ(FromProtoTime(e->time()), clock_.Now());
  EXPECT_EQ(e->actor().user_id(), "pc2");
  EXPECT_EQ(log->Size(), 2u);
  EXPECT_EQ(log->GetEntry(2).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SqliteAuditLogTest,
       RefusesAnEntryThatCannotBeEncodedWithoutConsumingASeq) {
  auto log = Open();
  AuditEntry bad = QueryEntry("police", "pc1", "x");
  bad.set_detail("\xff\xfe not utf-8");
  auto r = log->AppendAndWait(bad);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*log->AppendAndWait(QueryEntry("police", "pc1", "x")), 0u);
}

TEST_F(SqliteAuditLogTest, ConcurrentAppendsGetDistinctContiguousSeqs) {
  auto log = Open();
  constexpr int kThreads = 16, kPerThread = 100;
  absl::Mutex mu;
  std::vector<uint64_t> seqs;
  std::atomic<int> callbacks{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (i % 2 == 0) {
          auto s =
              log->AppendAndWait(QueryEntry("org", absl::StrCat("u", t), "p"));
          ASSERT_TRUE(s.ok());
          callbacks++;
          absl::MutexLock l(&mu);
          seqs.push_back(*s);
        } else {
          log->Append(QueryEntry("org", absl::StrCat("u", t), "p"),
                      [&](absl::StatusOr<uint64_t> s) {
                        ASSERT_TRUE(s.ok());
                        callbacks++;
                        absl::MutexLock l(&mu);
                        seqs.push_back(*s);
                      });
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  auto head = log->SignTreeHeadNow();  // after every queued append
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->tree_size(), uint64_t{kThreads * kPerThread});
  // The head covers every entry; the last callbacks may still be running on
  // the completion thread.
  absl::MutexLock l(&mu);
  auto all_called = [&] {
    return seqs.size() == size_t{kThreads * kPerThread};
  };
  mu.AwaitWithTimeout(absl::Condition(&all_called), absl::Seconds(30));
  EXPECT_EQ(callbacks.load(), kThreads * kPerThread);
  std::sort(seqs.begin(), seqs.end());
  ASSERT_EQ(seqs.size(), size_t{kThreads * kPerThread});
  for (size_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], i);
  EXPECT_TRUE(VerifyExport(*log, 0, 0).ok());
}

TEST_F(SqliteAuditLogTest, RestartContinuesTheSequenceAndTheRoot) {
  accord::v1::SignedTreeHead first;
  {
    auto log = Open();
    for (int i = 0; i < 300; ++i)
      ASSERT_TRUE(log->AppendAndWait(QueryEntry("o", "u", "p")).ok());
    first = *log->SignTreeHeadNow();
    ASSERT_TRUE(
        log->AppendAndWait(QueryEntry("o", "u", "p")).ok());  // unsigned tail
  }
  auto log = Open();
  EXPECT_EQ(log->Size(), 301u);
  EXPECT_EQ(*log->AppendAndWait(QueryEntry("o", "u", "p")), 301u);
  auto second = log->SignTreeHeadNow();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->tree_size(), 302u);
  auto proof = log->ConsistencyProof(first.tree_size(), second->tree_size());
  ASSERT_TRUE(proof.ok());
  EXPECT_TRUE(VerifyConsistencyProof(*proof, first, *second, *verifier_).ok());
  EXPECT_TRUE(VerifyExport(*log, 0, 0).ok());
  // The root is that of the leaves as stored.
  std::vector<Hash> leaves;
  for (uint64_t i = 0; i < 302; ++i)
    leaves.push_back(LeafHash(*log->GetLeaf(i)));
  EXPECT_EQ(AsBytes(RootOfLeafHashes(leaves)), second->root_hash());
}

TEST_F(SqliteAuditLogTest, TreeHeadsAndProofs) {
  auto log = Open();
  auto empty = log->LatestTreeHead();  // signed on demand
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->tree_size(), 0u);
  EXPECT_EQ(empty->root_hash(), std::string(AsBytes(EmptyRoot())));
  for (int i = 0; i < 37; ++i)
    ASSERT_TRUE(log->AppendAndWait(QueryEntry("o", "u", "p")).ok());
  auto head = log->SignTreeHeadNow();
  ASSERT_TRUE(head.ok());
  EXPECT_TRUE(verifier_->Verify(*head).ok());
  EXPECT_EQ(log->LatestTreeHead()->tree_size(), 37u);
  for (uint64_t i = 0; i < 37; ++i) {
    auto proof = log->InclusionProof(i, 0);
    ASSERT_TRUE(proof.ok());
    EXPECT_EQ(proof->tree_size(), 37u);
    const std::string leaf = *log->GetLeaf(i);
    EXPECT_TRUE(VerifyInclusionProof(*proof, leaf, *head, *verifier_).ok())
        << i;
    EXPECT_TRUE(
        VerifyProofBundle(InclusionProofBundle(*proof, leaf, *head), *verifier_)
            .ok());
  }
  auto h20 = log->TreeHeadAt(20);
  ASSERT_TRUE(h20.ok());
  auto proof = log->ConsistencyProof(20, 37);
  ASSERT_TRUE(proof.ok());
  EXPECT_TRUE(
      VerifyProofBundle(ConsistencyProofBundle(*proof, *h20, *head), *verifier_)
          .ok());
  EXPECT_EQ(log->InclusionProof(37, 37).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(log->InclusionProof(0, 38).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(log->ConsistencyProof(30, 20).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SqliteAuditLogTest, TreeHeadSignedWithinAnIntervalWhileEntriesArrive) {
  SqliteAuditLogOptions o;
  o.db_path = path_;
  o.signer = signer_;
  o.clock = &clock_;
  o.tree_head_interval = absl::Milliseconds(50);
  auto log = OpenSqliteAuditLog(o);
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE((*log)->AppendAndWait(QueryEntry("o", "u", "p")).ok());
  ASSERT_TRUE((*log)->AppendAndWait(QueryEntry("o", "u", "p")).ok());
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ((*log)->LatestTreeHead()->tree_size(), 2u);
}

// Searches must give the same answers whether the entries are in the bulk
// user/subject index, still waiting for it, or split between the two.
class SqliteAuditLogSearchTest : public SqliteAuditLogTest,
                                 public ::testing::WithParamInterface<size_t> {
 protected:
  SqliteAuditLogSearchTest() { index_batch_ = GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(IndexBatch, SqliteAuditLogSearchTest,
                         ::testing::Values(1, 4, 7, 1000000));

TEST_P(SqliteAuditLogSearchTest, SearchFiltersAndPages) {
  auto log = Open();
  const std::string tok_a(64, 'a'), tok_b(64, 'b');
  for (int i = 0; i < 30; ++i) {
    AuditEntry e = QueryEntry(
        i % 3 == 0 ? "police" : "council", absl::StrCat("u", i % 2),
        i % 5 == 0 ? "risk" : "safeguarding", i % 4 == 0 ? tok_a : tok_b);
    if (i % 7 == 0) e.set_decision(accord::v1::AUDIT_DECISION_DENY);
    if (i == 11) e.set_agreement_id("isa-2");
    ASSERT_TRUE(log->AppendAndWait(e).ok());
    clock_.Advance(absl::Minutes(1));
  }
  AuditQuery q;
  q.caller_org = "police";
  auto page = log->Search(q, {});
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(Seqs(*page), ElementsAre(0, 3, 6, 9, 12, 15, 18, 21, 24, 27));
  EXPECT_TRUE(page->next_page_token.empty());

  q.user_id = "u1";
  EXPECT_THAT(Seqs(*log->Search(q, {})), ElementsAre(3, 9, 15, 21, 27));
  q = {};
  q.purpose = "risk";
  q.decision = accord::v1::AUDIT_DECISION_DENY;
  EXPECT_THAT(Seqs(*log->Search(q, {})), ElementsAre(0));
  q = {};
  q.agreement_id = "isa-2";
  EXPECT_THAT(Seqs(*log->Search(q, {})), ElementsAre(11));
  q = {};
  q.from = absl::FromUnixSeconds(1714550000) + absl::Minutes(10);
  q.until = absl::FromUnixSeconds(1714550000) + absl::Minutes(13);
  EXPECT_THAT(Seqs(*log->Search(q, {})), ElementsAre(10, 11, 12));
  q = {};
  q.subject.set_value(tok_a);
  q.caller_org = "council";
  EXPECT_THAT(Seqs(*log->Search(q, {})), ElementsAre(4, 8, 16, 20, 28));
  q.subject.set_kind(accord::v1::TOKEN_KIND_NHS_NUMBER);
  EXPECT_TRUE(log->Search(q, {})->entries.empty());

  // Paging through everything, 7 at a time.
  std::vector<uint64_t> all;
  PageRequest p{7, ""};
  int pages = 0;
  do {
    auto got = log->Search({}, p);
    ASSERT_TRUE(got.ok());
    ++pages;
    EXPECT_LE(got->entries.size(), 7u);
    for (auto s : Seqs(*got)) all.push_back(s);
    p.page_token = got->next_page_token;
  } while (!p.page_token.empty());
  EXPECT_EQ(pages, 5);
  EXPECT_EQ(all.size(), 30u);
  EXPECT_EQ(all.back(), 29u);
  EXPECT_EQ(log->Search({}, {5000, ""})->entries.size(),
            30u);  // capped, not refused
  EXPECT_THAT(log->Search({}, {0, "garbage"}).status().message(),
              HasSubstr("page_token"));
}

TEST_P(SqliteAuditLogSearchTest, SubjectAccessFindsEveryMention) {
  auto log = Open();
  const std::string a(64, 'a'), b(64, 'b'), c(64, 'c');
  AuditEntry both = QueryEntry("police", "u", "p", a);
  both.add_subjects()->set_value(b);
  ASSERT_TRUE(log->AppendAndWait(QueryEntry("police", "u", "p", a)).ok());  // 0
  ASSERT_TRUE(log->AppendAndWait(QueryEntry("police", "u", "p", c)).ok());  // 1
  ASSERT_TRUE(log->AppendAndWait(both).ok());                               // 2
  ASSERT_TRUE(log->AppendAndWait(QueryEntry("police", "u", "p", b)).ok());  // 3
  accord::v1::SubjectToken ta, tb;
  ta.set_value(a);
  tb.set_value(b);
  tb.set_kind(accord::v1::TOKEN_KIND_UNSPECIFIED);
  EXPECT_THAT(Seqs(*log->SubjectAccess({ta, tb}, {})), ElementsAre(0, 2, 3));
  ta.set_kind(accord::v1::TOKEN_KIND_NAME_DOB);
  EXPECT_THAT(Seqs(*log->SubjectAccess({ta}, {})), ElementsAre(0, 2));
  EXPECT_EQ(log->SubjectAccess({}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(SqliteAuditLogSearchTest, SearchesSpanEpochsAndRestarts) {
  // An analyst's entries at seq 0..69 and 65530..65545, across the first
  // epoch boundary (65536) and a restart at it; filler from another user in
  // between. Appended without waiting, so that commits are shared; one
  // thread, so seq follows the order of the calls.
  const std::string tok(64, 'd');
  auto mine = [](uint64_t i) { return i < 70 || i >= 65530; };
  auto append_range = [&](AuditLog& log, uint64_t from, uint64_t to) {
    absl::BlockingCounter left(static_cast<int>(to - from));
    std::atomic<bool> in_order{true};
    for (uint64_t i = from; i < to; ++i) {
      log.Append(QueryEntry("police", mine(i) ? "analyst" : "other", "p",
                            mine(i) && i % 2 == 0 ? tok : std::string(64, 'e')),
                 [&, i](absl::StatusOr<uint64_t> seq) {
                   if (!seq.ok() || *seq != i) in_order = false;
                   left.DecrementCount();
                 });
    }
    left.Wait();
    EXPECT_TRUE(in_order);
  };
  append_range(*Open(), 0, 65536);
  auto log = Open();  // rebuilds what was not yet in the bulk index
  append_range(*log, 65536, 65546);
  std::vector<uint64_t> want, even;
  for (uint64_t i = 0; i < 65546; ++i) {
    if (!mine(i)) continue;
    want.push_back(i);
    if (i % 2 == 0) even.push_back(i);
  }

  AuditQuery q;
  q.user_id = "analyst";
  std::vector<uint64_t> got;
  PageRequest p{9, ""};
  do {
    auto page = log->Search(q, p);
    ASSERT_TRUE(page.ok()) << page.status();
    for (auto s : Seqs(*page)) got.push_back(s);
    p.page_token = page->next_page_token;
  } while (!p.page_token.empty());
  EXPECT_EQ(got, want);

  accord::v1::SubjectToken t;
  t.set_value(tok);
  got.clear();
  p = {1000, ""};
  do {
    auto page = log->SubjectAccess({t}, p);
    ASSERT_TRUE(page.ok()) << page.status();
    for (auto s : Seqs(*page)) got.push_back(s);
    p.page_token = page->next_page_token;
  } while (!p.page_token.empty());
  EXPECT_EQ(got, even);
}

TEST_P(SqliteAuditLogSearchTest, SearchWhileAppendingSeesAPrefix) {
  // While entries arrive (and bulk index writes happen), every answer is the
  // first n matching entries for some n: nothing skipped, nothing twice.
  constexpr int kEntries = 3000;
  auto log = Open();
  std::atomic<bool> done{false};
  std::thread writer([&] {
    absl::BlockingCounter left(kEntries);
    for (int i = 0; i < kEntries; ++i) {
      log->Append(QueryEntry("police", i % 3 ? "analyst" : "other", "p"),
                  [&](absl::StatusOr<uint64_t>) { left.DecrementCount(); });
    }
    left.Wait();
    done = true;
  });
  auto expected_prefix = [](const std::vector<uint64_t>& got) {
    uint64_t want = 1;  // seq 0 is "other"
    for (uint64_t s : got) {
      if (s != want) return false;
      want += want % 3 == 2 ? 2 : 1;
    }
    return true;
  };
  AuditQuery q;
  q.user_id = "analyst";
  int searches = 0;
  while (!done || searches == 0) {
    auto page = log->Search(q, {1000, ""});
    ASSERT_TRUE(page.ok()) << page.status();
    ASSERT_TRUE(expected_prefix(Seqs(*page))) << "search " << searches;
    ++searches;
  }
  writer.join();
  auto page = log->Search(q, {1000, ""});
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->entries.size(), 1000u);
  EXPECT_TRUE(expected_prefix(Seqs(*page)));
}

TEST_F(SqliteAuditLogTest, UpgradesAVersionOneLog) {
  // A version-1 log: subject tokens in entry_subjects, users in an index on
  // entries. Built by taking a fully indexed log back to that layout.
  index_batch_ = 1;
  const std::string a(64, 'a');
  {
    auto log = Open();
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(
          log->AppendAndWait(QueryEntry("police", absl::StrCat("u", i % 3), "p",
                                        i % 4 ? a : ""))
              .ok());
    }
  }
  {
    auto db = sqlite::Database::Open(path_);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(
        (*db)
            ->Exec("CREATE TABLE entry_subjects(value TEXT NOT NULL,"
                   " kind INTEGER NOT NULL, seq INTEGER NOT NULL,"
                   " PRIMARY KEY (value, kind, seq)) WITHOUT ROWID;"
                   "INSERT INTO entry_subjects SELECT key, tag - 1, seq"
                   " FROM entry_keys WHERE tag > 0;"
                   "CREATE INDEX entries_by_user ON entries(user_id, seq);"
                   "DROP TABLE entry_keys; DROP TABLE index_state;"
                   "PRAGMA user_version=1")
            .ok());
  }
  index_batch_ = 1000;
  auto log = Open();
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(
      log->AppendAndWait(QueryEntry("police", "u1", "p", a)).ok());  // 20
  AuditQuery q;
  q.user_id = "u1";
  EXPECT_THAT(Seqs(*log->Search(q, {})),
              ElementsAre(1, 4, 7, 10, 13, 16, 19, 20));
  accord::v1::SubjectToken t;
  t.set_value(a);
  EXPECT_THAT(
      Seqs(*log->SubjectAccess({t}, {})),
      ElementsAre(1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, 17, 18, 19, 20));
}

TEST_F(SqliteAuditLogTest, ReviewQueueAndMarkReviewed) {
  auto log = Open();
  for (int i = 0; i < 6; ++i) {
    AuditEntry e = QueryEntry("police", "u", "risk");
    if (i % 2 == 1) {
      e.set_flag_for_review(true);
      e.set_no_consent_justification("risk of serious harm");
    }
    ASSERT_TRUE(log->AppendAndWait(e).ok());
  }
  EXPECT_THAT(Seqs(*log->ReviewQueue({})), ElementsAre(1, 3, 5));
  Reviewer jo{"spiffe://test/auditor/jo", "", {}, "rq-9", ""};
  jo.actor.set_user_id("jo");
  auto seq = log->MarkReviewedAndWait(3, jo, "proportionate; approved by DI");
  ASSERT_TRUE(seq.ok()) << seq.status();
  EXPECT_EQ(*seq, 6u);
  auto review = log->GetEntry(6);
  ASSERT_TRUE(review.ok());
  EXPECT_EQ(review->method(), "MarkReviewed");
  EXPECT_EQ(review->reviews_seq(), 3u);
  EXPECT_EQ(review->review_note(), "proportionate; approved by DI");
  EXPECT_EQ(review->caller(), "spiffe://test/auditor/jo");
  EXPECT_THAT(Seqs(*log->ReviewQueue({})), ElementsAre(1, 5));

  auto again = log->MarkReviewedAndWait(3, jo, "again");
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(
      again.status().message(),
      HasSubstr(
          "audit entry 3 was already reviewed (review recorded in entry 6)"));
  auto unflagged = log->MarkReviewedAndWait(2, jo, "n");
  EXPECT_EQ(unflagged.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(unflagged.status().message(),
              HasSubstr("not flagged for review"));
  auto unknown = log->MarkReviewedAndWait(99, jo, "n");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(log->Size(), 7u);  // refused reviews append nothing

  // Two concurrent reviews of the same entry: exactly one wins.
  std::atomic<int> ok{0}, refused{0};
  absl::BlockingCounter answered(2);
  for (int i = 0; i < 2; ++i) {
    log->MarkReviewed(5, jo, "race", [&](absl::StatusOr<uint64_t> s) {
      (s.ok() ? ok : refused)++;
      answered.DecrementCount();
    });
  }
  answered.Wait();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(refused.load(), 1);
  // Reviewed state survives a restart.
  log.reset();
  log = Open();
  EXPECT_THAT(Seqs(*log->ReviewQueue({})), ElementsAre(1));
}

TEST_F(SqliteAuditLogTest, ExportsJsonLinesAndCsv) {
  auto log = Open();
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(
        log->AppendAndWait(QueryEntry("police", absl::StrCat("u", i), "p"))
            .ok());
  }
  ASSERT_TRUE(log->SignTreeHeadNow().ok());
  std::string text;
  std::vector<ExportProgress> progress;
  ASSERT_TRUE(
      log->Export(0, 0, ExportFormat::kJsonLines,
                  [&](absl::string_view chunk, const ExportProgress& p) {
                    text.append(chunk.data(), chunk.size());
                    progress.push_back(p);
                    return absl::OkStatus();
                  })
          .ok());
  EXPECT_GT(progress.size(), 2u);  // streamed in chunks
  EXPECT_EQ(progress.back().entries_so_far, 2000u);
  EXPECT_EQ(progress.back().entries_total, 2000u);
  auto lines = LinesFromString(text);
  auto summary = VerifyJsonlExport(*lines, *verifier_);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->to_seq, 2000u);

  EXPECT_TRUE(VerifyExport(*log, 700, 1500).ok());  // partial, with its prefix
  EXPECT_TRUE(VerifyExport(*log, 2000, 2000).ok());

  std::string csv;
  ASSERT_TRUE(log->Export(10, 20, ExportFormat::kCsv,
                          [&](absl::string_view chunk, const ExportProgress&) {
                            csv.append(chunk.data(), chunk.size());
                            return absl::OkStatus();
                          })
                  .ok());
  std::vector<std::string> rows =
      absl::StrSplit(csv, "\r\n", absl::SkipEmpty());
  ASSERT_EQ(rows.size(), 11u);
  EXPECT_EQ(rows[0] + "\r\n", CsvHeader());
  EXPECT_THAT(rows[1], ::testing::StartsWith("10,"));

  EXPECT_EQ(log->Export(5, 3000, ExportFormat::kJsonLines,
                        [](absl::string_view, const ExportProgress&) {
                          return absl::OkStatus();
                        })
                .code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(log->Export(0, 0, ExportFormat::kJsonLines,
                        [](absl::string_view, const ExportProgress&) {
                          return absl::CancelledError("client went away");
                        })
                .code(),
            absl::StatusCode::kCancelled);
}

void SqliteAuditLogTest::ReportedEntriesSurviveSigkill(
    AuditDurability durability) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    SqliteAuditLogOptions o;
    o.db_path = path_;
    o.signer = signer_;
    o.durability = durability;
    SystemClock clock;
    o.clock = &clock;
    auto log = OpenSqliteAuditLog(o);
    if (!log.ok()) _exit(2);
    std::atomic<int> in_flight{0};
    for (int i = 0;; ++i) {
      while (in_flight.load() > 64) std::this_thread::yield();
      in_flight++;
      (*log)->Append(QueryEntry("police", absl::StrCat("u", i), "p"),
                     [&](absl::StatusOr<uint64_t> s) {
                       if (s.ok()) {
                         const uint64_t v = *s;
                         if (write(fds[1], &v, sizeof(v)) != sizeof(v))
                           _exit(3);
                       }
                       in_flight--;
                     });
    }
  }
  close(fds[1]);
  std::vector<uint64_t> reported;
  uint64_t v;
  while (reported.size() < 3000 && read(fds[0], &v, sizeof(v)) == sizeof(v)) {
    reported.push_back(v);
  }
  kill(pid, SIGKILL);
  int status;
  waitpid(pid, &status, 0);
  // Drain what was reported before the kill landed.
  while (read(fds[0], &v, sizeof(v)) == sizeof(v)) reported.push_back(v);
  close(fds[0]);
  ASSERT_TRUE(WIFSIGNALED(status));
  ASSERT_GE(reported.size(), 3000u);

  auto log = Open();
  ASSERT_NE(log, nullptr);
  const uint64_t max = *std::max_element(reported.begin(), reported.end());
  EXPECT_GT(log->Size(), max);
  for (uint64_t s : reported) ASSERT_TRUE(log->GetEntry(s).ok()) << s;
  ASSERT_TRUE(log->SignTreeHeadNow().ok());
  EXPECT_TRUE(VerifyExport(*log, 0, 0).ok());
}

TEST_F(SqliteAuditLogTest, EveryEntryReportedDurableSurvivesSigkill) {
  ReportedEntriesSurviveSigkill(AuditDurability::kPowerLoss);
}

// The process-crash mode promises exactly this much (not power loss).
TEST_F(SqliteAuditLogTest, ProcessCrashModeSurvivesSigkill) {
  ReportedEntriesSurviveSigkill(AuditDurability::kProcessCrash);
}

}  // namespace
}  // namespace accord::audit
