// The terminal emulator behind a TTY process: renders the PTY's bytes (libvterm) into a screen
// plus bounded scrollback, answers terminal queries, and encodes keys as the program expects.
#pragma once

#include <vterm.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "process/terminal_guard.hpp"

namespace pmcp::process {

// Text rendering everywhere below: no escape codes, trailing spaces trimmed per line, trailing
// empty lines dropped, lines joined by '\n' (no final '\n'), UTF-8.
// Thread rule: used from the core's io thread only. Hold it by unique_ptr: libvterm keeps a
// pointer to this object, so it can be neither copied nor moved.
class Terminal {
 public:
  // cols and rows in cells (0 is raised to 1); scrollback_lines: the most lines kept once they
  // scroll off the top of the primary screen (the oldest are discarded first).
  Terminal(uint16_t cols, uint16_t rows, std::size_t scrollback_lines);
  ~Terminal();
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  // Renders the program's output. UTF-8; the alternate screen is supported, so full-screen
  // programs (vim, less, top) do not push their screens into the scrollback. Queries in the
  // bytes (DSR, DA, ...) queue answers for take_replies().
  void feed(std::string_view bytes);

  // Changes the size in cells (0 is raised to 1). Rows that no longer fit go to scrollback;
  // growing rows pulls them back. Lines are not re-wrapped. The caller resizes the PTY too.
  void resize(uint16_t cols, uint16_t rows);
  uint16_t cols() const { return cols_; }
  uint16_t rows() const { return rows_; }

  // The visible screen (the alternate screen while a full-screen program shows it).
  std::string render_screen() const;
  // Scrollback lines (oldest first) followed by the visible screen.
  std::string render_all() const;
  // The last n lines of render_all().
  std::string tail_lines(std::size_t n) const;
  std::size_t scrollback_size() const { return scrollback_.size(); }

  // Fast scrolling (on by default): a run of plain lines fed while the cursor sits at the start
  // of the bottom row is applied as one scroll of the whole run instead of one scroll per line
  // (libvterm moves the whole screen at every scroll); lines of the run that would scroll off
  // before its end go to the scrollback as text without being drawn. The result is the same
  // screen, cursor and scrollback; tests compare both ways.
  void set_fast_scroll(bool on) { fast_scroll_ = on; }
  // Lines applied by fast scrolling so far (a statistic, for tests and benchmarks).
  std::size_t fast_scrolled_lines() const { return fast_scrolled_lines_; }
  // Of those, the lines that went to the scrollback as text without being drawn.
  std::size_t lines_pushed_as_text() const { return lines_pushed_as_text_; }

  // 0-based position of the cursor on the visible screen (DSR reports it 1-based).
  struct Cursor {
    uint16_t row;
    uint16_t col;
  };
  Cursor cursor() const;

  // Whether the program switched the cursor keys to application mode (DECCKM, "\x1b[?1h"):
  // then Up is "\x1bOA" instead of "\x1b[A". encode_key() already follows it.
  bool application_cursor_keys() const;
  // Whether the alternate screen is shown.
  bool alt_screen() const { return alt_screen_; }

  // Returns and clears the bytes the terminal owes the program (answers to queries such as
  // DSR "\x1b[6n" -> "\x1b[row;colR", or DA). The caller writes them to the process's input.
  std::string take_replies();

  // The bytes a key press sends to the program in the terminal's current modes; nothing is
  // queued for take_replies(). codepoint: a Unicode scalar value; with VTERM_MOD_CTRL, 'c'
  // gives "\x03".
  std::string encode_key(VTermKey key, VTermModifier mod = VTERM_MOD_NONE);
  std::string encode_char(uint32_t codepoint, VTermModifier mod = VTERM_MOD_NONE);

 private:
  // A line that scrolled off the top. layout is empty when every cell holds exactly one code
  // point of width 1 (the common case); otherwise it has one byte per cell of text: the number
  // of code points in the cell, plus wide_cell_flag for a double-width cell.
  struct ScrollbackLine {
    std::string text;
    std::string layout;
  };
  static constexpr unsigned char wide_cell_flag = 0x80;
  static constexpr std::size_t kMaxBatch = 4096;  // lines per fast scroll

  static void on_output(const char* bytes, std::size_t size, void* self);
  static int on_push_line(int cols, const VTermScreenCell* cells, void* self);
  static int on_pop_line(int cols, VTermScreenCell* cells, void* self);
  static int on_set_prop(VTermProp prop, VTermValue* value, void* self);

  std::string render_row(int row) const;
  // The fast scrolling: applies the plain lines at the start of s, if any; returns the bytes
  // used (0: none, feed them the normal way).
  std::size_t scroll_plain_lines(std::string_view s);
  // Appends a row of plain text (printable ASCII, at most a row) to the scrollback, as
  // on_push_line() would after libvterm drew it.
  void push_plain_line(std::string_view text);
  // Runs press() (a vterm_keyboard_* call) and returns what libvterm output meanwhile.
  template <class Press>
  std::string capture_output(Press&& press) const;

  VTerm* vt_ = nullptr;
  TerminalGuard guard_;  // what the program writes passes it before libvterm
  std::string guarded_;  // feed()'s buffer, reused
  VTermScreen* screen_ = nullptr;
  VTermState* state_ = nullptr;
  VTermScreenCallbacks callbacks_{};  // libvterm keeps a pointer to it
  uint16_t cols_;
  uint16_t rows_;
  std::size_t scrollback_limit_;
  std::deque<ScrollbackLine> scrollback_;
  bool alt_screen_ = false;
  bool fast_scroll_ = true;
  std::size_t fast_scrolled_lines_ = 0;
  std::size_t lines_pushed_as_text_ = 0;
  std::string batch_;  // scroll_plain_lines()'s buffers, reused
  std::vector<std::size_t> starts_;
  std::vector<std::size_t> ends_;
  std::string replies_;
  // While a key is being encoded, libvterm's output goes here instead of into replies_.
  mutable std::string* capture_ = nullptr;
};

}  // namespace pmcp::process
