#include "process/stdin_escapes.hpp"
#include "util/text.hpp"

#include <cstdint>
#include <optional>

namespace pmcp::process {

namespace {

constexpr std::string_view valid_escapes =
    "valid escapes are \\n \\r \\t \\\\ \\e \\0 \\xHH \\uHHHH \\u{H...}";

bool is_continuation_byte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

std::optional<uint32_t> parse_hex(std::string_view digits) {
  if (digits.empty()) return std::nullopt;
  uint32_t value = 0;
  for (char c : digits) {
    uint32_t digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      digit = static_cast<uint32_t>(c - 'A' + 10);
    } else {
      return std::nullopt;
    }
    value = value * 16 + digit;
  }
  return value;
}


bool is_high_surrogate(uint32_t cp) { return cp >= 0xD800 && cp <= 0xDBFF; }
bool is_low_surrogate(uint32_t cp) { return cp >= 0xDC00 && cp <= 0xDFFF; }

// The escape text as the agent wrote it, for messages: from the backslash up to `length` bytes,
// stopping early at the next backslash so that one escape is quoted at a time.
std::string quote(std::string_view input, std::size_t at, std::size_t length) {
  std::string_view text = input.substr(at, length);
  const std::size_t next = text.find('\\', 1);
  if (next != std::string_view::npos) text = text.substr(0, next);
  return std::string(text);
}

class Decoder {
 public:
  explicit Decoder(std::string_view input) : input_(input) {}

  std::variant<std::string, EscapeError> run() {
    std::string out;
    out.reserve(input_.size());
    std::size_t chars = 0;  // characters before input_[i]
    std::size_t i = 0;
    while (i < input_.size()) {
      if (input_[i] != '\\') {
        if (!is_continuation_byte(input_[i])) ++chars;
        out += input_[i++];
        continue;
      }
      const std::size_t start = i;
      std::size_t consumed = 0;
      std::optional<EscapeError> error = decode_one(start, chars, out, consumed);
      if (error) return std::move(*error);
      // An escape is ASCII only, so its length in characters is its length in bytes.
      chars += consumed;
      i += consumed;
    }
    return out;
  }

 private:
  EscapeError fail(std::size_t position, std::string message) {
    return EscapeError{position, std::move(message)};
  }

  std::string at(std::size_t position) { return " at position " + std::to_string(position); }

  // Decodes the escape whose backslash is at input_[start] (character index `position`),
  // appending to out and setting consumed to its length in bytes.
  std::optional<EscapeError> decode_one(std::size_t start, std::size_t position, std::string& out,
                                        std::size_t& consumed) {
    if (start + 1 >= input_.size()) {
      return fail(position, "lone backslash at the end of the input" + at(position) +
                                ": write \\\\ for a literal backslash; " +
                                std::string(valid_escapes));
    }
    const char kind = input_[start + 1];
    consumed = 2;
    switch (kind) {
      case 'n':
        out += '\n';
        return std::nullopt;
      case 'r':
        out += '\r';
        return std::nullopt;
      case 't':
        out += '\t';
        return std::nullopt;
      case '\\':
        out += '\\';
        return std::nullopt;
      case 'e':
        out += '\x1b';
        return std::nullopt;
      case '0':
        out += '\0';
        return std::nullopt;
      case 'x':
        return decode_x(start, position, out, consumed);
      case 'u':
        return decode_u(start, position, out, consumed);
      default:
        break;
    }
    // Quote the whole character after the backslash, even if it is multi-byte UTF-8.
    std::size_t length = 2;
    while (start + length < input_.size() && is_continuation_byte(input_[start + length])) {
      ++length;
    }
    return fail(position, "invalid escape '" + std::string(input_.substr(start, length)) + "'" +
                              at(position) + ": use \\\\ for a literal backslash; " +
                              std::string(valid_escapes));
  }

  std::optional<EscapeError> decode_x(std::size_t start, std::size_t position, std::string& out,
                                      std::size_t& consumed) {
    const std::optional<uint32_t> value = parse_hex(input_.substr(start + 2, 2));
    if (!value || start + 4 > input_.size()) {
      return fail(position, "invalid escape '" + quote(input_, start, 4) + "'" + at(position) +
                                ": \\x needs exactly two hex digits, e.g. \\x1b for ESC or "
                                "\\x03 for Ctrl-C");
    }
    out += static_cast<char>(*value);
    consumed = 4;
    return std::nullopt;
  }

  std::optional<EscapeError> decode_u(std::size_t start, std::size_t position, std::string& out,
                                      std::size_t& consumed) {
    if (start + 2 < input_.size() && input_[start + 2] == '{') {
      return decode_u_braced(start, position, out, consumed);
    }
    const std::optional<uint32_t> value = parse_hex(input_.substr(start + 2, 4));
    if (!value || start + 6 > input_.size()) {
      return fail(position, "invalid escape '" + quote(input_, start, 6) + "'" + at(position) +
                                ": \\u needs exactly four hex digits (e.g. \\u00e9) or a code "
                                "point in braces (e.g. \\u{1F600})");
    }
    consumed = 6;
    if (is_low_surrogate(*value)) {
      return fail(position, "lone low surrogate '" + quote(input_, start, 6) + "'" + at(position) +
                                ": it must follow a high surrogate \\uD800-"
                                "\\uDBFF; or write the code point in braces, e.g. \\u{1F600}");
    }
    if (!is_high_surrogate(*value)) {
      pmcp::text::append_utf8(out, *value);
      return std::nullopt;
    }
    // A high surrogate: the next six bytes must be \u and a low surrogate.
    const std::string_view rest = input_.substr(start + 6);
    std::optional<uint32_t> low;
    if (rest.size() >= 6 && rest[0] == '\\' && rest[1] == 'u') low = parse_hex(rest.substr(2, 4));
    if (!low || !is_low_surrogate(*low)) {
      return fail(position, "lone high surrogate '" + quote(input_, start, 6) + "'" + at(position) +
                                ": it must be followed by a low surrogate "
                                "\\uDC00-\\uDFFF (e.g. \\uD83D\\uDE00); or write the code "
                                "point in braces, e.g. \\u{1F600}");
    }
    pmcp::text::append_utf8(out, 0x10000 + ((*value - 0xD800) << 10) + (*low - 0xDC00));
    consumed = 12;
    return std::nullopt;
  }

  std::optional<EscapeError> decode_u_braced(std::size_t start, std::size_t position,
                                             std::string& out, std::size_t& consumed) {
    const std::size_t close = input_.find('}', start + 3);
    const std::string_view digits = close == std::string_view::npos
                                        ? std::string_view{}
                                        : input_.substr(start + 3, close - (start + 3));
    const std::optional<uint32_t> value = digits.size() <= 6 ? parse_hex(digits) : std::nullopt;
    if (close == std::string_view::npos || !value) {
      const std::size_t shown = close == std::string_view::npos ? 12 : close + 1 - start;
      return fail(position, "invalid escape '" + quote(input_, start, shown) + "'" + at(position) +
                                ": \\u{...} needs 1 to 6 hex digits and a "
                                "closing brace, e.g. \\u{1F600} or \\u{e9}");
    }
    const std::string text(input_.substr(start, close + 1 - start));
    if (*value > 0x10FFFF) {
      return fail(position, "invalid escape '" + text + "'" + at(position) +
                                ": code points go up to \\u{10FFFF}");
    }
    if (is_high_surrogate(*value) || is_low_surrogate(*value)) {
      return fail(position, "invalid escape '" + text + "'" + at(position) +
                                ": surrogates D800-DFFF are not characters; write the code "
                                "point itself, e.g. \\u{1F600}");
    }
    pmcp::text::append_utf8(out, *value);
    consumed = close + 1 - start;
    return std::nullopt;
  }

  std::string_view input_;
};

}  // namespace

std::variant<std::string, EscapeError> parse_stdin_escapes(std::string_view input) {
  return Decoder(input).run();
}

}  // namespace pmcp::process
