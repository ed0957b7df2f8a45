// Wait engine: output watches feed the matchers and restart the idle timer; an exit watch and
// a timeout timer end the wait; every path ends in one finish() that releases all watches.
#include "tools/wait.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "process/signals.hpp"
#include "util/text.hpp"

namespace pmcp::tools {

namespace {

using Clock = std::chrono::steady_clock;

struct WaitState : std::enable_shared_from_this<WaitState> {
  WaitState(ToolContext& c, boost::asio::io_context& io)
      : ctx(c), timeout(io), idle(io), ticker(io) {}
  ToolContext& ctx;
  boost::asio::steady_timer timeout;
  boost::asio::steady_timer idle;
  boost::asio::steady_timer ticker;
  std::shared_ptr<mcp::ToolCall> call;
  process::ProcessPtr process;
  WaitCondition condition;
  std::optional<process::OutputMatcher> out_matcher;
  std::optional<process::OutputMatcher> err_matcher;
  std::function<void(WaitOutcome)> done;
  uint64_t exit_token = 0;
  uint64_t output_token = 0;
  bool finished = false;
  std::string error;  // why the wait ended with status "error"
  Clock::time_point started = Clock::now();

  void finish(std::string status, std::optional<process::StreamMatch> match = std::nullopt,
              std::string stream = {}) {
    if (finished) return;
    finished = true;
    release();
    WaitOutcome outcome;
    outcome.status = std::move(status);
    outcome.error = error;
    outcome.next_out = process->stdout_buffer.end_offset();
    outcome.next_err = process->stderr_buffer.end_offset();
    if (match) {
      if (stream == "stderr") {
        outcome.next_err = match->end;
      } else {
        outcome.next_out = match->end;
      }
    }
    outcome.match = std::move(match);
    outcome.match_stream = std::move(stream);
    outcome.waited_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    auto fn = std::move(done);
    done = nullptr;
    if (fn) fn(std::move(outcome));
  }

  void release() {
    timeout.cancel();
    idle.cancel();
    ticker.cancel();
    ctx.registry.unwatch(exit_token);
    ctx.registry.unwatch(output_token);
  }

  // Scans for the pattern; true when the wait ended (a match, or a pattern the regex engine
  // gave up on).
  bool check_pattern(bool final) {
    if (!condition.pattern) return false;
    if (out_matcher) {
      if (auto m = out_matcher->scan(process->stdout_buffer, final)) {
        finish("matched", std::move(m), process->tty ? "terminal" : "stdout");
        return true;
      }
      if (!out_matcher->error().empty()) return fail_pattern(out_matcher->error());
    }
    if (err_matcher) {
      if (auto m = err_matcher->scan(process->stderr_buffer, final)) {
        finish("matched", std::move(m), "stderr");
        return true;
      }
      if (!err_matcher->error().empty()) return fail_pattern(err_matcher->error());
    }
    return false;
  }

  bool fail_pattern(const std::string& why) {
    error = why;
    finish("error");
    return true;
  }

  void arm_idle() {
    if (!condition.idle_ms) return;
    idle.expires_after(std::chrono::milliseconds(*condition.idle_ms));
    idle.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->finish("idle");
    });
  }

  void tick() {
    ticker.expires_after(std::chrono::seconds(1));
    ticker.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->finished) return;
      auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() -
                                                                           self->started);
      self->call->progress(static_cast<double>(elapsed.count()), std::nullopt,
                           "waiting on " + self->process->id);
      self->tick();
    });
  }
};

}  // namespace

std::optional<WaitCondition> parse_condition(Arguments& args, std::string_view member,
                                             const json::value* until, bool ignore_case,
                                             std::string_view stream) {
  WaitCondition c;
  std::string where(member);
  if (until == nullptr || until->is_null() || !until->is_object()) {
    args.fail(where + " must be an object such as {\"pattern\": \">>> \"}, {\"exit\": true} or "
                      "{\"idleMs\": 500}");
    return std::nullopt;
  }
  Arguments inner(until->get_object(), where, {"pattern", "exit", "idleMs", "ignoreCase"});
  auto pattern = inner.string("pattern");
  auto exit = inner.boolean("exit");
  auto idle = inner.integer("idleMs", 1, 3600000);
  auto icase = inner.boolean("ignoreCase");
  if (!inner.ok()) {
    args.fail(inner.error());
    return std::nullopt;
  }
  if (!pattern && !exit.value_or(false) && !idle) {
    args.fail(where + " needs at least one condition: pattern, exit: true or idleMs");
    return std::nullopt;
  }
  if (pattern) {
    auto compiled = process::compile_pattern(*pattern, ignore_case || icase.value_or(false));
    if (!compiled) {
      args.fail(where + ".pattern: " + compiled.error().message);
      return std::nullopt;
    }
    c.pattern = *compiled;
  }
  c.exit = exit.value_or(false);
  if (idle) c.idle_ms = static_cast<uint32_t>(*idle);
  if (stream == "stdout") {
    c.want_stderr = false;
  } else if (stream == "stderr") {
    c.want_stdout = false;
  } else if (stream != "both" && !stream.empty()) {
    args.fail("parameter 'stream' must be \"stdout\", \"stderr\" or \"both\"");
    return std::nullopt;
  }
  return c;
}

Cursor parse_cursor(Arguments& args, const process::Process& p) {
  Cursor cursor;
  const json::value* since = args.raw("since");
  if (since == nullptr || since->is_null()) return cursor;
  std::string shape = p.tty ? "{\"terminal\": N}" : "{\"stdout\": N, \"stderr\": M}";
  if (!since->is_object()) {
    args.fail("parameter 'since' must be a cursor object " + shape + " as returned in 'next'");
    return cursor;
  }
  for (const auto& kv : since->get_object()) {
    const json::value& v = kv.value();
    uint64_t offset = 0;
    if (v.is_uint64()) {
      offset = v.get_uint64();
    } else if (v.is_int64() && v.get_int64() >= 0) {
      offset = static_cast<uint64_t>(v.get_int64());
    } else {
      args.fail("since." + std::string(kv.key()) + " must be a byte offset (an integer >= 0)");
      return cursor;
    }
    if (kv.key() == "terminal" || kv.key() == "stdout") {
      cursor.out = offset;
    } else if (kv.key() == "stderr") {
      cursor.err = offset;
    } else {
      args.fail("since has an unknown member '" + std::string(kv.key()) + "'; expected " + shape);
      return cursor;
    }
  }
  return cursor;
}

json::object cursor_json(const process::Process& p, uint64_t out, uint64_t err) {
  if (p.tty) return json::object{{"terminal", out}};
  return json::object{{"stdout", out}, {"stderr", err}};
}

Cursor default_since(const process::Process& p) {
  Cursor c;
  if (!p.has_input) {
    c.out = p.stdout_buffer.begin_offset();
    c.err = p.stderr_buffer.begin_offset();
    return c;
  }
  c.out = p.input_mark_stdout;
  c.err = p.input_mark_stderr;
  if (p.tty && !p.last_input.empty()) {
    // Best effort: skip the terminal's echo of what was typed (LF or CR echo as CR LF).
    std::string echo;
    for (char ch : p.last_input) {
      if (ch == '\r' || ch == '\n') {
        echo += "\r\n";
      } else {
        echo += ch;
      }
    }
    auto slice = p.stdout_buffer.read(*c.out, echo.size());
    if (slice.data == echo && slice.from == *c.out) c.out = *c.out + echo.size();
  }
  return c;
}

void describe_outcome(json::object& o, const process::Process& p, const WaitOutcome& outcome,
                      std::string_view status_key) {
  o[status_key] = outcome.status;
  if (!outcome.error.empty()) o["error"] = outcome.error;
  if (outcome.match) {
    json::object m;
    m["text"] = text::sanitize_utf8(outcome.match->text);
    m["stream"] = outcome.match_stream;
    m["line"] = outcome.match->line;
    m["context"] = text::sanitize_utf8(outcome.match->context);
    o["match"] = std::move(m);
  }
  o["next"] = cursor_json(p, outcome.next_out, outcome.next_err);
  o["waitedMs"] = outcome.waited_ms;
}

void start_wait(ToolContext& ctx, std::shared_ptr<mcp::ToolCall> call, process::ProcessPtr p,
                WaitCondition condition, Cursor since, uint32_t timeout_ms,
                std::function<void(WaitOutcome)> done) {
  auto state = std::make_shared<WaitState>(ctx, ctx.io);
  state->call = call;
  state->process = p;
  state->condition = std::move(condition);
  state->done = std::move(done);
  if (state->condition.pattern) {
    if (state->condition.want_stdout || p->tty) {
      state->out_matcher.emplace(state->condition.pattern,
                                 since.out.value_or(p->stdout_buffer.begin_offset()));
    }
    if (state->condition.want_stderr && !p->tty) {
      state->err_matcher.emplace(state->condition.pattern,
                                 since.err.value_or(p->stderr_buffer.begin_offset()));
    }
  }
  call->on_cancel([state] {
    state->finished = true;
    state->done = nullptr;
    state->release();
  });
  // Evaluate what is already there on the next turn of the loop (never inside this call).
  boost::asio::post(ctx.io, [state, timeout_ms] {
    if (state->finished) return;
    bool ended = !state->process->running();
    if (state->check_pattern(ended)) return;
    if (ended) return state->finish("exited");
    state->exit_token = state->ctx.registry.on_exit(state->process, [state](const process::Process&) {
      if (state->check_pattern(true)) return;
      state->finish("exited");
    });
    state->output_token =
        state->ctx.registry.on_output(state->process, [state](const process::Process&) {
          if (state->finished) return;
          if (state->check_pattern(false)) return;
          state->arm_idle();
        });
    state->arm_idle();
    state->timeout.expires_at(state->started + std::chrono::milliseconds(timeout_ms));
    state->timeout.async_wait([state](boost::system::error_code ec) {
      if (!ec) state->finish("timeout");
    });
    if (state->call->has_progress_token()) state->tick();
  });
}

}  // namespace pmcp::tools
