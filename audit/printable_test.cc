#include "audit/printable.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace accord::audit {
namespace {

TEST(PrintableTest, TerminalControlsBecomeVisibleEscapes) {
  // The forged "allowed" line of a refused request: erase the line, go back
  // to its start, print something else.
  EXPECT_EQ(Printable("\x1b[2K\r#0 allow AuditSearch by auditor"),
            "\\x1b[2K\\r#0 allow AuditSearch by auditor");
  EXPECT_EQ(Printable(std::string("a\0b\x07\x08\x7f", 6)),
            "a\\x00b\\x07\\x08\\x7f");
  EXPECT_EQ(Printable("one\ntwo\tthree"), "one\\ntwo\\tthree");
}

TEST(PrintableTest, C1ControlsBidiOverridesAndBadUtf8AreEscaped) {
  // U+009B is CSI on terminals that take 8-bit controls.
  EXPECT_EQ(Printable("\xc2\x9b"
                      "2J"),
            "\\u009b2J");
  // U+202E reverses the text after it on screen; U+2066 isolates.
  EXPECT_EQ(Printable("deny \xe2\x80\xae"
                      "wolla"),
            "deny \\u202ewolla");
  EXPECT_EQ(Printable("\xe2\x81\xa6x"), "\\u2066x");
  // Invalid UTF-8, an overlong encoding, a surrogate: byte by byte.
  EXPECT_EQ(Printable("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(Printable("\xc0\x80"), "\\xc0\\x80");
  EXPECT_EQ(Printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");
  EXPECT_EQ(Printable("\xe2\x80"), "\\xe2\\x80");  // truncated
}

TEST(PrintableTest, OrdinaryTextIsUnchangedAndEscapingIsIdempotent) {
  const std::string text = "Zoë O'Brien-Smith, 東京, C:\\path \xf0\x9f\x99\x82";
  EXPECT_EQ(Printable(text), text);
  const std::string hostile = "\x1b]8;;http://x\x07\xc2\x85\xe2\x80\xae\xff";
  EXPECT_EQ(Printable(Printable(hostile)), Printable(hostile));
}

TEST(PrintableTest, BlocksKeepTheirLinesIndented) {
  EXPECT_EQ(PrintableBlock("first\n  second\tcol\x1b[1A", "    "),
            "first\n      second\tcol\\x1b[1A");
  // A line of the text cannot start at the margin and pass for output.
  EXPECT_EQ(PrintableBlock("x\nwithheld phone: none", "  "),
            "x\n  withheld phone: none");
}

TEST(PrintableTest, SpreadsheetFormulasAreNeutralised) {
  for (const char* formula :
       {"=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"}) {
    const std::string cell = SpreadsheetText(formula);
    EXPECT_EQ(cell[0], '\'') << formula;
  }
  EXPECT_EQ(SpreadsheetText("=1+1"), "'=1+1");
  EXPECT_EQ(SpreadsheetText("\t=1"), "'\\t=1");
  EXPECT_EQ(SpreadsheetText("safeguarding"), "safeguarding");
  EXPECT_EQ(SpreadsheetText("a=b"), "a=b");
  EXPECT_EQ(SpreadsheetText(""), "");
  EXPECT_EQ(SpreadsheetText("x\x1b[2K"), "x\\x1b[2K");
}

TEST(PrintableTest, ValidUtf8ReplacesOnlyWhatIsInvalid) {
  EXPECT_EQ(ValidUtf8("Zo\xc3\xab \x1b ok"), "Zo\xc3\xab \x1b ok");
  EXPECT_EQ(ValidUtf8("a\xff\xfe"
                      "b"),
            "a\xef\xbf\xbd\xef\xbf\xbd"
            "b");
  EXPECT_EQ(ValidUtf8("\xe2\x82"), "\xef\xbf\xbd\xef\xbf\xbd");
}

}  // namespace
}  // namespace accord::audit
