// Reading tool arguments with messages a model can act on: each getter names the parameter,
// what was expected and what arrived. The first error wins; check ok() before acting.
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json.hpp>

namespace pmcp::tools {

namespace json = boost::json;

class Arguments {
 public:
  Arguments(const json::object& args, std::string_view tool,
            std::initializer_list<std::string_view> known);

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  void fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
  }

  std::optional<std::string> string(std::string_view name, bool required = false);
  std::optional<bool> boolean(std::string_view name);
  // An integer in [min, max]; a JSON number with a fraction is refused.
  std::optional<int64_t> integer(std::string_view name, int64_t min, int64_t max);
  // An object whose values are strings (numbers and booleans are converted).
  std::optional<std::map<std::string, std::string>> string_map(std::string_view name);
  const json::value* raw(std::string_view name) const;

 private:
  static std::string describe(const json::value& v);
  const json::object& args_;
  std::string tool_;
  std::string error_;
};

}  // namespace pmcp::tools
