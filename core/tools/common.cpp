// Shared tool pieces: process descriptions, output text, the child environment.
#include <algorithm>

#include "process/signals.hpp"
#include "tools/tools.hpp"
#include "util/text.hpp"

namespace pmcp::tools {

std::vector<mcp::ToolDefinition> make_tools(ToolContext& context) {
  return {make_spawn_tool(context), make_ps_tool(context), make_stdin_tool(context),
          make_stdout_tool(context), make_kill_tool(context), make_wait_tool(context),
          make_resize_tool(context)};
}

process::SessionTag session_tag(mcp::SessionKey key) { return {key.transport, key.session}; }

bool visible(const ToolContext& context, const process::Process& process, mcp::SessionKey key) {
  return context.config.isolation != "session" || process.owner == session_tag(key);
}

Result<process::ProcessPtr> find_process(ToolContext& context, const mcp::ToolCall& call,
                                         std::string_view id) {
  auto found = context.registry.get(id);
  if (found && !visible(context, **found, call.session())) {
    return make_error(ErrorCode::not_found,
                      "unknown process id '" + std::string(id) +
                          "'; this session can only see the processes it started (see ps)");
  }
  if (found) (*found)->seen_by.insert(session_tag(call.session()));
  return found;
}

void add_status(json::object& o, const process::Process& p) {
  o["status"] = process::status_name(p.status);
  o["exitCode"] = p.exit_code ? json::value(*p.exit_code) : json::value(nullptr);
  if (p.term_signal != 0) o["signal"] = process::signal_name(p.term_signal);
}

mcp::ToolDefinition define_tool(std::string_view name, std::string_view title,
                                std::string_view description) {
  mcp::ToolDefinition tool;
  tool.name = std::string(name);
  tool.descriptor["name"] = name;
  tool.descriptor["title"] = title;
  tool.descriptor["description"] = description;
  return tool;
}

json::object annotations(std::string_view title, bool read_only, bool destructive,
                         bool idempotent, bool open_world) {
  return json::object{{"title", title},
                      {"readOnlyHint", read_only},
                      {"destructiveHint", destructive},
                      {"idempotentHint", idempotent},
                      {"openWorldHint", open_world}};
}

json::object process_info(const process::Process& p) {
  json::object o;
  o["pid"] = p.id;
  o["command"] = text::sanitize_utf8(p.command);
  add_status(o, p);
  o["cwd"] = text::sanitize_utf8(p.cwd);
  o["tty"] = p.tty;
  o["createdAt"] = text::iso8601(p.created_at);
  if (p.ended_at) o["endedAt"] = text::iso8601(*p.ended_at);
  if (!p.exit_message.empty()) o["message"] = text::sanitize_utf8(p.exit_message);
  return o;
}

std::string stream_text(const process::Process& p, bool stderr_stream) {
  if (stderr_stream) {
    auto slice = p.stderr_buffer.read(p.stderr_buffer.begin_offset(), p.stderr_buffer.retained());
    return text::sanitize_utf8(std::move(slice.data));
  }
  if (p.terminal) return p.terminal->render_all();
  auto slice = p.stdout_buffer.read(p.stdout_buffer.begin_offset(), p.stdout_buffer.retained());
  return text::sanitize_utf8(std::move(slice.data));
}

std::vector<std::string> child_environment(const ToolContext& context, bool tty,
                                           const std::map<std::string, std::string>& call_env) {
  std::map<std::string, std::string> env;
  for (const auto& name : context.config.environment.pass) {
    if (auto it = context.server_env.find(name); it != context.server_env.end()) {
      env[name] = it->second;
    }
  }
  if (!env.count("PATH")) env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  if (!env.count("LANG") && !env.count("LC_ALL")) env["LANG"] = "C.UTF-8";
  for (const auto& [k, v] : context.config.environment.set) env[k] = v;
  if (tty) {
    env["TERM"] = "xterm-256color";
  }
  for (const auto& [k, v] : call_env) env[k] = v;
  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

}  // namespace pmcp::tools
