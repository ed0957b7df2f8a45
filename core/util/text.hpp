// Text helpers for what the core shows to clients: valid UTF-8 (JSON requires it), cutting
// to a number of characters with a marker that says how much was cut, timestamps.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pmcp::text {

// Appends code point cp as UTF-8; surrogates and values above U+10FFFF become U+FFFD.
void append_utf8(std::string& out, uint32_t cp);

// Replaces every invalid UTF-8 sequence with U+FFFD; valid input is returned unchanged.
std::string sanitize_utf8(std::string_view bytes);
// The same, taking the bytes: valid input is moved out rather than copied.
std::string sanitize_utf8(std::string&& bytes);
inline std::string sanitize_utf8(const char* bytes) {
  return sanitize_utf8(std::string_view(bytes));
}

// Number of code points in valid UTF-8 text.
std::size_t count_chars(std::string_view utf8);

struct Cut {
  std::string text;
  std::size_t cut_chars = 0;  // how many characters were removed (0 = nothing cut)
};
// Keeps the LAST max_chars characters of valid UTF-8 text. When something is cut, the text
// starts with a marker line: "[... 1234 earlier characters truncated; <hint>]\n".
Cut keep_tail(std::string utf8, std::size_t max_chars, std::string_view hint);

// The last n lines of text (a final line without '\n' counts; a trailing '\n' does not start
// an extra empty line).
std::string last_lines(std::string_view text, std::size_t n);

// "2026-11-25T11:45:46.123Z"
std::string iso8601(std::chrono::system_clock::time_point t);

}  // namespace pmcp::text
