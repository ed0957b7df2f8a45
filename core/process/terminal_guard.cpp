// TerminalGuard: a small ECMA-48 recognizer (ground, escape, CSI, control strings) that passes
// what libvterm handles safely and rewrites the rest; see terminal_guard.hpp for why.
#include "process/terminal_guard.hpp"

#include <algorithm>

namespace pmcp::process {

namespace {

constexpr unsigned char kEsc = 0x1b;
constexpr unsigned char kCan = 0x18;
constexpr unsigned char kSub = 0x1a;
constexpr unsigned char kBel = 0x07;
constexpr unsigned char kDel = 0x7f;
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD, what libvterm shows

uint32_t decode_utf8(std::string_view s) {
  const auto b = [&](std::size_t i) {
    return static_cast<uint32_t>(static_cast<unsigned char>(s[i]));
  };
  switch (s.size()) {
    case 2:
      return ((b(0) & 0x1f) << 6) | (b(1) & 0x3f);
    case 3:
      return ((b(0) & 0x0f) << 12) | ((b(1) & 0x3f) << 6) | (b(2) & 0x3f);
    case 4:
      return ((b(0) & 0x07) << 18) | ((b(1) & 0x3f) << 12) | ((b(2) & 0x3f) << 6) | (b(3) & 0x3f);
    default:
      return b(0);
  }
}

// Bytes that ground_byte passes unchanged, with no other effect than setting the last graphic
// character: printable ASCII and the C0 controls other than ESC, SO and SI.
bool passes_as_is(unsigned char c) {
  return (c >= 0x20 && c < kDel) || (c < 0x20 && c != kEsc && c != 0x0e && c != 0x0f);
}

}  // namespace

void TerminalGuard::ground_byte(unsigned char c, std::string& out) {
  if (utf8_need_ > 0) {
    if ((c & 0xc0) == 0x80) {
      utf8_ += static_cast<char>(c);
      if (--utf8_need_ > 0) return;
      const uint32_t cp = decode_utf8(utf8_);
      // C1 controls written as UTF-8 would be glyphs of width -1 to libvterm: drop them.
      if (cp < 0x80 || cp > 0x9f) {
        out += utf8_;
        last_graphic_ = utf8_;
      }
      utf8_.clear();
      return;
    }
    // An interrupted sequence shows as one U+FFFD. It is written as such: libvterm's decoder
    // would keep the unfinished bytes across a control that follows and show the U+FFFD where
    // the next text starts, maybe on another row.
    out += kReplacement;
    last_graphic_ = kReplacement;
    utf8_.clear();
    utf8_need_ = 0;
  }
  if (c == kEsc) {
    state_ = State::escape;
    pending_.assign(1, static_cast<char>(kEsc));
  } else if (c < 0x20) {
    if (c == 0x0e || c == 0x0f) charsets_ = true;  // SO, SI
    out += static_cast<char>(c);
  } else if (c == kDel) {
    // Ignored by terminals; never a glyph.
  } else if (c < 0x80) {
    out += static_cast<char>(c);
    last_graphic_.assign(1, static_cast<char>(c));
  } else if (c >= 0xc2 && c <= 0xf4) {
    utf8_.assign(1, static_cast<char>(c));
    utf8_need_ = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
  } else {
    // Not UTF-8 (a stray continuation byte, an overlong or out-of-range lead): one U+FFFD.
    // libvterm would take 0xc0, 0xc1 and 0xf5 to 0xfd as leads and wait for more.
    out += kReplacement;
    last_graphic_ = kReplacement;
  }
}

bool TerminalGuard::control_inside_sequence(unsigned char c, std::string& out) {
  if (c == kEsc) {  // a new sequence starts; the unfinished one is dropped
    pending_.assign(1, static_cast<char>(kEsc));
    state_ = State::escape;
  } else if (c == kCan || c == kSub) {  // cancels the sequence
    out += static_cast<char>(c);
    pending_.clear();
    state_ = State::ground;
  } else if (c < 0x20) {
    out += static_cast<char>(c);  // C0 controls act inside a sequence
  } else if (c == kDel) {
    // ignored
  } else if (c >= 0x80) {  // not part of any sequence: it ends it
    pending_.clear();
    state_ = State::ground;
    ground_byte(c, out);
  } else {
    return false;
  }
  return true;
}

void TerminalGuard::finish_csi(unsigned char final, uint16_t cols, std::string& out) {
  // pending_ is ESC [ leader? params intermediates.
  std::string_view body(pending_);
  body.remove_prefix(2);
  std::string_view leader;
  if (!body.empty() && (body[0] == '<' || body[0] == '=' || body[0] == '>' || body[0] == '?')) {
    leader = body.substr(0, 1);
    body.remove_prefix(1);
  }
  std::size_t params_end = 0;
  while (params_end < body.size() && ((body[params_end] >= '0' && body[params_end] <= '9') ||
                                      body[params_end] == ';' || body[params_end] == ':')) {
    ++params_end;
  }
  const std::string_view params = body.substr(0, params_end);
  const std::string_view intermediates = body.substr(params_end);
  const bool well_formed = intermediates.size() <= kMaxIntermediates &&
                           std::all_of(intermediates.begin(), intermediates.end(),
                                       [](char ch) { return ch >= 0x20 && ch <= 0x2f; });
  pending_.clear();
  if (!well_formed) return;  // parameter bytes in the wrong place: drop the sequence

  // The parameters again, each number clamped, at most kMaxCsiParams of them.
  std::string clamped;
  std::size_t fields = 1;
  uint32_t first = 0;
  bool first_set = false;
  uint32_t value = 0;
  bool digits = false;
  const auto end_field = [&] {
    if (digits) clamped += std::to_string(value);
    if (fields == 1 && digits) {
      first = value;
      first_set = true;
    }
    value = 0;
    digits = false;
  };
  for (char ch : params) {
    if (ch == ';' || ch == ':') {
      end_field();
      if (++fields > kMaxCsiParams) break;
      clamped += ch;
    } else {
      value = std::min<uint32_t>(value * 10 + static_cast<uint32_t>(ch - '0'), kMaxCsiNumber);
      digits = true;
    }
  }
  if (fields <= kMaxCsiParams) end_field();

  // What the fast scrolling of Terminal must know (see margins_full()).
  if (final == 'r' && leader.empty() && intermediates.empty()) {  // DECSTBM
    margins_set_ = !clamped.empty();
    margins_touched_ = true;
  } else if (final == 'p' && leader.empty() && intermediates == "!") {
    // DECSTR (soft reset): libvterm 0.1.x does not act on it (it looks for '!' as a leader, not
    // as an intermediate), so the margins stay; later versions reset them. Either way this
    // chunk is not fast-scrolled.
    margins_touched_ = true;
  } else if ((final == 'h' || final == 'l') && leader == "?") {
    std::size_t start = 0;
    while (start <= clamped.size()) {
      std::size_t end = clamped.find_first_of(";:", start);
      if (end == std::string::npos) end = clamped.size();
      if (std::string_view(clamped).substr(start, end - start) == "69") {
        lr_margin_mode_ = final == 'h';
        margins_touched_ = true;
      }
      start = end + 1;
    }
  }

  if (final == 'b' && leader.empty() && intermediates.empty()) {
    // REP: the preceding graphic character, repeated; never libvterm's own (it loops forever
    // when nothing was printed yet). More than a row is never needed.
    if (last_graphic_.empty()) return;
    std::size_t n = first_set && first > 0 ? first : 1;
    n = std::min<std::size_t>(n, std::max<uint16_t>(cols, 1));
    for (std::size_t i = 0; i < n; ++i) out += last_graphic_;
    return;
  }
  out += static_cast<char>(kEsc);
  out += '[';
  out += leader;
  out += clamped;
  out += intermediates;
  out += static_cast<char>(final);
}

void TerminalGuard::filter(std::string_view bytes, uint16_t cols, std::string& out) {
  margins_touched_ = false;
  out.reserve(out.size() + bytes.size());
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    switch (state_) {
      case State::ground:
        if (utf8_need_ == 0 && passes_as_is(c)) {
          // A run of printable ASCII and C0 controls passes unchanged, as ground_byte would
          // pass it byte by byte: copied at once, the last printable byte kept for REP.
          std::size_t end = i + 1;
          while (end < bytes.size() && passes_as_is(static_cast<unsigned char>(bytes[end]))) ++end;
          out.append(bytes.data() + i, end - i);
          for (std::size_t k = end; k > i; --k) {
            if (static_cast<unsigned char>(bytes[k - 1]) >= 0x20) {
              last_graphic_.assign(1, bytes[k - 1]);
              break;
            }
          }
          i = end - 1;
          break;
        }
        ground_byte(c, out);
        break;

      case State::escape:
      case State::escape_intermediate:
        if (control_inside_sequence(c, out)) {
        } else if (c == '[') {
          // libvterm starts a CSI on '[' even after intermediates ("ESC / [" included), so
          // the guard does too, and the intermediates are dropped.
          pending_.assign("\x1b[");
          state_ = State::csi;
        } else if (c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_') {
          pending_.clear();  // OSC, DCS, SOS, PM, APC: dropped whole
          state_ = State::string;
        } else if (c <= 0x2f) {
          pending_ += static_cast<char>(c);
          state_ = State::escape_intermediate;
          if (pending_.size() > 1 + kMaxIntermediates) {
            pending_.clear();
            state_ = State::ground;
          }
        } else {
          if (c == 'c' && pending_.size() == 1) {  // RIS: a full reset
            margins_set_ = lr_margin_mode_ = line_attributes_ = charsets_ = false;
            margins_touched_ = true;
          } else if (c >= '3' && c <= '6' && pending_ == "\x1b#") {  // line attributes
            line_attributes_ = true;
          } else if (pending_.size() > 1
                         ? std::string_view("()*+-./%").find(pending_[1]) != std::string_view::npos
                         : std::string_view("NOno~}|").find(static_cast<char>(c)) !=
                               std::string_view::npos) {
            charsets_ = true;  // a designation, or a locking or single shift
          }
          out += pending_;
          out += static_cast<char>(c);
          if (c == '8' && pending_.size() == 1) {
            // DECRC: libvterm restores the saved position as it is, which after a resize to
            // fewer rows or columns lies off the screen, and the next glyph or insertion
            // writes outside its buffers. "CSI ? h" sets no mode, and every CSI ends by
            // bringing the cursor back onto the screen.
            out += "\x1b[?h";
          }
          pending_.clear();
          state_ = State::ground;
        }
        break;

      case State::csi:
      case State::csi_ignore:
        if (c >= 0x40 && c <= 0x7e) {
          if (state_ == State::csi) finish_csi(c, cols, out);
          pending_.clear();
          state_ = State::ground;
        } else if (c >= 0x20 && c <= 0x3f) {
          if (state_ == State::csi) {
            pending_ += static_cast<char>(c);
            if (pending_.size() > kMaxCsiBytes) {
              pending_.clear();
              state_ = State::csi_ignore;
            }
          }
        } else {
          control_inside_sequence(c, out);  // every other byte is one of those
        }
        break;

      case State::string:
        if (c == kBel || c == kCan || c == kSub) {
          state_ = State::ground;
        } else if (c == kEsc) {
          state_ = State::string_escape;
        }
        break;

      case State::string_escape:
        if (c == '\\') {  // ST
          state_ = State::ground;
        } else if (c != kEsc) {
          // ESC and something else ends the string and starts a new sequence.
          pending_.assign(1, static_cast<char>(kEsc));
          state_ = State::escape;
          --i;
        }
        break;
    }
  }
}

}  // namespace pmcp::process
