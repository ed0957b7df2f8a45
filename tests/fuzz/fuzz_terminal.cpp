// Fuzz harness: arbitrary bytes into the terminal (libvterm and our screen, scrollback and
// cursor rendering), with a size and a resize taken from the input. Differential too: a second
// terminal without fast scrolling gets the same bytes, and both must show the same text,
// scrollback and cursor (a difference aborts).
//   byte 0, 1: columns and rows (2..161, 2..61: the tools refuse fewer than 2, as libvterm
//   fails on a 1-cell-wide or -high screen); byte 2: every how many bytes to resize, to another
//   size and back by turns (0: never);
//   the rest: what the program writes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "process/terminal.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const auto cols = static_cast<uint16_t>(2 + data[0] % 160);
  const auto rows = static_cast<uint16_t>(2 + data[1] % 60);
  const std::size_t resize_at = data[2];
  std::string_view bytes(reinterpret_cast<const char*>(data + 3), size - 3);
  pmcp::process::Terminal terminal(cols, rows, 50);
  pmcp::process::Terminal reference(cols, rows, 50);
  reference.set_fast_scroll(false);
  // In chunks, as a PTY delivers them; a chunk may end inside an escape or a UTF-8 sequence.
  // Some are long enough to hold several lines (fast scrolling needs two at least).
  std::size_t fed = 0;
  for (std::size_t chunk = 1; fed < bytes.size(); chunk = chunk * 7 % 509 + 1) {
    const std::size_t n = std::min(chunk, bytes.size() - fed);
    terminal.feed(bytes.substr(fed, n));
    reference.feed(bytes.substr(fed, n));
    fed += n;
    // At every multiple of resize_at: to the other size, then back (state saved on one size
    // and used on the other is where libvterm went wrong before).
    if (resize_at != 0 && fed / resize_at != (fed - n) / resize_at) {
      const bool other = (fed / resize_at) % 2 == 1;
      for (auto* t : {&terminal, &reference}) {
        t->resize(other ? static_cast<uint16_t>(2 + (cols * 7) % 160) : cols,
                  other ? static_cast<uint16_t>(2 + (rows * 5) % 60) : rows);
      }
    }
  }
  if (terminal.render_all() != reference.render_all() ||
      terminal.scrollback_size() != reference.scrollback_size() ||
      terminal.cursor().row != reference.cursor().row ||
      terminal.cursor().col != reference.cursor().col) {
    std::abort();  // fast scrolling changed what the terminal shows
  }
  (void)terminal.render_screen();
  (void)terminal.render_all();
  (void)terminal.tail_lines(7);
  (void)terminal.cursor();
  (void)terminal.take_replies();
  (void)terminal.application_cursor_keys();
  return 0;
}
