// Tests of the Streamable HTTP transport against the real server binary on 127.0.0.1: sessions,
// auth, Host/Origin checks, limits, SSE resumption after a dropped stream, concurrent clients,
// and the same over TLS.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

constexpr const char* kJsonAndSse = "application/json, text/event-stream";

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The server binary with transports = ["http"] on 127.0.0.1 and a free port (from port_file).
class Server {
 public:
  explicit Server(const std::string& http_extra = "", const std::vector<std::string>& env = {}) {
    char tmpl[] = "/tmp/pmcp-http-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::ofstream(dir_ / "config.toml") << "executor = \"host\"\ntransports = [\"http\"]\n\n"
                                        << "[http]\nlisten = \"127.0.0.1:0\"\nport_file = \""
                                        << (dir_ / "port").string() << "\"\n"
                                        << http_extra << "\n";
    pid_ = fork();
    if (pid_ == 0) {
      int log = open((dir_ / "server.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(log, 2);
      for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
      std::string config = (dir_ / "config.toml").string();
      execl(PMCP_SERVER_PATH, PMCP_SERVER_PATH, "--config", config.c_str(), nullptr);
      _exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      std::string text = read_file(dir_ / "port");
      if (!text.empty() && text.back() == '\n') {
        port_ = static_cast<uint16_t>(std::stoi(text));
        return;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exited_ = true;
        exit_status_ = status;
        return;
      }
      std::this_thread::sleep_for(20ms);
    }
  }

  ~Server() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      for (int i = 0; i < 100 && waitpid(pid_, &status, WNOHANG) == 0; ++i) {
        std::this_thread::sleep_for(50ms);
      }
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  uint16_t port() const { return port_; }
  bool exited() const { return exited_; }
  std::string log() const { return read_file(dir_ / "server.log"); }

 private:
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  bool exited_ = false;
  int exit_status_ = 0;
};

struct Reply {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
  json::value json_body() const { return json::parse(body); }
};

using Headers = std::vector<std::pair<std::string, std::string>>;

bhttp::request<bhttp::string_body> make_request(bhttp::verb method, uint16_t port,
                                                const Headers& headers, std::string body) {
  bhttp::request<bhttp::string_body> req{method, "/mcp", 11};
  req.set(bhttp::field::host, "127.0.0.1:" + std::to_string(port));
  for (const auto& [name, value] : headers) req.set(name, value);
  if (method == bhttp::verb::post) {
    if (req.find(bhttp::field::content_type) == req.end()) {
      req.set(bhttp::field::content_type, "application/json");
    }
    if (req.find(bhttp::field::accept) == req.end()) req.set(bhttp::field::accept, kJsonAndSse);
  }
  req.body() = std::move(body);
  req.prepare_payload();
  return req;
}

// One request on a fresh connection; the whole response (SSE responses end when the stream does).
Reply request(uint16_t port, bhttp::verb method, const Headers& headers = {},
              std::string body = {}) {
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  timeval tv{30, 0};
  setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  auto req = make_request(method, port, headers, std::move(body));
  bhttp::write(socket, req);
  boost::beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64u << 20);
  bhttp::read(socket, buffer, parser);
  Reply reply;
  reply.status = parser.get().result_int();
  for (const auto& field : parser.get()) {
    std::string name(field.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    reply.headers[name] = std::string(field.value());
  }
  reply.body = parser.get().body();
  return reply;
}

std::string initialize_body(int id = 1) {
  return R"({"jsonrpc":"2.0","id":)" + std::to_string(id) +
         R"(,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},)"
         R"("clientInfo":{"name":"http-test","version":"1"}}})";
}

// initialize + notifications/initialized; returns the session id.
std::string open_session(uint16_t port, const Headers& extra = {}) {
  Reply init = request(port, bhttp::verb::post, extra, initialize_body());
  EXPECT_EQ(init.status, 200u) << init.body;
  std::string session = init.header("mcp-session-id");
  EXPECT_FALSE(session.empty());
  Headers headers = extra;
  headers.emplace_back("Mcp-Session-Id", session);
  headers.emplace_back("MCP-Protocol-Version", "2025-11-25");
  Reply ack = request(port, bhttp::verb::post, headers,
                      R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  EXPECT_EQ(ack.status, 202u);
  EXPECT_TRUE(ack.body.empty());
  return session;
}

Headers session_headers(const std::string& session) {
  return {{"Mcp-Session-Id", session}, {"MCP-Protocol-Version", "2025-11-25"}};
}

std::string spawn_body(int id, const std::string& command, bool progress = false) {
  json::object args{{"command", command}};
  json::object params{{"name", "spawn"}, {"arguments", args}};
  if (progress) params["_meta"] = json::object{{"progressToken", id}};
  json::object msg{{"jsonrpc", "2.0"}, {"id", id}, {"method", "tools/call"}, {"params", params}};
  return json::serialize(msg);
}

// A raw SSE reader: sends a request and collects the raw bytes (chunk framing included, which
// does not split SSE lines because each event is one chunk).
class SseStream {
 public:
  SseStream(uint16_t port, bhttp::verb method, const Headers& headers, std::string body = {})
      : socket_(io_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    timeval tv{0, 200000};
    setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    auto req = make_request(method, port, headers, std::move(body));
    bhttp::write(socket_, req);
  }

  // Reads until text contains needle or the timeout passes; returns whether it was seen.
  bool wait_for(const std::string& needle, std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (text_.find(needle) == std::string::npos) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      char buf[4096];
      ssize_t n = ::recv(socket_.native_handle(), buf, sizeof(buf), 0);
      if (n == 0) return text_.find(needle) != std::string::npos;
      if (n > 0) text_.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }

  // The id of the first event whose data is empty (the priming event).
  std::string priming_id() const {
    auto body = text_.find("\r\n\r\n");
    auto pos = body == std::string::npos ? body : text_.find("id: ", body);
    if (pos == std::string::npos) return {};
    pos += 4;
    return text_.substr(pos, text_.find('\n', pos) - pos);
  }

  const std::string& text() const { return text_; }
  void drop() {
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

 private:
  asio::io_context io_;
  tcp::socket socket_;
  std::string text_;
};

TEST(HttpTransport, InitializeAndToolsCallReturnARealResult) {
  Server server;
  ASSERT_NE(server.port(), 0) << server.log();
  std::string session = open_session(server.port());
  EXPECT_EQ(session.size(), 32u);
  for (char c : session) EXPECT_TRUE(std::isxdigit(static_cast<unsigned char>(c)));

  Reply reply = request(server.port(), bhttp::verb::post, session_headers(session),
                        spawn_body(2, "echo hello-over-http"));
  ASSERT_EQ(reply.status, 200u) << reply.body;
  EXPECT_EQ(reply.header("content-type"), "application/json");
  auto result = reply.json_body().at("result");
  EXPECT_EQ(result.at("structuredContent").at("stdout").as_string(), "hello-over-http\n");
  EXPECT_EQ(result.at("structuredContent").at("exitCode").as_int64(), 0);
}

TEST(HttpTransport, SessionHeaderRules) {
  Server server;
  ASSERT_NE(server.port(), 0) << server.log();
  // Not initialize and no session: 400.
  Reply missing = request(server.port(), bhttp::verb::post, {},
                          R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})");
  EXPECT_EQ(missing.status, 400u);
  // An unknown session: 404.
  Reply unknown = request(server.port(), bhttp::verb::post,
                          session_headers("00000000000000000000000000000000"),
                          R"({"jsonrpc":"2.0","id":1,"method":"tools/list"})");
  EXPECT_EQ(unknown.status, 404u);
  // An unsupported protocol version: 400; every supported one works.
  std::string session = open_session(server.port());
  Reply bad_version = request(server.port(), bhttp::verb::post,
                              {{"Mcp-Session-Id", session}, {"MCP-Protocol-Version", "1999-01-01"}},
                              R"({"jsonrpc":"2.0","id":2,"method":"ping"})");
  EXPECT_EQ(bad_version.status, 400u);
  for (const char* version : {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}) {
    Reply ok = request(server.port(), bhttp::verb::post,
                       {{"Mcp-Session-Id", session}, {"MCP-Protocol-Version", version}},
                       R"({"jsonrpc":"2.0","id":3,"method":"ping"})");
    EXPECT_EQ(ok.status, 200u) << version;
  }
  // DELETE ends the session; afterwards it is unknown.
  Reply deleted = request(server.port(), bhttp::verb::delete_, session_headers(session));
  EXPECT_EQ(deleted.status, 200u);
  Reply after = request(server.port(), bhttp::verb::post, session_headers(session),
                        R"({"jsonrpc":"2.0","id":4,"method":"ping"})");
  EXPECT_EQ(after.status, 404u);
  // A GET without text/event-stream in Accept: 406.
  std::string other = open_session(server.port());
  Headers get_json = session_headers(other);
  get_json.emplace_back("Accept", "application/json");
  EXPECT_EQ(request(server.port(), bhttp::verb::get, get_json).status, 406u);
}

TEST(HttpTransport, ForeignHostOrOriginIsForbidden) {
  Server server;
  ASSERT_NE(server.port(), 0) << server.log();
  Reply host = request(server.port(), bhttp::verb::post, {{"Host", "evil.example.com"}},
                       initialize_body());
  EXPECT_EQ(host.status, 403u);
  Reply origin = request(server.port(), bhttp::verb::post,
                         {{"Origin", "http://evil.example.com"}}, initialize_body());
  EXPECT_EQ(origin.status, 403u);
  Reply local = request(server.port(), bhttp::verb::post, {{"Origin", "http://localhost:5173"}},
                        initialize_body());
  EXPECT_EQ(local.status, 200u);
  EXPECT_EQ(local.header("access-control-allow-origin"), "http://localhost:5173");
}

TEST(HttpTransport, ConfiguredAllowlistsAreHonoured) {
  Server server("allowed_hosts = [\"mcp.internal\"]\nallowed_origins = [\"https://app.example\"]");
  ASSERT_NE(server.port(), 0) << server.log();
  EXPECT_EQ(request(server.port(), bhttp::verb::post, {}, initialize_body()).status, 403u);
  EXPECT_EQ(request(server.port(), bhttp::verb::post, {{"Host", "mcp.internal:1234"}},
                    initialize_body())
                .status,
            200u);
  EXPECT_EQ(request(server.port(), bhttp::verb::post,
                    {{"Host", "mcp.internal"}, {"Origin", "https://app.example"}},
                    initialize_body())
                .status,
            200u);
  EXPECT_EQ(request(server.port(), bhttp::verb::post,
                    {{"Host", "mcp.internal"}, {"Origin", "http://localhost"}}, initialize_body())
                .status,
            403u);
}

TEST(HttpTransport, BearerTokenIsRequiredWhenConfigured) {
  Server server("auth_token_env = \"PMCP_TEST_HTTP_TOKEN\"", {"PMCP_TEST_HTTP_TOKEN=s3cret-token"});
  ASSERT_NE(server.port(), 0) << server.log();
  Reply none = request(server.port(), bhttp::verb::post, {}, initialize_body());
  EXPECT_EQ(none.status, 401u);
  EXPECT_EQ(none.header("www-authenticate").rfind("Bearer", 0), 0u);
  Reply wrong = request(server.port(), bhttp::verb::post,
                        {{"Authorization", "Bearer s3cret-tokeN"}}, initialize_body());
  EXPECT_EQ(wrong.status, 401u);
  Reply shorter = request(server.port(), bhttp::verb::post, {{"Authorization", "Bearer s3cret"}},
                          initialize_body());
  EXPECT_EQ(shorter.status, 401u);
  Reply right = request(server.port(), bhttp::verb::post,
                        {{"Authorization", "Bearer s3cret-token"}}, initialize_body());
  EXPECT_EQ(right.status, 200u) << right.body;
}

TEST(HttpTransport, UnknownConfigKeyStopsTheServerWithTheKeyNamed) {
  Server server("bogus_key = 1");
  EXPECT_TRUE(server.exited());
  EXPECT_NE(server.log().find("http.bogus_key"), std::string::npos) << server.log();
}

TEST(HttpTransport, OversizedBodyGets413AndTheServerStaysUp) {
  Server server("max_body_bytes = 4096");
  ASSERT_NE(server.port(), 0) << server.log();
  std::string session = open_session(server.port());
  std::string big = R"({"jsonrpc":"2.0","id":9,"method":"ping","params":{"pad":")" +
                    std::string(100000, 'x') + "\"}}";
  Reply reply = request(server.port(), bhttp::verb::post, session_headers(session), big);
  EXPECT_EQ(reply.status, 413u);
  Reply ping = request(server.port(), bhttp::verb::post, session_headers(session),
                       R"({"jsonrpc":"2.0","id":10,"method":"ping"})");
  EXPECT_EQ(ping.status, 200u);
}

// A POST answered as SSE (progress before the result) whose connection drops after the priming
// event: a GET with Last-Event-ID receives what the dropped stream missed, result included.
TEST(HttpTransport, ResumesADroppedPostStreamWithLastEventId) {
  Server server;
  ASSERT_NE(server.port(), 0) << server.log();
  std::string session = open_session(server.port());
  std::string last_id;
  {
    SseStream post(server.port(), bhttp::verb::post, session_headers(session),
                   spawn_body(7, "sleep 2; echo resumed-result", true));
    ASSERT_TRUE(post.wait_for("notifications/progress")) << post.text();
    EXPECT_NE(post.text().find("text/event-stream"), std::string::npos);
    last_id = post.priming_id();
    ASSERT_FALSE(last_id.empty()) << post.text();
    post.drop();
  }
  Headers headers = session_headers(session);
  headers.emplace_back("Accept", "text/event-stream");
  headers.emplace_back("Last-Event-ID", last_id);
  SseStream resumed(server.port(), bhttp::verb::get, headers);
  ASSERT_TRUE(resumed.wait_for("resumed-result", 15s)) << resumed.text();
  EXPECT_NE(resumed.text().find("notifications/progress"), std::string::npos);
}

// The standalone stream: a message sent while no GET stream is open is replayed after the
// priming event's id.
TEST(HttpTransport, ResumesTheStandaloneStreamWithLastEventId) {
  Server server;
  ASSERT_NE(server.port(), 0) << server.log();
  std::string session = open_session(server.port());
  Headers headers = session_headers(session);
  headers.emplace_back("Accept", "text/event-stream");
  std::string last_id;
  {
    SseStream get(server.port(), bhttp::verb::get, headers);
    ASSERT_TRUE(get.wait_for("retry:")) << get.text();
    last_id = get.priming_id();
    ASSERT_FALSE(last_id.empty());
    // A second standalone stream while one is open: 409.
    EXPECT_EQ(request(server.port(), bhttp::verb::get, headers).status, 409u);
    get.drop();
  }
  std::this_thread::sleep_for(200ms);  // let the server notice the drop
  Reply level = request(server.port(), bhttp::verb::post, session_headers(session),
                        R"({"jsonrpc":"2.0","id":2,"method":"logging/setLevel",)"
                        R"("params":{"level":"debug"}})");
  ASSERT_EQ(level.status, 200u);
  // A background process whose exit is announced on the standalone stream.
  json::object args{{"command", "echo bye"}, {"background", true}};
  json::object msg{{"jsonrpc", "2.0"}, {"id", 3}, {"method", "tools/call"},
                   {"params", json::object{{"name", "spawn"}, {"arguments", args}}}};
  Reply spawned = request(server.port(), bhttp::verb::post, session_headers(session),
                          json::serialize(msg));
  ASSERT_EQ(spawned.status, 200u) << spawned.body;
  std::this_thread::sleep_for(1s);
  headers.emplace_back("Last-Event-ID", last_id);
  SseStream resumed(server.port(), bhttp::verb::get, headers);
  EXPECT_TRUE(resumed.wait_for("\"event\":\"exit\"", 5s)) << resumed.text();
}

TEST(HttpTransport, ManyConcurrentClients) {
  Server server;
  ASSERT_NE(server.port(), 0) << server.log();
  constexpr int kClients = 32;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      try {
        Reply init = request(server.port(), bhttp::verb::post, {}, initialize_body(i));
        std::string session = init.header("mcp-session-id");
        if (init.status != 200 || session.empty()) return;
        request(server.port(), bhttp::verb::post, session_headers(session),
                R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
        std::string token = "client-" + std::to_string(i);
        Reply reply = request(server.port(), bhttp::verb::post, session_headers(session),
                              spawn_body(100 + i, "echo " + token));
        if (reply.status != 200) return;
        auto out = reply.json_body().at("result").at("structuredContent").at("stdout");
        if (out.as_string() == token + "\n") ++ok;
      } catch (const std::exception&) {
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kClients) << server.log();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// TLS: tls_cert and tls_key, with a self-signed certificate made by the openssl CLI.

// A self-signed certificate for localhost and 127.0.0.1 with its key, a second unrelated key,
// and a file that is not PEM, in a temp dir.
class TlsFiles {
 public:
  TlsFiles() {
    char tmpl[] = "/tmp/pmcp-https-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
        " -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1"
        " -keyout " +
        key() + " -out " + cert());
    run("openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:prime256v1 -out " + other_key());
    std::ofstream(garbage()) << "this is not a certificate\n";
  }
  ~TlsFiles() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string cert() const { return (dir_ / "cert.pem").string(); }
  std::string key() const { return (dir_ / "key.pem").string(); }
  std::string other_key() const { return (dir_ / "other-key.pem").string(); }
  std::string garbage() const { return (dir_ / "garbage.pem").string(); }
  std::string config(const std::string& cert_file, const std::string& key_file) const {
    return "tls_cert = \"" + cert_file + "\"\ntls_key = \"" + key_file + "\"\n";
  }

 private:
  static void run(const std::string& command) {
    std::string quiet = command + " 2>/dev/null";
    ASSERT_EQ(std::system(quiet.c_str()), 0) << command;
  }
  std::filesystem::path dir_;
};

// One request over HTTPS on a fresh connection, verifying the server against ca_file for the
// name "localhost".
Reply tls_request(uint16_t port, const std::string& ca_file, bhttp::verb method,
                  const Headers& headers = {}, std::string body = {}) {
  namespace ssl = asio::ssl;
  asio::io_context io;
  ssl::context ctx(ssl::context::tls_client);
  ctx.load_verify_file(ca_file);
  ctx.set_verify_mode(ssl::verify_peer);
  boost::beast::ssl_stream<tcp::socket> stream(io, ctx);
  SSL_set1_host(stream.native_handle(), "localhost");
  SSL_set_tlsext_host_name(stream.native_handle(), "localhost");
  stream.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  timeval tv{30, 0};
  setsockopt(stream.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  stream.handshake(ssl::stream_base::client);
  auto req = make_request(method, port, headers, std::move(body));
  bhttp::write(stream, req);
  boost::beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64u << 20);
  bhttp::read(stream, buffer, parser);
  Reply reply;
  reply.status = parser.get().result_int();
  for (const auto& field : parser.get()) {
    std::string name(field.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    reply.headers[name] = std::string(field.value());
  }
  reply.body = parser.get().body();
  return reply;
}

TEST(HttpTransportTls, SessionAndToolCallOverHttps) {
  TlsFiles files;
  Server server(files.config(files.cert(), files.key()));
  ASSERT_NE(server.port(), 0) << server.log();
  EXPECT_NE(server.log().find("listening on https://127.0.0.1:"), std::string::npos)
      << server.log();
  Reply init = tls_request(server.port(), files.cert(), bhttp::verb::post, {}, initialize_body());
  ASSERT_EQ(init.status, 200u) << init.body;
  std::string session = init.header("mcp-session-id");
  ASSERT_FALSE(session.empty());
  Reply ack = tls_request(server.port(), files.cert(), bhttp::verb::post, session_headers(session),
                          R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  EXPECT_EQ(ack.status, 202u);
  Reply reply = tls_request(server.port(), files.cert(), bhttp::verb::post,
                            session_headers(session), spawn_body(2, "echo hello-over-https"));
  ASSERT_EQ(reply.status, 200u) << reply.body;
  auto result = reply.json_body().at("result");
  EXPECT_EQ(result.at("structuredContent").at("stdout").as_string(), "hello-over-https\n");
  // With a progress token the answer is an SSE stream, over TLS as over plain HTTP.
  Reply sse = tls_request(server.port(), files.cert(), bhttp::verb::post, session_headers(session),
                          spawn_body(3, "sleep 2; echo streamed-over-https", true));
  ASSERT_EQ(sse.status, 200u) << sse.body;
  EXPECT_EQ(sse.header("content-type"), "text/event-stream");
  EXPECT_NE(sse.body.find("streamed-over-https"), std::string::npos) << sse.body;
}

TEST(HttpTransportTls, DefaultAllowlistsAcceptHttpsOriginsOfLoopbackOnly) {
  TlsFiles files;
  Server server(files.config(files.cert(), files.key()));
  ASSERT_NE(server.port(), 0) << server.log();
  std::string port = std::to_string(server.port());
  Reply local = tls_request(server.port(), files.cert(), bhttp::verb::post,
                            {{"Origin", "https://localhost:" + port}}, initialize_body());
  EXPECT_EQ(local.status, 200u) << local.body;
  EXPECT_EQ(local.header("access-control-allow-origin"), "https://localhost:" + port);
  Reply foreign = tls_request(server.port(), files.cert(), bhttp::verb::post,
                              {{"Origin", "https://evil.example"}}, initialize_body());
  EXPECT_EQ(foreign.status, 403u) << foreign.body;
  Reply host = tls_request(server.port(), files.cert(), bhttp::verb::post,
                           {{"Host", "evil.example:" + port}}, initialize_body());
  EXPECT_EQ(host.status, 403u) << host.body;
}

TEST(HttpTransportTls, BearerTokenIsCheckedOverHttps) {
  TlsFiles files;
  Server server(files.config(files.cert(), files.key()) + "auth_token = \"s3cret\"\n");
  ASSERT_NE(server.port(), 0) << server.log();
  Reply none = tls_request(server.port(), files.cert(), bhttp::verb::post, {}, initialize_body());
  EXPECT_EQ(none.status, 401u);
  Reply good = tls_request(server.port(), files.cert(), bhttp::verb::post,
                           {{"Authorization", "Bearer s3cret"}}, initialize_body());
  EXPECT_EQ(good.status, 200u) << good.body;
}

TEST(HttpTransportTls, PlainHttpOnTheHttpsPortGetsAClear400) {
  TlsFiles files;
  Server server(files.config(files.cert(), files.key()));
  ASSERT_NE(server.port(), 0) << server.log();
  Reply reply = request(server.port(), bhttp::verb::post, {}, initialize_body());
  EXPECT_EQ(reply.status, 400u);
  EXPECT_NE(reply.body.find("HTTPS only"), std::string::npos) << reply.body;
  EXPECT_EQ(reply.header("connection"), "close");
  // The server is unharmed.
  Reply init = tls_request(server.port(), files.cert(), bhttp::verb::post, {}, initialize_body());
  EXPECT_EQ(init.status, 200u) << init.body;
}

// A client that connects and never handshakes holds a connection slot only until
// idle_timeout_ms; after that the slot is free for a real client.
TEST(HttpTransportTls, SilentClientsCannotHoldTheServer) {
  TlsFiles files;
  Server server(files.config(files.cert(), files.key()) +
                "idle_timeout_ms = 500\nmax_connections = 2\n");
  ASSERT_NE(server.port(), 0) << server.log();
  asio::io_context io;
  std::vector<tcp::socket> silent;
  for (int i = 0; i < 2; ++i) {
    silent.emplace_back(io);
    silent.back().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server.port()));
  }
  auto start = std::chrono::steady_clock::now();
  for (auto& socket : silent) {
    timeval tv{10, 0};
    setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char byte;
    EXPECT_LE(::recv(socket.native_handle(), &byte, 1, 0), 0);  // closed by the server
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  Reply init = tls_request(server.port(), files.cert(), bhttp::verb::post, {}, initialize_body());
  EXPECT_EQ(init.status, 200u) << init.body;
}

TEST(HttpTransportTls, CertWithoutKeyIsAConfigError) {
  TlsFiles files;
  Server server("tls_cert = \"" + files.cert() + "\"\n");
  EXPECT_TRUE(server.exited());
  EXPECT_NE(server.log().find("http.tls_cert is set but http.tls_key is not"), std::string::npos)
      << server.log();
  Server other("tls_key = \"" + files.key() + "\"\n");
  EXPECT_TRUE(other.exited());
  EXPECT_NE(other.log().find("http.tls_key is set but http.tls_cert is not"), std::string::npos)
      << other.log();
}

TEST(HttpTransportTls, MissingOrInvalidCertStopsStartUpNamingTheFile) {
  TlsFiles files;
  std::string missing = files.cert() + ".missing";
  Server absent(files.config(missing, files.key()));
  EXPECT_TRUE(absent.exited());
  EXPECT_NE(absent.log().find("http.tls_cert " + missing + ": cannot be read: No such file"),
            std::string::npos)
      << absent.log();
  Server bad(files.config(files.garbage(), files.key()));
  EXPECT_TRUE(bad.exited());
  EXPECT_NE(bad.log().find("http.tls_cert " + files.garbage() + ": not a PEM certificate"),
            std::string::npos)
      << bad.log();
  Server bad_key(files.config(files.cert(), files.garbage()));
  EXPECT_TRUE(bad_key.exited());
  EXPECT_NE(bad_key.log().find("http.tls_key " + files.garbage() + ": not a PEM private key"),
            std::string::npos)
      << bad_key.log();
}

TEST(HttpTransportTls, KeyOfAnotherCertificateStopsStartUp) {
  TlsFiles files;
  Server server(files.config(files.cert(), files.other_key()));
  EXPECT_TRUE(server.exited());
  EXPECT_NE(server.log().find("http.tls_key " + files.other_key() +
                              ": does not match the certificate in " + files.cert()),
            std::string::npos)
      << server.log();
}
