// kill: send a signal to a process's whole process group, then wait briefly to report the end.
#include <boost/asio/steady_timer.hpp>

#include "process/signals.hpp"
#include "tools/arguments.hpp"
#include "tools/tools.hpp"

namespace pmcp::tools {
namespace {

constexpr auto kReportWait = std::chrono::milliseconds(1000);

json::object kill_result(const process::Process& p, int signo) {
  json::object o;
  o["id"] = p.id;
  o["signal"] = process::signal_name(signo);
  o["status"] = process::status_name(p.status);
  o["exitCode"] = p.exit_code ? json::value(*p.exit_code) : json::value(nullptr);
  if (p.term_signal != 0) o["terminatedBy"] = process::signal_name(p.term_signal);
  return o;
}

struct KillWait {
  explicit KillWait(boost::asio::io_context& io) : timer(io) {}
  boost::asio::steady_timer timer;
  uint64_t token = 0;
  bool finished = false;
};

}  // namespace

mcp::ToolDefinition make_kill_tool(ToolContext& ctx) {
  mcp::ToolDefinition tool = define_tool(
      "kill", "Signal a process",
      "Send a signal to a process and everything it started (its whole process group). "
      "signal is a name (SIGTERM, TERM, SIGINT, SIGKILL, ...) or a number; default SIGTERM. "
      "Waits up to 1 s and reports whether the process has ended.");
  tool.descriptor["inputSchema"] = json::parse(R"J({
    "type": "object",
    "properties": {
      "id": {"type": "string", "description": "Process id from spawn or ps, e.g. host-1"},
      "signal": {"type": ["string", "integer"], "default": "SIGTERM",
                 "description": "Signal name or number: SIGTERM (polite), SIGINT (Ctrl-C), SIGKILL (force)"}
    },
    "required": ["id"],
    "additionalProperties": false
  })J");
  tool.descriptor["outputSchema"] = json::parse(R"J({
    "type": "object",
    "properties": {
      "id": {"type": "string"},
      "signal": {"type": "string"},
      "status": {"type": "string", "enum": ["running", "terminated"]},
      "exitCode": {"type": ["integer", "null"]},
      "terminatedBy": {"type": "string"}
    },
    "required": ["id", "signal", "status", "exitCode"]
  })J");
  tool.descriptor["annotations"] = annotations("Signal a process", false, true, false, false);
  tool.handler = [&ctx](std::shared_ptr<mcp::ToolCall> call) {
    Arguments args(call->arguments(), "kill", {"id", "signal"});
    auto id = args.string("id", true);
    std::string signal_text = "SIGTERM";
    if (const json::value* s = args.raw("signal"); s != nullptr && !s->is_null()) {
      if (s->is_string()) {
        signal_text = std::string(s->get_string());
      } else if (s->is_int64() || s->is_uint64()) {
        signal_text = json::serialize(*s);
      } else {
        args.fail("kill: parameter 'signal' must be a signal name such as \"SIGTERM\" or a number");
      }
    }
    if (!args.ok()) return call->fail(args.error());
    auto signo = process::parse_signal(signal_text);
    if (!signo) return call->fail("kill: " + signo.error().message);
    auto process = find_process(ctx, *call, *id);
    if (!process) return call->fail("kill: " + process.error().message);
    process::ProcessPtr p = *process;
    if (!p->running()) {
      std::string how = p->exit_code ? "with exit code " + std::to_string(*p->exit_code)
                                     : "by " + process::signal_name(p->term_signal);
      return call->fail("kill: process " + p->id + " has already exited (" + how +
                        "); there is nothing to signal");
    }
    if (auto sent = ctx.registry.executor().signal(p->number, *signo); !sent) {
      return call->fail("kill: signalling " + p->id + " failed: " + sent.error().message);
    }
    int sig = *signo;
    auto wait = std::make_shared<KillWait>(ctx.io);
    auto complete = [&ctx, wait, call, p, sig] {
      if (wait->finished) return;
      wait->finished = true;
      wait->timer.cancel();
      ctx.registry.unwatch(wait->token);
      call->finish(kill_result(*p, sig));
    };
    call->on_cancel([&ctx, wait] {
      wait->finished = true;
      wait->timer.cancel();
      ctx.registry.unwatch(wait->token);
    });
    wait->token = ctx.registry.on_exit(p, [complete](const process::Process&) { complete(); });
    if (wait->finished) return;
    wait->timer.expires_after(kReportWait);
    wait->timer.async_wait([complete](boost::system::error_code ec) {
      if (!ec) complete();
    });
  };
  return tool;
}

}  // namespace pmcp::tools
