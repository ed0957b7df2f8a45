// Fuzz harness: arbitrary bytes as an MCP client's stdio stream, through the real session code
// (the core's JSON-RPC framing and dispatch, tool schemas and handlers, registry), with tool
// calls reaching a no-op executor (the plugin template, which starts nothing). Each input is one
// session: its lines are sent as messages, then a ping whose reply shows that the core has
// handled everything before it. A reply that never comes is a hang, and aborts.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "pmcp/process_mcp.hpp"

namespace {

std::unique_ptr<pmcp::ProcessMcp> g_server;

struct Replies {
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
};

constexpr std::string_view kEndId = "\"pmcp-fuzz-end\"";

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  pmcp::CreateOptions options;
  options.config_toml = std::string("executor = \"example\"\nplugin_dirs = [\"") +
                        PMCP_FUZZ_PLUGIN_DIR +
                        "\"]\nlog_level = \"off\"\n[limits]\nkeep_terminated = 20\n"
                        "max_processes = 50\n";
  auto created = pmcp::create_process_mcp(options);
  if (!created.ok()) {
    std::fprintf(stderr, "cannot start the server: %s\n", created.error.c_str());
    std::abort();
  }
  g_server = std::move(*created.value);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto replies = std::make_shared<Replies>();
  auto session = g_server->connect([replies](std::string text) {
    if (text.find(kEndId) == std::string::npos) return;
    std::lock_guard lock(replies->mutex);
    replies->done = true;
    replies->cv.notify_all();
  });
  std::string_view input(reinterpret_cast<const char*>(data), size);
  while (!input.empty()) {
    auto eol = input.find('\n');
    session->send(std::string(input.substr(0, eol)));
    input = eol == std::string_view::npos ? std::string_view() : input.substr(eol + 1);
  }
  session->send(R"({"jsonrpc":"2.0","id":"pmcp-fuzz-end","method":"ping"})");
  std::unique_lock lock(replies->mutex);
  if (!replies->cv.wait_for(lock, std::chrono::seconds(10), [&] { return replies->done; })) {
    std::fprintf(stderr, "no reply to a ping after the input within 10 s\n");
    std::abort();
  }
  lock.unlock();
  session.reset();
  return 0;
}
