// OutputMatcher: the window is [max(since, scanned - overlap, oldest retained), end); matches
// that end inside the already-scanned part were reported (or impossible) before, so only
// matches reaching past it count. The line that was still open at the last scan is not part of
// it: what a pattern sees at a line's end (`$`, a lookahead) changes when the rest arrives, and
// the end of a line often comes in a read of its own (a terminal writes "\r\n" apart from the
// text before it), so that line is scanned again.
#include "process/output_matcher.hpp"

#include <algorithm>

#include "process/text_projection.hpp"

namespace pmcp::process {

Result<std::shared_ptr<const boost::regex>> compile_pattern(std::string_view pattern,
                                                            bool ignore_case) {
  boost::regex::flag_type flags = boost::regex::ECMAScript;
  if (ignore_case) flags |= boost::regex::icase;
  try {
    return std::shared_ptr<const boost::regex>(
        std::make_shared<boost::regex>(pattern.begin(), pattern.end(), flags));
  } catch (const boost::regex_error& e) {
    return make_error(ErrorCode::invalid_argument,
                      "invalid pattern at position " + std::to_string(e.position()) + ": " +
                          boost::regex_error(e.code()).what() +
                          " (patterns are ECMAScript regular expressions; escape special "
                          "characters such as ( [ . * with a backslash)");
  }
}

std::string first_bytes(std::string_view s, std::size_t max) {
  if (s.size() <= max) return std::string(s);
  std::size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return std::string(s.substr(0, cut)) + "[... " + std::to_string(s.size() - cut) + " more bytes]";
}

std::string last_bytes(std::string_view s, std::size_t max) {
  if (s.size() <= max) return std::string(s);
  std::size_t start = s.size() - max;
  while (start < s.size() && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) ++start;
  return "[... " + std::to_string(start) + " earlier bytes]" + std::string(s.substr(start));
}

std::string around_match(std::string_view text, std::size_t b, std::size_t e) {
  return last_bytes(text.substr(0, b), kContextSideBytes) +
         first_bytes(text.substr(b, e - b), kMaxMatchBytes) +
         first_bytes(text.substr(e), kContextSideBytes);
}

namespace {

Error too_complex(const std::exception& e) {
  return make_error(ErrorCode::invalid_argument,
                    std::string("the pattern needs more backtracking than allowed to match this "
                                "output (") +
                        e.what() +
                        "); write it so that each character can match in only one way, e.g. "
                        "a+b instead of (a*)*b, or .*x instead of (.*)*x");
}

}  // namespace

Result<bool> search_pattern(std::string::const_iterator begin, std::string::const_iterator end,
                            boost::smatch& match, const boost::regex& pattern,
                            boost::match_flag_type flags) {
  try {
    return boost::regex_search(begin, end, match, pattern, flags);
  } catch (const std::runtime_error& e) {  // boost::regex_error: complexity or stack limits
    return too_complex(e);
  }
}

Result<bool> search_pattern(std::string_view text, const boost::regex& pattern) {
  try {
    return boost::regex_search(text.begin(), text.end(), pattern);
  } catch (const std::runtime_error& e) {
    return too_complex(e);
  }
}

std::optional<StreamMatch> OutputMatcher::scan(const OutputBuffer& buffer, bool final) {
  if (!error_.empty()) return std::nullopt;
  const uint64_t end = buffer.end_offset();
  if (end <= seen_ && !final) return std::nullopt;
  seen_ = std::max(seen_, end);
  uint64_t start = std::max(since_, buffer.begin_offset());
  if (scanned_ > kOverlap) start = std::max(start, scanned_ - kOverlap);
  if (start >= end) {
    scanned_ = std::max(scanned_, end);
    return std::nullopt;
  }
  bool at_line_start = start == 0;
  if (start > 0 && start > buffer.begin_offset()) {
    auto before = buffer.read(start - 1, 1);
    at_line_start = before.data == "\n";
  }
  auto slice = buffer.read(start, static_cast<std::size_t>(end - start));
  Projection p = project_text(slice.data);
  const uint64_t previous = scanned_;
  if (final) {
    scanned_ = end;
  } else {
    // Up to the start of the last line, which may still grow (at most kOpenLineBytes of it
    // stay open, so that a line without end is not scanned again and again whole).
    const std::size_t newline = slice.data.rfind('\n');
    const uint64_t line_start = newline == std::string::npos ? start : start + newline + 1;
    const uint64_t open_floor = end > kOpenLineBytes ? end - kOpenLineBytes : 0;
    scanned_ = std::max(previous, std::max(line_start, open_floor));
  }

  boost::match_flag_type flags = boost::match_default;
  if (!at_line_start) flags |= boost::match_not_bol;
  if (!final) flags |= boost::match_not_eol;
  auto it = p.text.cbegin();
  boost::smatch m;
  for (;;) {
    auto found = search_pattern(it, p.text.cend(), m, *pattern_, flags);
    if (!found) {
      error_ = found.error().message;
      return std::nullopt;
    }
    if (!*found) break;
    std::size_t b = static_cast<std::size_t>(m[0].first - p.text.cbegin());
    std::size_t e = static_cast<std::size_t>(m[0].second - p.text.cbegin());
    uint64_t raw_begin = start + p.raw[b];
    uint64_t raw_end = e > b ? start + p.raw[e - 1] + 1 : raw_begin;
    if (final || raw_end > previous || (previous == since_ && raw_end >= previous)) {
      StreamMatch match;
      match.begin = raw_begin;
      match.end = raw_end;
      match.line = buffer.lines_before(raw_begin) + 1;
      match.text = first_bytes(std::string_view(p.text).substr(b, e - b), kMaxMatchBytes);
      // Context: whole lines around the match within the window.
      std::size_t cb = b;
      for (int lines = 0; cb > 0; --cb) {
        if (p.text[cb - 1] == '\n' && ++lines > kContextLines) break;
      }
      std::size_t ce = e;
      for (int lines = 0; ce < p.text.size(); ++ce) {
        if (p.text[ce] == '\n' && ++lines > kContextLines) break;
      }
      match.context = around_match(std::string_view(p.text).substr(cb, ce - cb), b - cb, e - cb);
      return match;
    }
    if (m[0].second == it) {
      if (it == p.text.cend()) break;
      ++it;
    } else {
      it = m[0].second;
    }
    // Later searches may look behind `it` (so ^ and \b see the previous character). Built
    // afresh: clearing a bit with ~ gives a value outside Boost's enum, which UBSan reports.
    flags = boost::match_prev_avail;
    if (!final) flags |= boost::match_not_eol;
  }
  return std::nullopt;
}

}  // namespace pmcp::process
