// JSON-RPC framing and MCP dispatch: error codes, batches, version negotiation, cancellation,
// progress and log levels, checked through the dispatcher with a recording outbound.
#include "mcp/jsonrpc.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "mcp/dispatcher.hpp"

namespace pmcp::mcp {
namespace {

struct Recorder : Outbound {
  struct Sent {
    SessionKey session;
    uint64_t stream;
    json::value message;
    bool final;
  };
  std::vector<Sent> sent;
  void send(SessionKey session, uint64_t stream, std::string text, bool final) override {
    sent.push_back({session, stream, json::parse(text), final});
  }
  json::object last() { return sent.back().message.as_object(); }
};

TEST(JsonRpcParse, ClassifiesMessages) {
  auto p = parse(R"({"jsonrpc":"2.0","id":1,"method":"ping"})");
  ASSERT_EQ(p.messages.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<Request>(p.messages[0]));
  p = parse(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  EXPECT_TRUE(std::holds_alternative<Notification>(p.messages[0]));
  p = parse(R"({"jsonrpc":"2.0","id":"a","result":{}})");
  EXPECT_TRUE(std::holds_alternative<Response>(p.messages[0]));
}

TEST(JsonRpcParse, ParseErrorHasNullId) {
  auto p = parse("{not json");
  auto& inv = std::get<Invalid>(p.messages[0]);
  EXPECT_EQ(inv.code, kParseError);
  EXPECT_TRUE(inv.id.is_null());
}

TEST(JsonRpcParse, InvalidUtf8IsNamedWithItsOffset) {
  for (std::string text : {std::string("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xffing\"}"),
                           std::string("\xff\xfe{}"), std::string("{\"a\":\"\xc3\x28\"}"),
                           std::string("{\"a\":\"\xed\xa0\x80\"}"),  // a surrogate
                           std::string("{\"a\":\"\xc0\xaf\"}")}) {   // overlong '/'
    auto p = parse(text);
    ASSERT_EQ(p.messages.size(), 1u);
    auto& inv = std::get<Invalid>(p.messages[0]);
    EXPECT_EQ(inv.code, kParseError);
    EXPECT_TRUE(inv.id.is_null());
    EXPECT_NE(inv.message.find("not valid UTF-8"), std::string::npos) << inv.message;
  }
  auto p = parse("{\"a\":\"\xff\"}");
  EXPECT_NE(std::get<Invalid>(p.messages[0]).message.find("offset 6"), std::string::npos);
  // Valid multi-byte text is fine.
  p = parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}");
  EXPECT_TRUE(std::holds_alternative<Request>(p.messages[0]));
}

TEST(JsonRpcParse, DepthLimitIsNamed) {
  // The message and params objects are two levels; the arrays fill the rest.
  const std::string arrays =
      std::string(kMaxJsonDepth - 2, '[') + std::string(kMaxJsonDepth - 2, ']');
  auto p =
      parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":{\"a\":" + arrays + "}}");
  EXPECT_TRUE(std::holds_alternative<Request>(p.messages[0]));
  for (std::size_t depth : {kMaxJsonDepth + 1, std::size_t{100000}}) {
    p = parse(std::string(depth, '['));
    auto& inv = std::get<Invalid>(p.messages[0]);
    EXPECT_EQ(inv.code, kParseError);
    EXPECT_NE(inv.message.find("nested more than 64 levels"), std::string::npos) << inv.message;
  }
}

TEST(JsonRpcParse, InvalidRequests) {
  for (const char* text : {R"([])", R"(42)", R"({"id":1,"method":"ping"})",
                           R"({"jsonrpc":"1.0","id":1,"method":"ping"})",
                           R"({"jsonrpc":"2.0","id":1,"method":7})",
                           R"({"jsonrpc":"2.0","id":{"x":1},"method":"ping"})"}) {
    auto p = parse(text);
    ASSERT_EQ(p.messages.size(), 1u) << text;
    auto* inv = std::get_if<Invalid>(&p.messages[0]);
    ASSERT_NE(inv, nullptr) << text;
    EXPECT_EQ(inv->code, kInvalidRequest) << text;
  }
  auto p = parse(R"({"jsonrpc":"2.0","id":3,"method":"x","params":[1]})");
  EXPECT_EQ(std::get<Invalid>(p.messages[0]).code, kInvalidParams);
  EXPECT_EQ(std::get<Invalid>(p.messages[0]).id, json::value(3));
}

class DispatcherTest : public ::testing::Test {
 protected:
  Recorder out;
  Dispatcher d{out, ServerInfo{"process-mcp", "0.1.0", ""}};
  SessionKey s{0, 1};

  json::object call(std::string text, uint64_t stream = 0) {
    out.sent.clear();
    d.on_message(s, stream, text);
    EXPECT_FALSE(out.sent.empty()) << text;
    return out.sent.empty() ? json::object{} : out.last();
  }
};

TEST_F(DispatcherTest, InitializeNegotiatesVersions) {
  for (std::string v : {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}) {
    auto r = call(R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":")" +
                  v + R"(","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})");
    EXPECT_EQ(r["result"].at("protocolVersion"), json::value(v));
    EXPECT_TRUE(r["result"].at("capabilities").as_object().contains("tools"));
    EXPECT_TRUE(r["result"].at("capabilities").as_object().contains("logging"));
  }
  auto r = call(R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"1999-01-01"}})");
  EXPECT_EQ(r["result"].at("protocolVersion"), json::value("2025-11-25"));
  EXPECT_TRUE(out.sent.back().final);
}

TEST_F(DispatcherTest, PingAndUnknownMethod) {
  auto r = call(R"({"jsonrpc":"2.0","id":"p","method":"ping"})");
  EXPECT_EQ(r["id"], json::value("p"));
  EXPECT_TRUE(r["result"].as_object().empty());
  r = call(R"({"jsonrpc":"2.0","id":2,"method":"no/such"})");
  EXPECT_EQ(r["error"].at("code"), json::value(kMethodNotFound));
}

TEST_F(DispatcherTest, NotificationsGetNoAnswer) {
  out.sent.clear();
  d.on_message(s, 0, R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  d.on_message(s, 0, R"({"jsonrpc":"2.0","method":"notifications/unknown"})");
  EXPECT_TRUE(out.sent.empty());
}

TEST_F(DispatcherTest, MalformedTextGetsParseErrorAndServerGoesOn) {
  auto r = call("{\"jsonrpc\":");
  EXPECT_EQ(r["error"].at("code"), json::value(kParseError));
  EXPECT_TRUE(r["id"].is_null());
  r = call(R"({"jsonrpc":"2.0","id":9,"method":"ping"})");
  EXPECT_EQ(r["id"], json::value(9));
}

TEST_F(DispatcherTest, BatchIsAnsweredAsOneArray) {
  out.sent.clear();
  d.on_message(s, 5, R"([{"jsonrpc":"2.0","id":1,"method":"ping"},
                         {"jsonrpc":"2.0","method":"notifications/initialized"},
                         {"jsonrpc":"2.0","id":2,"method":"nope"}])");
  ASSERT_EQ(out.sent.size(), 1u);
  EXPECT_EQ(out.sent[0].stream, 5u);
  const auto& arr = out.sent[0].message.as_array();
  ASSERT_EQ(arr.size(), 2u);
  EXPECT_EQ(arr[0].at("id"), json::value(1));
  EXPECT_EQ(arr[1].at("error").at("code"), json::value(kMethodNotFound));
}

TEST_F(DispatcherTest, SetLevelValidatesAndFilters) {
  auto r = call(R"({"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{"level":"loud"}})");
  EXPECT_EQ(r["error"].at("code"), json::value(kInvalidParams));
  call(R"({"jsonrpc":"2.0","id":2,"method":"logging/setLevel","params":{"level":"error"}})");
  out.sent.clear();
  d.log(LogLevel::info, "core", "quiet");
  EXPECT_TRUE(out.sent.empty());
  d.log(LogLevel::error, "core", "loud");
  ASSERT_EQ(out.sent.size(), 1u);
  EXPECT_EQ(out.last()["method"], json::value("notifications/message"));
  EXPECT_EQ(out.last()["params"].at("level"), json::value("error"));
}

TEST_F(DispatcherTest, ToolsListCallUnknownToolAndBadArguments) {
  std::shared_ptr<ToolCall> held;
  d.add_tool(ToolDefinition{"echo",
                            json::object{{"name", "echo"}, {"inputSchema", json::object{{"type", "object"}}}},
                            [&](std::shared_ptr<ToolCall> c) { held = c; }});
  auto r = call(R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})");
  EXPECT_EQ(r["result"].at("tools").as_array().size(), 1u);
  r = call(R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"nope"}})");
  EXPECT_EQ(r["error"].at("code"), json::value(kInvalidParams));
  EXPECT_NE(std::string(r["error"].at("message").as_string()).find("nope"), std::string::npos);
  r = call(R"({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":5}})");
  EXPECT_EQ(r["result"].at("isError"), json::value(true));

  out.sent.clear();
  d.on_message(s, 7, R"({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{"a":1},"_meta":{"progressToken":"tok"}}})");
  ASSERT_TRUE(held);
  EXPECT_TRUE(out.sent.empty());  // the handler answers later
  held->progress(1, 10, "working");
  ASSERT_EQ(out.sent.size(), 1u);
  EXPECT_EQ(out.sent[0].stream, 7u);
  EXPECT_FALSE(out.sent[0].final);
  EXPECT_EQ(out.last()["params"].at("progressToken"), json::value("tok"));
  held->finish(json::object{{"ok", true}});
  held->finish(json::object{{"twice", true}});  // ignored
  ASSERT_EQ(out.sent.size(), 2u);
  EXPECT_TRUE(out.sent[1].final);
  auto result = out.last()["result"].as_object();
  EXPECT_EQ(result["structuredContent"].at("ok"), json::value(true));
  EXPECT_EQ(result["content"].at(0).at("text"), json::value(R"({"ok":true})"));
}

TEST_F(DispatcherTest, CancellationRunsHookAndSuppressesResponse) {
  std::shared_ptr<ToolCall> held;
  bool cancelled = false;
  d.add_tool(ToolDefinition{"wait", json::object{{"name", "wait"}},
                            [&](std::shared_ptr<ToolCall> c) {
                              held = c;
                              c->on_cancel([&] { cancelled = true; });
                            }});
  out.sent.clear();
  d.on_message(s, 0, R"({"jsonrpc":"2.0","id":"w","method":"tools/call","params":{"name":"wait"}})");
  d.on_message(s, 0, R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"w"}})");
  EXPECT_TRUE(cancelled);
  EXPECT_TRUE(held->cancelled());
  held->finish(json::object{});
  EXPECT_TRUE(out.sent.empty());
  // Other requests still work.
  auto r = call(R"({"jsonrpc":"2.0","id":1,"method":"ping"})");
  EXPECT_EQ(r["id"], json::value(1));
}

TEST_F(DispatcherTest, SessionCloseCancelsPendingCalls) {
  bool cancelled = false;
  std::shared_ptr<ToolCall> held;  // a handler that waits keeps its call alive
  d.add_tool(ToolDefinition{"wait", json::object{{"name", "wait"}},
                            [&](std::shared_ptr<ToolCall> c) {
                              held = c;
                              c->on_cancel([&] { cancelled = true; });
                            }});
  d.on_message(s, 0, R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"wait"}})");
  d.on_session_closed(s);
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(d.session_count(), 0u);
}

// A tool's answer carries its structured result again as a JSON string, appended in place; it
// must read exactly as Boost.JSON writes a string: every byte value, alone and in runs.
TEST(JsonRpc, AppendedStringsAreWrittenAsBoostJsonWritesThem) {
  std::mt19937 random(11);
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    const int n = static_cast<int>(random() % 64);
    for (int k = 0; k < n; ++k) {
      // Mostly plain text, so that runs without escapes are long too.
      text += random() % 4 == 0 ? static_cast<char>(random() % 256)
                                : static_cast<char>('a' + random() % 26);
    }
    std::string out = "prefix";
    append_json_string(out, text);
    EXPECT_EQ(out, "prefix" + json::serialize(json::string_view(text))) << round;
  }
  for (int c = 0; c < 256; ++c) {
    const std::string text(1, static_cast<char>(c));
    std::string out;
    append_json_string(out, text);
    EXPECT_EQ(out, json::serialize(json::string_view(text))) << c;
  }
}

}  // namespace
}  // namespace pmcp::mcp
