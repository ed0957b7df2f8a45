// Text helpers: UTF-8 repair, cutting to N characters with a marker, last lines.
#include "util/text.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

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

// A plain byte-by-byte decoder (RFC 3629) to check the word-at-a-time scans against.
std::string reference_sanitize(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80             ? 1
                    : (c & 0xE0) == 0xC0 ? 2
                    : (c & 0xF0) == 0xE0 ? 3
                    : (c & 0xF8) == 0xF0 ? 4
                                         : 0;
    uint32_t cp = n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : n == 4 ? c & 0x07 : c;
    bool ok = n != 0 && i + n <= s.size();
    for (std::size_t k = 1; ok && k < n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      ok = (b & 0xC0) == 0x80;
      cp = (cp << 6) | (b & 0x3F);
    }
    ok = ok && !(n == 2 && cp < 0x80) && !(n == 3 && cp < 0x800) && !(n == 4 && cp < 0x10000) &&
         cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (ok) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

// Mostly ASCII with valid and broken sequences at every offset, so that the eight-byte scans
// meet them at each position of a word and at the ends.
TEST(Text, SanitizeAndCountAgreeWithAPlainDecoder) {
  std::mt19937 rng(7);
  const std::vector<std::string> pieces = {
      "a",    "\n",       "\xC3\xA9",     "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xFF",
      "\x80", "\xC0\xAF", "\xED\xA0\x80", "\xE2\x82",     "\xF4\x90\x80\x80", "0123456789abcdef"};
  for (int round = 0; round < 3000; ++round) {
    std::string bytes;
    const int count = static_cast<int>(rng() % 40);
    for (int k = 0; k < count; ++k) {
      const auto& piece = pieces[rng() % pieces.size()];
      bytes += rng() % 3 == 0 ? piece : std::string(rng() % 20, 'x');
    }
    const std::string expected = reference_sanitize(bytes);
    ASSERT_EQ(sanitize_utf8(std::string_view(bytes)), expected) << "round " << round;
    ASSERT_EQ(sanitize_utf8(std::string(bytes)), expected) << "round " << round;
    std::size_t chars = 0;
    for (char c : expected) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
    ASSERT_EQ(count_chars(expected), chars) << "round " << round;
  }
}

// Valid text taken by value comes back as the same buffer, not a copy.
TEST(Text, SanitizeMovesValidText) {
  std::string text(1 << 16, 'x');
  text += "\xE2\x82\xAC";
  const char* before = text.data();
  std::string out = sanitize_utf8(std::move(text));
  EXPECT_EQ(out.data(), before);
  EXPECT_EQ(out.size(), (1u << 16) + 3);
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

// The tail that keep_tail keeps is found from the end; it must be the same as counting from the
// start: the characters after the first (total - max_chars).
TEST(Text, KeepTailKeepsExactlyTheLastCharacters) {
  std::mt19937 random(7);
  const std::vector<std::string> pieces = {
      "a", "\n", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\x80", "\xC3"};
  for (int round = 0; round < 2000; ++round) {
    std::string text;
    const int n = static_cast<int>(random() % 40);
    for (int k = 0; k < n; ++k) text += pieces[random() % pieces.size()];
    text = sanitize_utf8(std::move(text));
    const std::size_t total = count_chars(text);
    const std::size_t max_chars = random() % (total + 2);
    const Cut cut = keep_tail(text, max_chars, "");
    if (total <= max_chars) {
      EXPECT_EQ(cut.text, text);
      EXPECT_EQ(cut.cut_chars, 0u);
      continue;
    }
    std::size_t start = 0;
    for (std::size_t seen = 0; start < text.size(); ++start) {
      if ((static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) continue;
      if (seen++ == total - max_chars) break;
    }
    EXPECT_EQ(cut.cut_chars, total - max_chars);
    const std::string header =
        "[... " + std::to_string(total - max_chars) + " earlier characters truncated]\n";
    EXPECT_EQ(cut.text, header + text.substr(start)) << round;
  }
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
