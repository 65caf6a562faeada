#include "audit/verify.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "audit/entry.h"
#include "audit/export_format.h"
#include "audit/test_util.h"
#include "runtime/clock.h"

namespace accord::audit {
namespace {

using ::testing::HasSubstr;
using testing::QueryEntry;

class VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SqliteAuditLogOptions o;
    o.db_path = testing::TempDbPath(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    o.signer = signer_;
    o.clock = &clock_;
    auto log = OpenSqliteAuditLog(o);
    ASSERT_TRUE(log.ok());
    log_ = std::move(*log);
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(
          log_->AppendAndWait(QueryEntry("police", absl::StrCat("u", i), "p"))
              .ok());
    }
    ASSERT_TRUE(log_->SignTreeHeadNow().ok());
    lines_ = ExportLines(0, 0);
  }
  std::vector<std::string> ExportLines(uint64_t from, uint64_t to) {
    std::string text;
    EXPECT_TRUE(log_->Export(from, to, ExportFormat::kJsonLines,
                             [&](absl::string_view c, const ExportProgress&) {
                               text.append(c.data(), c.size());
                               return absl::OkStatus();
                             })
                    .ok());
    return absl::StrSplit(text, '\n', absl::SkipEmpty());
  }
  absl::Status Verify(const std::vector<std::string>& lines,
                      const TreeHeadVerifier* key = nullptr) {
    const std::string text = absl::StrJoin(lines, "\n");
    auto src = LinesFromString(text);
    return VerifyJsonlExport(*src, key ? *key : *verifier_).status();
  }
  // lines_[0] is the header, lines_[1 + seq] the entry rows.
  std::string& Row(int seq) { return lines_[1 + seq]; }

  FakeClock clock_{absl::FromUnixSeconds(1714550000)};
  std::shared_ptr<const TreeHeadSigner> signer_ = testing::TestSigner();
  std::unique_ptr<TreeHeadVerifier> verifier_ = testing::VerifierFor(*signer_);
  std::unique_ptr<AuditLog> log_;
  std::vector<std::string> lines_;
};

TEST_F(VerifyTest, IntactExportVerifies) {
  ASSERT_EQ(lines_.size(), 52u);
  EXPECT_TRUE(Verify(lines_).ok()) << Verify(lines_);
}

TEST_F(VerifyTest, AlteredFieldIsLocated) {
  Row(34) = absl::StrReplaceAll(Row(34),
                                {{"\"purpose\":\"p\"", "\"purpose\":\"q\""}});
  EXPECT_THAT(Verify(lines_).message(),
              HasSubstr("entry 34: leaf does not match its fields (purpose)"));
}

TEST_F(VerifyTest, ReencodedLeafIsCaughtByTheRoot) {
  // A forger who rewrites both the fields and the leaf still cannot match
  // the signed root.
  auto row = ParseJsonLine(Row(12));
  ASSERT_TRUE(row.ok());
  row->entry.set_purpose("forged");
  std::string forged = JsonLine(row->entry, EncodeLeaf(row->entry));
  forged.pop_back();
  Row(12) = forged;
  EXPECT_THAT(Verify(lines_).message(),
              HasSubstr("root mismatch: export does not match the signed tree "
                        "head of size 50"));
}

TEST_F(VerifyTest, DroppedEntryIsNamed) {
  lines_.erase(lines_.begin() + 1 + 17);
  EXPECT_THAT(Verify(lines_).message(),
              HasSubstr("entry 17 missing: sequence jumps from 16 to 18"));
}

TEST_F(VerifyTest, DroppedFirstAndLastEntriesAreNamed) {
  auto first = lines_;
  first.erase(first.begin() + 1);
  EXPECT_THAT(Verify(first).message(), HasSubstr("entry 0 missing"));
  auto last = lines_;
  last.erase(last.end() - 2);
  EXPECT_THAT(Verify(last).message(), HasSubstr("entry 49 missing"));
}

TEST_F(VerifyTest, ReorderedEntriesAreNamed) {
  std::swap(Row(20), Row(21));
  EXPECT_THAT(
      Verify(lines_).message(),
      HasSubstr(
          "entries out of order at line 22: entry 21 comes before entry 20"));
}

TEST_F(VerifyTest, DuplicatedEntryIsNamed) {
  lines_.insert(lines_.begin() + 1 + 8, Row(7));
  EXPECT_THAT(
      Verify(lines_).message(),
      HasSubstr("entries out of order at line 10: entry 7 is repeated"));
}

TEST_F(VerifyTest, TruncatedExportIsRejected) {
  lines_.pop_back();
  EXPECT_THAT(Verify(lines_).message(), HasSubstr("no signed tree head"));
  lines_.resize(1);
  EXPECT_THAT(Verify(lines_).message(), HasSubstr("no signed tree head"));
  EXPECT_THAT(Verify({}).message(), HasSubstr("empty"));
  EXPECT_THAT(Verify({"{\"seq\":0}"}).message(),
              HasSubstr("line 1: not an Accord audit export"));
}

TEST_F(VerifyTest, WrongKeyIsRejected) {
  auto other = testing::TestSigner(2);
  auto other_verifier = testing::VerifierFor(*other);
  EXPECT_THAT(Verify(lines_, other_verifier.get()).message(),
              HasSubstr(absl::StrCat("tree head signature invalid for key ",
                                     other_verifier->key_id())));
  // A head re-signed by another key over the same root is rejected too.
  auto head = ParseTreeHeadLine(lines_.back());
  ASSERT_TRUE(head.ok());
  auto forged = other->Sign(head->tree_size(), *RootOf(*head), absl::Now());
  ASSERT_TRUE(forged.ok());
  lines_.back() = TreeHeadLine(*forged);
  lines_.back().pop_back();
  EXPECT_EQ(Verify(lines_).code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(VerifyTest, TamperedTreeHeadIsRejected) {
  auto head = ParseTreeHeadLine(lines_.back());
  ASSERT_TRUE(head.ok());
  head->mutable_root_hash()->at(3) ^= 1;
  lines_.back() = TreeHeadLine(*head);
  EXPECT_THAT(Verify(lines_).message(), HasSubstr("signature invalid"));
}

TEST_F(VerifyTest, PartialExportNeedsAnHonestPrefix) {
  auto part = ExportLines(10, 40);
  EXPECT_TRUE(Verify(part).ok()) << Verify(part);
  auto header = ParseExportHeaderLine(part[0]);
  ASSERT_TRUE(header.ok());
  ASSERT_FALSE(header->prefix.empty());
  header->prefix[0][0] ^= 1;
  part[0] = ExportHeaderLine(*header);
  part[0].pop_back();
  EXPECT_THAT(Verify(part).message(), HasSubstr("root mismatch"));
}

TEST_F(VerifyTest, VerifiesAFile) {
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/export_", getpid(), ".jsonl");
  {
    std::ofstream out(path);
    for (const auto& l : lines_) out << l << "\n";
  }
  auto summary = VerifyJsonlExportFile(path, *verifier_);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->tree_head.tree_size(), 50u);
  EXPECT_EQ(VerifyJsonlExportFile("/nonexistent", *verifier_).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(VerifyTest, ProofBundles) {
  auto head = log_->LatestTreeHead();
  ASSERT_TRUE(head.ok());
  auto proof = log_->InclusionProof(13, 0);
  ASSERT_TRUE(proof.ok());
  const std::string leaf = *log_->GetLeaf(13);
  EXPECT_TRUE(
      VerifyProofBundle(InclusionProofBundle(*proof, leaf, *head), *verifier_)
          .ok());
  EXPECT_THAT(
      VerifyProofBundle(InclusionProofBundle(*proof, *log_->GetLeaf(14), *head),
                        *verifier_)
          .message(),
      HasSubstr("does not match"));
  auto other = testing::VerifierFor(*testing::TestSigner(3));
  EXPECT_THAT(
      VerifyProofBundle(InclusionProofBundle(*proof, leaf, *head), *other)
          .message(),
      HasSubstr("signature invalid"));
  auto h20 = log_->TreeHeadAt(20);
  auto cproof = log_->ConsistencyProof(20, 50);
  ASSERT_TRUE(h20.ok() && cproof.ok());
  EXPECT_TRUE(VerifyProofBundle(ConsistencyProofBundle(*cproof, *h20, *head),
                                *verifier_)
                  .ok());
  cproof->mutable_path(0)->at(0) ^= 1;
  EXPECT_FALSE(VerifyProofBundle(ConsistencyProofBundle(*cproof, *h20, *head),
                                 *verifier_)
                   .ok());
  EXPECT_THAT(VerifyProofBundle("{}", *verifier_).message(),
              HasSubstr("exactly one"));
}

// Exports longer than one batch of rows: the checks run on several threads
// and must still name the first problem in line order, across batches.
class LongExportTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kEntries = 5000;
  void SetUp() override {
    CompactRange range;
    lines_.push_back(std::string(
        absl::StripSuffix(ExportHeaderLine({0, kEntries, {}}), "\n")));
    for (uint64_t i = 0; i < kEntries; ++i) {
      accord::v1::AuditEntry e =
          QueryEntry("police", absl::StrCat("u", i % 7), "p");
      e.set_seq(i);
      *e.mutable_time() =
          ToProtoTime(absl::FromUnixSeconds(1714550000) + absl::Seconds(i));
      const std::string leaf = EncodeLeaf(e);
      range.Append(LeafHash(leaf));
      lines_.push_back(std::string(absl::StripSuffix(JsonLine(e, leaf), "\n")));
    }
    auto head = signer_->Sign(kEntries, range.Root(),
                              absl::FromUnixSeconds(1714560000));
    ASSERT_TRUE(head.ok());
    lines_.push_back(std::string(absl::StripSuffix(TreeHeadLine(*head), "\n")));
  }
  absl::Status Verify() {
    const std::string text = absl::StrJoin(lines_, "\n");
    auto src = LinesFromString(text);
    return VerifyJsonlExport(*src, *verifier_).status();
  }
  std::string& Row(uint64_t seq) { return lines_[1 + seq]; }
  void Alter(uint64_t seq) {
    Row(seq) = absl::StrReplaceAll(
        Row(seq), {{"\"purpose\":\"p\"", "\"purpose\":\"q\""}});
  }

  std::shared_ptr<const TreeHeadSigner> signer_ = testing::TestSigner();
  std::unique_ptr<TreeHeadVerifier> verifier_ = testing::VerifierFor(*signer_);
  std::vector<std::string> lines_;
};

TEST_F(LongExportTest, IntactExportVerifies) {
  EXPECT_TRUE(Verify().ok()) << Verify();
}

TEST_F(LongExportTest, FirstOfSeveralAlteredEntriesIsNamed) {
  Alter(4321);
  EXPECT_THAT(
      Verify().message(),
      HasSubstr("entry 4321: leaf does not match its fields (purpose)"));
  Alter(3000);
  Alter(2047);
  EXPECT_THAT(
      Verify().message(),
      HasSubstr("entry 2047: leaf does not match its fields (purpose)"));
  Alter(1);
  EXPECT_THAT(Verify().message(),
              HasSubstr("entry 1: leaf does not match its fields (purpose)"));
}

TEST_F(LongExportTest, ReorderingAcrossBatchesIsNamed) {
  // Entry s is on line s + 2; rows are checked 2048 to a batch.
  std::swap(Row(2047), Row(2048));
  EXPECT_THAT(Verify().message(),
              HasSubstr("entries out of order at line 2049: entry 2048 comes "
                        "before entry 2047 (line 2050)"));
}

TEST_F(LongExportTest, DroppedEntryInALaterBatchIsNamed) {
  lines_.erase(lines_.begin() + 1 + 4095);
  EXPECT_THAT(
      Verify().message(),
      HasSubstr("entry 4095 missing: sequence jumps from 4094 to 4096"));
}

TEST_F(LongExportTest, UnparsableRowIsNamedByLine) {
  Row(3500) = "{\"seq\":3500,";
  EXPECT_THAT(Verify().message(), HasSubstr("line 3502 (entry 3500?)"));
  lines_.pop_back();  // and no tree head: the bad row is still first
  EXPECT_THAT(Verify().message(), HasSubstr("line 3502 (entry 3500?)"));
}

TEST_F(LongExportTest, TruncatedAfterABatchIsRejected) {
  lines_.resize(1 + 4096);
  EXPECT_THAT(Verify().message(),
              HasSubstr("no signed tree head (truncated after line 4097)"));
}

}  // namespace
}  // namespace accord::audit
