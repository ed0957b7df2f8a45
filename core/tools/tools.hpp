// The MCP tools: schemas and handlers for spawn, ps, stdin, stdout and kill (compatible with
// the original server) over the process registry. Core thread only.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "config/config.hpp"
#include "mcp/dispatcher.hpp"
#include "process/registry.hpp"

namespace pmcp::tools {

namespace json = boost::json;

struct ToolContext {
  boost::asio::io_context& io;
  process::Registry& registry;
  const config::Config& config;
  std::map<std::string, std::string> server_env;  // the server's environment at start
};

std::vector<mcp::ToolDefinition> make_tools(ToolContext& context);

// Shared pieces of the tools (tools/common.cpp).
json::object process_info(const process::Process& process);
// Adds status, exitCode and (when a signal ended it) signal, as every tool reports them.
void add_status(json::object& out, const process::Process& process);
// A tool definition with its name, title and description filled in (name set once).
mcp::ToolDefinition define_tool(std::string_view name, std::string_view title,
                                std::string_view description);
// The MCP tool annotations object.
json::object annotations(std::string_view title, bool read_only, bool destructive,
                         bool idempotent, bool open_world = false);
// Output of one stream as valid UTF-8: the rendered terminal for TTY stdout, else the bytes.
std::string stream_text(const process::Process& process, bool stderr_stream);
// The child's environment: the configured pass-through names and fixed values, TERM for a TTY,
// then the call's variables (which win). Returns "NAME=value" strings.
std::vector<std::string> child_environment(const ToolContext& context, bool tty,
                                           const std::map<std::string, std::string>& call_env);

process::SessionTag session_tag(mcp::SessionKey key);
// Whether the calling session may see the process (always, unless isolation = "session").
bool visible(const ToolContext& context, const process::Process& process, mcp::SessionKey key);
// Looks a process up for a tool call: unknown ids and, with isolation, other sessions'
// processes are "unknown". Records that the session has seen the process (exit notices).
Result<process::ProcessPtr> find_process(ToolContext& context, const mcp::ToolCall& call,
                                         std::string_view id);

mcp::ToolDefinition make_spawn_tool(ToolContext& context);
mcp::ToolDefinition make_ps_tool(ToolContext& context);
mcp::ToolDefinition make_stdin_tool(ToolContext& context);
mcp::ToolDefinition make_stdout_tool(ToolContext& context);
mcp::ToolDefinition make_kill_tool(ToolContext& context);
mcp::ToolDefinition make_wait_tool(ToolContext& context);
mcp::ToolDefinition make_resize_tool(ToolContext& context);

// timeoutMs against the configured default and maximum; notice says when it was clamped.
uint32_t resolve_timeout(const ToolContext& context, std::optional<int64_t> requested,
                         std::string& notice);

}  // namespace pmcp::tools
