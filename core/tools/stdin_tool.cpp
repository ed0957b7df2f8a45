// stdin: write to a process's input, pipe or terminal, with escape sequences decoded, named
// keys encoded for the terminal's current modes, and end of input.
#include "process/keys.hpp"
#include "process/stdin_escapes.hpp"
#include "tools/arguments.hpp"
#include "tools/tools.hpp"

namespace pmcp::tools {

namespace {
constexpr std::size_t kTtyChunk = 1024;
}

mcp::ToolDefinition make_stdin_tool(ToolContext& ctx) {
  mcp::ToolDefinition tool = define_tool(
      "stdin", "Send input",
      "Send input to a running process (terminal or pipe). Escapes in input: \\n newline, \\r "
      "carriage return (Enter on a tty), \\t tab, \\\\ backslash, \\e escape, \\xHH a byte "
      "(\\x03 is Ctrl-C, \\x04 Ctrl-D), \\uHHHH and \\u{H...} a Unicode character. keys: named "
      "keys sent after input, e.g. [\"Escape\", \":wq\" is input, \"Enter\"], \"Up\", \"C-c\", "
      "\"F5\", \"M-x\". eof: true closes a pipe's stdin (or sends Ctrl-D on a tty). Then use "
      "wait to see the reaction.");
  tool.descriptor["inputSchema"] = json::parse(R"J({
    "type": "object",
    "properties": {
      "id": {"type": "string", "description": "Process id from spawn or ps, e.g. host-1"},
      "input": {"type": "string", "description": "Text to send; escape sequences are decoded (may be empty when keys or eof are given)"},
      "keys": {"type": "array", "items": {"type": "string"},
               "description": "Named keys sent after input: Enter, Tab, Escape, Backspace, Delete, Up, Down, Left, Right, Home, End, PageUp, PageDown, F1..F12, Space, C-a..C-z, M-<char>"},
      "eof": {"type": "boolean", "description": "Close stdin (pipe) or send Ctrl-D (tty) after the rest"}
    },
    "required": ["id", "input"],
    "additionalProperties": false
  })J");
  tool.descriptor["outputSchema"] = json::parse(R"J({
    "type": "object",
    "properties": {"id": {"type": "string"}, "bytes": {"type": "integer"},
                   "eof": {"type": "boolean"}},
    "required": ["id", "bytes"]
  })J");
  tool.descriptor["annotations"] = annotations("Send input", false, true, false, false);
  tool.handler = [&ctx](std::shared_ptr<mcp::ToolCall> call) {
    Arguments args(call->arguments(), "stdin", {"id", "input", "keys", "eof"});
    auto id = args.string("id", true);
    auto input = args.string("input");
    bool eof = args.boolean("eof").value_or(false);
    std::vector<std::string> keys;
    if (const json::value* k = args.raw("keys"); k != nullptr && !k->is_null()) {
      if (!k->is_array()) {
        args.fail("stdin: parameter 'keys' must be an array of key names such as [\"Enter\"]");
      } else {
        for (const auto& item : k->get_array()) {
          if (!item.is_string()) {
            args.fail("stdin: every entry of 'keys' must be a key name string");
            break;
          }
          keys.emplace_back(item.get_string());
        }
      }
    }
    if (args.ok() && !input && keys.empty() && !eof) {
      args.fail("stdin: give 'input', 'keys' or 'eof: true'");
    }
    if (!args.ok()) return call->fail(args.error());
    auto process = find_process(ctx, *call, *id);
    if (!process) return call->fail("stdin: " + process.error().message);
    process::Process& p = **process;
    if (!p.running()) {
      return call->fail("stdin: process " + p.id + " has already exited; input can only go to a "
                        "running process (see ps, or start it again with spawn)");
    }
    if (p.stdin_closed) {
      return call->fail("stdin: the input of " + p.id + " was closed with eof: true");
    }
    std::string bytes;
    if (input) {
      auto decoded = process::parse_stdin_escapes(*input);
      if (auto* error = std::get_if<process::EscapeError>(&decoded)) {
        return call->fail("stdin: " + error->message);
      }
      bytes = std::get<std::string>(decoded);
    }
    auto encoded = process::encode_keys(keys, p.terminal.get());
    if (!encoded) return call->fail("stdin: " + encoded.error().message);
    bytes += *encoded;
    if (eof && p.tty) bytes += '\x04';
    auto& executor = ctx.registry.executor();
    // Chunks keep each write below the terminal's line buffer.
    std::size_t step = p.tty ? kTtyChunk : bytes.size();
    for (std::size_t off = 0; off < bytes.size(); off += step) {
      auto written = executor.write_stdin(p.number, std::string_view(bytes).substr(off, step));
      if (!written) {
        return call->fail("stdin: writing to " + p.id + " failed: " + written.error().message);
      }
    }
    if (!bytes.empty()) {
      p.input_mark_stdout = p.stdout_buffer.end_offset();
      p.input_mark_stderr = p.stderr_buffer.end_offset();
      p.last_input = bytes;
      p.has_input = true;
    }
    if (eof && !p.tty) {
      if (auto closed = executor.close_stdin(p.number); !closed) {
        return call->fail("stdin: closing the input of " + p.id + " failed: " +
                          closed.error().message);
      }
      p.stdin_closed = true;
    }
    json::object o{{"id", p.id}, {"bytes", bytes.size()}};
    if (eof) o["eof"] = true;
    call->finish(std::move(o));
  };
  return tool;
}

}  // namespace pmcp::tools
