// Named keys for the stdin tool ("Enter", "Up", "C-c", "M-x", "F5", ...) encoded as the
// program expects: through the terminal's current modes for a TTY, fixed for a pipe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "process/terminal.hpp"
#include "util/result.hpp"

namespace pmcp::process {

// The accepted names, for error messages and the tool description.
std::string key_names_help();

// Encodes the keys in order. terminal may be null (a pipe process). An unknown name is an
// error that lists the valid names.
Result<std::string> encode_keys(const std::vector<std::string>& names, Terminal* terminal);

}  // namespace pmcp::process
