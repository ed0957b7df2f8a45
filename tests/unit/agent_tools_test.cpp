// Agent tools building blocks: key encoding in both cursor modes, text projection, and the
// incremental matcher's window, cursor and line arithmetic (also across buffer wrap).
#include <gtest/gtest.h>

#include "process/keys.hpp"
#include "process/output_matcher.hpp"
#include "process/text_projection.hpp"

namespace pmcp::process {
namespace {

std::string keys(std::vector<std::string> names, Terminal* t) {
  auto r = encode_keys(names, t);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : "";
}

TEST(Keys, PipeEncodings) {
  EXPECT_EQ(keys({"Enter"}, nullptr), "\n");
  EXPECT_EQ(keys({"Up", "Down", "Right", "Left"}, nullptr), "\x1b[A\x1b[B\x1b[C\x1b[D");
  EXPECT_EQ(keys({"Backspace", "Tab", "Escape", "Esc"}, nullptr), "\x7f\t\x1b\x1b");
  EXPECT_EQ(keys({"C-c", "C-d", "C-a", "C-z"}, nullptr), "\x03\x04\x01\x1a");
  EXPECT_EQ(keys({"M-x"}, nullptr), "\x1bx");
  EXPECT_EQ(keys({"F1", "F5", "F12"}, nullptr), "\x1bOP\x1b[15~\x1b[24~");
  EXPECT_EQ(keys({"PageUp", "Delete", "Space"}, nullptr), "\x1b[5~\x1b[3~ ");
}

TEST(Keys, TerminalFollowsCursorKeyMode) {
  Terminal t(80, 24, 100);
  EXPECT_EQ(keys({"Enter"}, &t), "\r");
  EXPECT_EQ(keys({"Backspace"}, &t), "\x7f");
  EXPECT_EQ(keys({"Up"}, &t), "\x1b[A");
  t.feed("\x1b[?1h");  // application cursor keys (DECCKM), as vim and less switch on
  EXPECT_EQ(keys({"Up", "Left"}, &t), "\x1bOA\x1bOD");
  t.feed("\x1b[?1l");
  EXPECT_EQ(keys({"Up"}, &t), "\x1b[A");
}

TEST(Keys, UnknownNameListsValidOnes) {
  auto r = encode_keys({"Enter", "Hyper"}, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("unknown key 'Hyper'"), std::string::npos);
  EXPECT_NE(r.error().message.find("PageDown"), std::string::npos);
  EXPECT_FALSE(encode_keys({"F13"}, nullptr).ok());
  EXPECT_FALSE(encode_keys({"C-1"}, nullptr).ok());
}

TEST(TextProjection, StripsEscapesFoldsCrLfAndMapsOffsets) {
  std::string raw = "a\x1b[31mb\x1b]0;title\x07" "c\r\nd\x1b(Be";
  auto p = project_text(raw);
  EXPECT_EQ(p.text, "abc\nde");
  ASSERT_EQ(p.raw.size(), p.text.size() + 1);
  EXPECT_EQ(raw[p.raw[1]], 'b');
  EXPECT_EQ(raw[p.raw[3]], '\n');
  EXPECT_EQ(raw[p.raw[5]], 'e');
  EXPECT_EQ(p.raw.back(), raw.size());
  EXPECT_EQ(strip_ansi("\x1b[1;32mok\x1b[0m\r\n"), "ok\r\n");
}

std::shared_ptr<const boost::regex> re(const char* pattern) {
  auto r = compile_pattern(pattern, false);
  EXPECT_TRUE(r.ok());
  return *r;
}

TEST(OutputMatcher, MultilineWithCrLfAndCursorPastMatch) {
  OutputBuffer b(1 << 16);
  b.append("x\r\n42\r\ny\r\n42\r\n");
  OutputMatcher m(re("^42$"), 0);
  auto first = m.scan(b, false);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->begin, 3u);
  EXPECT_EQ(first->end, 5u);
  EXPECT_EQ(first->line, 2u);
  OutputMatcher again(re("^42$"), first->end);
  auto second = again.scan(b, false);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->begin, 10u);
  EXPECT_EQ(second->line, 4u);
}

// A pattern the regex engine gives up on (catastrophic backtracking) is an error the wait
// reports; before, boost's exception escaped onto the core thread and ended the server.
TEST(OutputMatcher, PatternTooComplexForTheOutputIsAnErrorNotAnException) {
  OutputBuffer b(1 << 16);
  b.append(std::string(60, 'a') + "c\n");
  OutputMatcher m(re("(a*)*b"), 0);
  EXPECT_FALSE(m.scan(b, false));
  EXPECT_NE(m.error().find("backtracking"), std::string::npos) << m.error();
  EXPECT_FALSE(m.scan(b, true));  // stays failed, without trying again
  auto grep = search_pattern(std::string(60, 'a') + "c", *re("(a*)*b"));
  ASSERT_FALSE(grep.ok());
  EXPECT_NE(grep.error().message.find("(a*)*b"), std::string::npos);
  auto fine = search_pattern("xaab", *re("a+b"));
  ASSERT_TRUE(fine.ok());
  EXPECT_TRUE(*fine);
}

TEST(OutputMatcher, UnfinishedLineDoesNotMatchDollarUntilFinal) {
  OutputBuffer b(1 << 16);
  b.append("42");
  OutputMatcher m(re("^42$"), 0);
  EXPECT_FALSE(m.scan(b, false));
  b.append("1\n");
  EXPECT_FALSE(m.scan(b, false));  // the line was 421
  b.append("42");
  EXPECT_TRUE(m.scan(b, true));    // the process ended: the last line is complete
}

// A terminal writes the text of a line and its "\r\n" apart, so a read can end right after the
// text: `$` cannot match there yet, and must once the end of the line arrives.
TEST(OutputMatcher, ALineWhoseEndArrivesInTheNextChunkMatchesDollarThen) {
  OutputBuffer b(1 << 16);
  b.append(">>> ");
  OutputMatcher m(re("^42$"), b.end_offset());
  b.append("print(6*7)\r\n42");
  EXPECT_FALSE(m.scan(b, false));
  b.append("\r\n>>> ");
  auto found = m.scan(b, false);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->text, "42");
  EXPECT_EQ(found->line, 2u);

  // The same after other lines (cat -A showing the Up key, as the keys test reads it).
  OutputBuffer c(1 << 16);
  OutputMatcher n(re("^<\\^\\[\\[A\\$$"), 0);
  c.append("ready\r\n");
  EXPECT_FALSE(n.scan(c, false));
  c.append("<^[[A$");
  EXPECT_FALSE(n.scan(c, false));
  c.append("\r\n");
  EXPECT_TRUE(n.scan(c, false));

  // A lookahead that needs the next chunk.
  OutputBuffer d(1 << 16);
  OutputMatcher o(re("listening(?= on)"), 0);
  d.append("server listening");
  EXPECT_FALSE(o.scan(d, false));
  d.append(" on 8080\n");
  EXPECT_TRUE(o.scan(d, false));
}

// A line that never ends is not scanned again whole at each chunk: what stays open for a later
// `$` or lookahead is at most kOpenLineBytes of it, beside the overlap.
TEST(OutputMatcher, ALongOpenLineIsNotScannedAgainWhole) {
  OutputBuffer b(1 << 24);
  OutputMatcher m(re("b$"), 0);
  for (int i = 0; i < 2000; ++i) {
    b.append(std::string(4096, 'a'));
    EXPECT_FALSE(m.scan(b, false));
  }
  b.append("b\n");
  auto found = m.scan(b, false);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->begin, 2000u * 4096u);
}

TEST(OutputMatcher, FindsMatchesThatStraddleChunksAndIgnoresOutputBeforeSince) {
  OutputBuffer b(1 << 16);
  b.append("ready\n");
  OutputMatcher m(re("ready"), b.end_offset());
  EXPECT_FALSE(m.scan(b, false));
  b.append("almost rea");
  EXPECT_FALSE(m.scan(b, false));
  b.append("dy now\n");
  auto hit = m.scan(b, false);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->begin, 13u);
  EXPECT_EQ(hit->text, "ready");
}

TEST(OutputMatcher, WindowIsBoundedAndLineNumbersSurviveWrap) {
  OutputBuffer b(4096);  // small: the buffer wraps many times
  OutputMatcher m(re("^needle$"), 0);
  std::string line(99, 'x');
  line += '\n';
  for (int i = 0; i < 1000; ++i) {
    b.append(line);
    ASSERT_FALSE(m.scan(b, false));
  }
  b.append("needle\n");
  auto hit = m.scan(b, false);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->line, 1001u);
  EXPECT_EQ(hit->begin, 100000u);
}

TEST(OutputMatcher, AMatchInAVeryLongLineIsQuotedBounded) {
  // One line of 1 MiB without a newline, as a flooding program writes it: the match and its
  // context are quoted in bounded pieces, with markers that say what was left out.
  OutputBuffer b(1 << 20);
  b.append(std::string(1 << 20, 'a'));
  OutputMatcher m(re("a+"), 0);
  auto hit = m.scan(b, true);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->end - hit->begin, 1u << 20);
  EXPECT_EQ(hit->text, std::string(kMaxMatchBytes, 'a') + "[... " +
                           std::to_string((1 << 20) - kMaxMatchBytes) + " more bytes]");
  EXPECT_EQ(hit->context, hit->text);  // nothing before or after the match on its line

  OutputBuffer c(1 << 20);
  c.append(std::string(500000, 'x') + "needle" + std::string(500000, 'y') + "\nnext\n");
  OutputMatcher n(re("needle"), 0);
  auto found = n.scan(c, false);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->text, "needle");
  EXPECT_EQ(found->context, "[... " + std::to_string(500000 - kContextSideBytes) +
                                " earlier bytes]" + std::string(kContextSideBytes, 'x') +
                                "needle" + std::string(kContextSideBytes, 'y') + "[... " +
                                std::to_string(500000 + 6 - kContextSideBytes) +
                                " more bytes]");  // the cut hides "\nnext\n" too
}

TEST(OutputMatcher, QuotesAreCutAtCharacterBoundaries) {
  const std::string e_acute = "\xc3\xa9";  // two bytes
  std::string s;
  for (int i = 0; i < 10; ++i) s += e_acute;
  EXPECT_EQ(first_bytes(s, 5), e_acute + e_acute + "[... 16 more bytes]");
  EXPECT_EQ(last_bytes(s, 5), "[... 16 earlier bytes]" + e_acute + e_acute);
  EXPECT_EQ(first_bytes(s, 20), s);
  EXPECT_EQ(last_bytes(s, 20), s);
  EXPECT_EQ(around_match("abc", 1, 2), "abc");
}

TEST(OutputMatcher, BadPatternGivesPosition) {
  auto r = compile_pattern("ab[c", false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("position"), std::string::npos);
  auto icase = compile_pattern("HELLO", true);
  ASSERT_TRUE(icase.ok());
  OutputBuffer b(1024);
  b.append("well hello\n");
  EXPECT_TRUE(OutputMatcher(*icase, 0).scan(b, false));
}

}  // namespace
}  // namespace pmcp::process
