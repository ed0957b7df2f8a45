// ps: the running and recently ended processes (the last limits.keep_terminated are kept).
#include "tools/arguments.hpp"
#include "tools/tools.hpp"

namespace pmcp::tools {

mcp::ToolDefinition make_ps_tool(ToolContext& ctx) {
  mcp::ToolDefinition tool = define_tool(
      "ps", "List processes",
      "List the processes this server started: running ones and recently ended ones, oldest "
      "first, with pid, command, status, exitCode, signal, cwd, tty and createdAt.");
  tool.descriptor["inputSchema"] = json::parse(
      R"J({"type": "object", "properties": {}, "additionalProperties": false})J");
  tool.descriptor["outputSchema"] = json::parse(R"J({
    "type": "object",
    "properties": {
      "processes": {"type": "array", "items": {
        "type": "object",
        "properties": {
          "pid": {"type": "string"}, "command": {"type": "string"},
          "status": {"type": "string", "enum": ["running", "terminated"]},
          "exitCode": {"type": ["integer", "null"]}, "signal": {"type": "string"},
          "cwd": {"type": "string"}, "tty": {"type": "boolean"},
          "createdAt": {"type": "string"}, "endedAt": {"type": "string"},
          "message": {"type": "string"}
        },
        "required": ["pid", "command", "status", "exitCode", "cwd", "tty", "createdAt"]
      }}
    },
    "required": ["processes"]
  })J");
  tool.descriptor["annotations"] = annotations("List processes", true, false, true, false);
  tool.handler = [&ctx](std::shared_ptr<mcp::ToolCall> call) {
    Arguments args(call->arguments(), "ps", {});
    if (!args.ok()) return call->fail(args.error());
    json::array list;
    for (const auto& p : ctx.registry.list()) {
      if (!visible(ctx, *p, call->session())) continue;
      p->seen_by.insert(session_tag(call->session()));
      list.push_back(process_info(*p));
    }
    call->finish(json::object{{"processes", std::move(list)}});
  };
  return tool;
}

}  // namespace pmcp::tools
