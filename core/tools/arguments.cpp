// Tool argument checks; messages follow "<tool>: parameter '<name>' must be ..., got ...".
#include "tools/arguments.hpp"

namespace pmcp::tools {

Arguments::Arguments(const json::object& args, std::string_view tool,
                     std::initializer_list<std::string_view> known)
    : args_(args), tool_(tool) {
  for (const auto& kv : args_) {
    bool found = false;
    for (auto k : known) found = found || k == kv.key();
    if (!found) {
      std::string list;
      for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      fail(tool_ + ": unknown parameter '" + std::string(kv.key()) + "'; valid parameters: " +
           list);
      return;
    }
  }
}

std::string Arguments::describe(const json::value& v) {
  std::string s = json::serialize(v);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  switch (v.kind()) {
    case json::kind::string: return "the string " + s;
    case json::kind::bool_: return "the boolean " + s;
    case json::kind::null: return "null";
    case json::kind::array: return "an array";
    case json::kind::object: return "an object";
    default: return "the number " + s;
  }
}

const json::value* Arguments::raw(std::string_view name) const {
  auto it = args_.find(name);
  return it == args_.end() ? nullptr : &it->value();
}

std::optional<std::string> Arguments::string(std::string_view name, bool required) {
  const json::value* v = raw(name);
  if (v == nullptr || v->is_null()) {
    if (required) fail(tool_ + ": parameter '" + std::string(name) + "' is required");
    return std::nullopt;
  }
  if (!v->is_string()) {
    fail(tool_ + ": parameter '" + std::string(name) + "' must be a string, got " + describe(*v));
    return std::nullopt;
  }
  return std::string(v->get_string());
}

std::optional<bool> Arguments::boolean(std::string_view name) {
  const json::value* v = raw(name);
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (!v->is_bool()) {
    fail(tool_ + ": parameter '" + std::string(name) + "' must be true or false, got " +
         describe(*v));
    return std::nullopt;
  }
  return v->get_bool();
}

std::optional<int64_t> Arguments::integer(std::string_view name, int64_t min, int64_t max) {
  const json::value* v = raw(name);
  if (v == nullptr || v->is_null()) return std::nullopt;
  auto range = [&] {
    return " from " + std::to_string(min) + " to " + std::to_string(max);
  };
  std::optional<int64_t> value;
  if (v->is_int64()) {
    value = v->get_int64();
  } else if (v->is_uint64()) {
    value = v->get_uint64() > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX
                                                               : static_cast<int64_t>(v->get_uint64());
  } else if (v->is_double() && std::isfinite(v->get_double()) &&
             std::floor(v->get_double()) == v->get_double() && std::fabs(v->get_double()) < 9e18) {
    value = static_cast<int64_t>(v->get_double());
  }
  if (!value) {
    fail(tool_ + ": parameter '" + std::string(name) + "' must be an integer" + range() +
         ", got " + describe(*v));
    return std::nullopt;
  }
  if (*value < min || *value > max) {
    fail(tool_ + ": parameter '" + std::string(name) + "' must be" + range() + ", got " +
         std::to_string(*value));
    return std::nullopt;
  }
  return value;
}

std::optional<std::map<std::string, std::string>> Arguments::string_map(std::string_view name) {
  const json::value* v = raw(name);
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (!v->is_object()) {
    fail(tool_ + ": parameter '" + std::string(name) +
         "' must be an object of NAME: \"value\" pairs, got " + describe(*v));
    return std::nullopt;
  }
  std::map<std::string, std::string> out;
  for (const auto& kv : v->get_object()) {
    const json::value& item = kv.value();
    if (item.is_string()) {
      out[std::string(kv.key())] = std::string(item.get_string());
    } else if (item.is_bool()) {
      out[std::string(kv.key())] = item.get_bool() ? "true" : "false";
    } else if (item.is_number()) {
      out[std::string(kv.key())] = json::serialize(item);
    } else {
      fail(tool_ + ": parameter '" + std::string(name) + "." + std::string(kv.key()) +
           "' must be a string, got " + describe(item));
      return std::nullopt;
    }
  }
  return out;
}

}  // namespace pmcp::tools
