// Sessions through the library's in-process MCP sessions: isolation = "session" hides other
// sessions' processes, on_session_end = "kill" ends a session's processes with it, and every
// session that has seen a process gets its exit notice.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pmcp/process_mcp.hpp"

namespace {

namespace json = boost::json;

class Inbox {
 public:
  void push(std::string text) {
    std::lock_guard lock(mu_);
    messages_.push_back(json::parse(text));
    cv_.notify_all();
  }
  // Waits for a message that satisfies pred; returns it or null after the timeout.
  template <class Pred>
  json::value wait_for(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    json::value found;
    cv_.wait_for(lock, timeout, [&] {
      for (const auto& m : messages_) {
        if (pred(m)) {
          found = m;
          return true;
        }
      }
      return false;
    });
    return found;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<json::value> messages_;
};

struct Client {
  Inbox inbox;
  std::unique_ptr<pmcp::LocalSession> session;
  int next_id = 100;

  explicit Client(pmcp::ProcessMcp& mcp) {
    session = mcp.connect([this](std::string text) { inbox.push(std::move(text)); });
    session->send(R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})");
    session->send(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  }
  json::object call(std::string tool, json::object args) {
    int id = next_id++;
    json::object request{{"jsonrpc", "2.0"}, {"id", id}, {"method", "tools/call"},
                         {"params", json::object{{"name", tool}, {"arguments", args}}}};
    session->send(json::serialize(request));
    json::value reply = inbox.wait_for([id](const json::value& m) {
      return m.is_object() && m.as_object().contains("id") && m.at("id") == json::value(id);
    });
    EXPECT_FALSE(reply.is_null()) << "no reply to " << tool;
    return reply.is_null() ? json::object{} : reply.at("result").as_object();
  }
};

std::unique_ptr<pmcp::ProcessMcp> make(std::string extra) {
  pmcp::CreateOptions options;
  options.config_toml = "executor = \"host\"\nplugin_dirs = [\"" PMCP_PLUGIN_DIR "\"]\n" + extra +
                        "\n[limits]\nkill_grace_ms = 500\n";
  auto created = pmcp::create_process_mcp(options);
  EXPECT_TRUE(created.ok()) << created.error;
  return created.ok() ? std::move(*created.value) : nullptr;
}

TEST(Sessions, SharedByDefault) {
  auto mcp = make("");
  ASSERT_TRUE(mcp);
  Client a(*mcp), b(*mcp);
  auto r = a.call("spawn", {{"command", "sleep 30"}, {"background", true}});
  std::string pid(r["structuredContent"].at("pid").as_string());
  auto ps = b.call("ps", {});
  EXPECT_EQ(ps["structuredContent"].at("processes").as_array().size(), 1u);
  auto k = b.call("kill", {{"id", pid}, {"signal", "SIGKILL"}});
  EXPECT_EQ(k["isError"], json::value(false));
}

TEST(Sessions, IsolationHidesOtherSessionsProcesses) {
  auto mcp = make("isolation = \"session\"");
  ASSERT_TRUE(mcp);
  Client a(*mcp), b(*mcp);
  auto r = a.call("spawn", {{"command", "sleep 30"}, {"background", true}});
  std::string pid(r["structuredContent"].at("pid").as_string());
  EXPECT_EQ(a.call("ps", {})["structuredContent"].at("processes").as_array().size(), 1u);
  EXPECT_EQ(b.call("ps", {})["structuredContent"].at("processes").as_array().size(), 0u);
  for (std::string tool : {"kill", "stdout", "stdin"}) {
    json::object args{{"id", pid}};
    if (tool == "stdin") args["input"] = "x";
    auto denied = b.call(tool, args);
    EXPECT_EQ(denied["isError"], json::value(true)) << tool;
    std::string text(denied["content"].at(0).at("text").as_string());
    EXPECT_NE(text.find("unknown process id"), std::string::npos) << text;
  }
  EXPECT_EQ(a.call("kill", {{"id", pid}, {"signal", 9}})["isError"], json::value(false));
}

TEST(Sessions, EndingASessionKillsItsProcessesWhenConfigured) {
  auto mcp = make("on_session_end = \"kill\"");
  ASSERT_TRUE(mcp);
  auto a = std::make_unique<Client>(*mcp);
  Client b(*mcp);
  auto r = a->call("spawn", {{"command", "sleep 30"}, {"background", true}});
  std::string pid(r["structuredContent"].at("pid").as_string());
  a.reset();  // closes session A
  std::string status;
  for (int i = 0; i < 100 && status != "terminated"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto out = b.call("stdout", {{"id", pid}});
    status = std::string(out["structuredContent"].at("status").as_string());
  }
  EXPECT_EQ(status, "terminated");
}

TEST(Sessions, SessionsThatSawAProcessGetItsExitNotice) {
  auto mcp = make("");
  ASSERT_TRUE(mcp);
  Client a(*mcp), b(*mcp), c(*mcp);
  auto r = a.call("spawn", {{"command", "sleep 0.3; exit 4"}, {"background", true}});
  std::string pid(r["structuredContent"].at("pid").as_string());
  b.call("stdout", {{"id", pid}});
  auto is_exit = [&](const json::value& m) {
    return m.is_object() && m.as_object().contains("method") &&
           m.at("method") == json::value("notifications/message") &&
           m.at("params").at("data").at("id") == json::value(pid);
  };
  auto note = a.inbox.wait_for(is_exit);
  ASSERT_FALSE(note.is_null());
  EXPECT_EQ(note.at("params").at("level"), json::value("info"));
  EXPECT_EQ(note.at("params").at("data").at("event"), json::value("exit"));
  EXPECT_EQ(note.at("params").at("data").at("exitCode"), json::value(4));
  EXPECT_FALSE(b.inbox.wait_for(is_exit).is_null());
  EXPECT_TRUE(c.inbox.wait_for(is_exit, std::chrono::milliseconds(300)).is_null());
}

}  // namespace
