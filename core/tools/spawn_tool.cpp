// spawn: run `/bin/sh -c command`; wait in the foreground until exit or the timeout, which
// moves the process to the background; or return at once with background: true.
#include <boost/asio/steady_timer.hpp>

#include "process/signals.hpp"
#include "tools/arguments.hpp"
#include "tools/wait.hpp"
#include "tools/tools.hpp"
#include "util/text.hpp"

namespace pmcp::tools {
namespace {

// State of one foreground wait; lives as long as a timer or watch refers to it.
struct ForegroundWait : std::enable_shared_from_this<ForegroundWait> {
  ForegroundWait(boost::asio::io_context& io) : timeout(io), ticker(io) {}
  boost::asio::steady_timer timeout;
  boost::asio::steady_timer ticker;
  std::shared_ptr<mcp::ToolCall> call;
  process::ProcessPtr process;
  uint64_t exit_token = 0;
  bool finished = false;
  std::chrono::steady_clock::time_point started;
  uint32_t timeout_ms = 0;
};

// Sends notifications/progress about once a second while the foreground wait lasts.
void schedule_progress(std::shared_ptr<ForegroundWait> wait) {
  wait->ticker.expires_after(std::chrono::seconds(1));
  wait->ticker.async_wait([wait](boost::system::error_code ec) {
    if (ec || wait->finished) return;
    auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - wait->started)
                       .count();
    wait->call->progress(static_cast<double>(elapsed), wait->timeout_ms,
                         "waiting for " + wait->process->id + " to exit");
    schedule_progress(wait);
  });
}

json::object spawn_result(const ToolContext& ctx, const process::Process& p, uint32_t timeout_ms,
                          const std::string& notice, bool background, bool waited_for = false) {
  json::object o;
  o["pid"] = p.id;
  add_status(o, p);
  const std::size_t limit = ctx.config.defaults.output_truncate;
  std::string hint = "read more with the stdout tool (id " + p.id + ")";
  o["stdout"] = text::keep_tail(stream_text(p, false), limit, hint).text;
  o["stderr"] = text::keep_tail(stream_text(p, true), limit, hint).text;
  o["tty"] = p.tty;
  if (background) {
    o["background"] = true;
  } else {
    o["timeoutMs"] = timeout_ms;
  }
  std::string message = notice;
  if (!background && p.running()) {
    if (!message.empty()) message += " ";
    message += waited_for ? "The command keeps running in the background"
                          : "The command is still running after " + std::to_string(timeout_ms) +
                                " ms and continues in the background";
    message += "; use stdout, wait, stdin and kill with id " + p.id + ".";
  }
  if (!p.exit_message.empty()) message += (message.empty() ? "" : " ") + p.exit_message;
  if (!message.empty()) o["notice"] = message;
  return o;
}

json::object input_schema() {
  return json::parse(R"J({
    "type": "object",
    "properties": {
      "command": {"type": "string", "minLength": 1,
                  "description": "Shell command, run as /bin/sh -c COMMAND"},
      "cwd": {"type": "string", "description": "Working directory (default: the configured workdir); a relative path is taken from the default"},
      "env": {"type": "object", "additionalProperties": {"type": "string"},
              "description": "Extra environment variables for this command"},
      "tty": {"type": "boolean", "default": false,
              "description": "Run on a real terminal (120x30) for interactive programs: vim, REPLs, top, less"},
      "background": {"type": "boolean", "default": false,
                     "description": "Return at once and leave the process running"},
      "timeoutMs": {"type": "integer", "minimum": 1, "default": 10000,
                    "description": "How long to wait in the foreground before the process moves to the background (max 60000)"},
      "waitFor": {"type": "object", "description": "Return as soon as this holds (like the wait tool's until): {pattern?, exit?, idleMs?, ignoreCase?}; e.g. start a dev server and return once it logs 'listening'",
                  "properties": {"pattern": {"type": "string"}, "exit": {"type": "boolean"},
                                 "idleMs": {"type": "integer", "minimum": 1},
                                 "ignoreCase": {"type": "boolean"}},
                  "additionalProperties": false}
    },
    "required": ["command"],
    "additionalProperties": false
  })J").as_object();
}

json::object output_schema() {
  return json::parse(R"J({
    "type": "object",
    "properties": {
      "pid": {"type": "string", "description": "Process id for the other tools, e.g. host-1"},
      "status": {"type": "string", "enum": ["running", "terminated"]},
      "exitCode": {"type": ["integer", "null"]},
      "signal": {"type": "string", "description": "Signal that ended the process"},
      "stdout": {"type": "string"},
      "stderr": {"type": "string"},
      "tty": {"type": "boolean"},
      "background": {"type": "boolean"},
      "timeoutMs": {"type": "integer"},
      "notice": {"type": "string"},
      "waitStatus": {"type": "string", "enum": ["matched", "exited", "idle", "timeout", "error"]},
      "match": {"type": "object"},
      "next": {"type": "object", "additionalProperties": {"type": "integer"}},
      "waitedMs": {"type": "integer"},
      "error": {"type": "string", "description": "With waitStatus error: why the pattern could not be matched"}
    },
    "required": ["pid", "status", "exitCode", "stdout", "stderr"]
  })J")
      .as_object();
}

void run_spawn(ToolContext& ctx, std::shared_ptr<mcp::ToolCall> call) {
  Arguments args(call->arguments(), "spawn",
                 {"command", "cwd", "env", "tty", "background", "timeoutMs", "waitFor"});
  auto command = args.string("command", true);
  auto cwd = args.string("cwd");
  auto env = args.string_map("env");
  bool tty = args.boolean("tty").value_or(false);
  bool background = args.boolean("background").value_or(false);
  auto timeout = args.integer("timeoutMs", 1, INT64_MAX);
  if (args.ok() && command->find_first_not_of(" \t\r\n") == std::string::npos) {
    args.fail("spawn: parameter 'command' is empty; give a shell command such as \"ls -la\"");
  }
  if (args.ok() && command->find('\0') != std::string::npos) {
    args.fail("spawn: parameter 'command' contains a NUL character");
  }
  if (args.ok() && env) {
    for (const auto& [k, v] : *env) {
      if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos) {
        args.fail("spawn: env name '" + k + "' is not a valid variable name (no '=' or NUL)");
      } else if (v.find('\0') != std::string::npos) {
        args.fail("spawn: env value of '" + k + "' contains a NUL character");
      }
    }
  }
  if (!args.ok()) return call->fail(args.error());
  std::optional<WaitCondition> wait_for;
  if (const json::value* w = args.raw("waitFor"); w != nullptr && !w->is_null()) {
    wait_for = parse_condition(args, "waitFor", w, false, "both");
    if (!args.ok()) return call->fail("spawn: " + args.error());
  }

  const auto& defaults = ctx.config.defaults;
  std::string notice;
  uint32_t timeout_ms = defaults.timeout_ms;
  if (timeout) {
    if (*timeout > static_cast<int64_t>(defaults.max_timeout_ms)) {
      notice = "timeoutMs " + std::to_string(*timeout) + " is above the maximum " +
               std::to_string(defaults.max_timeout_ms) + " and was clamped to " +
               std::to_string(defaults.max_timeout_ms) + ".";
      timeout_ms = defaults.max_timeout_ms;
    } else {
      timeout_ms = static_cast<uint32_t>(*timeout);
    }
  }

  std::string base = defaults.workdir.empty() ? ctx.registry.executor().default_cwd()
                                              : defaults.workdir;
  std::string dir = base;
  if (cwd && !cwd->empty()) {
    dir = (*cwd)[0] == '/' ? *cwd : base + (base.ends_with('/') ? "" : "/") + *cwd;
  }

  process::StartRequest request;
  request.owner = session_tag(call->session());
  request.command = *command;
  request.argv = {"/bin/sh", "-c", *command};
  request.env = child_environment(ctx, tty, env.value_or(std::map<std::string, std::string>{}));
  request.cwd = dir;
  request.tty = tty;
  request.cols = defaults.terminal_cols;
  request.rows = defaults.terminal_rows;

  ctx.registry.start(std::move(request), [&ctx, call, timeout_ms, notice, background,
                                          wait_for](Result<process::ProcessPtr> started) mutable {
    if (call->done()) return;
    if (!started) return call->fail("spawn failed: " + started.error().message);
    process::ProcessPtr p = *started;
    if (wait_for && !call->cancelled()) {
      // waitFor: return as soon as the condition holds, the process exits, or the timeout.
      Cursor from{p->stdout_buffer.begin_offset(), p->stderr_buffer.begin_offset()};
      start_wait(ctx, call, p, std::move(*wait_for), from, timeout_ms,
                 [&ctx, call, p, timeout_ms, notice](WaitOutcome outcome) {
                   json::object o = spawn_result(ctx, *p, timeout_ms, notice, false, true);
                   describe_outcome(o, *p, outcome, "waitStatus");
                   call->finish(std::move(o));
                 });
      return;
    }
    if (background || call->cancelled()) {
      return call->finish(spawn_result(ctx, *p, timeout_ms, notice, true));
    }
    auto wait = std::make_shared<ForegroundWait>(ctx.io);
    wait->call = call;
    wait->process = p;
    wait->started = std::chrono::steady_clock::now();
    wait->timeout_ms = timeout_ms;
    auto complete = [&ctx, wait, notice] {
      if (wait->finished) return;
      wait->finished = true;
      wait->timeout.cancel();
      wait->ticker.cancel();
      ctx.registry.unwatch(wait->exit_token);
      wait->call->finish(spawn_result(ctx, *wait->process, wait->timeout_ms, notice, false));
    };
    // Cancelling the request only stops the wait: the process stays in the background.
    call->on_cancel([&ctx, wait] {
      wait->finished = true;
      wait->timeout.cancel();
      wait->ticker.cancel();
      ctx.registry.unwatch(wait->exit_token);
    });
    wait->exit_token = ctx.registry.on_exit(p, [complete](const process::Process&) { complete(); });
    if (wait->finished) return;
    wait->timeout.expires_after(std::chrono::milliseconds(timeout_ms));
    wait->timeout.async_wait([complete](boost::system::error_code ec) {
      if (!ec) complete();
    });
    if (call->has_progress_token()) schedule_progress(wait);
  });
}

}  // namespace

mcp::ToolDefinition make_spawn_tool(ToolContext& ctx) {
  mcp::ToolDefinition tool = define_tool(
      "spawn", "Run a command",
      "Run a shell command (/bin/sh -c). In the foreground it waits until the command exits or "
      "timeoutMs passes (default 10000, max 60000); a command still running then continues in "
      "the background and the result has status \"running\". background: true returns at once. "
      "tty: true gives the command a real 120x30 terminal for interactive programs (vim, python "
      "REPL, top); then drive it with stdin and read the screen with stdout. The result holds "
      "pid (the id for the other tools), status, exitCode, signal, and the end of stdout and "
      "stderr (cut to 8196 characters with a marker).");
  tool.descriptor["inputSchema"] = input_schema();
  tool.descriptor["outputSchema"] = output_schema();
  tool.descriptor["annotations"] = annotations("Run a command", false, true, false, true);
  tool.handler = [&ctx](std::shared_ptr<mcp::ToolCall> call) { run_spawn(ctx, std::move(call)); };
  return tool;
}

}  // namespace pmcp::tools
