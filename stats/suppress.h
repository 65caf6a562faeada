// Statistical disclosure control for published counts (docs/STATISTICS.md).
//
// Primary suppression hides every count from 1 to `threshold`; every other
// count is rounded to the nearest `rounding` (halves up). Zero is shown: it
// discloses nobody.
//
// Secondary suppression protects the hidden counts of a two-way table with
// its margins (a row per partner, a column per value, row totals, and an
// "all partners" row of column totals): each row and each column, with its
// total, is an equation a reader can solve for a hidden cell when it is the
// only one hidden. Until no equation has exactly one hidden entry, the
// smallest visible non-zero inner cell of such an equation is hidden too
// (failing that its smallest inner cell, failing that its total). The result
// is deterministic: ties go to the first cell in row-major order.
//
// Thread-safe (pure functions).
#ifndef ACCORD_STATS_SUPPRESS_H_
#define ACCORD_STATS_SUPPRESS_H_

#include <cstdint>
#include <vector>

namespace accord::stats {

struct SuppressionRule {
  uint32_t threshold = 7;
  uint32_t rounding = 5;
};

struct Published {
  uint64_t count = 0;  // rounded; 0 when suppressed
  bool suppressed = false;
  bool operator==(const Published& o) const {
    return count == o.count && suppressed == o.suppressed;
  }
};

// `n` rounded to the nearest `rounding` (0 and 1 leave it as it is).
uint64_t RoundCount(uint64_t n, uint32_t rounding);

// Primary suppression and rounding of one count.
Published PublishCount(uint64_t n, const SuppressionRule& rule);

// Which entries to hide in `cells` (R rows of C counts, R, C >= 1) with its
// margins: the result has R + 1 rows of C + 1 flags, row R being the column
// totals and column C the row totals.
std::vector<std::vector<bool>> SuppressionPattern(
    const std::vector<std::vector<uint64_t>>& cells,
    const SuppressionRule& rule);

// The published table with margins (R + 1 rows of C + 1), by
// SuppressionPattern and rounding.
std::vector<std::vector<Published>> PublishTable(
    const std::vector<std::vector<uint64_t>>& cells,
    const SuppressionRule& rule);

}  // namespace accord::stats

#endif  // ACCORD_STATS_SUPPRESS_H_
