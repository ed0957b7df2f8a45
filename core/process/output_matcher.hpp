// Incremental regex matching over one output stream from a cursor: each call scans only what
// arrived since the last call plus a bounded overlap, so cost per chunk stays bounded.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/regex.hpp>

#include "process/output_buffer.hpp"
#include "util/result.hpp"

namespace pmcp::process {

// Compiles an ECMAScript pattern (multiline; optional ignore-case). The error gives the
// position of the problem.
Result<std::shared_ptr<const boost::regex>> compile_pattern(std::string_view pattern,
                                                            bool ignore_case);

// Answers quote matches and the lines around them; a program may write a line of any length
// (one 100 MiB line without a newline), so what is quoted is bounded: at most kMaxMatchBytes of
// a match and kContextSideBytes on each side of it, cut at UTF-8 character boundaries, with a
// marker that says how many bytes were left out.
constexpr std::size_t kMaxMatchBytes = 4096;
constexpr std::size_t kContextSideBytes = 2048;
// The first max bytes of s; when s is longer, followed by "[... N more bytes]".
std::string first_bytes(std::string_view s, std::size_t max);
// The last max bytes of s; when s is longer, preceded by "[... N earlier bytes]".
std::string last_bytes(std::string_view s, std::size_t max);
// text[b, e) is a match: the match (first kMaxMatchBytes) with kContextSideBytes before and
// after it from text.
std::string around_match(std::string_view text, std::size_t b, std::size_t e);

struct StreamMatch {
  uint64_t begin = 0;  // raw offset of the first byte of the match
  uint64_t end = 0;    // raw offset just past the match
  uint64_t line = 0;   // 1-based absolute line number of the match's first line
  std::string text;    // the matched text (escape sequences removed), see kMaxMatchBytes
  std::string context; // up to kContextLines lines around it, see kContextSideBytes
};

class OutputMatcher {
 public:
  static constexpr std::size_t kOverlap = 8192;
  // Of a line that has not ended yet, at most this much is scanned again when more arrives.
  static constexpr std::size_t kOpenLineBytes = 4096;
  static constexpr int kContextLines = 3;

  OutputMatcher(std::shared_ptr<const boost::regex> pattern, uint64_t since)
      : pattern_(std::move(pattern)), since_(since), scanned_(since), seen_(since) {}

  // Looks for a match in the buffer's bytes after `since`, rescanning at most kOverlap bytes
  // before the end of the previous scan. final: the stream will not grow again, so `$` may
  // match at its very end. When the pattern needs more work than the regex engine allows on
  // this output (catastrophic backtracking), returns nothing from then on and error() says so.
  std::optional<StreamMatch> scan(const OutputBuffer& buffer, bool final);

  // Empty, or why the pattern cannot be matched (see scan).
  const std::string& error() const { return error_; }

 private:
  std::shared_ptr<const boost::regex> pattern_;
  uint64_t since_;
  // Matches that end at or before this were reported before, or could not be: everything up
  // to the start of the last line scanned (or kOpenLineBytes before its end), whose end was
  // there to be seen.
  uint64_t scanned_;
  uint64_t seen_;  // the end of the buffer at the last scan
  std::string error_;
};

// boost::regex_search that reports the engine giving up on a pattern (its complexity limit,
// e.g. "(a*)*b" on a long run of "a") as an error instead of throwing: a pattern comes from the
// agent, and an exception on the core thread would end the server.
Result<bool> search_pattern(std::string::const_iterator begin, std::string::const_iterator end,
                            boost::smatch& match, const boost::regex& pattern,
                            boost::match_flag_type flags);
Result<bool> search_pattern(std::string_view text, const boost::regex& pattern);

}  // namespace pmcp::process
