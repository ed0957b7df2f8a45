// wait: block (without blocking the server) until a pattern appears in new output, the
// process exits, or the output goes quiet, within a timeout. Replaces sleep-and-poll loops.
#include "process/signals.hpp"
#include "tools/wait.hpp"

namespace pmcp::tools {

// Resolves timeoutMs against the configured default and maximum; the notice says when clamped.
uint32_t resolve_timeout(const ToolContext& ctx, std::optional<int64_t> requested,
                         std::string& notice) {
  const auto& d = ctx.config.defaults;
  if (!requested) return d.timeout_ms;
  if (*requested > static_cast<int64_t>(d.max_timeout_ms)) {
    notice = "timeoutMs " + std::to_string(*requested) + " is above the maximum " +
             std::to_string(d.max_timeout_ms) + " and was clamped to " +
             std::to_string(d.max_timeout_ms) + ".";
    return d.max_timeout_ms;
  }
  return static_cast<uint32_t>(*requested);
}

mcp::ToolDefinition make_wait_tool(ToolContext& ctx) {
  mcp::ToolDefinition tool = define_tool(
      "wait", "Wait for output or exit",
      "Wait until a process prints something matching a pattern, exits, or goes quiet, instead "
      "of polling. until: {pattern?: ECMAScript regex (multiline: ^ and $ match at line "
      "boundaries), exit?: true, idleMs?: N}. By default only output after your last stdin "
      "write counts (the echo of what you typed is skipped), so after sending a line to a "
      "REPL, wait for its prompt with pattern \"^>>> \". Returns status matched | exited | "
      "idle | timeout (a timeout is not an error), the match with line number and context, "
      "exitCode, and next: a cursor to continue from (pass it as since).");
  tool.descriptor["inputSchema"] = json::parse(R"J({
    "type": "object",
    "properties": {
      "id": {"type": "string", "description": "Process id, e.g. host-1"},
      "until": {"type": "object", "description": "Conditions; the first that holds ends the wait",
        "properties": {
          "pattern": {"type": "string", "description": "ECMAScript regex, multiline"},
          "exit": {"type": "boolean", "description": "End when the process exits"},
          "idleMs": {"type": "integer", "minimum": 1, "description": "End after this long without output"},
          "ignoreCase": {"type": "boolean"}
        }, "additionalProperties": false},
      "ignoreCase": {"type": "boolean", "default": false},
      "stream": {"type": "string", "enum": ["stdout", "stderr", "both"], "default": "both"},
      "timeoutMs": {"type": "integer", "minimum": 1, "description": "Default 10000, max 60000"},
      "since": {"type": "object", "description": "Cursor from an earlier result's next: {stdout, stderr} or {terminal}",
        "additionalProperties": {"type": "integer", "minimum": 0}}
    },
    "required": ["id", "until"],
    "additionalProperties": false
  })J");
  tool.descriptor["outputSchema"] = json::parse(R"J({
    "type": "object",
    "properties": {
      "id": {"type": "string"},
      "status": {"type": "string", "enum": ["matched", "exited", "idle", "timeout", "error"]},
      "running": {"type": "boolean"},
      "exitCode": {"type": ["integer", "null"]},
      "signal": {"type": "string"},
      "match": {"type": "object", "properties": {
        "text": {"type": "string"}, "stream": {"type": "string"},
        "line": {"type": "integer"}, "context": {"type": "string"}}},
      "next": {"type": "object", "additionalProperties": {"type": "integer"}},
      "waitedMs": {"type": "integer"},
      "error": {"type": "string", "description": "With status error: why the pattern could not be matched"},
      "notice": {"type": "string"}
    },
    "required": ["id", "status", "running", "exitCode", "next"]
  })J");
  tool.descriptor["annotations"] = annotations("Wait for output or exit", true, false, false, false);
  tool.handler = [&ctx](std::shared_ptr<mcp::ToolCall> call) {
    Arguments args(call->arguments(), "wait",
                   {"id", "until", "ignoreCase", "stream", "timeoutMs", "since"});
    auto id = args.string("id", true);
    bool ignore_case = args.boolean("ignoreCase").value_or(false);
    std::string stream = args.string("stream").value_or("both");
    auto timeout = args.integer("timeoutMs", 1, INT64_MAX);
    if (!args.ok()) return call->fail(args.error());
    auto condition = parse_condition(args, "until", args.raw("until"), ignore_case, stream);
    if (!args.ok()) return call->fail("wait: " + args.error());
    auto process = find_process(ctx, *call, *id);
    if (!process) return call->fail("wait: " + process.error().message);
    process::ProcessPtr p = *process;
    Cursor since = parse_cursor(args, *p);
    if (!args.ok()) return call->fail("wait: " + args.error());
    Cursor defaults = default_since(*p);
    if (!since.out) since.out = defaults.out;
    if (!since.err) since.err = defaults.err;
    std::string notice;
    uint32_t timeout_ms = resolve_timeout(ctx, timeout, notice);
    start_wait(ctx, call, p, std::move(*condition), since, timeout_ms,
               [call, p, notice](WaitOutcome outcome) {
                 json::object o;
                 o["id"] = p->id;
                 describe_outcome(o, *p, outcome, "status");
                 o["running"] = p->running();
                 o["exitCode"] = p->exit_code ? json::value(*p->exit_code) : json::value(nullptr);
                 if (p->term_signal != 0) o["signal"] = process::signal_name(p->term_signal);
                 if (!notice.empty()) o["notice"] = notice;
                 call->finish(std::move(o));
               });
  };
  return tool;
}

}  // namespace pmcp::tools
