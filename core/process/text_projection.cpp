// Escape-sequence removal follows ECMA-48: CSI = ESC [ params intermediates final(0x40-0x7E);
// OSC/DCS/SOS/PM/APC strings end at BEL or ST (ESC \); other ESC sequences are ESC, any
// intermediates (0x20-0x2F), one final byte. An unfinished sequence at the end is dropped.
#include "process/text_projection.hpp"

namespace pmcp::process {
namespace {

// Length of the escape sequence starting at raw[i] (raw[i] == ESC), or raw.size() - i when it
// is not finished.
std::size_t escape_length(std::string_view raw, std::size_t i) {
  std::size_t n = raw.size();
  std::size_t j = i + 1;
  if (j >= n) return n - i;
  char c = raw[j];
  if (c == '[') {
    ++j;
    while (j < n && (static_cast<unsigned char>(raw[j]) < 0x40 || static_cast<unsigned char>(raw[j]) > 0x7E)) ++j;
    return (j < n ? j + 1 : n) - i;
  }
  if (c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_') {
    ++j;
    while (j < n) {
      if (raw[j] == '\x07') return j + 1 - i;
      if (raw[j] == '\x1b' && j + 1 < n && raw[j + 1] == '\\') return j + 2 - i;
      ++j;
    }
    return n - i;
  }
  while (j < n && static_cast<unsigned char>(raw[j]) >= 0x20 &&
         static_cast<unsigned char>(raw[j]) <= 0x2F) {
    ++j;
  }
  return (j < n ? j + 1 : n) - i;
}

bool dropped_control(unsigned char c) {
  return (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F;
}

}  // namespace

Projection project_text(std::string_view raw, bool strip) {
  Projection p;
  p.text.reserve(raw.size());
  p.raw.reserve(raw.size() + 1);
  std::size_t i = 0;
  while (i < raw.size()) {
    unsigned char c = static_cast<unsigned char>(raw[i]);
    if (strip && c == 0x1b) {
      i += escape_length(raw, i);
      continue;
    }
    if (strip && dropped_control(c)) {
      ++i;
      continue;
    }
    if (c == '\r' && i + 1 < raw.size() && raw[i + 1] == '\n') {
      ++i;  // the CR belongs to the line break
      continue;
    }
    p.text.push_back(static_cast<char>(c));
    p.raw.push_back(static_cast<uint32_t>(i));
    ++i;
  }
  p.raw.push_back(static_cast<uint32_t>(raw.size()));
  return p;
}

std::string strip_ansi(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  std::size_t i = 0;
  while (i < raw.size()) {
    unsigned char c = static_cast<unsigned char>(raw[i]);
    if (c == 0x1b) {
      i += escape_length(raw, i);
    } else {
      if (!dropped_control(c)) out.push_back(static_cast<char>(c));
      ++i;
    }
  }
  return out;
}

}  // namespace pmcp::process
