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

struct StreamMatch {
  uint64_t begin = 0;  // raw offset of the first byte of the match
  uint64_t end = 0;    // raw offset just past the match
  uint64_t line = 0;   // 1-based absolute line number of the match's first line
  std::string text;    // the matched text (escape sequences removed)
  std::string context; // up to kContextLines lines around it
};

class OutputMatcher {
 public:
  static constexpr std::size_t kOverlap = 8192;
  static constexpr int kContextLines = 3;

  OutputMatcher(std::shared_ptr<const boost::regex> pattern, uint64_t since)
      : pattern_(std::move(pattern)), since_(since), scanned_(since) {}

  // Looks for a match in the buffer's bytes after `since`, rescanning at most kOverlap bytes
  // before the end of the previous scan. final: the stream will not grow again, so `$` may
  // match at its very end.
  std::optional<StreamMatch> scan(const OutputBuffer& buffer, bool final);

 private:
  std::shared_ptr<const boost::regex> pattern_;
  uint64_t since_;
  uint64_t scanned_;
};

}  // namespace pmcp::process
