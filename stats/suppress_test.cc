#include "stats/suppress.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <optional>

namespace accord::stats {
namespace {

using Table = std::vector<std::vector<uint64_t>>;

// A reader who knows the table's structure: from the published entries (exact
// when rounding is 1) she solves any row or column equation, margins
// included, with one unknown, and repeats until nothing more follows.
// Returns the entries she recovers that were hidden.
int RecoveredCells(const Table& cells,
                   const std::vector<std::vector<Published>>& published) {
  const size_t R = cells.size(), C = cells[0].size();
  std::vector<std::vector<std::optional<int64_t>>> known(
      R + 1, std::vector<std::optional<int64_t>>(C + 1));
  for (size_t r = 0; r <= R; ++r)
    for (size_t c = 0; c <= C; ++c)
      if (!published[r][c].suppressed)
        known[r][c] = static_cast<int64_t>(published[r][c].count);
  int recovered = 0;
  bool progress = true;
  while (progress) {
    progress = false;
    for (int pass = 0; pass < 2; ++pass) {
      const size_t n = pass == 0 ? R + 1 : C + 1;
      for (size_t i = 0; i < n; ++i) {
        // entries: inner then total.
        std::vector<std::pair<size_t, size_t>> e;
        if (pass == 0) {
          for (size_t c = 0; c <= C; ++c) e.push_back({i, c});
        } else {
          for (size_t r = 0; r <= R; ++r) e.push_back({r, i});
        }
        int unknown = 0;
        std::pair<size_t, size_t> at{};
        int64_t inner = 0;
        for (size_t k = 0; k < e.size(); ++k) {
          const auto& v = known[e[k].first][e[k].second];
          if (!v) {
            ++unknown;
            at = e[k];
          } else if (k + 1 < e.size()) {
            inner += *v;
          }
        }
        if (unknown != 1) continue;
        const bool total_unknown = at == e.back();
        known[at.first][at.second] =
            total_unknown ? inner
                          : *known[e.back().first][e.back().second] - inner;
        ++recovered;
        progress = true;
      }
    }
  }
  return recovered;
}

TEST(SuppressTest, TheDefaultRuleHidesOneToSevenAndRoundsToFive) {
  const SuppressionRule nhs;
  EXPECT_EQ(PublishCount(0, nhs), (Published{0, false}));
  EXPECT_EQ(PublishCount(1, nhs), (Published{0, true}));
  EXPECT_EQ(PublishCount(7, nhs), (Published{0, true}));
  EXPECT_EQ(PublishCount(8, nhs), (Published{10, false}));
  EXPECT_EQ(PublishCount(12, nhs), (Published{10, false}));
  EXPECT_EQ(PublishCount(13, nhs), (Published{15, false}));
  EXPECT_EQ(RoundCount(12345, 1), 12345u);
}

TEST(SuppressTest, ARuleMayChangeThresholdAndRounding) {
  const SuppressionRule exact{0, 1};
  EXPECT_EQ(PublishCount(1, exact), (Published{1, false}));
  const SuppressionRule ten{10, 10};
  EXPECT_EQ(PublishCount(10, ten), (Published{0, true}));
  EXPECT_EQ(PublishCount(15, ten), (Published{20, false}));
}

// The worked example a naive method leaks: only the 3 is small, and the row
// total gives it away (53 - 20 - 30 = 3).
TEST(SuppressTest, ALoneHiddenCellInARowIsProtected) {
  const Table cells = {{3, 20, 30}, {15, 25, 40}};
  const SuppressionRule exact_counts{7, 1};
  // Primary suppression alone leaks the cell.
  std::vector<std::vector<Published>> naive(3, std::vector<Published>(4));
  const Table with_margins = {
      {3, 20, 30, 53}, {15, 25, 40, 80}, {18, 45, 70, 133}};
  for (size_t r = 0; r < 3; ++r)
    for (size_t c = 0; c < 4; ++c)
      naive[r][c] = PublishCount(with_margins[r][c], exact_counts);
  EXPECT_EQ(RecoveredCells(cells, naive), 1);

  const auto published = PublishTable(cells, exact_counts);
  EXPECT_EQ(RecoveredCells(cells, published), 0);
  // The 3, and in its row the smallest other cell (20); in their columns
  // the cells of the other partner (15 and 25).
  EXPECT_TRUE(published[0][0].suppressed);
  EXPECT_TRUE(published[0][1].suppressed);
  EXPECT_TRUE(published[1][0].suppressed);
  EXPECT_TRUE(published[1][1].suppressed);
  EXPECT_FALSE(published[0][2].suppressed);
  EXPECT_FALSE(published[2][3].suppressed);
  EXPECT_EQ(published[2][3].count, 133u);
}

// A small partner whose only counts are small: its row total is hidden too,
// and the "all partners" row must not give the partner away.
TEST(SuppressTest, APartnerWithOneSmallCountIsProtectedInTheSums) {
  const Table cells = {{0, 4, 0}, {30, 40, 50}, {20, 10, 60}};
  const auto published = PublishTable(cells, {7, 1});
  EXPECT_EQ(RecoveredCells(cells, published), 0);
  EXPECT_TRUE(published[0][1].suppressed);
  EXPECT_TRUE(published[0][3].suppressed);   // its total, 4
  EXPECT_FALSE(published[0][0].suppressed);  // zeros are shown
}

TEST(SuppressTest, AOneRowTableHidesItsTotalsWithItsCells) {
  // One partner: the "all" row equals hers.
  const Table cells = {{5, 30}};
  const auto published = PublishTable(cells, {7, 1});
  EXPECT_EQ(RecoveredCells(cells, published), 0);
  EXPECT_TRUE(published[0][0].suppressed);
  EXPECT_TRUE(published[1][0].suppressed);
}

TEST(SuppressTest, NothingSmallNothingHidden) {
  const Table cells = {{10, 20}, {30, 40}};
  const auto published = PublishTable(cells, {});
  for (const auto& row : published)
    for (const auto& cell : row) EXPECT_FALSE(cell.suppressed);
  EXPECT_EQ(published[0][0].count, 10u);
  EXPECT_EQ(published[2][2].count, 100u);
}

// Every table of small random counts: no hidden cell can be recovered by a
// reader solving the row and column equations.
TEST(SuppressTest, NoRandomTableLeaksAHiddenCell) {
  uint64_t state = 12345;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  for (int trial = 0; trial < 2000; ++trial) {
    const size_t R = 1 + next() % 5, C = 1 + next() % 6;
    Table cells(R, std::vector<uint64_t>(C));
    for (auto& row : cells)
      for (auto& v : row) v = next() % 3 == 0 ? next() % 8 : next() % 40;
    const auto published = PublishTable(cells, {7, 1});
    ASSERT_EQ(RecoveredCells(cells, published), 0) << "trial " << trial;
  }
}

}  // namespace
}  // namespace accord::stats
