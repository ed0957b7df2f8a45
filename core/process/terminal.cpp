#include "process/terminal.hpp"

#include <algorithm>
#include <vector>

#include "util/text.hpp"

namespace pmcp::process {

namespace {

// libvterm marks the cell after a double-width character with this value in chars[0].
constexpr uint32_t continuation_cell = static_cast<uint32_t>(-1);

// Decodes one UTF-8 sequence at text[i] (text was produced by append_utf8, so it is valid).
uint32_t next_code_point(std::string_view text, std::size_t& i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  std::size_t length = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
  length = std::min(length, text.size() - i);
  uint32_t cp = length == 1   ? lead
                : length == 2 ? lead & 0x1F
                : length == 3 ? lead & 0x0F
                              : lead & 0x07;
  for (std::size_t k = 1; k < length; ++k) cp = (cp << 6) | (byte(i + k) & 0x3F);
  i += length;
  return cp;
}

// Appends the text of one cell; returns the number of code points written (a blank cell is
// written as one space).
std::size_t append_cell(std::string& out, const VTermScreenCell& cell) {
  if (cell.chars[0] == 0) {
    out += ' ';
    return 1;
  }
  std::size_t count = 0;
  for (int k = 0; k < VTERM_MAX_CHARS_PER_CELL && cell.chars[k] != 0; ++k) {
    pmcp::text::append_utf8(out, cell.chars[k]);
    ++count;
  }
  return count;
}

std::size_t trim_trailing_spaces(std::string& line) {
  const std::size_t end = line.find_last_not_of(' ');
  const std::size_t kept = end == std::string::npos ? 0 : end + 1;
  const std::size_t trimmed = line.size() - kept;
  line.resize(kept);
  return trimmed;
}

// Joins lines with '\n' after dropping trailing empty ones.
std::string join_lines(const std::vector<std::string>& lines, std::size_t first = 0) {
  std::size_t end = lines.size();
  while (end > first && lines[end - 1].empty()) --end;
  std::string out;
  for (std::size_t i = first; i < end; ++i) {
    if (i > first) out += '\n';
    out += lines[i];
  }
  return out;
}

}  // namespace

Terminal::Terminal(uint16_t cols, uint16_t rows, std::size_t scrollback_lines)
    : cols_(std::max<uint16_t>(cols, 1)),
      rows_(std::max<uint16_t>(rows, 1)),
      scrollback_limit_(scrollback_lines) {
  vt_ = vterm_new(rows_, cols_);
  vterm_set_utf8(vt_, 1);
  vterm_output_set_callback(vt_, &Terminal::on_output, this);
  screen_ = vterm_obtain_screen(vt_);
  state_ = vterm_obtain_state(vt_);
  callbacks_.settermprop = &Terminal::on_set_prop;
  callbacks_.sb_pushline = &Terminal::on_push_line;
  callbacks_.sb_popline = &Terminal::on_pop_line;
  vterm_screen_set_callbacks(screen_, &callbacks_, this);
  vterm_screen_enable_altscreen(screen_, 1);
  vterm_screen_reset(screen_, 1);
}

Terminal::~Terminal() { vterm_free(vt_); }

void Terminal::feed(std::string_view bytes) {
  if (bytes.empty()) return;
  guarded_.clear();
  guard_.filter(bytes, cols_, guarded_);
  if (guarded_.empty()) return;
  if (!fast_scroll_ || !guard_.margins_full() || guard_.line_attributes_used() || rows_ < 3 ||
      cols_ < 3) {
    vterm_input_write(vt_, guarded_.data(), guarded_.size());
    return;
  }
  std::string_view rest(guarded_);
  while (!rest.empty()) {
    const std::size_t used = scroll_plain_lines(rest);
    if (used > 0) {
      rest.remove_prefix(used);
      continue;
    }
    // Up to the end of the next line, after which the fast path may apply again.
    const std::size_t newline = rest.find('\n');
    const std::size_t n = newline == std::string_view::npos ? rest.size() : newline + 1;
    vterm_input_write(vt_, rest.data(), n);
    rest.remove_prefix(n);
  }
}

// Why this is the same as feeding the lines: with the margins at the whole screen, no line
// attributes, at least 3 columns, the cursor at the start of the bottom row and lines of
// printable ASCII that each fit in a row and end in CR LF, feeding n of them (n < rows) writes
// the first over what the bottom row holds, the others on blank rows scrolled in, and scrolls
// n times; each scroll pushes the top row to the scrollback and brings in a blank row erased
// with the current pen. Let m be the last line that is not empty (m >= 1, or there is nothing
// to gain). "CSI m S" pushes the same m rows in the same order, moves the rest up once and
// erases m rows with the same pen; lines 0 to m-1 are then written with the same pen at the
// rows where they end up before line m is fed (the first over the old bottom row, now m rows
// up), and the cursor goes back to the start of the bottom row, where line m and the rest are
// fed as they are. So the last glyph written, which libvterm keeps to join a combining
// character sent later, is the same glyph at the same place as when feeding line by line.
// Insert mode, origin mode, autowrap and character sets act alike on both ways (a line that
// fits never wraps; a full row's pending wrap is cleared by the next CUP as by CR). A pending
// wrap at the start of a row (a wide character filling a 2-column row, or any character on a
// double-width row of 3 columns or less) survives CR LF on the bottom row but not a CUP; the
// column and line attribute conditions rule it out.
//
// With m >= rows (R), line by line pushes the old rows 0 to R-2, then the old bottom row with
// line 0 written over it, then lines 1 to m-R, and leaves lines m-R+1 to m-1 on rows 0 to R-2
// and a blank bottom row. So: line 0 is written over the bottom row, "CSI R-1 S" and "CSI S"
// push all R rows and erase them with the pen (libvterm only erases, and pushes nothing, when
// one scroll is as large as the screen), lines 1 to m-R go
// to the scrollback as text without being drawn (a row of printable ASCII holds exactly that
// text; this needs the character sets to be ASCII, which the guard vouches for), lines m-R+1
// to m-1 are written on rows 0 to R-2, and line m and the rest are fed at the bottom row as
// above.
std::size_t Terminal::scroll_plain_lines(std::string_view s) {
  if (alt_screen_) return 0;
  VTermPos pos{};
  vterm_state_get_cursorpos(state_, &pos);
  if (pos.row != rows_ - 1 || pos.col != 0) return 0;
  const std::size_t rows = rows_;
  const bool long_batches = !guard_.charsets_used();
  const std::size_t most = long_batches ? kMaxBatch : rows - 1;
  std::size_t lines = 0;
  std::size_t used = 0;
  std::size_t last_text = 0;  // the last line that is not empty
  starts_.clear();
  ends_.clear();
  for (std::size_t i = 0; lines < most;) {
    std::size_t j = i;
    while (j < s.size() && j - i <= cols_ && static_cast<unsigned char>(s[j]) >= 0x20 &&
           static_cast<unsigned char>(s[j]) <= 0x7e) {
      ++j;
    }
    if (j - i > cols_ || j + 1 >= s.size() || s[j] != '\r' || s[j + 1] != '\n') break;
    starts_.push_back(i);
    ends_.push_back(j);
    if (j > i) last_text = lines;
    ++lines;
    i = j + 2;
    used = i;
  }
  if (last_text == 0) return 0;
  const std::size_t m = last_text;
  const auto text = [&](std::size_t k) {
    return std::string_view(s.data() + starts_[k], ends_[k] - starts_[k]);
  };
  batch_.clear();
  std::size_t first_row = 0;  // where line `first` is written
  std::size_t first = 0;      // the first line written on the screen with a CUP
  if (m < rows) {
    batch_ += "\x1b[" + std::to_string(m) + "S";
    first_row = rows - 1 - m;
  } else {
    batch_.append(text(0));
    // libvterm erases without pushing anything when a scroll is as large as the screen.
    batch_ += "\x1b[" + std::to_string(rows - 1) + "S\x1b[S";
    vterm_input_write(vt_, batch_.data(), batch_.size());
    for (std::size_t k = 1; k + rows <= m; ++k) push_plain_line(text(k));
    batch_.clear();
    first = m - rows + 1;
  }
  for (std::size_t k = first; k < m; ++k) {
    if (ends_[k] == starts_[k]) continue;  // an empty line: its row was erased by the scroll
    batch_ += "\x1b[" + std::to_string(first_row + (k - first) + 1) + ";1H";
    batch_.append(text(k));
  }
  batch_ += "\x1b[" + std::to_string(rows) + ";1H";
  batch_.append(s.data() + starts_[m], used - starts_[m]);
  vterm_input_write(vt_, batch_.data(), batch_.size());
  fast_scrolled_lines_ += m;
  return used;
}

void Terminal::push_plain_line(std::string_view text) {
  ++lines_pushed_as_text_;
  if (scrollback_limit_ == 0) return;
  const std::size_t end = text.find_last_not_of(' ');
  ScrollbackLine line;
  line.text.assign(text.substr(0, end == std::string_view::npos ? 0 : end + 1));
  if (scrollback_.size() >= scrollback_limit_) scrollback_.pop_front();
  scrollback_.push_back(std::move(line));
}

void Terminal::resize(uint16_t cols, uint16_t rows) {
  cols_ = std::max<uint16_t>(cols, 1);
  rows_ = std::max<uint16_t>(rows, 1);
  vterm_set_size(vt_, rows_, cols_);
  // libvterm 0.1.4 keeps a scroll region (DECSTBM) that no longer fits the smaller screen, and
  // the next line feed moves memory with a negative length; it also moves the cursor up by the
  // lines a smaller screen pushes into the scrollback, to a negative row when they were below
  // it, and the next erase writes outside its line table (both found by the terminal fuzz
  // harness). As xterm does on a resize, reset the scroll region to the whole screen (which
  // homes the cursor), then put the cursor back where it was, on the screen, where the
  // program's redraw after SIGWINCH expects it anyway.
  VTermPos pos{};
  vterm_state_get_cursorpos(state_, &pos);
  const int row = std::clamp(pos.row, 0, rows_ - 1);
  const int col = std::clamp(pos.col, 0, cols_ - 1);
  const std::string fix =
      "\x1b[r\x1b[" + std::to_string(row + 1) + ";" + std::to_string(col + 1) + "H";
  vterm_input_write(vt_, fix.data(), fix.size());
  guard_.margins_were_reset();
}

std::string Terminal::render_row(int row) const {
  std::string line;
  VTermScreenCell cell;
  for (int col = 0; col < cols_;) {
    if (!vterm_screen_get_cell(screen_, VTermPos{row, col}, &cell)) break;
    if (cell.chars[0] == continuation_cell) {
      ++col;
      continue;
    }
    append_cell(line, cell);
    col += cell.width == 2 ? 2 : 1;
  }
  trim_trailing_spaces(line);
  return line;
}

std::string Terminal::render_screen() const {
  std::vector<std::string> lines;
  lines.reserve(rows_);
  for (int row = 0; row < rows_; ++row) lines.push_back(render_row(row));
  return join_lines(lines);
}

std::string Terminal::render_all() const {
  std::vector<std::string> lines;
  lines.reserve(scrollback_.size() + rows_);
  for (const ScrollbackLine& line : scrollback_) lines.push_back(line.text);
  for (int row = 0; row < rows_; ++row) lines.push_back(render_row(row));
  return join_lines(lines);
}

std::string Terminal::tail_lines(std::size_t n) const {
  if (n == 0) return {};
  std::vector<std::string> lines;
  // Walk from the bottom so that a short tail does not render the whole scrollback.
  for (int row = rows_ - 1; row >= 0; --row) lines.push_back(render_row(row));
  while (!lines.empty() && lines.front().empty()) lines.erase(lines.begin());
  for (auto it = scrollback_.rbegin(); it != scrollback_.rend() && lines.size() < n; ++it) {
    if (lines.empty() && it->text.empty()) continue;  // still trailing empty lines
    lines.push_back(it->text);
  }
  if (lines.size() > n) lines.resize(n);
  std::reverse(lines.begin(), lines.end());
  return join_lines(lines);
}

Terminal::Cursor Terminal::cursor() const {
  VTermPos pos;
  vterm_state_get_cursorpos(state_, &pos);
  return Cursor{static_cast<uint16_t>(std::max(pos.row, 0)),
                static_cast<uint16_t>(std::max(pos.col, 0))};
}

template <class Press>
std::string Terminal::capture_output(Press&& press) const {
  std::string captured;
  capture_ = &captured;
  press();
  capture_ = nullptr;
  return captured;
}

bool Terminal::application_cursor_keys() const {
  // libvterm exposes no getter for DECCKM; the encoding of Up reveals it.
  const std::string up =
      capture_output([&] { vterm_keyboard_key(vt_, VTERM_KEY_UP, VTERM_MOD_NONE); });
  return up == "\x1bOA";
}

std::string Terminal::take_replies() {
  std::string out;
  out.swap(replies_);
  return out;
}

std::string Terminal::encode_key(VTermKey key, VTermModifier mod) {
  return capture_output([&] { vterm_keyboard_key(vt_, key, mod); });
}

std::string Terminal::encode_char(uint32_t codepoint, VTermModifier mod) {
  return capture_output([&] { vterm_keyboard_unichar(vt_, codepoint, mod); });
}

void Terminal::on_output(const char* bytes, std::size_t size, void* self) {
  Terminal& term = *static_cast<Terminal*>(self);
  (term.capture_ != nullptr ? *term.capture_ : term.replies_).append(bytes, size);
}

int Terminal::on_set_prop(VTermProp prop, VTermValue* value, void* self) {
  if (prop == VTERM_PROP_ALTSCREEN) static_cast<Terminal*>(self)->alt_screen_ = value->boolean;
  return 1;  // accept every property; returning 0 would make libvterm refuse the change
}

int Terminal::on_push_line(int cols, const VTermScreenCell* cells, void* self) {
  Terminal& term = *static_cast<Terminal*>(self);
  if (term.scrollback_limit_ == 0) return 1;
  ScrollbackLine line;
  bool simple = true;
  // Trailing blank cells would be trimmed anyway: leave them out from the start.
  int end = cols;
  while (end > 0 && (cells[end - 1].chars[0] == 0 ||
                     (cells[end - 1].chars[0] == ' ' && cells[end - 1].chars[1] == 0))) {
    --end;
  }
  line.text.reserve(static_cast<std::size_t>(end));
  for (int col = 0; col < end;) {
    const VTermScreenCell& cell = cells[col];
    const uint32_t first = cell.chars[0];
    if (first != 0 && first < 0x80 && cell.chars[1] == 0 && cell.width == 1) {
      line.text += static_cast<char>(first);  // the common case: one ASCII character
      line.layout += '\x01';
      ++col;
      continue;
    }
    if (cell.chars[0] == continuation_cell) {
      ++col;
      continue;
    }
    const std::size_t count = append_cell(line.text, cell);
    const bool wide = cell.width == 2;
    line.layout += static_cast<char>(count | (wide ? wide_cell_flag : 0));
    simple = simple && count == 1 && !wide;
    col += wide ? 2 : 1;
  }
  // Each trimmed space was a one-code-point cell of its own.
  line.layout.resize(line.layout.size() - trim_trailing_spaces(line.text));
  if (simple) line.layout.clear();
  if (term.scrollback_.size() >= term.scrollback_limit_) term.scrollback_.pop_front();
  term.scrollback_.push_back(std::move(line));
  return 1;
}

int Terminal::on_pop_line(int cols, VTermScreenCell* cells, void* self) {
  Terminal& term = *static_cast<Terminal*>(self);
  if (term.scrollback_.empty()) return 0;
  const ScrollbackLine line = std::move(term.scrollback_.back());
  term.scrollback_.pop_back();

  VTermColor fg;
  VTermColor bg;
  vterm_state_get_default_colors(term.state_, &fg, &bg);
  for (int col = 0; col < cols; ++col) {
    cells[col] = VTermScreenCell{};
    cells[col].width = 1;
    cells[col].fg = fg;
    cells[col].bg = bg;
  }
  std::size_t i = 0;
  std::size_t cell_index = 0;
  for (int col = 0; col < cols && i < line.text.size(); ++cell_index) {
    const unsigned char layout =
        cell_index < line.layout.size() ? static_cast<unsigned char>(line.layout[cell_index]) : 1;
    const std::size_t count = layout & ~wide_cell_flag;
    const bool wide = (layout & wide_cell_flag) != 0;
    if (wide && col + 1 >= cols) break;  // a wide character no longer fits
    for (std::size_t k = 0; k < count && i < line.text.size(); ++k) {
      const uint32_t cp = next_code_point(line.text, i);
      if (k < VTERM_MAX_CHARS_PER_CELL) cells[col].chars[k] = cp;
    }
    cells[col].width = wide ? 2 : 1;
    col += wide ? 2 : 1;
  }
  return 1;
}

}  // namespace pmcp::process
