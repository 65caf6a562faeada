// The common monitoring dataset's vocabulary: dimensions, code lists, age
// bands, outcome instruments and reporting periods (docs/STATISTICS.md).
//
// Codes are the enum value names in lower case without the enum's prefix
// ("white_british", "18_24", "self"); imports accept them in any case, with
// '-' or ' ' for '_', and with or without the prefix. Periods are cut in UTC:
// the dataset's dates are calendar dates (an engagement that started on
// "2026-04-01" is stored as 2026-04-01T00:00:00Z), so UTC keeps each one in
// the period its date names. All functions are thread-safe.
#ifndef ACCORD_STATS_DATASET_H_
#define ACCORD_STATS_DATASET_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "accord/v1/agent.pb.h"
#include "accord/v1/common.pb.h"
#include "accord/v1/records.pb.h"

namespace accord::stats {

// What figures can be broken down by.
enum class Dimension {
  kService,
  kReferralSource,
  kNeed,
  kEthnicity,
  kEthnicGroup,
  kAgeBand,
  kDisability,
  kSex,
};
inline constexpr int kDimensionCount = 8;

// "ethnicity" -> kEthnicity; nullopt for a name that is not a dimension.
std::optional<Dimension> DimensionNamed(absl::string_view name);
const char* DimensionName(Dimension d);
// "service, referral_source, need, ..." for messages.
std::string DimensionNames();

// The value recorded for an engagement without one.
inline constexpr absl::string_view kNotRecorded = "not_recorded";

// A dimension's columns in code-list order, not_recorded last; empty for the
// open dimensions (service and need), whose values come from the data.
const std::vector<std::string>& CodeListColumns(Dimension d);

// Codes of the code lists ("white_british"; "" for UNSPECIFIED).
std::string EthnicityCode(accord::v1::Ethnicity e);
// The census high-level group: "asian", "black", "mixed", "white", "other",
// "not_stated"; "" for UNSPECIFIED.
std::string EthnicGroupCode(accord::v1::Ethnicity e);
std::string AgeBandCode(accord::v1::AgeBand a);
std::string DisabilityCode(accord::v1::Disability d);
std::string SexCode(accord::v1::Sex s);
std::string ReferralSourceCode(accord::v1::ReferralSource r);
std::string InstrumentCode(accord::v1::OutcomeInstrument i);

// Parses a code as an import gives it; the error names the code list and
// lists its codes, never repeating the input (a misspelt ethnicity is still
// special category data).
absl::StatusOr<accord::v1::Ethnicity> ParseEthnicity(absl::string_view text);
absl::StatusOr<accord::v1::AgeBand> ParseAgeBand(absl::string_view text);
absl::StatusOr<accord::v1::Disability> ParseDisability(absl::string_view text);
absl::StatusOr<accord::v1::Sex> ParseSex(absl::string_view text);
absl::StatusOr<accord::v1::ReferralSource> ParseReferralSource(
    absl::string_view text);
absl::StatusOr<accord::v1::OutcomeInstrument> ParseInstrument(
    absl::string_view text);
absl::StatusOr<accord::v1::OutcomeStage> ParseOutcomeStage(
    absl::string_view text);
absl::StatusOr<accord::v1::ReportingPeriod> ParseReportingPeriod(
    absl::string_view text);
std::string ReportingPeriodCode(accord::v1::ReportingPeriod p);

// The age band at `at` of a person born on `date_of_birth` (YYYY-MM-DD);
// UNSPECIFIED when the date is not one.
accord::v1::AgeBand AgeBandAt(absl::string_view date_of_birth, absl::Time at);

// The lowest and highest score an instrument gives.
struct ScoreRange {
  double min;
  double max;
};
ScoreRange RangeOf(accord::v1::OutcomeInstrument i);
// OK when `score` is a score of the instrument; the message names the range.
absl::Status CheckScore(accord::v1::OutcomeInstrument i, double score);

// An engagement's value of a code-list dimension ("" for open dimensions,
// which have several or free values), kNotRecorded when not recorded.
// `age_band` is the engagement's age band (derived when not recorded).
std::string CodeOf(Dimension d, const accord::v1::Engagement& e,
                   accord::v1::AgeBand age_band);

// The same as an index into CodeListColumns(d), without building a string
// (for counting); -1 for the open dimensions.
int ColumnOf(Dimension d, const accord::v1::Engagement& e,
             accord::v1::AgeBand age_band);

// Reporting periods. The label of the period holding `t` ("2026-04",
// "2026-Q2", "2026-H1", "2026-27"), and the periods that meet [from, until)
// in order.
std::string PeriodLabel(accord::v1::ReportingPeriod p, absl::Time t);
struct Period {
  std::string label;
  absl::Time start;
  absl::Time end;
};
std::vector<Period> PeriodsBetween(accord::v1::ReportingPeriod p,
                                   absl::Time from, absl::Time until);

// The longest range a statistics run may cover, and the most periods.
inline constexpr int kMaxRangeYears = 10;
inline constexpr int kMaxPeriods = 120;
// OK when [from, until) is a range a run may cover, cut by `p`; the message
// names the field ("range", "period").
absl::Status CheckRange(accord::v1::ReportingPeriod p, absl::Time from,
                        absl::Time until);

}  // namespace accord::stats

#endif  // ACCORD_STATS_DATASET_H_
