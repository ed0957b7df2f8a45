// TerminalGuard: what reaches libvterm. Ordinary output passes unchanged; the sequences that
// libvterm mishandles are rewritten; the state carries across chunks.
#include "process/terminal_guard.hpp"

#include <gtest/gtest.h>

#include <string>

#include "process/terminal.hpp"

namespace pmcp::process {
namespace {

std::string guarded(std::string_view in, uint16_t cols = 80) {
  TerminalGuard guard;
  std::string out;
  guard.filter(in, cols, out);
  return out;
}

// The same input one byte at a time.
std::string guarded_bytewise(std::string_view in, uint16_t cols = 80) {
  TerminalGuard guard;
  std::string out;
  for (char c : in) guard.filter(std::string_view(&c, 1), cols, out);
  return out;
}

TEST(TerminalGuard, OrdinaryOutputPassesUnchanged) {
  const std::string samples[] = {
      "hello, world\r\n",
      "\x1b[1;31mred\x1b[0m \x1b[38;5;208morange\x1b[m\r\n",
      "\x1b[?1049h\x1b[2J\x1b[H\x1b[5;10Hx\x1b[?25l\x1b[?1049l",
      "\x1b[?1h\x1b=\x1b(B\x1b)0\x1b"
      "7\x1bM",  // DECRC gains a clamp (RestoringACursorSavedBeforeAShrinkStaysOnTheScreen)
      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe4\xb8\xad\r\n",
      "\x1b[38:2::255:0:0mtruecolor\x1b[0m",
      "tab\there\bback\a",
      "\x1b[6n\x1b[>c\x1b[ q",
  };
  for (const auto& s : samples) {
    EXPECT_EQ(guarded(s), s);
    EXPECT_EQ(guarded_bytewise(s), s);
  }
}

TEST(TerminalGuard, RepeatIsExpandedAndNeverReachesLibvterm) {
  EXPECT_EQ(guarded("a\x1b[3b"), "aaaa");
  EXPECT_EQ(guarded("-\x1b[b"), "--");
  EXPECT_EQ(guarded("\xe2\x94\x80\x1b[2b"), "\xe2\x94\x80\xe2\x94\x80\xe2\x94\x80");
  // Nothing printed before it: nothing to repeat (libvterm 0.1 loops forever here).
  EXPECT_EQ(guarded("\x1b[b"), "");
  EXPECT_EQ(guarded("\x1b[5b"), "");
  // At most a row.
  EXPECT_EQ(guarded("x\x1b[999999b", 10), std::string(11, 'x'));
  EXPECT_EQ(guarded_bytewise("a\x1b[3b"), "aaaa");
}

TEST(TerminalGuard, RunsOfPlainBytesKeepTheLastGraphicForRepeat) {
  // Printable ASCII and C0 controls pass as one run; REP repeats the run's last printable byte,
  // not a control that ended the run.
  EXPECT_EQ(guarded("abc\r\n\x1b[2b"), "abc\r\ncc");
  EXPECT_EQ(guarded("\xc3\xa9xyz\a\x1b[2b"), "\xc3\xa9xyz\azz");
  EXPECT_EQ(guarded("xyz\xc3\xa9\r\x1b[1b"), "xyz\xc3\xa9\r\xc3\xa9");
  // DEL is dropped and never repeated.
  EXPECT_EQ(guarded("ab\x7f\x1b[1b"), "abb");
  // SO and SI end a run: they mark the character sets as used.
  TerminalGuard guard;
  std::string out;
  guard.filter("plain text\r\n", 80, out);
  EXPECT_FALSE(guard.charsets_used());
  guard.filter("text\x0eshifted\x0f", 80, out);
  EXPECT_TRUE(guard.charsets_used());
}

// Whatever the input, filtering it whole gives what filtering it byte by byte gives: the runs
// copied at once behave like the bytes one at a time.
TEST(TerminalGuard, WholeAndBytewiseAgreeOnRandomStreams) {
  const std::string_view alphabet[] = {
      "a",
      "Z",
      " ",
      "~",
      "\r",
      "\n",
      "\t",
      "\a",
      "\b",
      "\x7f",
      "\x0e",
      "\x0f",
      "\x1b",
      "[",
      "]",
      "(",
      "0",
      "3",
      ";",
      "?",
      "b",
      "r",
      "m",
      "H",
      "#",
      "\\",
      "\x18",
      "\xc3",
      "\xa9",
      "\xe2\x82\xac",
      "\xf0\x9f\x98\x80",
      "\xff",
      "\x80",
      "\x1b[2b",
      "\x1b[?69h",
  };
  uint32_t seed = 12345;
  const auto next = [&seed] {
    seed = seed * 1664525u + 1013904223u;
    return seed >> 8;
  };
  for (int round = 0; round < 3000; ++round) {
    std::string in;
    const std::size_t pieces = next() % 40;
    for (std::size_t k = 0; k < pieces; ++k) in += alphabet[next() % std::size(alphabet)];
    TerminalGuard whole, bytewise;
    std::string out_whole, out_bytewise;
    whole.filter(in, 20, out_whole);
    for (char c : in) bytewise.filter(std::string_view(&c, 1), 20, out_bytewise);
    ASSERT_EQ(out_whole, out_bytewise) << "input: " << ::testing::PrintToString(in);
    ASSERT_EQ(whole.charsets_used(), bytewise.charsets_used());
    // And a REP after it repeats the same character.
    std::string rep_whole, rep_bytewise;
    whole.filter("\x1b[1b", 20, rep_whole);
    bytewise.filter("\x1b[1b", 20, rep_bytewise);
    ASSERT_EQ(rep_whole, rep_bytewise) << "input: " << ::testing::PrintToString(in);
  }
}

TEST(TerminalGuard, CsiParametersAreClampedAndCounted) {
  EXPECT_EQ(guarded("\x1b[99999999999999999999999A"), "\x1b[9999A");
  EXPECT_EQ(guarded("\x1b[2147483648;4294967296H"), "\x1b[9999;9999H");
  std::string many = "\x1b[";
  for (int i = 0; i < 40; ++i) many += "1;";
  many += "1m";
  std::string kept = "\x1b[";
  for (int i = 0; i < 15; ++i) kept += "1;";
  kept += "1m";
  EXPECT_EQ(guarded(many), kept);
  // Too long to be anything real: dropped whole.
  EXPECT_EQ(guarded("a\x1b[" + std::string(500, '1') + "mb"), "ab");
  // Parameter bytes after intermediates: malformed, dropped.
  EXPECT_EQ(guarded("a\x1b[1 ;2qb"), "ab");
}

TEST(TerminalGuard, ControlStringsAreDropped) {
  EXPECT_EQ(guarded("a\x1b]0;title\x07"
                    "b"),
            "ab");
  EXPECT_EQ(guarded("a\x1b]2;title\x1b\\b"), "ab");
  EXPECT_EQ(guarded("a\x1bP1$r0m\x1b\\b"), "ab");
  EXPECT_EQ(guarded("a\x1b_apc\x1b\\b\x1bXsos\x1b\\c\x1b^pm\x1b\\d"), "abcd");
  EXPECT_EQ(guarded("a\x1b]99999999999999999999;x\x07"
                    "b"),
            "ab");
  // An ESC that is not ST ends the string and starts a new sequence.
  EXPECT_EQ(guarded("a\x1b]0;t\x1b[1mb"), "a\x1b[1mb");
  EXPECT_EQ(guarded_bytewise("a\x1b]0;title\x1b\\b"), "ab");
}

TEST(TerminalGuard, NonPrintingCodePointsAreDropped) {
  EXPECT_EQ(guarded("a\xc2\x9b"
                    "5Ab"),
            "a5Ab");  // U+009B (C1 CSI) written in UTF-8
  EXPECT_EQ(guarded("a\x7f"
                    "b"),
            "ab");
  EXPECT_EQ(guarded("\xc2\xa0"), "\xc2\xa0");  // U+00A0 is printable
  // Invalid UTF-8 becomes U+FFFD, which REP then repeats.
  EXPECT_EQ(guarded("\xff\x1b[1b"), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

// libvterm's decoder keeps an unfinished sequence across controls, so invalid bytes would show
// up where the next text starts (found by the terminal fuzz harness: the U+FFFD landed on a
// later line, which then wrapped). The guard passes only whole, valid sequences.
TEST(TerminalGuard, InvalidUtf8BecomesOneReplacementCharacterEach) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(guarded("a\xf5\xf5\xff\r\nb"), "a" + r + r + r + "\r\nb");
  EXPECT_EQ(guarded("\xc0\x80"), r + r);             // overlong lead, stray continuation
  EXPECT_EQ(guarded("\xe2\x82\r\nx"), r + "\r\nx");  // interrupted by a control
  EXPECT_EQ(guarded_bytewise("\xe2\x82\xac\xe2"), "\xe2\x82\xac");  // the rest waits
  EXPECT_EQ(guarded("\xfc\x80\x80\x80\x80\x80"), r + r + r + r + r + r);
  Terminal terminal(20, 3, 10);
  terminal.feed("\xf5\r\n\r\nabc");
  EXPECT_EQ(terminal.render_screen(), "\xEF\xBF\xBD\n\nabc");
}

// libvterm reads '[' after ESC and intermediates as a CSI too (found by the fuzz harnesses:
// "ESC / [" then 19 colons overflowed its arguments, "ESC , [ b" hung in REP).
TEST(TerminalGuard, IntroducersAfterIntermediatesAreGuardedLikeThemselves) {
  EXPECT_EQ(guarded("\x1b/[" + std::string(19, ':') + "m"), "\x1b[" + std::string(15, ':') + "m");
  EXPECT_EQ(guarded("\x1b,[b"), "");
  EXPECT_EQ(guarded("x\x1b,[2b"), "xxx");
  EXPECT_EQ(guarded("a\x1b#]0;t\x07"
                    "b"),
            "ab");
  EXPECT_EQ(guarded("\x1b#8"), "\x1b#8");  // DECALN: an ordinary intermediate sequence
}

TEST(TerminalGuard, CancelAndControlsInsideSequences) {
  EXPECT_EQ(guarded("\x1b[1\x18m"), "\x18m");    // CAN aborts the CSI
  EXPECT_EQ(guarded("\x1b[1\nA"), "\n\x1b[1A");  // a C0 control acts at once
  EXPECT_EQ(guarded("\x1b\x1b[2J"), "\x1b[2J");  // ESC restarts
}

// A cursor saved on a larger screen is restored inside the smaller one. libvterm restored it
// off the screen and then wrote outside its buffers (found by the terminal's differential test:
// 15 line feeds, the alternate screen, insert mode, a resize to 15 rows, DECRC and a letter).
TEST(TerminalGuard, RestoringACursorSavedBeforeAShrinkStaysOnTheScreen) {
  EXPECT_EQ(guarded("\x1b"
                    "8x"),
            "\x1b"
            "8\x1b[?hx");
  for (const char* save : {"\x1b"
                           "7",
                           "\x1b[?1049h\x1b[4h", "\x1b[?1048h"}) {
    Terminal terminal(80, 30, 100);
    terminal.feed(std::string(15, '\n') + "\x1b[70C" + save);
    terminal.resize(20, 10);
    terminal.feed(
        "\x1b"
        "8r");
    EXPECT_EQ(terminal.cursor().row, 9) << save;
    EXPECT_EQ(terminal.cursor().col, 19) << save;
    terminal.feed("\x1b[?1048lq");
    EXPECT_LE(terminal.cursor().row, 9) << save;
  }
}

// The inputs that hung or crashed libvterm, through the real Terminal: each must return.
TEST(TerminalGuard, TerminalSurvivesWhatBrokeLibvterm) {
  Terminal terminal(80, 24, 100);
  terminal.feed("\x1b[b");
  terminal.feed("x\x1b[b");
  std::string many = "\x1b[";
  for (int i = 0; i < 1000; ++i) many += "9;";
  terminal.feed(many + "m");
  terminal.feed("\x1b[99999999999999999999999;99999999999999999999999H*");
  terminal.feed("\x1b[2147483647C\x1b[2147483647B+");
  EXPECT_NE(terminal.render_screen().find("xx"), std::string::npos);
  const auto cursor = terminal.cursor();
  EXPECT_LT(cursor.row, 24);
  EXPECT_LT(cursor.col, 80);
}

// libvterm 0.1.4 left the cursor on a negative row when a smaller screen pushed lines from
// above it into the scrollback, and the next erase (EL, as any shell redraw sends) segfaulted.
TEST(TerminalResize, ShrinkingBelowTheCursorKeepsItOnTheScreen) {
  for (int rows : {7, 5, 2}) {
    Terminal terminal(66, 13, 100);
    std::string fill;
    for (int i = 0; i < 12; ++i) fill += "line\r\n";
    terminal.feed(fill + "\x1b[4;7H");
    terminal.resize(66, static_cast<uint16_t>(rows));
    const auto cursor = terminal.cursor();
    EXPECT_GE(cursor.row, 0) << rows;
    EXPECT_LT(cursor.row, rows);
    terminal.feed("\x1b[K\x1b[1J\x1b[2Kx");
    EXPECT_NE(terminal.render_all().find('x'), std::string::npos);
  }
}

}  // namespace
}  // namespace pmcp::process
