// resize: change a TTY process's terminal size; the program gets SIGWINCH and the rendered
// screen follows.
#include "tools/arguments.hpp"
#include "tools/tools.hpp"

namespace pmcp::tools {

mcp::ToolDefinition make_resize_tool(ToolContext& ctx) {
  mcp::ToolDefinition tool = define_tool(
      "resize", "Resize a terminal",
      "Resize the terminal of a tty process (cols x rows). The program receives SIGWINCH and "
      "redraws; stdout shows the new layout. Only for processes started with tty: true.");
  tool.descriptor["inputSchema"] = json::parse(R"J({
    "type": "object",
    "properties": {
      "id": {"type": "string"},
      "cols": {"type": "integer", "minimum": 2, "maximum": 1000},
      "rows": {"type": "integer", "minimum": 2, "maximum": 500}
    },
    "required": ["id", "cols", "rows"],
    "additionalProperties": false
  })J");
  tool.descriptor["outputSchema"] = json::parse(R"J({
    "type": "object",
    "properties": {"id": {"type": "string"}, "cols": {"type": "integer"}, "rows": {"type": "integer"}},
    "required": ["id", "cols", "rows"]
  })J");
  tool.descriptor["annotations"] = annotations("Resize a terminal", false, false, true, false);
  tool.handler = [&ctx](std::shared_ptr<mcp::ToolCall> call) {
    Arguments args(call->arguments(), "resize", {"id", "cols", "rows"});
    auto id = args.string("id", true);
    auto cols = args.integer("cols", 2, 1000);
    auto rows = args.integer("rows", 2, 500);
    if (args.ok() && (!cols || !rows)) args.fail("resize: parameters 'cols' and 'rows' are required");
    if (!args.ok()) return call->fail(args.error());
    auto process = find_process(ctx, *call, *id);
    if (!process) return call->fail("resize: " + process.error().message);
    process::Process& p = **process;
    if (!p.terminal) {
      return call->fail("resize: process " + p.id +
                        " has no terminal (it was started without tty: true); only tty "
                        "processes can be resized");
    }
    if (!p.running()) return call->fail("resize: process " + p.id + " has already exited");
    auto c = static_cast<uint16_t>(*cols);
    auto r = static_cast<uint16_t>(*rows);
    if (auto done = ctx.registry.executor().resize(p.number, c, r); !done) {
      return call->fail("resize: " + done.error().message);
    }
    p.terminal->resize(c, r);
    call->finish(json::object{{"id", p.id}, {"cols", c}, {"rows", r}});
  };
  return tool;
}

}  // namespace pmcp::tools
