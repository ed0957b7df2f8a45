// Shared by pmcp-bench-floods and pmcp-bench-soak: the built server started with a config of
// our own, a stdio client that keeps several requests in flight (so that pings can be timed
// while a long call runs), a Streamable HTTP client, statistics and /proc readings.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "stats.hpp"

namespace pmcp::bench {

namespace json = boost::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Set by each program to its own name, for messages.
inline const char* g_program = "pmcp-bench";

// The server binary: the one built with this program, or $PMCP_SERVER (e.g. a copy of the
// build tree, so that a long run is not disturbed by a rebuild).
inline const char* server_path() {
  const char* env = std::getenv("PMCP_SERVER");
  return env != nullptr && *env != '\0' ? env : PMCP_SERVER_PATH;
}

[[noreturn]] inline void die(const std::string& why) {
  std::fprintf(stderr, "%s: %s\n", g_program, why.c_str());
  std::exit(1);
}

inline double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// A field of /proc/<pid>/status in its unit (kB for Vm*, a count for Threads), or -1.
inline long proc_status(pid_t pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + key.size());
  }
  return -1;
}

// Open file descriptors of pid, or -1.
inline long open_fds(pid_t pid) {
  DIR* dir = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (dir == nullptr) return -1;
  long n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n;
}

// The processes of the jobs that the server at `pid` runs: its descendants, without the host
// executor's sandbox itself (bubblewrap, the sandbox's init and its network bridge), which
// lives as long as the server, and without the spare launcher that a supervisor keeps ready
// for the next command. Launchers, supervisors and commands count.
inline long job_process_count(pid_t pid) {
  struct Proc {
    pid_t ppid;
    std::string comm;
  };
  std::map<pid_t, Proc> all;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.empty() || name[0] < '0' || name[0] > '9') continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), {});
    const auto open_paren = stat.find('(');
    const auto close_paren = stat.rfind(')');
    if (open_paren == std::string::npos || close_paren == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(stat.c_str() + close_paren + 1, " %c %d", &state, &ppid) != 2) continue;
    all[static_cast<pid_t>(std::stol(name))] =
        Proc{static_cast<pid_t>(ppid), stat.substr(open_paren + 1, close_paren - open_paren - 1)};
  }
  const auto sandbox_itself = [&](pid_t p, const Proc& proc) {
    if (proc.comm == "bwrap" && proc.ppid == pid) return true;  // bubblewrap
    if (proc.comm == "pmcp-net-bridge" || proc.comm == "pmcp-spare") return true;
    auto parent = all.find(proc.ppid);  // the init: the child of bubblewrap
    return parent != all.end() && parent->second.comm == "bwrap" && parent->second.ppid == pid &&
           p != pid;
  };
  long n = 0;
  for (const auto& [p, proc] : all) {
    bool below = false;  // is p a descendant of the server?
    for (pid_t up = proc.ppid, hops = 0; up > 1 && hops < 64; ++hops) {
      if (up == pid) {
        below = true;
        break;
      }
      auto it = all.find(up);
      if (it == all.end()) break;
      up = it->second.ppid;
    }
    if (below && !sandbox_itself(p, proc)) ++n;
  }
  return n;
}

// A temporary folder, removed at the end.
struct TempDir {
  fs::path path;
  explicit TempDir(const char* prefix) {
    std::string tmpl = (fs::temp_directory_path() / (std::string(prefix) + "XXXXXX")).string();
    if (mkdtemp(tmpl.data()) == nullptr) die("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

inline std::string request_text(uint64_t id, const std::string& method,
                                const json::object& params) {
  json::object o{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.empty()) o["params"] = params;
  return json::serialize(o);
}

inline std::string call_text(uint64_t id, const std::string& tool, const json::object& args) {
  return request_text(id, "tools/call", json::object{{"name", tool}, {"arguments", args}});
}

inline const char* kInitializeParams = R"({"protocolVersion":"2025-11-25","capabilities":{},)"
                                       R"("clientInfo":{"name":"bench","version":"1"}})";

// structuredContent of a tools/call response; dies on an error.
inline json::object structured(const json::object& response, const std::string& what) {
  if (!response.contains("result")) die(what + ": " + json::serialize(response).substr(0, 400));
  const auto& result = response.at("result").as_object();
  if (result.contains("isError") && result.at("isError").as_bool())
    die(what + " failed: " + json::serialize(response).substr(0, 400));
  return result.at("structuredContent").as_object();
}

// JSON text with numbers in fixed notation (3 decimals): Boost.JSON writes doubles in exponent
// form, which reads badly in a figures line.
inline std::string to_text(const json::value& v) {
  if (v.is_double()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3f", v.as_double());
    return buf;
  }
  if (v.is_object()) {
    std::string out = "{";
    for (const auto& [k, item] : v.as_object()) {
      if (out.size() > 1) out += ",";
      out += json::serialize(json::value(k)) + ":" + to_text(item);
    }
    return out + "}";
  }
  if (v.is_array()) {
    std::string out = "[";
    for (const auto& item : v.as_array()) {
      if (out.size() > 1) out += ",";
      out += to_text(item);
    }
    return out + "]";
  }
  return json::serialize(v);
}

// ---- the server over stdio ----

// The built server, started with the given config text and stdio on pipes; stderr goes to a
// log in dir. The constructor sends initialize.
class StdioServer {
 public:
  StdioServer(const fs::path& dir, const std::string& name, const std::string& config_text) {
    const fs::path config = dir / (name + ".toml");
    std::ofstream(config) << config_text;
    const fs::path log = dir / (name + ".log");
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) die("pipe failed");
    pid_ = fork();
    if (pid_ < 0) die("fork failed");
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // die() exits without the destructors
      dup2(in[0], 0);
      dup2(out[1], 1);
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) dup2(fd, 2);
      execl(server_path(), server_path(), "--config", config.c_str(), nullptr);
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_server_ = in[1];
    from_server_ = out[0];
    const uint64_t id = send_request("initialize", json::parse(kInitializeParams).as_object());
    if (!response(id, 60s).contains("result")) die("initialize failed");
    send_line(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  }
  ~StdioServer() {
    close(to_server_);
    close(from_server_);
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  StdioServer(const StdioServer&) = delete;
  StdioServer& operator=(const StdioServer&) = delete;

  pid_t pid() const { return pid_; }

  void send_line(const std::string& line) {
    std::string message = line + "\n";
    const char* p = message.data();
    std::size_t left = message.size();
    while (left > 0) {
      ssize_t n = write(to_server_, p, left);
      if (n <= 0) die("write to the server failed");
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }

  // Sends a request; its response is collected by pump() and taken by response().
  uint64_t send_request(const std::string& method, const json::object& params = {}) {
    const uint64_t id = next_id_++;
    sent_at_[id] = Clock::now();
    send_line(request_text(id, method, params));
    return id;
  }
  uint64_t send_call(const std::string& tool, const json::object& args) {
    return send_request("tools/call", json::object{{"name", tool}, {"arguments", args}});
  }

  // Reads what the server writes until at least one response has arrived or `wait` has passed
  // (0: only what is there), and files every response under its id with the time it arrived.
  void pump(std::chrono::milliseconds wait) {
    const auto deadline = Clock::now() + wait;
    bool got = false;
    while (!got) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd pfd{from_server_, POLLIN, 0};
      int ready = poll(&pfd, 1, static_cast<int>(std::max<long>(0, left.count())));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) return;
      char buf[65536];
      ssize_t n = read(from_server_, buf, sizeof buf);
      if (n <= 0) die("the server closed stdout");
      const auto now = Clock::now();
      pending_.append(buf, static_cast<std::size_t>(n));
      std::size_t newline;
      while ((newline = pending_.find('\n', scanned_)) != std::string::npos) {
        std::string line = pending_.substr(0, newline);
        pending_.erase(0, newline + 1);
        scanned_ = 0;
        boost::system::error_code ec;
        json::value v = json::parse(line, ec);
        if (ec || !v.is_object()) die("not JSON from the server: " + line.substr(0, 200));
        auto& o = v.as_object();
        if (o.contains("method") || !o.contains("id")) continue;  // a notification
        const uint64_t id = o.at("id").to_number<uint64_t>();
        answered_[id] = {std::move(o), now};
        got = true;
      }
      scanned_ = pending_.size();
    }
  }

  bool answered(uint64_t id) const { return answered_.count(id) != 0; }

  // The response to id (pumping until it arrives); dies after timeout.
  json::object response(uint64_t id, std::chrono::milliseconds timeout = 120s) {
    const auto deadline = Clock::now() + timeout;
    while (!answered(id)) {
      if (Clock::now() >= deadline) die("no answer to request " + std::to_string(id) + " in time");
      pump(20ms);
    }
    return take(id).first;
  }

  // The response and its latency in ms (request sent to response read).
  std::pair<json::object, double> take(uint64_t id) {
    auto it = answered_.find(id);
    auto sent = sent_at_.find(id);
    const double ms = ms_between(sent->second, it->second.at);
    json::object o = std::move(it->second.message);
    answered_.erase(it);
    sent_at_.erase(sent);
    return {std::move(o), ms};
  }

  json::object call(const std::string& tool, const json::object& args,
                    std::chrono::milliseconds timeout = 120s) {
    return structured(response(send_call(tool, args), timeout), tool);
  }

 private:
  struct Answer {
    json::object message;
    Clock::time_point at;
  };
  pid_t pid_ = -1;
  int to_server_ = -1;
  int from_server_ = -1;
  std::string pending_;
  std::size_t scanned_ = 0;
  uint64_t next_id_ = 1;
  std::map<uint64_t, Clock::time_point> sent_at_;
  std::map<uint64_t, Answer> answered_;
};

// ---- the server over Streamable HTTP ----

// One MCP session on one keep-alive connection; requests one at a time.
class HttpSession {
 public:
  explicit HttpSession(uint16_t port) : port_(port), socket_(io_) {
    socket_.connect(
        boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    socket_.set_option(boost::asio::ip::tcp::no_delay(true));
    auto init = post(request_text(0, "initialize", json::parse(kInitializeParams).as_object()));
    session_ = std::string(init["Mcp-Session-Id"]);
    if (init.result_int() != 200 || session_.empty()) die("initialize failed: " + init.body());
    if (post(R"({"jsonrpc":"2.0","method":"notifications/initialized"})").result_int() != 202)
      die("notifications/initialized failed");
  }
  // Ends the session with DELETE, as a client that is done does.
  ~HttpSession() {
    try {
      namespace bhttp = boost::beast::http;
      bhttp::request<bhttp::empty_body> req{bhttp::verb::delete_, "/mcp", 11};
      req.set(bhttp::field::host, "127.0.0.1:" + std::to_string(port_));
      req.set("Mcp-Session-Id", session_);
      req.set("MCP-Protocol-Version", "2025-11-25");
      bhttp::write(socket_, req);
      bhttp::response<bhttp::string_body> res;
      bhttp::read(socket_, buffer_, res);
    } catch (const std::exception&) {
    }
  }
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  // A request and its response (JSON, or the last event of an SSE answer).
  json::object request(const std::string& method, const json::object& params = {}) {
    const uint64_t id = next_id_++;
    auto res = post(request_text(id, method, params));
    if (res.result_int() != 200) die(method + ": HTTP " + std::to_string(res.result_int()));
    std::string text = res.body();
    if (!text.empty() && text.front() != '{') {
      auto pos = text.rfind("data: ");
      if (pos == std::string::npos) die(method + ": no data in " + text.substr(0, 200));
      text = text.substr(pos + 6, text.find('\n', pos) - pos - 6);
    }
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec || !v.is_object() || v.at("id").to_number<uint64_t>() != id)
      die(method + ": unexpected answer: " + text.substr(0, 200));
    return std::move(v.as_object());
  }
  json::object call(const std::string& tool, const json::object& args) {
    return structured(request("tools/call", json::object{{"name", tool}, {"arguments", args}}),
                      tool);
  }

 private:
  boost::beast::http::response<boost::beast::http::string_body> post(const std::string& body) {
    namespace bhttp = boost::beast::http;
    bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/mcp", 11};
    req.set(bhttp::field::host, "127.0.0.1:" + std::to_string(port_));
    req.set(bhttp::field::content_type, "application/json");
    req.set(bhttp::field::accept, "application/json, text/event-stream");
    if (!session_.empty()) {
      req.set("Mcp-Session-Id", session_);
      req.set("MCP-Protocol-Version", "2025-11-25");
    }
    req.keep_alive(true);
    req.body() = body;
    req.prepare_payload();
    bhttp::write(socket_, req);
    bhttp::response<bhttp::string_body> res;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 << 20);
    bhttp::read(socket_, buffer_, parser);
    return parser.release();
  }

  uint16_t port_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
  std::string session_;
  uint64_t next_id_ = 1;
};

// The built server with the HTTP transport alone on 127.0.0.1 and an ephemeral port.
class HttpServer {
 public:
  HttpServer(const fs::path& dir, const std::string& name, const std::string& config_text) {
    const fs::path config = dir / (name + ".toml");
    const fs::path port_file = dir / (name + ".port");
    std::ofstream(config) << config_text << "[http]\nlisten = \"127.0.0.1:0\"\nport_file = \""
                          << port_file.string() << "\"\n";
    const fs::path log = dir / (name + ".log");
    pid_ = fork();
    if (pid_ < 0) die("fork failed");
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      int null = open("/dev/null", O_RDWR);
      dup2(null, 0);
      dup2(null, 1);
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) dup2(fd, 2);
      execl(server_path(), server_path(), "--config", config.c_str(), nullptr);
      _exit(127);
    }
    const auto deadline = Clock::now() + 20s;
    while (Clock::now() < deadline) {
      std::ifstream file(port_file);
      std::string text((std::istreambuf_iterator<char>(file)), {});
      if (!text.empty() && text.back() == '\n') {
        port_ = static_cast<uint16_t>(std::stoi(text));
        return;
      }
      std::this_thread::sleep_for(20ms);
    }
    die("the HTTP server did not start; see " + log.string());
  }
  ~HttpServer() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

}  // namespace pmcp::bench
