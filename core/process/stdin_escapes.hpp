// Decoding of the backslash escapes an agent writes in `stdin` text (\n, \x1b, \u{1F600}, ...)
// into the exact bytes sent to a process; errors say where and what to write instead.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

namespace pmcp::process {

struct EscapeError {
  // 0-based index of the offending backslash, counted in characters (Unicode code points of the
  // UTF-8 input, so it matches what the agent sees in its JSON string), not in bytes.
  std::size_t position;
  // Says what was wrong and what to write instead; ready to show to the agent.
  std::string message;
};

// Escapes: \n \r \t \\ \e (ESC, 0x1b) \0 (NUL, never octal) \xHH (exactly two hex digits, one
// raw byte, which need not be valid UTF-8) \uHHHH (exactly four hex digits, a code point encoded
// as UTF-8; a high surrogate must be followed by \u + a low surrogate and the pair is combined)
// \u{H...} (1 to 6 hex digits, at most 10FFFF, not a surrogate). Hex digits are case-insensitive.
// Any other character after a backslash, a trailing lone backslash, bad hex, a lone surrogate
// or an out-of-range code point is an error. Bytes without a backslash pass through unchanged.
// Example: "ls\n" -> "ls" + '\n'; "a\\qb" -> EscapeError{1, "invalid escape '\q' ..."}.
std::variant<std::string, EscapeError> parse_stdin_escapes(std::string_view input);

}  // namespace pmcp::process
