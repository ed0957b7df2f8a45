// Fuzz harness: key names for the stdin tool (encode_keys), one name per input line, for a pipe
// process and for a terminal whose modes the first lines may have changed (a line starting with
// "=" is fed to the terminal as output first, e.g. "=\x1b[?1h" for application cursor keys).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "process/keys.hpp"
#include "process/terminal.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  pmcp::process::Terminal terminal(80, 24, 10);
  std::vector<std::string> names;
  while (!input.empty() && names.size() < 64) {
    auto eol = input.find('\n');
    std::string_view line = input.substr(0, eol);
    input = eol == std::string_view::npos ? std::string_view() : input.substr(eol + 1);
    if (!line.empty() && line.front() == '=') {
      terminal.feed(line.substr(1));
    } else {
      names.emplace_back(line);
    }
  }
  for (pmcp::process::Terminal* t : {static_cast<pmcp::process::Terminal*>(nullptr), &terminal}) {
    auto encoded = pmcp::process::encode_keys(names, t);
    if (!encoded && encoded.error().message.empty()) std::abort();
  }
  return 0;
}
