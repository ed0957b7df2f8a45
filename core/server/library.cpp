// The library API (pmcp/process_mcp.hpp): every call becomes a tools/call on an in-process
// session, so library users get exactly the behaviour MCP clients get.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <future>
#include <mutex>

#include "pmcp/process_mcp.hpp"
#include "server/server.hpp"

namespace pmcp {

namespace json = boost::json;

namespace {

template <class T>
LibResult<T> fail(std::string message) {
  LibResult<T> r;
  r.error = std::move(message);
  return r;
}

template <class T>
LibResult<T> succeed(T value) {
  LibResult<T> r;
  r.value = std::move(value);
  return r;
}

std::string str(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_string() ? std::string(it->value().get_string()) : "";
}

std::optional<int> exit_code(const json::object& o) {
  auto it = o.find("exitCode");
  if (it == o.end() || !it->value().is_int64()) return std::nullopt;
  return static_cast<int>(it->value().get_int64());
}

ProcessInfo to_info(const json::object& o) {
  ProcessInfo info;
  info.pid = str(o, "pid");
  info.command = str(o, "command");
  info.status = str(o, "status");
  info.exit_code = exit_code(o);
  info.signal = str(o, "signal");
  info.cwd = str(o, "cwd");
  auto tty = o.find("tty");
  info.tty = tty != o.end() && tty->value().is_bool() && tty->value().get_bool();
  info.created_at = str(o, "createdAt");
  return info;
}

}  // namespace

// Runs one tool through a short-lived local session and waits for its result text.
LibResult<std::string> ProcessExecutor::call_tool(std::string_view name,
                                                  const std::string& arguments_json) {
  auto promise = std::make_shared<std::promise<std::string>>();
  auto future = promise->get_future();
  std::string request = R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":")" +
                        std::string(name) + R"(","arguments":)" + arguments_json + "}}";
  server::Server* server = server_;
  boost::asio::post(server->io(), [server, promise, request] {
    auto answered = std::make_shared<bool>(false);
    uint64_t session = 0;
    session = server->open_local_session([promise, answered](std::string text) {
      if (*answered) return;
      if (text.find("\"id\":1") == std::string::npos) return;  // progress or log messages
      *answered = true;
      promise->set_value(std::move(text));
    });
    server->deliver_local(session, request);
    // The session can go once answered; tools that wait keep their own state alive.
    boost::asio::post(server->io(), [] {});
  });
  if (future.wait_for(std::chrono::minutes(10)) != std::future_status::ready) {
    return fail<std::string>("the server did not answer " + std::string(name));
  }
  std::string text = future.get();
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return fail<std::string>("malformed answer from the server");
  const auto& o = v.get_object();
  if (auto err = o.find("error"); err != o.end()) {
    return fail<std::string>(str(err->value().as_object(), "message"));
  }
  const auto& result = o.at("result").as_object();
  if (auto is_error = result.find("isError");
      is_error != result.end() && is_error->value().is_bool() && is_error->value().get_bool()) {
    return fail<std::string>(
        std::string(result.at("content").as_array().at(0).as_object().at("text").as_string()));
  }
  return succeed(json::serialize(result.at("structuredContent")));
}

LibResult<SpawnResult> ProcessExecutor::spawn(const SpawnOptions& options) {
  json::object args;
  args["command"] = options.command;
  if (!options.cwd.empty()) args["cwd"] = options.cwd;
  if (!options.env.empty()) {
    json::object env;
    for (const auto& [k, v] : options.env) env[k] = v;
    args["env"] = std::move(env);
  }
  args["tty"] = options.tty;
  args["background"] = options.background;
  if (options.timeout_ms) args["timeoutMs"] = *options.timeout_ms;
  auto r = call_tool("spawn", json::serialize(args));
  if (!r) return fail<SpawnResult>(r.error);
  auto o = json::parse(*r.value).as_object();
  SpawnResult out;
  out.pid = str(o, "pid");
  out.status = str(o, "status");
  out.exit_code = exit_code(o);
  out.signal = str(o, "signal");
  out.stdout_text = str(o, "stdout");
  out.stderr_text = str(o, "stderr");
  out.notice = str(o, "notice");
  return succeed(std::move(out));
}

LibResult<Unit> ProcessExecutor::stdin(std::string_view pid, std::string_view input) {
  json::object args{{"id", pid}, {"input", input}};
  auto r = call_tool("stdin", json::serialize(args));
  return r ? succeed(Unit{}) : fail<Unit>(r.error);
}

LibResult<ProcessInfo> ProcessExecutor::get_process(std::string_view pid) {
  for (auto& info : list_processes()) {
    if (info.pid == pid) return succeed(std::move(info));
  }
  return fail<ProcessInfo>("unknown process id '" + std::string(pid) + "'");
}

std::vector<ProcessInfo> ProcessExecutor::list_processes() {
  std::vector<ProcessInfo> out;
  auto r = call_tool("ps", "{}");
  if (!r) return out;
  json::value parsed = json::parse(*r.value);
  for (const auto& p : parsed.as_object().at("processes").as_array()) {
    out.push_back(to_info(p.as_object()));
  }
  return out;
}

LibResult<Output> ProcessExecutor::get_output(std::string_view pid, std::size_t lines) {
  json::object args{{"id", pid}, {"lines", lines}};
  auto r = call_tool("stdout", json::serialize(args));
  if (!r) return fail<Output>(r.error);
  auto o = json::parse(*r.value).as_object();
  return succeed(Output{str(o, "stdout"), str(o, "stderr")});
}

LibResult<Unit> ProcessExecutor::kill(std::string_view pid, std::string_view signal) {
  json::object args{{"id", pid}, {"signal", signal}};
  auto r = call_tool("kill", json::serialize(args));
  return r ? succeed(Unit{}) : fail<Unit>(r.error);
}

void ProcessExecutor::cleanup() {
  if (server_ == nullptr) return;
  server_->shutdown();
  server_->join();
}

LocalSession::~LocalSession() {
  server::Server* server = server_;
  uint64_t id = id_;
  std::promise<void> done;
  auto future = done.get_future();
  boost::asio::post(server->io(), [server, id, &done] {
    server->close_local_session(id);
    done.set_value();
  });
  future.wait_for(std::chrono::seconds(5));
}

void LocalSession::send(std::string text) {
  server::Server* server = server_;
  uint64_t id = id_;
  boost::asio::post(server->io(),
                    [server, id, text = std::move(text)] { server->deliver_local(id, text); });
}

ProcessMcp::ProcessMcp(std::unique_ptr<server::Server> server)
    : server_(std::move(server)), executor_(server_.get()) {}

ProcessMcp::~ProcessMcp() { cleanup(); }

void ProcessMcp::cleanup() { executor_.cleanup(); }

std::unique_ptr<LocalSession> ProcessMcp::connect(std::function<void(std::string)> on_message) {
  std::promise<uint64_t> opened;
  auto future = opened.get_future();
  server::Server* server = server_.get();
  boost::asio::post(server->io(), [server, &opened, on_message = std::move(on_message)] {
    opened.set_value(server->open_local_session(on_message));
  });
  return std::unique_ptr<LocalSession>(new LocalSession(server, future.get()));
}

namespace {

// The library logs through spdlog's default logger. One that the embedding program set stays as
// it is. spdlog's own (the unnamed one it starts with) writes to stdout, where a program that
// serves MCP over stdio, as the library's stdio transport does, must write nothing else: it is
// replaced by one that writes to stderr, like the server's, at the config's log_level.
void log_to_stderr_unless_configured(const std::string& level) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  if (!spdlog::default_logger_raw()->name().empty()) return;
  auto logger = spdlog::get("process-mcp");
  if (!logger) logger = spdlog::stderr_color_mt("process-mcp");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

}  // namespace

LibResult<std::unique_ptr<ProcessMcp>> create_process_mcp(const CreateOptions& options) {
  auto env = config::current_environment();
  for (const auto& [k, v] : options.env) env[k] = v;
  Result<config::Config> cfg = config::Config{};
  if (!options.config_toml.empty()) {
    cfg = config::parse(options.config_toml, "<config_toml>", env);
  } else {
    config::LoadOptions load;
    if (!options.config_path.empty()) load.explicit_path = options.config_path;
    load.env = env;
    load.default_paths = server::default_config_paths();
    cfg = config::load(load);
  }
  if (!cfg) return fail<std::unique_ptr<ProcessMcp>>(cfg.error().message);
  log_to_stderr_unless_configured(cfg->log_level);
  server::ServerOptions server_options;
  server_options.start_transports = options.start_transports;
  server_options.handle_signals = false;
  auto server = server::Server::create(std::move(*cfg), server_options);
  if (!server) return fail<std::unique_ptr<ProcessMcp>>(server.error().message);
  if (auto started = (*server)->start(); !started) {
    return fail<std::unique_ptr<ProcessMcp>>(started.error().message);
  }
  return succeed(std::unique_ptr<ProcessMcp>(new ProcessMcp(std::move(*server))));
}

}  // namespace pmcp
