// Fuzz harness: the stdin escape parser (parse_stdin_escapes) on arbitrary text, and a property:
// any byte string written as \xHH escapes comes back unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "process/stdin_escapes.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto parsed = pmcp::process::parse_stdin_escapes(input);
  if (const auto* error = std::get_if<pmcp::process::EscapeError>(&parsed)) {
    if (error->message.empty()) std::abort();  // every error must say what to write instead
  } else if (input.find('\\') == std::string_view::npos && std::get<std::string>(parsed) != input) {
    std::fprintf(stderr, "text without a backslash changed\n");
    std::abort();
  }

  std::string escaped;
  static const char kHex[] = "0123456789abcdef";
  for (unsigned char c : input) {
    escaped += "\\x";
    escaped += kHex[c >> 4];
    escaped += kHex[c & 15];
  }
  auto round = pmcp::process::parse_stdin_escapes(escaped);
  const auto* bytes = std::get_if<std::string>(&round);
  if (bytes == nullptr || *bytes != input) {
    std::fprintf(stderr, "\\xHH escapes of %zu bytes did not decode to the same bytes\n", size);
    std::abort();
  }
  return 0;
}
