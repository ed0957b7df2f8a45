// Requests per second and p50/p99 latency of `ping` and of a `tools/call spawn` of `echo hi`
// over Streamable HTTP with 1, 16 and 64 concurrent clients, beside the same calls over stdio
// (one client: stdio serves one). Runs the built server binary with the host executor.
//
// Each HTTP client is what an agent is in a real deployment: its own MCP session (initialize,
// notifications/initialized) on its own keep-alive connection, one request at a time. All
// clients come from 127.0.0.1, so 64 clients use exactly the default max_sessions_per_client;
// each case ends its sessions with DELETE.
//
//   pmcp-bench-http [--short] [--seconds S]
// --short (what CI runs): 0.3 s per case and only 1 and 16 clients; default 3 s per case.
// Prints a table, then one JSON line with every figure.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "pmcp-bench-http: %s\n", why.c_str());
  std::exit(1);
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string initialize_body() {
  return R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":)"
         R"("2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}})";
}
const char* kInitialized = R"({"jsonrpc":"2.0","method":"notifications/initialized"})";

// The request of one benchmarked call, with its JSON-RPC id.
std::string call_body(const std::string& call, uint64_t id) {
  std::string head = R"({"jsonrpc":"2.0","id":)" + std::to_string(id);
  if (call == "ping") return head + R"(,"method":"ping"})";
  return head + R"(,"method":"tools/call","params":{"name":"spawn","arguments":)"
                R"({"command":"echo hi"}}})";
}

// Fails the run unless body (JSON, or SSE whose last data line is the response) answers id
// without an error.
void check_answer(const std::string& call, const std::string& body, uint64_t id) {
  std::string text = body;
  if (auto pos = body.rfind("data: "); pos != std::string::npos && body.front() != '{') {
    text = body.substr(pos + 6, body.find('\n', pos) - pos - 6);
  }
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object() || !v.as_object().contains("result") ||
      v.at("id").to_number<uint64_t>() != id) {
    die(call + ": unexpected answer: " + body);
  }
  if (call != "ping") {
    const auto& result = v.at("result").as_object();
    if (result.contains("isError") && result.at("isError").as_bool()) die("spawn failed: " + body);
  }
}

// ---- the server ----

class ServerProcess {
 public:
  // transport "http" (listen on 127.0.0.1, any port) or "stdio" (pipes).
  explicit ServerProcess(const std::string& transport) {
    char tmpl[] = "/tmp/pmcp-bench-http-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) die("mkdtemp failed");
    dir_ = tmpl;
    std::ofstream(dir_ / "config.toml")
        << "executor = \"host\"\ntransports = [\"" << transport << "\"]\nlog_level = \"warn\"\n"
        << "[defaults]\nworkdir = \"" << dir_.string() << "\"\n"
        << "[http]\nlisten = \"127.0.0.1:0\"\nport_file = \"" << (dir_ / "port").string() << "\"\n";
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) die("pipe failed");
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // die() exits without the destructor
      dup2(in[0], 0);
      dup2(out[1], 1);
      int log = open((dir_ / "server.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(log, 2);
      for (int fd : {in[0], in[1], out[0], out[1], log}) close(fd);
      std::string config = (dir_ / "config.toml").string();
      execl(PMCP_SERVER_PATH, PMCP_SERVER_PATH, "--config", config.c_str(), nullptr);
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_server_ = in[1];
    from_server_ = out[0];
    if (transport != "http") return;
    auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
      std::ifstream file(dir_ / "port");
      std::string text((std::istreambuf_iterator<char>(file)), {});
      if (!text.empty() && text.back() == '\n') {
        port_ = static_cast<uint16_t>(std::stoi(text));
        return;
      }
      std::this_thread::sleep_for(20ms);
    }
    die("the server did not start; see " + (dir_ / "server.log").string());
  }
  ~ServerProcess() {
    close(to_server_);
    close(from_server_);
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  uint16_t port() const { return port_; }

  // stdio: one JSON line out.
  void send(const std::string& line) {
    std::string message = line + "\n";
    if (write(to_server_, message.data(), message.size()) != static_cast<ssize_t>(message.size()))
      die("write to the server failed");
  }
  // stdio: one JSON line out, then lines in until the response with this id.
  std::string exchange(const std::string& line, uint64_t id) {
    send(line);
    const std::string marker = "\"id\":" + std::to_string(id);
    for (;;) {
      std::size_t newline;
      while ((newline = pending_.find('\n')) == std::string::npos) {
        char buf[65536];
        ssize_t n = read(from_server_, buf, sizeof buf);
        if (n <= 0) die("the server closed stdout");
        pending_.append(buf, static_cast<std::size_t>(n));
      }
      std::string got = pending_.substr(0, newline);
      pending_.erase(0, newline + 1);
      if (got.find(marker) != std::string::npos && got.find("\"method\"") == std::string::npos)
        return got;
    }
  }

 private:
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  int to_server_ = -1;
  int from_server_ = -1;
  uint16_t port_ = 0;
  std::string pending_;
};

// ---- an HTTP client: one session on one keep-alive connection ----

class HttpClient {
 public:
  explicit HttpClient(uint16_t port) : port_(port), socket_(io_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    socket_.set_option(tcp::no_delay(true));
    auto init = post(initialize_body());
    session_ = std::string(init["Mcp-Session-Id"]);
    if (init.result_int() != 200 || session_.empty()) die("initialize failed: " + init.body());
    if (post(kInitialized).result_int() != 202) die("notifications/initialized failed");
  }

  // Ends the session, as a client that is done does, so that the next case has its own.
  ~HttpClient() {
    try {
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

  bhttp::response<bhttp::string_body> post(const std::string& body) {
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
    bhttp::read(socket_, buffer_, res);
    return res;
  }

 private:
  uint16_t port_;
  asio::io_context io_;
  tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
  std::string session_;
};

struct Figures {
  std::string transport;
  std::string call;
  int clients = 0;
  std::size_t n = 0;
  double rps = 0;
  double p50 = 0;
  double p99 = 0;
};

Figures summarize(std::string transport, std::string call, int clients,
                  std::vector<double> latencies, double seconds) {
  std::sort(latencies.begin(), latencies.end());
  auto at = [&](double q) {
    return latencies.empty() ? 0.0
                             : latencies[static_cast<std::size_t>(q * (latencies.size() - 1))];
  };
  return {std::move(transport),
          std::move(call),
          clients,
          latencies.size(),
          static_cast<double>(latencies.size()) / seconds,
          at(0.5),
          at(0.99)};
}

// clients threads, each with its own session, calling for `seconds` after a short warm-up.
Figures run_http(uint16_t port, const std::string& call, int clients, double seconds) {
  std::vector<std::unique_ptr<HttpClient>> sessions;
  for (int i = 0; i < clients; ++i) sessions.push_back(std::make_unique<HttpClient>(port));
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(clients));
  std::atomic<bool> measuring{false};
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      uint64_t id = 1;
      while (!done) {
        const auto t0 = Clock::now();
        auto res = sessions[i]->post(call_body(call, id));
        const auto t1 = Clock::now();
        if (res.result_int() != 200) die(call + ": HTTP " + std::to_string(res.result_int()));
        check_answer(call, res.body(), id);
        if (measuring) latencies[i].push_back(ms_between(t0, t1));
        ++id;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(std::min(0.5, seconds / 2)));
  const auto start = Clock::now();
  measuring = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  measuring = false;
  const double elapsed = ms_between(start, Clock::now()) / 1000.0;
  done = true;
  for (auto& t : threads) t.join();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  return summarize("http", call, clients, std::move(all), elapsed);
}

Figures run_stdio(ServerProcess& server, const std::string& call, double seconds) {
  std::vector<double> latencies;
  uint64_t id = 1;
  auto one = [&](bool keep) {
    const auto t0 = Clock::now();
    std::string answer = server.exchange(call_body(call, id), id);
    const auto t1 = Clock::now();
    check_answer(call, answer, id);
    if (keep) latencies.push_back(ms_between(t0, t1));
    ++id;
  };
  const auto warm = Clock::now() + std::chrono::duration<double>(std::min(0.5, seconds / 2));
  while (Clock::now() < warm) one(false);
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) one(true);
  return summarize("stdio", call, 1, std::move(latencies),
                   ms_between(start, Clock::now()) / 1000.0);
}

}  // namespace

int main(int argc, char** argv) {
  bool short_mode = false;
  double seconds = 3.0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--short") {
      short_mode = true;
      seconds = 0.3;
    } else if (arg == "--seconds" && i + 1 < argc) {
      seconds = std::max(0.1, std::atof(argv[++i]));
    } else {
      die("usage: pmcp-bench-http [--short] [--seconds S]");
    }
  }
  signal(SIGPIPE, SIG_IGN);
  const std::vector<int> counts =
      short_mode ? std::vector<int>{1, 16} : std::vector<int>{1, 16, 64};
  std::vector<Figures> all;
  {
    ServerProcess stdio("stdio");
    stdio.exchange(initialize_body(), 0);
    stdio.send(kInitialized);
    for (const char* call : {"ping", "echo"}) all.push_back(run_stdio(stdio, call, seconds));
  }
  {
    ServerProcess http("http");
    for (const char* call : {"ping", "echo"}) {
      for (int clients : counts) all.push_back(run_http(http.port(), call, clients, seconds));
    }
  }
  std::printf("%-9s %-5s %7s %9s %10s %10s %8s\n", "transport", "call", "clients", "req/s",
              "p50 ms", "p99 ms", "n");
  for (const auto& f : all) {
    std::printf("%-9s %-5s %7d %9.0f %10.3f %10.3f %8zu\n", f.transport.c_str(),
                f.call == "echo" ? "echo" : "ping", f.clients, f.rps, f.p50, f.p99, f.n);
  }
  // The JSON line by hand: fixed decimals read better than Boost.JSON's exponent form.
  std::string results;
  char item[256];
  for (const auto& f : all) {
    std::snprintf(item, sizeof item,
                  R"(%s{"transport":"%s","call":"%s","clients":%d,"n":%zu,"rps":%.1f,)"
                  R"("p50_ms":%.3f,"p99_ms":%.3f})",
                  results.empty() ? "" : ",", f.transport.c_str(), f.call.c_str(), f.clients, f.n,
                  f.rps, f.p50, f.p99);
    results += item;
  }
  std::printf("{\"bench\":\"http\",\"mode\":\"%s\",\"seconds\":%.2f,\"results\":[%s]}\n",
              short_mode ? "short" : "full", seconds, results.c_str());
  return 0;
}
