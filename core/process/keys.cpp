// Key encoding: on a TTY libvterm produces the bytes (so application cursor mode and the like
// follow what the program asked for); on a pipe the xterm normal-mode encodings are used.
#include "process/keys.hpp"

#include <array>
#include <cctype>

namespace pmcp::process {
namespace {

struct NamedKey {
  std::string_view name;
  VTermKey key;
  std::string_view pipe_bytes;  // encoding for a pipe process
};

constexpr std::array<NamedKey, 14> kKeys = {{
    {"Enter", VTERM_KEY_ENTER, "\n"},
    {"Tab", VTERM_KEY_TAB, "\t"},
    {"Escape", VTERM_KEY_ESCAPE, "\x1b"},
    {"Backspace", VTERM_KEY_BACKSPACE, "\x7f"},
    {"Up", VTERM_KEY_UP, "\x1b[A"},
    {"Down", VTERM_KEY_DOWN, "\x1b[B"},
    {"Right", VTERM_KEY_RIGHT, "\x1b[C"},
    {"Left", VTERM_KEY_LEFT, "\x1b[D"},
    {"Home", VTERM_KEY_HOME, "\x1b[H"},
    {"End", VTERM_KEY_END, "\x1b[F"},
    {"PageUp", VTERM_KEY_PAGEUP, "\x1b[5~"},
    {"PageDown", VTERM_KEY_PAGEDOWN, "\x1b[6~"},
    {"Insert", VTERM_KEY_INS, "\x1b[2~"},
    {"Delete", VTERM_KEY_DEL, "\x1b[3~"},
}};

constexpr std::array<std::string_view, 12> kFunctionPipe = {
    "\x1bOP", "\x1bOQ", "\x1bOR", "\x1bOS", "\x1b[15~", "\x1b[17~",
    "\x1b[18~", "\x1b[19~", "\x1b[20~", "\x1b[21~", "\x1b[23~", "\x1b[24~"};

Result<std::string> encode_one(std::string_view name, Terminal* terminal) {
  std::string_view lookup = name == "Esc" ? "Escape" : name == "Return" ? "Enter" : name;
  for (const auto& k : kKeys) {
    if (k.name == lookup) {
      if (terminal == nullptr) return std::string(k.pipe_bytes);
      // Enter is CR on a terminal; Backspace is DEL (libvterm agrees for both).
      return terminal->encode_key(k.key);
    }
  }
  if (name == "Space") return std::string(" ");
  if (name.size() >= 2 && name.size() <= 3 && name[0] == 'F' && std::isdigit(name[1])) {
    int n = std::stoi(std::string(name.substr(1)));
    if (n >= 1 && n <= 12 && (name.size() == 2 || std::isdigit(name[2]))) {
      if (terminal == nullptr) return std::string(kFunctionPipe[static_cast<std::size_t>(n - 1)]);
      return terminal->encode_key(static_cast<VTermKey>(VTERM_KEY_FUNCTION(n)));
    }
  }
  if (name.size() == 3 && (name[0] == 'C' || name[0] == 'M') && name[1] == '-') {
    unsigned char c = static_cast<unsigned char>(name[2]);
    if (name[0] == 'C') {
      unsigned char lower = static_cast<unsigned char>(std::tolower(c));
      if (lower >= 'a' && lower <= 'z') return std::string(1, static_cast<char>(lower - 'a' + 1));
      switch (c) {
        case '@': case ' ': return std::string(1, '\0');
        case '[': return std::string("\x1b");
        case '\\': return std::string("\x1c");
        case ']': return std::string("\x1d");
        case '^': return std::string("\x1e");
        case '_': return std::string("\x1f");
        case '?': return std::string("\x7f");
        default: break;
      }
    } else if (c >= 0x20 && c < 0x7f) {
      return std::string("\x1b") + static_cast<char>(c);  // Meta: ESC prefix
    }
  }
  return make_error(ErrorCode::invalid_argument,
                    "unknown key '" + std::string(name) + "'; valid keys: " + key_names_help());
}

}  // namespace

std::string key_names_help() {
  std::string out;
  for (const auto& k : kKeys) out += std::string(k.name) + ", ";
  out += "Esc, Space, F1..F12, C-a..C-z (Ctrl), C-@ C-[ C-\\ C-] C-^ C-_ C-?, M-<char> (Meta/Alt)";
  return out;
}

Result<std::string> encode_keys(const std::vector<std::string>& names, Terminal* terminal) {
  std::string out;
  for (const auto& name : names) {
    auto bytes = encode_one(name, terminal);
    if (!bytes) return std::move(bytes).error();
    out += *bytes;
  }
  return out;
}

}  // namespace pmcp::process
