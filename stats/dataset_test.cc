#include "stats/dataset.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace accord::stats {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::Time Day(int y, int m, int d) {
  return absl::FromCivil(absl::CivilDay(y, m, d), absl::UTCTimeZone());
}

TEST(DatasetTest, CodesAreTheEnumNamesInLowerCase) {
  EXPECT_EQ(EthnicityCode(accord::v1::ETHNICITY_WHITE_BRITISH),
            "white_british");
  EXPECT_EQ(AgeBandCode(accord::v1::AGE_BAND_18_24), "18_24");
  EXPECT_EQ(ReferralSourceCode(accord::v1::REFERRAL_SOURCE_SELF), "self");
  EXPECT_EQ(EthnicityCode(accord::v1::ETHNICITY_UNSPECIFIED), "");
}

TEST(DatasetTest, ImportsAcceptCodesInAnyCaseWithOrWithoutThePrefix) {
  EXPECT_EQ(*ParseEthnicity("White British"),
            accord::v1::ETHNICITY_WHITE_BRITISH);
  EXPECT_EQ(*ParseEthnicity("ETHNICITY_BLACK_AFRICAN"),
            accord::v1::ETHNICITY_BLACK_AFRICAN);
  EXPECT_EQ(*ParseAgeBand("25-34"), accord::v1::AGE_BAND_25_34);
  EXPECT_EQ(*ParseReportingPeriod("financial_year"),
            accord::v1::REPORTING_PERIOD_FINANCIAL_YEAR);
}

TEST(DatasetTest, AnUnknownCodeNamesTheListAndItsCodes) {
  auto e = ParseEthnicity("martian");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(e.status().message(),
              HasSubstr("not a code of the ethnicity code list"));
  EXPECT_THAT(e.status().message(), ::testing::Not(HasSubstr("martian")));
  EXPECT_THAT(e.status().message(), HasSubstr("white_british"));
  // UNSPECIFIED is no code: an import that has no value leaves it out.
  EXPECT_FALSE(ParseSex("unspecified").ok());
}

TEST(DatasetTest, TheFiveCensusGroups) {
  EXPECT_EQ(EthnicGroupCode(accord::v1::ETHNICITY_ASIAN_OTHER), "asian");
  EXPECT_EQ(EthnicGroupCode(accord::v1::ETHNICITY_BLACK_CARIBBEAN), "black");
  EXPECT_EQ(EthnicGroupCode(accord::v1::ETHNICITY_MIXED_WHITE_AND_ASIAN),
            "mixed");
  EXPECT_EQ(EthnicGroupCode(accord::v1::ETHNICITY_WHITE_ROMA), "white");
  EXPECT_EQ(EthnicGroupCode(accord::v1::ETHNICITY_OTHER_ARAB), "other");
  EXPECT_EQ(EthnicGroupCode(accord::v1::ETHNICITY_NOT_STATED), "not_stated");
  EXPECT_EQ(CodeListColumns(Dimension::kEthnicity).size(), 21u);
  EXPECT_EQ(CodeListColumns(Dimension::kEthnicity).back(), "not_recorded");
  EXPECT_TRUE(CodeListColumns(Dimension::kService).empty());
}

TEST(DatasetTest, AgeBandAtTheStartOfTheEngagement) {
  // Born 2008-06-15: 17 the day before her 18th birthday, 18 on it.
  EXPECT_EQ(AgeBandAt("2008-06-15", Day(2026, 6, 14)),
            accord::v1::AGE_BAND_16_17);
  EXPECT_EQ(AgeBandAt("2008-06-15", Day(2026, 6, 15)),
            accord::v1::AGE_BAND_18_24);
  EXPECT_EQ(AgeBandAt("1950-01-01", Day(2026, 1, 1)),
            accord::v1::AGE_BAND_65_AND_OVER);
  EXPECT_EQ(AgeBandAt("not a date", Day(2026, 1, 1)),
            accord::v1::AGE_BAND_UNSPECIFIED);
  EXPECT_EQ(AgeBandAt("2030-01-01", Day(2026, 1, 1)),
            accord::v1::AGE_BAND_UNSPECIFIED);
}

TEST(DatasetTest, ScoresLieInTheInstrumentsRange) {
  EXPECT_TRUE(CheckScore(accord::v1::OUTCOME_INSTRUMENT_WEMWBS, 14).ok());
  EXPECT_TRUE(CheckScore(accord::v1::OUTCOME_INSTRUMENT_WEMWBS, 70).ok());
  auto s = CheckScore(accord::v1::OUTCOME_INSTRUMENT_WEMWBS, 71);
  EXPECT_EQ(s.message(), "a wemwbs score lies between 14 and 70");
  EXPECT_FALSE(
      CheckScore(accord::v1::OUTCOME_INSTRUMENT_SWEMWBS, 0.0 / 0.0).ok());
  EXPECT_FALSE(CheckScore(accord::v1::OUTCOME_INSTRUMENT_UNSPECIFIED, 20).ok());
}

TEST(DatasetTest, PeriodLabels) {
  const absl::Time t = Day(2026, 3, 31);
  EXPECT_EQ(PeriodLabel(accord::v1::REPORTING_PERIOD_MONTH, t), "2026-03");
  EXPECT_EQ(PeriodLabel(accord::v1::REPORTING_PERIOD_QUARTER, t), "2026-Q1");
  EXPECT_EQ(PeriodLabel(accord::v1::REPORTING_PERIOD_HALF_YEAR, t), "2026-H1");
  // The financial year runs from April to March.
  EXPECT_EQ(PeriodLabel(accord::v1::REPORTING_PERIOD_FINANCIAL_YEAR, t),
            "2025-26");
  EXPECT_EQ(
      PeriodLabel(accord::v1::REPORTING_PERIOD_FINANCIAL_YEAR, Day(2026, 4, 1)),
      "2026-27");
  EXPECT_EQ(PeriodLabel(accord::v1::REPORTING_PERIOD_FINANCIAL_YEAR,
                        Day(2099, 12, 1)),
            "2099-00");
}

TEST(DatasetTest, PeriodsMeetingARange) {
  auto periods = PeriodsBetween(accord::v1::REPORTING_PERIOD_QUARTER,
                                Day(2026, 2, 10), Day(2026, 7, 1));
  std::vector<std::string> labels;
  for (const auto& p : periods) labels.push_back(p.label);
  EXPECT_THAT(labels, ElementsAre("2026-Q1", "2026-Q2"));
  EXPECT_EQ(periods[0].start, Day(2026, 1, 1));
  EXPECT_EQ(periods[1].end, Day(2026, 7, 1));
}

TEST(DatasetTest, RangesAreBounded) {
  EXPECT_TRUE(CheckRange(accord::v1::REPORTING_PERIOD_MONTH, Day(2016, 1, 1),
                         Day(2026, 1, 1))
                  .ok());
  EXPECT_EQ(CheckRange(accord::v1::REPORTING_PERIOD_MONTH, Day(2015, 1, 1),
                       Day(2026, 1, 1))
                .message(),
            "field range: a run covers at most 10 years");
  EXPECT_EQ(CheckRange(accord::v1::REPORTING_PERIOD_MONTH, Day(2026, 1, 1),
                       Day(2026, 1, 1))
                .message(),
            "field range: 'from' must be before 'until'");
  EXPECT_THAT(CheckRange(accord::v1::REPORTING_PERIOD_UNSPECIFIED,
                         Day(2026, 1, 1), Day(2027, 1, 1))
                  .message(),
              HasSubstr("field period: required"));
}

}  // namespace
}  // namespace accord::stats
