// stdout: the last lines of a process's stdout and stderr, or of its rendered terminal.
#include "process/signals.hpp"
#include "tools/arguments.hpp"
#include "tools/tools.hpp"
#include "util/text.hpp"

namespace pmcp::tools {

mcp::ToolDefinition make_stdout_tool(ToolContext& ctx) {
  mcp::ToolDefinition tool;
  tool.name = "stdout";
  tool.descriptor["name"] = "stdout";
  tool.descriptor["title"] = "Read output";
  tool.descriptor["description"] =
      "Read the last lines of a process's output: stdout and stderr for a pipe process; for a "
      "tty process, the terminal as a person would see it (scrollback plus screen, no escape "
      "codes) in stdout. Works for running and ended processes.";
  tool.descriptor["inputSchema"] = json::parse(R"J({
    "type": "object",
    "properties": {
      "id": {"type": "string", "description": "Process id from spawn or ps, e.g. host-1"},
      "lines": {"type": "integer", "minimum": 1, "default": 100,
                "description": "How many of the last lines to return per stream"}
    },
    "required": ["id"],
    "additionalProperties": false
  })J");
  tool.descriptor["outputSchema"] = json::parse(R"J({
    "type": "object",
    "properties": {
      "id": {"type": "string"},
      "status": {"type": "string", "enum": ["running", "terminated"]},
      "exitCode": {"type": ["integer", "null"]},
      "signal": {"type": "string"},
      "tty": {"type": "boolean"},
      "stdout": {"type": "string"},
      "stderr": {"type": "string"}
    },
    "required": ["id", "status", "exitCode", "stdout", "stderr"]
  })J");
  tool.descriptor["annotations"] = json::object{{"title", "Read output"},
                                                {"readOnlyHint", true},
                                                {"destructiveHint", false},
                                                {"idempotentHint", true},
                                                {"openWorldHint", false}};
  tool.handler = [&ctx](std::shared_ptr<mcp::ToolCall> call) {
    Arguments args(call->arguments(), "stdout", {"id", "lines"});
    auto id = args.string("id", true);
    auto lines = args.integer("lines", 1, 1000000);
    if (!args.ok()) return call->fail(args.error());
    auto process = find_process(ctx, *call, *id);
    if (!process) return call->fail("stdout: " + process.error().message);
    const process::Process& p = **process;
    std::size_t n = lines ? static_cast<std::size_t>(*lines) : ctx.config.defaults.stdout_lines;
    // A generous cap so one call cannot flood the client's context; the marker says so.
    std::size_t cap = static_cast<std::size_t>(ctx.config.defaults.output_truncate) * 8;
    std::string hint = "ask for fewer lines";
    json::object o;
    o["id"] = p.id;
    o["status"] = process::status_name(p.status);
    o["exitCode"] = p.exit_code ? json::value(*p.exit_code) : json::value(nullptr);
    if (p.term_signal != 0) o["signal"] = process::signal_name(p.term_signal);
    o["tty"] = p.tty;
    o["stdout"] = text::keep_tail(text::last_lines(stream_text(p, false), n), cap, hint).text;
    o["stderr"] = text::keep_tail(text::last_lines(stream_text(p, true), n), cap, hint).text;
    call->finish(std::move(o));
  };
  return tool;
}

}  // namespace pmcp::tools
