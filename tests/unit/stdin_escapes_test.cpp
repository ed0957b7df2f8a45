#include "process/stdin_escapes.hpp"

#include <gtest/gtest.h>

#include <string>

namespace pmcp::process {
namespace {

// The decoded bytes, or a test failure naming the error.
std::string decoded(std::string_view input) {
  auto result = parse_stdin_escapes(input);
  if (const auto* error = std::get_if<EscapeError>(&result)) {
    ADD_FAILURE() << "unexpected error for '" << input << "': " << error->message;
    return {};
  }
  return std::get<std::string>(result);
}

// The error, or a test failure if the input decoded.
EscapeError error_for(std::string_view input) {
  auto result = parse_stdin_escapes(input);
  if (const auto* error = std::get_if<EscapeError>(&result)) return *error;
  ADD_FAILURE() << "expected an error for '" << input << "'";
  return EscapeError{static_cast<std::size_t>(-1), ""};
}

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

TEST(StdinEscapes, PlainTextPassesThrough) {
  EXPECT_EQ(decoded(""), "");
  EXPECT_EQ(decoded("echo hi"), "echo hi");
  EXPECT_EQ(decoded("h\xc3\xa9 \xe6\x97\xa5"), "h\xc3\xa9 \xe6\x97\xa5");  // UTF-8 untouched
}

TEST(StdinEscapes, SimpleEscapes) {
  EXPECT_EQ(decoded(R"(ls\n)"), "ls\n");
  EXPECT_EQ(decoded(R"(\r)"), "\r");
  EXPECT_EQ(decoded(R"(a\tb)"), "a\tb");
  EXPECT_EQ(decoded(R"(\\)"), "\\");
  EXPECT_EQ(decoded(R"(\e)"), "\x1b");
  EXPECT_EQ(decoded(R"(\e[A)"), "\x1b[A");
  EXPECT_EQ(decoded(R"(\0)"), std::string(1, '\0'));
  EXPECT_EQ(decoded(R"(\01)"), std::string("\0"
                                           "1",
                                           2));  // \0 is NUL, never octal
}

TEST(StdinEscapes, LiteralBackslashIsExpressible) {
  EXPECT_EQ(decoded(R"(\\n)"), "\\n");
  EXPECT_EQ(decoded(R"(C:\\dir\\file)"), "C:\\dir\\file");
  EXPECT_EQ(decoded(R"(\\\\)"), "\\\\");
  EXPECT_EQ(decoded(R"(\\\n)"), "\\\n");
}

TEST(StdinEscapes, HexByte) {
  EXPECT_EQ(decoded(R"(\x1b)"), "\x1b");
  EXPECT_EQ(decoded(R"(\x03)"), "\x03");
  EXPECT_EQ(decoded(R"(\x41\x42)"), "AB");
  EXPECT_EQ(decoded(R"(\xAb\xaB)"), "\xab\xab");  // either case
  EXPECT_EQ(decoded(R"(\xff)"), "\xff");          // a raw byte, not UTF-8 encoded
  EXPECT_EQ(decoded(R"(\x00)"), std::string(1, '\0'));
  EXPECT_EQ(decoded(R"(\x414)"), "A4");  // exactly two digits
}

TEST(StdinEscapes, FourDigitUnicode) {
  EXPECT_EQ(decoded(R"(\u0041)"), "A");
  EXPECT_EQ(decoded(R"(\u00e9)"), "\xc3\xa9");
  EXPECT_EQ(decoded(R"(\u00E9)"), "\xc3\xa9");
  EXPECT_EQ(decoded(R"(\u20ac)"), "\xe2\x82\xac");
  EXPECT_EQ(decoded(R"(\uffff)"), "\xef\xbf\xbf");
  EXPECT_EQ(decoded(R"(\u00411)"), "A1");  // exactly four digits
}

TEST(StdinEscapes, SurrogatePairCombines) {
  EXPECT_EQ(decoded(R"(\uD83D\uDE00)"), "\xf0\x9f\x98\x80");  // U+1F600
  EXPECT_EQ(decoded(R"(\ud83d\ude00!)"), "\xf0\x9f\x98\x80!");
  EXPECT_EQ(decoded(R"(\uDBFF\uDFFF)"), "\xf4\x8f\xbf\xbf");  // U+10FFFF
}

TEST(StdinEscapes, BracedUnicode) {
  EXPECT_EQ(decoded(R"(\u{41})"), "A");
  EXPECT_EQ(decoded(R"(\u{e9})"), "\xc3\xa9");
  EXPECT_EQ(decoded(R"(\u{1F600})"), "\xf0\x9f\x98\x80");
  EXPECT_EQ(decoded(R"(\u{01F600})"), "\xf0\x9f\x98\x80");  // six digits
  EXPECT_EQ(decoded(R"(\u{10FFFF})"), "\xf4\x8f\xbf\xbf");
  EXPECT_EQ(decoded(R"(\u{0})"), std::string(1, '\0'));
  EXPECT_EQ(decoded(R"(a\u{7ff}b)"),
            "a\xdf\xbf"
            "b");
}

TEST(StdinEscapes, MixedInput) {
  EXPECT_EQ(decoded(R"(:wq\r)"), ":wq\r");
  EXPECT_EQ(decoded(R"(\x1b:q!\n\u{1F600}\\)"), "\x1b:q!\n\xf0\x9f\x98\x80\\");
}

TEST(StdinEscapes, UnknownEscapeMessageSaysWhatToWrite) {
  const EscapeError error = error_for(R"(hello\q)");
  EXPECT_EQ(error.position, 5u);
  EXPECT_EQ(error.message, R"(invalid escape '\q' at position 5: use \\ for a literal backslash; )"
                           R"(valid escapes are \n \r \t \\ \e \0 \xHH \uHHHH \u{H...})");
}

TEST(StdinEscapes, EveryOtherCharacterAfterABackslashIsAnError) {
  for (const char* input : {R"(\a)", R"(\b)", R"(\f)", R"(\v)", R"(\")", R"(\')", R"(\ )", R"(\N)",
                            R"(\U0041)", R"(\X41)", R"(\1)", R"(\/)"}) {
    const EscapeError error = error_for(input);
    EXPECT_EQ(error.position, 0u) << input;
    EXPECT_TRUE(contains(error.message, "invalid escape")) << error.message;
    EXPECT_TRUE(contains(error.message, std::string_view(input, 2))) << error.message;
  }
}

TEST(StdinEscapes, UnknownEscapeQuotesAWholeUtf8Character) {
  const EscapeError error = error_for("\\\xc3\xa9");  // backslash + é
  EXPECT_EQ(error.position, 0u);
  EXPECT_TRUE(contains(error.message, "'\\\xc3\xa9'")) << error.message;
}

TEST(StdinEscapes, TrailingLoneBackslash) {
  const EscapeError error = error_for(R"(abc\)");
  EXPECT_EQ(error.position, 3u);
  EXPECT_TRUE(contains(error.message, "lone backslash")) << error.message;
  EXPECT_TRUE(contains(error.message, "position 3")) << error.message;
  EXPECT_TRUE(contains(error.message, R"(\\)")) << error.message;
  EXPECT_EQ(error_for(R"(\)").position, 0u);
  EXPECT_EQ(error_for(R"(\\\)").position, 2u);
}

TEST(StdinEscapes, BadHexByte) {
  for (const char* input : {R"(\x)", R"(\x1)", R"(\xZZ)", R"(\x1G)", R"(\x-1)", R"(\x\n)"}) {
    const EscapeError error = error_for(input);
    EXPECT_EQ(error.position, 0u) << input;
    EXPECT_TRUE(contains(error.message, "two hex digits")) << error.message;
  }
  const EscapeError error = error_for(R"(ok \xZZ)");
  EXPECT_EQ(error.position, 3u);
  EXPECT_TRUE(contains(error.message, R"('\xZZ' at position 3)")) << error.message;
}

TEST(StdinEscapes, BadFourDigitUnicode) {
  for (const char* input : {R"(\u)", R"(\u1)", R"(\u123)", R"(\u12G4)", R"(\uxyzw)"}) {
    const EscapeError error = error_for(input);
    EXPECT_EQ(error.position, 0u) << input;
    EXPECT_TRUE(contains(error.message, "four hex digits")) << error.message;
    EXPECT_TRUE(contains(error.message, R"(\u{1F600})")) << error.message;
  }
}

TEST(StdinEscapes, LoneSurrogatesAreErrors) {
  const EscapeError high_at_end = error_for(R"(ab\uD83D)");
  EXPECT_EQ(high_at_end.position, 2u);
  EXPECT_TRUE(contains(high_at_end.message, "lone high surrogate")) << high_at_end.message;
  EXPECT_TRUE(contains(high_at_end.message, R"(\u{1F600})")) << high_at_end.message;

  EXPECT_EQ(error_for(R"(\uD83Dx)").position, 0u);
  EXPECT_EQ(error_for(R"(\uD83D\u0041)").position, 0u);  // followed by a non-surrogate
  EXPECT_EQ(error_for(R"(\uD83D\uD83D)").position, 0u);  // two highs
  EXPECT_EQ(error_for(R"(\uD83D\u{DE00})").position, 0u);

  const EscapeError low = error_for(R"(x\uDE00)");
  EXPECT_EQ(low.position, 1u);
  EXPECT_TRUE(contains(low.message, "lone low surrogate")) << low.message;
}

TEST(StdinEscapes, BadBracedUnicode) {
  for (const char* input :
       {R"(\u{})", R"(\u{1234567})", R"(\u{12)", R"(\u{xyz})", R"(\u{ 41})", R"(\u{)"}) {
    const EscapeError error = error_for(input);
    EXPECT_EQ(error.position, 0u) << input;
    EXPECT_TRUE(contains(error.message, "1 to 6 hex digits")) << error.message;
  }
  const EscapeError too_big = error_for(R"(\u{110000})");
  EXPECT_EQ(too_big.position, 0u);
  EXPECT_TRUE(contains(too_big.message, "10FFFF")) << too_big.message;

  const EscapeError surrogate = error_for(R"(a\u{D800})");
  EXPECT_EQ(surrogate.position, 1u);
  EXPECT_TRUE(contains(surrogate.message, "surrogate")) << surrogate.message;
  EXPECT_EQ(error_for(R"(\u{DFFF})").position, 0u);
}

TEST(StdinEscapes, PositionCountsCharactersNotBytes) {
  EXPECT_EQ(error_for("\xc3\xa9\\q").position, 1u);                  // é is 2 bytes, 1 character
  EXPECT_EQ(error_for("\xe6\x97\xa5\xe6\x9c\xac\\q").position, 2u);  // 日本
  EXPECT_EQ(error_for("\xf0\x9f\x98\x80 \\").position, 2u);          // U+1F600 is 4 bytes
}

TEST(StdinEscapes, PositionCountsEscapesAsWritten) {
  EXPECT_EQ(error_for(R"(\n\t\q)").position, 4u);
  EXPECT_EQ(error_for(R"(\x1b\q)").position, 4u);
  EXPECT_EQ(error_for(R"(\u00e9\q)").position, 6u);
  EXPECT_EQ(error_for(R"(\uD83D\uDE00\q)").position, 12u);
  EXPECT_EQ(error_for(R"(\u{1F600}-\q)").position, 10u);
  EXPECT_EQ(error_for(R"(\\\\\q)").position, 4u);
}

TEST(StdinEscapes, FirstErrorWins) {
  const EscapeError error = error_for(R"(a\qb\z)");
  EXPECT_EQ(error.position, 1u);
  EXPECT_TRUE(contains(error.message, R"('\q')")) << error.message;
}

}  // namespace
}  // namespace pmcp::process
