// Fuzz harness: the regex windows of `wait` (compile_pattern, OutputMatcher over an OutputBuffer
// that wraps). The first line is the pattern (the rest of a line "i:" sets ignoreCase), the rest
// is output, appended in chunks to a small buffer with a scan after each chunk. Exceptions are
// not caught here, as the server does not catch them either: one that escapes is a crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "process/output_buffer.hpp"
#include "process/output_matcher.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto eol = input.find('\n');
  if (eol == std::string_view::npos || eol > 200) return 0;
  std::string_view pattern = input.substr(0, eol);
  std::string_view output = input.substr(eol + 1);
  bool ignore_case = false;
  if (pattern.starts_with("i:")) {
    ignore_case = true;
    pattern.remove_prefix(2);
  }
  auto compiled = pmcp::process::compile_pattern(pattern, ignore_case);
  if (!compiled) {
    if (compiled.error().message.empty()) std::abort();
    return 0;
  }
  pmcp::process::OutputBuffer buffer(512);
  pmcp::process::OutputMatcher matcher(*compiled, 0);
  std::size_t fed = 0;
  for (std::size_t chunk = 1; fed < output.size(); chunk = chunk * 5 % 97 + 1) {
    const std::size_t n = std::min(chunk, output.size() - fed);
    buffer.append(output.substr(fed, n));
    fed += n;
    if (auto match = matcher.scan(buffer, false)) {
      if (match->end < match->begin || match->end > buffer.end_offset()) std::abort();
      matcher = pmcp::process::OutputMatcher(*compiled, match->end);
    }
  }
  (void)matcher.scan(buffer, true);
  return 0;
}
