#include "config.hpp"

#include <cstddef>

#include "pmcp/plugin.hpp"

namespace pmcp::host {

namespace {

using sdk::Error;

// A minimal scanner over JSON text: enough to walk an object's top level and skip any value.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : s_(text) {}

  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  bool at_end() const { return i_ >= s_.size(); }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void expect(char c) {
    if (peek() != c) fail();
    ++i_;
  }

  // Reads a string literal; escapes other than \uXXXX are decoded, \uXXXX is kept verbatim
  // (good enough to name a key in an error message).
  std::string string() {
    expect('"');
    std::string out;
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail();
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) fail();
      const char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u':
          if (i_ + 4 > s_.size()) fail();
          out += "\\u";
          out += s_.substr(i_, 4);
          i_ += 4;
          break;
        default: fail();
      }
    }
    fail();
  }

  // Skips one value of any kind.
  void value() {
    skip_ws();
    const char c = peek();
    if (c == '"') {
      string();
    } else if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      ++i_;
      skip_ws();
      if (peek() == close) {
        ++i_;
        return;
      }
      for (;;) {
        if (close == '}') {
          skip_ws();
          string();
          skip_ws();
          expect(':');
        }
        value();
        skip_ws();
        if (peek() == ',') {
          ++i_;
          continue;
        }
        expect(close);
        return;
      }
    } else {
      const std::size_t start = i_;
      while (i_ < s_.size()) {
        const char d = s_[i_];
        if ((d >= '0' && d <= '9') || (d >= 'a' && d <= 'z') || d == '-' || d == '+' ||
            d == '.' || d == 'E')
          ++i_;
        else
          break;
      }
      if (i_ == start) fail();
    }
  }

  [[noreturn]] void fail() const {
    throw Error(PMCP_ERR_INVALID_ARGUMENT,
                "the host executor configuration is not a JSON object (at byte " +
                    std::to_string(i_) + ")");
  }

 private:
  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace

std::vector<std::string> top_level_keys(std::string_view json) {
  Scanner sc(json);
  std::vector<std::string> keys;
  sc.skip_ws();
  if (sc.at_end()) return keys;
  sc.expect('{');
  sc.skip_ws();
  if (sc.peek() == '}') {
    sc.expect('}');
  } else {
    for (;;) {
      sc.skip_ws();
      keys.push_back(sc.string());
      sc.skip_ws();
      sc.expect(':');
      sc.value();
      sc.skip_ws();
      if (sc.peek() == ',') {
        sc.expect(',');
        continue;
      }
      sc.expect('}');
      break;
    }
  }
  sc.skip_ws();
  if (!sc.at_end()) sc.fail();
  return keys;
}

void check_config(std::string_view json) {
  const std::vector<std::string> keys = top_level_keys(json);
  // Sandbox settings first: they must never be ignored, so that nothing runs unsandboxed by
  // accident (the core maps the SANDBOX_* environment variables onto these keys).
  for (const std::string& key : keys) {
    if (key == "sandbox" || key == "filesystem" || key == "network") {
      throw Error(PMCP_ERR_UNSUPPORTED,
                  "the host sandbox is not available in this build yet; remove [host." + key +
                      "] and the SANDBOX_* environment variables to run commands unsandboxed");
    }
  }
  if (!keys.empty()) {
    throw Error(PMCP_ERR_INVALID_ARGUMENT,
                "unknown key '" + keys.front() +
                    "' in [host]: the host executor has no settings in this build");
  }
}

}  // namespace pmcp::host
