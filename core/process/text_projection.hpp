// The text of an output stream as a reader sees it: terminal escape sequences and stray
// control bytes removed, CR LF folded to LF, with a map back to raw byte offsets.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pmcp::process {

struct Projection {
  std::string text;
  // raw[i] = offset in the raw input of text[i]; raw[text.size()] = raw size consumed.
  std::vector<uint32_t> raw;
};

// Projects raw output bytes. With strip_ansi false only CR LF folding applies (the map is
// still filled).
Projection project_text(std::string_view raw, bool strip_ansi = true);

// Removes escape sequences (CSI, OSC, DCS and two-byte ESC sequences) and control bytes other
// than \t \n \r; keeps everything else. CR LF stays CR LF.
std::string strip_ansi(std::string_view raw);

}  // namespace pmcp::process
