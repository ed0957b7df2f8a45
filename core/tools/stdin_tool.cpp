// stdin: write to a process's input, pipe or terminal, with escape sequences decoded.
#include "process/stdin_escapes.hpp"
#include "tools/arguments.hpp"
#include "tools/tools.hpp"

namespace pmcp::tools {

mcp::ToolDefinition make_stdin_tool(ToolContext& ctx) {
  mcp::ToolDefinition tool;
  tool.name = "stdin";
  tool.descriptor["name"] = "stdin";
  tool.descriptor["title"] = "Send input";
  tool.descriptor["description"] =
      "Send input to a running process (terminal or pipe). Escapes: \\n newline, \\r carriage "
      "return (Enter on a tty), \\t tab, \\\\ backslash, \\e escape, \\xHH a byte (\\x03 is "
      "Ctrl-C, \\x04 Ctrl-D), \\uHHHH and \\u{H...} a Unicode character. A REPL or shell "
      "needs a trailing \\n (pipe) or \\r (tty) to run the line. Read the reaction with stdout.";
  tool.descriptor["inputSchema"] = json::parse(R"J({
    "type": "object",
    "properties": {
      "id": {"type": "string", "description": "Process id from spawn or ps, e.g. host-1"},
      "input": {"type": "string", "description": "Text to send; escape sequences are decoded"}
    },
    "required": ["id", "input"],
    "additionalProperties": false
  })J");
  tool.descriptor["outputSchema"] = json::parse(R"J({
    "type": "object",
    "properties": {"id": {"type": "string"}, "bytes": {"type": "integer"}},
    "required": ["id", "bytes"]
  })J");
  tool.descriptor["annotations"] = json::object{{"title", "Send input"},
                                                {"readOnlyHint", false},
                                                {"destructiveHint", true},
                                                {"idempotentHint", false},
                                                {"openWorldHint", false}};
  tool.handler = [&ctx](std::shared_ptr<mcp::ToolCall> call) {
    Arguments args(call->arguments(), "stdin", {"id", "input"});
    auto id = args.string("id", true);
    auto input = args.string("input", true);
    if (!args.ok()) return call->fail(args.error());
    auto process = find_process(ctx, *call, *id);
    if (!process) return call->fail("stdin: " + process.error().message);
    const process::Process& p = **process;
    if (!p.running()) {
      return call->fail("stdin: process " + p.id + " has already exited; input can only go to a "
                        "running process (see ps, or start it again with spawn)");
    }
    auto decoded = process::parse_stdin_escapes(*input);
    if (auto* error = std::get_if<process::EscapeError>(&decoded)) {
      return call->fail("stdin: " + error->message);
    }
    const std::string& bytes = std::get<std::string>(decoded);
    if (auto written = ctx.registry.executor().write_stdin(p.number, bytes); !written) {
      return call->fail("stdin: writing to " + p.id + " failed: " + written.error().message);
    }
    call->finish(json::object{{"id", p.id}, {"bytes", bytes.size()}});
  };
  return tool;
}

}  // namespace pmcp::tools
