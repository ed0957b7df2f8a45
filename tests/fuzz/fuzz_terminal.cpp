// Fuzz harness: arbitrary bytes into the terminal (libvterm and our screen, scrollback and
// cursor rendering), with a size and a resize taken from the input.
//   byte 0, 1: columns and rows (2..161, 2..61: the tools refuse fewer than 2, as libvterm
//   fails on a 1-cell-wide or -high screen); byte 2: where to resize (0: never);
//   the rest: what the program writes.
#include <cstddef>
#include <cstdint>
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
  // In chunks, as a PTY delivers them; a chunk may end inside an escape or a UTF-8 sequence.
  std::size_t fed = 0;
  for (std::size_t chunk = 1; fed < bytes.size(); chunk = chunk * 3 % 61 + 1) {
    const std::size_t n = std::min(chunk, bytes.size() - fed);
    terminal.feed(bytes.substr(fed, n));
    fed += n;
    if (resize_at != 0 && fed >= resize_at && fed - n < resize_at) {
      terminal.resize(static_cast<uint16_t>(2 + (cols * 7) % 160),
                      static_cast<uint16_t>(2 + (rows * 5) % 60));
    }
  }
  (void)terminal.render_screen();
  (void)terminal.render_all();
  (void)terminal.tail_lines(7);
  (void)terminal.cursor();
  (void)terminal.take_replies();
  (void)terminal.application_cursor_keys();
  return 0;
}
