// The host executor's configuration: its TOML table, handed over as JSON text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pmcp::host {

// Returns the top-level keys of a JSON object, in order. Empty or blank text counts as {}.
// Throws sdk::Error(PMCP_ERR_INVALID_ARGUMENT) when the text is not a JSON object.
std::vector<std::string> top_level_keys(std::string_view json);

// Validates the configuration. For now the host executor accepts no settings: every key is an
// error naming it, and the sandbox keys fail closed with a way out. Throws sdk::Error.
void check_config(std::string_view json);

}  // namespace pmcp::host
