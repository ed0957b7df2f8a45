// Fuzz harness: the TOML config loader with environment overrides. The input is
// "NAME=value" lines (the environment), a line "---", then TOML text; without "---" it is all
// TOML. A config that loads must survive a round trip: to_toml() of it loads again, to the same
// text.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::map<std::string, std::string> env;
  std::string_view toml = input;
  if (auto split = input.find("\n---\n"); split != std::string_view::npos) {
    std::string_view head = input.substr(0, split);
    toml = input.substr(split + 5);
    while (!head.empty()) {
      auto eol = head.find('\n');
      std::string_view line = head.substr(0, eol);
      head = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 1);
      if (auto eq = line.find('='); eq != std::string_view::npos && eq > 0) {
        env[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
      }
    }
  }
  auto config = pmcp::config::parse(toml, "fuzz.toml", env);
  if (!config) {
    if (config.error().message.empty()) std::abort();  // an error always says what is wrong
    return 0;
  }
  const std::string text = pmcp::config::to_toml(*config);
  auto again = pmcp::config::parse(text, "round-trip.toml", {});
  if (!again) {
    std::fprintf(stderr, "to_toml() wrote a config that does not load:\n%s\n--- error: %s\n",
                 text.c_str(), again.error().message.c_str());
    std::abort();
  }
  // The header names the source, so compare what follows it.
  auto body = [](const std::string& t) { return t.substr(std::min(t.find("\n\n"), t.size())); };
  if (body(pmcp::config::to_toml(*again)) != body(text)) {
    std::fprintf(stderr, "to_toml() is not stable across a round trip:\n%s\n", text.c_str());
    std::abort();
  }
  return 0;
}
