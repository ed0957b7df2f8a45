// Text helpers: UTF-8 repair, cutting to N characters with a marker, last lines.
#include <gtest/gtest.h>

#include "util/text.hpp"

namespace pmcp::text {
namespace {

TEST(Text, SanitizeKeepsValidAndRepairsInvalid) {
  EXPECT_EQ(sanitize_utf8("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(sanitize_utf8("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(sanitize_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(sanitize_utf8("x\xE2\x82"), "x\xEF\xBF\xBD\xEF\xBF\xBD");  // cut sequence
}

TEST(Text, KeepTailCountsCharactersAndSaysWhatWasCut) {
  auto c = keep_tail("abc", 5, "");
  EXPECT_EQ(c.text, "abc");
  EXPECT_EQ(c.cut_chars, 0u);
  c = keep_tail("0123456789", 4, "read more");
  EXPECT_EQ(c.cut_chars, 6u);
  EXPECT_EQ(c.text, "[... 6 earlier characters truncated; read more]\n6789");
  c = keep_tail("\xC3\xA9\xC3\xA9\xC3\xA9", 2, "");
  EXPECT_EQ(c.cut_chars, 1u);
  EXPECT_TRUE(c.text.ends_with("\xC3\xA9\xC3\xA9"));
}

TEST(Text, LastLines) {
  EXPECT_EQ(last_lines("a\nb\nc\n", 2), "b\nc\n");
  EXPECT_EQ(last_lines("a\nb\nc", 2), "b\nc");
  EXPECT_EQ(last_lines("a\nb\nc", 10), "a\nb\nc");
  EXPECT_EQ(last_lines("", 3), "");
  EXPECT_EQ(last_lines("x", 0), "");
}

TEST(Text, Iso8601) {
  EXPECT_EQ(iso8601(std::chrono::system_clock::time_point(std::chrono::milliseconds(1234))),
            "1970-01-01T00:00:01.234Z");
  EXPECT_EQ(
      iso8601(std::chrono::system_clock::time_point(std::chrono::milliseconds(1796556346007))),
      "2026-12-06T11:25:46.007Z");
  EXPECT_EQ(iso8601(std::chrono::system_clock::time_point(std::chrono::milliseconds(951782400000))),
            "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(iso8601(std::chrono::system_clock::time_point(std::chrono::milliseconds(-1))),
            "1969-12-31T23:59:59.999Z");
}

}  // namespace
}  // namespace pmcp::text
