// process-mcp: the MCP server executable. Reads the config, loads the plugins it names and
// serves until every transport has stopped or a signal arrives. Logs go to stderr only.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "config/config.hpp"
#include "plugin/plugin_loader.hpp"
#include "server/server.hpp"

namespace {

constexpr std::string_view kUsage = R"(Usage: process-mcp [options]

An MCP server that runs and steers processes for AI agents.

Options:
  --config PATH     use this TOML config (else $PROCESS_MCP_CONFIG, else the default file)
  --listen ADDR     serve MCP over Streamable HTTP on ADDR (e.g. 127.0.0.1:8080) instead of
                    the configured transports; other settings come from the config
  --check-config    check the config without starting anything: the core's keys, the
                    environment overrides, and the table of each plugin it names (the
                    plugin is loaded and checks its own table); print the effective config
                    and exit 0, or exit 2 with the file, line and reason
  --list-plugins    list the plugins found in the plugin directories and exit
  --version         print the version and exit
  --help            print this help and exit

Environment overrides of the original server still work: PROCESS_MODE (host|docker),
SANDBOX_*, DOCKER_*; see the README.
)";

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("process-mcp");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace

int main(int argc, char** argv) {
  pmcp::config::LoadOptions options;
  bool check_config = false;
  bool list_plugins = false;
  std::optional<std::string> listen;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      options.explicit_path = argv[++i];
    } else if (arg.starts_with("--config=")) {
      options.explicit_path = std::string(arg.substr(9));
    } else if (arg == "--listen" && i + 1 < argc) {
      listen = argv[++i];
    } else if (arg.starts_with("--listen=")) {
      listen = std::string(arg.substr(9));
    } else if (arg == "--check-config") {
      check_config = true;
    } else if (arg == "--list-plugins") {
      list_plugins = true;
    } else if (arg == "--version") {
      std::printf("process-mcp %s\n", PMCP_VERSION);
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      std::fwrite(kUsage.data(), 1, kUsage.size(), stdout);
      return 0;
    } else {
      std::fprintf(stderr, "process-mcp: unknown option '%s'\n\n%s", argv[i], kUsage.data());
      return 2;
    }
  }
  options.env = pmcp::config::current_environment();
  options.default_paths = pmcp::server::default_config_paths();

  auto config = pmcp::config::load(options);
  if (!config) {
    std::fprintf(stderr, "process-mcp: configuration error: %s\n", config.error().message.c_str());
    return 2;
  }
  if (listen) {
    config->transports = {"http"};
    config->plugin_tables["http"]["listen"] = *listen;
    config->applied_overrides.push_back("--listen");
  }
  if (check_config) {
    // Beyond the core's keys: the plugins it names load, and check their own tables.
    auto checked = pmcp::server::check_plugins(*config);
    if (!checked) {
      std::fprintf(stderr, "process-mcp: configuration error: %s\n",
                   checked.error().message.c_str());
      return 2;
    }
    for (const auto& note : *checked) std::fprintf(stderr, "process-mcp: note: %s\n", note.c_str());
    std::string text = pmcp::config::to_toml(*config);
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }
  if (list_plugins) {
    auto dirs = pmcp::server::plugin_search_path(*config);
    for (const auto& dir : dirs) std::printf("# searched %s\n", dir.string().c_str());
    for (const auto& entry : pmcp::plugin::list_plugins(dirs)) {
      if (entry) {
        std::printf("%-10s %-8s abi %u.%u  %s\n", entry->id.c_str(), entry->version.c_str(),
                    entry->abi_major, entry->abi_minor, entry->path.string().c_str());
      } else {
        std::printf("error      %s\n", entry.error().message.c_str());
      }
    }
    return 0;
  }

  setup_logging(config->log_level);
  auto server = pmcp::server::Server::create(std::move(*config), pmcp::server::ServerOptions{});
  if (!server) {
    spdlog::error("{}", server.error().message);
    return 1;
  }
  spdlog::info("process-mcp {} ready", PMCP_VERSION);
  return (*server)->run();
}
