// Text helpers: UTF-8 validation follows RFC 3629 (no overlongs, no surrogates, <= U+10FFFF).
#include "util/text.hpp"

#include <bit>
#include <cstring>
#include <ctime>

namespace pmcp::text {
namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 if invalid.
std::size_t valid_sequence(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  unsigned char c = b(0);
  if (c < 0x80) return 1;
  std::size_t n;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(k) & 0x3F);
  }
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

constexpr uint64_t kHighBits = 0x8080808080808080ULL;

// The index of the first byte at or after i that is not ASCII, eight bytes at a time.
std::size_t skip_ascii(std::string_view s, std::size_t i) {
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    if ((w & kHighBits) != 0) break;
  }
  while (i < s.size() && static_cast<unsigned char>(s[i]) < 0x80) ++i;
  return i;
}

// The index of the first byte that starts no valid sequence; s.size() when s is valid UTF-8.
std::size_t first_invalid(std::string_view s) {
  std::size_t i = 0;
  while ((i = skip_ascii(s, i)) < s.size()) {
    std::size_t n = valid_sequence(s, i);
    if (n == 0) return i;
    i += n;
  }
  return s.size();
}

}  // namespace

void append_utf8(std::string& out, uint32_t cp) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string sanitize_utf8(std::string_view bytes) {
  std::string out;
  std::size_t copied = 0;  // bytes[0, copied) are in out
  std::size_t i = 0;
  while ((i = skip_ascii(bytes, i)) < bytes.size()) {
    if (std::size_t n = valid_sequence(bytes, i); n != 0) {
      i += n;
      continue;
    }
    if (copied == 0 && out.empty()) out.reserve(bytes.size() + 16);
    out.append(bytes, copied, i - copied);
    out += "\xEF\xBF\xBD";
    copied = ++i;
  }
  if (copied == 0) return std::string(bytes);
  out.append(bytes, copied, std::string_view::npos);
  return out;
}

std::string sanitize_utf8(std::string&& bytes) {
  if (first_invalid(bytes) == bytes.size()) return std::move(bytes);
  return sanitize_utf8(std::string_view(bytes));
}

std::size_t count_chars(std::string_view utf8) {
  // A character starts at every byte that is not a continuation byte (10xxxxxx). Eight bytes at
  // a time: a byte continues when its top bit is set and the bit below it is clear.
  std::size_t continuations = 0;
  std::size_t i = 0;
  for (; i + 8 <= utf8.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, utf8.data() + i, 8);
    continuations += static_cast<std::size_t>(std::popcount(w & ~(w << 1) & kHighBits));
  }
  for (; i < utf8.size(); ++i) {
    continuations += (static_cast<unsigned char>(utf8[i]) & 0xC0) == 0x80 ? 1 : 0;
  }
  return utf8.size() - continuations;
}

Cut keep_tail(std::string utf8, std::size_t max_chars, std::string_view hint) {
  std::size_t total = count_chars(utf8);
  if (total <= max_chars) return Cut{std::move(utf8), 0};
  const std::size_t drop = total - max_chars;
  // From the end: only the part that is kept is walked, not the (often much longer) rest.
  std::size_t pos = utf8.size();
  for (std::size_t kept = 0; pos > 0 && kept < max_chars;) {
    --pos;
    if ((static_cast<unsigned char>(utf8[pos]) & 0xC0) != 0x80) ++kept;
  }
  std::string out = "[... " + std::to_string(drop) + " earlier characters truncated";
  if (!hint.empty()) out += "; " + std::string(hint);
  out += "]\n";
  out.append(utf8, pos, std::string::npos);
  return Cut{std::move(out), drop};
}

std::string last_lines(std::string_view text, std::size_t n) {
  if (n == 0 || text.empty()) return {};
  std::size_t end = text.size();
  if (text[end - 1] == '\n') --end;
  std::size_t pos = end;
  std::size_t lines = 0;
  while (pos > 0) {
    if (text[pos - 1] == '\n') {
      if (++lines == n) break;
    }
    --pos;
  }
  return std::string(text.substr(pos));
}

std::string iso8601(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const auto secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char out[64];
  const int n = std::snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                              tm.tm_sec, static_cast<int>(ms - static_cast<int64_t>(secs) * 1000));
  return std::string(out, n > 0 ? static_cast<std::size_t>(n) : 0);
}

}  // namespace pmcp::text
