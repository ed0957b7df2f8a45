// The wait engine shared by the wait tool and spawn's waitFor: a pattern on new output, the
// process's exit, or a quiet period, whichever comes first, within a timeout. Core thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/json.hpp>
#include <boost/regex.hpp>

#include "mcp/dispatcher.hpp"
#include "process/output_matcher.hpp"
#include "process/registry.hpp"
#include "tools/arguments.hpp"
#include "tools/tools.hpp"

namespace pmcp::tools {

struct WaitCondition {
  std::shared_ptr<const boost::regex> pattern;
  bool exit = false;
  std::optional<uint32_t> idle_ms;
  bool want_stdout = true;
  bool want_stderr = true;
};

// A cursor: one absolute offset per stream (a TTY has only `out`, called "terminal").
struct Cursor {
  std::optional<uint64_t> out;
  std::optional<uint64_t> err;
};

// Reads {pattern?, exit?, idleMs?} (the `until` / `waitFor` object) plus ignoreCase and
// stream. Errors go into args.
std::optional<WaitCondition> parse_condition(Arguments& args, std::string_view member,
                                             const json::value* until, bool ignore_case,
                                             std::string_view stream);
// Reads `since` in the shape of the process's cursors. Errors go into args.
Cursor parse_cursor(Arguments& args, const process::Process& process);
json::object cursor_json(const process::Process& process, uint64_t out, uint64_t err);
// The default start of a wait: the last stdin write (past the terminal's echo of it), else
// the start of the retained output.
Cursor default_since(const process::Process& process);

struct WaitOutcome {
  std::string status;  // matched, exited, idle, timeout, error
  std::string error;   // for "error": why the pattern could not be matched
  std::optional<process::StreamMatch> match;
  std::string match_stream;  // stdout, stderr or terminal
  uint64_t next_out = 0;
  uint64_t next_err = 0;
  int64_t waited_ms = 0;
};

// Adds the outcome's members to a result object: status (under status_key), match, next,
// waitedMs.
void describe_outcome(json::object& result, const process::Process& process,
                      const WaitOutcome& outcome, std::string_view status_key);

// Starts waiting; `done` runs once on the core thread (never inside this call), unless the
// call is cancelled first.
void start_wait(ToolContext& ctx, std::shared_ptr<mcp::ToolCall> call, process::ProcessPtr p,
                WaitCondition condition, Cursor since, uint32_t timeout_ms,
                std::function<void(WaitOutcome)> done);

}  // namespace pmcp::tools
