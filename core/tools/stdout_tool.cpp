// stdout: read a process's output. Without `since`: the last lines (the original behaviour).
// With `since`: the bytes after a cursor, at most maxBytes per stream, with next and dropped.
// With `grep`: matching lines with absolute line numbers. `view` picks screen or scrollback.
#include <algorithm>

#include "process/output_matcher.hpp"
#include "process/signals.hpp"
#include "process/text_projection.hpp"
#include "tools/arguments.hpp"
#include "tools/tools.hpp"
#include "tools/wait.hpp"
#include "util/text.hpp"

namespace pmcp::tools {
namespace {

constexpr int64_t kDefaultMaxBytes = 65536;

std::string clean(std::string_view raw, bool keep_ansi) {
  return text::sanitize_utf8(keep_ansi ? std::string(raw) : process::strip_ansi(raw));
}

// Reads one stream from a cursor; fills text, next and dropped.
void read_stream(json::object& o, json::object& next, json::object& dropped,
                 const process::OutputBuffer& buffer, std::string_view key,
                 std::string_view cursor_key, uint64_t since, std::size_t max_bytes,
                 bool keep_ansi) {
  auto slice = buffer.read(since, max_bytes);
  o[key] = clean(slice.data, keep_ansi);
  next[cursor_key] = slice.next;
  dropped[cursor_key] = slice.dropped;
}

// grep over the retained text of one stream: [{stream, line, text, context?}].
Result<void> grep_stream(json::array& out, const process::OutputBuffer& buffer,
                         std::string_view name, const boost::regex& re, int64_t context,
                         std::size_t limit) {
  auto slice = buffer.read(buffer.begin_offset(), buffer.retained());
  std::string text = text::sanitize_utf8(process::strip_ansi(slice.data));
  // The first retained line may be the tail of a dropped one: it still gets its true number.
  uint64_t first_line = buffer.lines_before(slice.from) + 1;
  std::vector<std::string_view> lines;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::size_t end = nl == std::string::npos ? text.size() : nl;
    std::string_view line(text.data() + pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    pos = nl == std::string::npos ? text.size() : nl + 1;
  }
  for (std::size_t i = 0; i < lines.size() && out.size() < limit; ++i) {
    const auto begin = text.cbegin() + (lines[i].data() - text.data());
    boost::smatch found_at;
    auto found =
        process::search_pattern(begin, begin + static_cast<std::ptrdiff_t>(lines[i].size()),
                                found_at, re, boost::match_default);
    if (!found) return std::move(found).error();
    if (!*found) continue;
    // A long line is quoted around its first match only (see process::kMaxMatchBytes).
    const auto mb = static_cast<std::size_t>(found_at[0].first - begin);
    const auto me = static_cast<std::size_t>(found_at[0].second - begin);
    std::string shown = process::around_match(lines[i], mb, me);
    json::object m{{"stream", name}, {"line", first_line + i}, {"text", shown}};
    if (context > 0) {
      // The match's line with up to `context` lines on each side, joined by newlines.
      auto span = static_cast<std::size_t>(context);
      std::size_t from = i >= span ? i - span : 0;
      std::size_t to = std::min(lines.size() - 1, i + span);
      std::string block;
      for (std::size_t j = from; j <= to; ++j) {
        if (j == i) {
          block.append(shown);
        } else {
          block.append(process::first_bytes(lines[j], 2 * process::kContextSideBytes));
        }
        if (j < to) block += '\n';
      }
      m["context"] = std::move(block);
    }
    out.push_back(std::move(m));
  }
  return {};
}

}  // namespace

mcp::ToolDefinition make_stdout_tool(ToolContext& ctx) {
  mcp::ToolDefinition tool = define_tool(
      "stdout", "Read output",
      "Read a process's output (running or ended). Default: the last `lines` lines of stdout "
      "and stderr; for a tty process, the terminal as a person sees it (scrollback plus screen, "
      "no escape codes; view: \"screen\" gives only the screen and the cursor). since: a cursor "
      "from an earlier result's next returns exactly the bytes after it (at most maxBytes per "
      "stream) with next and dropped, so following next reads every byte once. grep: a regex; "
      "returns matching lines with absolute 1-based line numbers and `context` lines around.");
  tool.descriptor["inputSchema"] = json::parse(R"J({
    "type": "object",
    "properties": {
      "id": {"type": "string", "description": "Process id from spawn or ps, e.g. host-1"},
      "lines": {"type": "integer", "minimum": 1, "default": 100,
                "description": "How many of the last lines to return per stream"},
      "since": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0},
                "description": "Cursor {stdout, stderr} or {terminal} from an earlier next"},
      "maxBytes": {"type": "integer", "minimum": 1, "default": 65536},
      "stream": {"type": "string", "enum": ["stdout", "stderr", "both"], "default": "both"},
      "grep": {"type": "string", "description": "ECMAScript regex; return matching lines"},
      "context": {"type": "integer", "minimum": 0, "default": 0},
      "ignoreCase": {"type": "boolean", "default": false},
      "view": {"type": "string", "enum": ["scrollback", "screen"], "default": "scrollback"},
      "keepAnsi": {"type": "boolean", "default": false,
                   "description": "Keep terminal escape sequences in pipe output"}
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
      "stderr": {"type": "string"},
      "next": {"type": "object", "additionalProperties": {"type": "integer"}},
      "dropped": {"type": "object", "additionalProperties": {"type": "integer"}},
      "matches": {"type": "array", "items": {"type": "object"}},
      "cursor": {"type": "object", "properties": {"row": {"type": "integer"}, "col": {"type": "integer"}}}
    },
    "required": ["id", "status", "exitCode", "stdout", "stderr"]
  })J");
  tool.descriptor["annotations"] = annotations("Read output", true, false, true, false);
  tool.handler = [&ctx](std::shared_ptr<mcp::ToolCall> call) {
    Arguments args(call->arguments(), "stdout",
                   {"id", "lines", "since", "maxBytes", "stream", "grep", "context",
                    "ignoreCase", "view", "keepAnsi"});
    auto id = args.string("id", true);
    auto lines = args.integer("lines", 1, 1000000);
    auto max_bytes = args.integer("maxBytes", 1, 64 << 20);
    std::string stream = args.string("stream").value_or("both");
    auto grep = args.string("grep");
    auto context = args.integer("context", 0, 100);
    bool ignore_case = args.boolean("ignoreCase").value_or(false);
    std::string view = args.string("view").value_or("scrollback");
    bool keep_ansi = args.boolean("keepAnsi").value_or(false);
    if (args.ok() && stream != "stdout" && stream != "stderr" && stream != "both") {
      args.fail("stdout: parameter 'stream' must be \"stdout\", \"stderr\" or \"both\"");
    }
    if (args.ok() && view != "scrollback" && view != "screen") {
      args.fail("stdout: parameter 'view' must be \"scrollback\" or \"screen\"");
    }
    if (!args.ok()) return call->fail(args.error());
    auto process = find_process(ctx, *call, *id);
    if (!process) return call->fail("stdout: " + process.error().message);
    const process::Process& p = **process;
    Cursor since = parse_cursor(args, p);
    if (!args.ok()) return call->fail("stdout: " + args.error());
    bool want_out = stream != "stderr" || p.tty;
    bool want_err = stream != "stdout" && !p.tty;

    json::object o;
    o["id"] = p.id;
    add_status(o, p);
    o["tty"] = p.tty;
    o["stdout"] = "";
    o["stderr"] = "";

    if (grep) {
      auto re = process::compile_pattern(*grep, ignore_case);
      if (!re) return call->fail("stdout: grep: " + re.error().message);
      json::array matches;
      const std::size_t limit = 1000;
      Result<void> grepped;
      if (want_out) {
        grepped = grep_stream(matches, p.stdout_buffer, p.tty ? "terminal" : "stdout", **re,
                              context.value_or(0), limit);
      }
      if (grepped && want_err) {
        grepped = grep_stream(matches, p.stderr_buffer, "stderr", **re, context.value_or(0), limit);
      }
      if (!grepped) return call->fail("stdout: grep: " + grepped.error().message);
      o["matches"] = std::move(matches);
      return call->finish(std::move(o));
    }

    if (args.raw("since") != nullptr || max_bytes) {
      std::size_t max = static_cast<std::size_t>(max_bytes.value_or(kDefaultMaxBytes));
      json::object next, dropped;
      if (want_out) {
        read_stream(o, next, dropped, p.stdout_buffer, "stdout", p.tty ? "terminal" : "stdout",
                    since.out.value_or(p.stdout_buffer.begin_offset()), max, keep_ansi && !p.tty);
      }
      if (want_err) {
        read_stream(o, next, dropped, p.stderr_buffer, "stderr", "stderr",
                    since.err.value_or(p.stderr_buffer.begin_offset()), max, keep_ansi);
      }
      o["next"] = std::move(next);
      o["dropped"] = std::move(dropped);
      return call->finish(std::move(o));
    }

    std::size_t n = lines ? static_cast<std::size_t>(*lines) : ctx.config.defaults.stdout_lines;
    // A generous cap so one call cannot flood the client's context; the marker says so.
    std::size_t cap = static_cast<std::size_t>(ctx.config.defaults.output_truncate) * 8;
    std::string hint = "ask for fewer lines, or page with since";
    if (p.terminal) {
      std::string shown = view == "screen" ? p.terminal->render_screen()
                                           : p.terminal->tail_lines(n);
      if (view == "screen") {
        auto cur = p.terminal->cursor();
        o["cursor"] = json::object{{"row", cur.row}, {"col", cur.col}};
      }
      o["stdout"] = text::keep_tail(std::move(shown), cap, hint).text;
    } else {
      if (want_out) {
        o["stdout"] = text::keep_tail(clean(p.stdout_buffer.tail_lines(n), keep_ansi), cap, hint).text;
      }
      if (want_err) {
        o["stderr"] = text::keep_tail(clean(p.stderr_buffer.tail_lines(n), keep_ansi), cap, hint).text;
      }
    }
    call->finish(std::move(o));
  };
  return tool;
}

}  // namespace pmcp::tools
