#include "stats/suppress.h"

#include <cstddef>
#include <limits>
#include <utility>

namespace accord::stats {
namespace {

bool Primary(uint64_t n, const SuppressionRule& rule) {
  return n >= 1 && n <= rule.threshold;
}

}  // namespace

uint64_t RoundCount(uint64_t n, uint32_t rounding) {
  if (rounding <= 1) return n;
  return (n + rounding / 2) / rounding * rounding;
}

Published PublishCount(uint64_t n, const SuppressionRule& rule) {
  if (Primary(n, rule)) return {0, true};
  return {RoundCount(n, rule.rounding), false};
}

std::vector<std::vector<bool>> SuppressionPattern(
    const std::vector<std::vector<uint64_t>>& cells,
    const SuppressionRule& rule) {
  const size_t R = cells.size();
  const size_t C = R == 0 ? 0 : cells[0].size();
  // The full table with margins.
  std::vector<std::vector<uint64_t>> m(R + 1, std::vector<uint64_t>(C + 1, 0));
  for (size_t r = 0; r < R; ++r) {
    for (size_t c = 0; c < C; ++c) {
      m[r][c] = cells[r][c];
      m[r][C] += cells[r][c];
      m[R][c] += cells[r][c];
      m[R][C] += cells[r][c];
    }
  }
  std::vector<std::vector<bool>> hidden(R + 1, std::vector<bool>(C + 1));
  for (size_t r = 0; r <= R; ++r) {
    for (size_t c = 0; c <= C; ++c) hidden[r][c] = Primary(m[r][c], rule);
  }
  if (R == 0 || C == 0) return hidden;

  // An equation: row r (cells (r, 0..C-1), total (r, C)) or column c (cells
  // (0..R-1, c), total (R, c)), rows and columns of the margins included.
  struct Entry {
    size_t r, c;
  };
  auto entries_of = [&](bool is_row, size_t i, std::vector<Entry>& inner,
                        Entry& total) {
    inner.clear();
    if (is_row) {
      for (size_t c = 0; c < C; ++c) inner.push_back({i, c});
      total = {i, C};
    } else {
      for (size_t r = 0; r < R; ++r) inner.push_back({r, i});
      total = {R, i};
    }
  };
  std::vector<Entry> inner;
  Entry total{0, 0};
  bool changed = true;
  while (changed) {
    changed = false;
    for (int pass = 0; pass < 2; ++pass) {
      const bool is_row = pass == 0;
      const size_t n = is_row ? R + 1 : C + 1;
      for (size_t i = 0; i < n; ++i) {
        entries_of(is_row, i, inner, total);
        int hidden_count = hidden[total.r][total.c] ? 1 : 0;
        for (const Entry& e : inner) hidden_count += hidden[e.r][e.c] ? 1 : 0;
        if (hidden_count != 1) continue;
        // Hide the smallest visible non-zero inner cell, else the smallest
        // visible inner cell, else the total.
        const Entry* pick = nullptr;
        for (int allow_zero = 0; allow_zero < 2 && pick == nullptr;
             ++allow_zero) {
          uint64_t best = std::numeric_limits<uint64_t>::max();
          for (const Entry& e : inner) {
            if (hidden[e.r][e.c]) continue;
            const uint64_t v = m[e.r][e.c];
            if (v == 0 && allow_zero == 0) continue;
            if (pick == nullptr || v < best) {
              best = v;
              pick = &e;
            }
          }
        }
        if (pick == nullptr && !hidden[total.r][total.c]) pick = &total;
        if (pick == nullptr) continue;  // nothing else to hide
        hidden[pick->r][pick->c] = true;
        changed = true;
      }
    }
  }
  return hidden;
}

std::vector<std::vector<Published>> PublishTable(
    const std::vector<std::vector<uint64_t>>& cells,
    const SuppressionRule& rule) {
  const auto hidden = SuppressionPattern(cells, rule);
  const size_t R = cells.size();
  const size_t C = R == 0 ? 0 : cells[0].size();
  std::vector<std::vector<Published>> out(R + 1, std::vector<Published>(C + 1));
  std::vector<uint64_t> col(C + 1, 0);
  for (size_t r = 0; r <= R; ++r) {
    uint64_t row_total = 0;
    for (size_t c = 0; c <= C; ++c) {
      uint64_t v = 0;
      if (r < R && c < C) {
        v = cells[r][c];
        row_total += v;
        col[c] += v;
        col[C] += v;
      } else if (r < R) {
        v = row_total;
      } else {
        v = col[c];
      }
      out[r][c] = hidden[r][c] ? Published{0, true}
                               : Published{RoundCount(v, rule.rounding), false};
    }
  }
  return out;
}

}  // namespace accord::stats
