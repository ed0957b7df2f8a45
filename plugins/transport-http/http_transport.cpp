// The Streamable HTTP transport: connections, sessions, streams and their routing.
//
// Threading: everything below runs on the transport's own io thread, except send() (core
// thread), which only posts, and the live-session set, which send() reads under a mutex.
// Stream ids: 0 is a session's standalone stream (GET); every POST that carries a request gets
// a fresh id, answered as application/json when the core's first message on it is the FINAL
// response, or as an SSE stream when a notification comes first.
#include "http_transport.hpp"

#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "tls.hpp"
#include "wire.hpp"

namespace pmcp::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using pmcp::sdk::Error;
using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;

// Text that several owners hold at once without copies (an SSE event: its history entry and
// the writes of the connections that send it).
using SharedText = std::shared_ptr<const std::string>;
SharedText shared(std::string text) { return std::make_shared<const std::string>(std::move(text)); }
const SharedText& keepalive_event() {
  static const SharedText event = shared(": keepalive\n\n");
  return event;
}

constexpr std::size_t kHistoryBytes = 16u << 20;  // per session, on top of history_events
constexpr std::size_t kDrainBytes = 64u << 20;    // read and dropped after a refused request
constexpr auto kDrainTime = std::chrono::seconds(5);

class HttpTransport;

// What every response to one request carries, captured when the request is read.
struct ReplyContext {
  unsigned version = 11;
  bool keep_alive = true;
  std::string origin;       // echoed in Access-Control-Allow-Origin when allowed
  std::string session_key;  // the Mcp-Session-Id header, once known
};

// One TCP connection, plain or TLS (which handshakes first, in mode reading). Modes: reading a
// request; awaiting the core's answer to a POST; streaming SSE; closed. Owned by shared_ptrs
// held by pending operations and by the session state that routes messages to it.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class Mode { reading, awaiting, sse, closed };

  // tls: the server context when the endpoint speaks HTTPS, else null.
  Connection(HttpTransport& transport, tcp::socket socket, std::string remote,
             asio::ssl::context* tls);

  void start();
  bool open() const { return mode_ != Mode::closed; }
  Mode mode() const { return mode_; }
  const std::string& remote() const { return remote_; }
  ReplyContext& context() { return context_; }

  // Where this connection's answer goes; set while awaiting or streaming.
  uint64_t session_id = 0;
  uint64_t stream_id = 0;

  // Writes a whole response; then reads the next request (keep-alive) or closes.
  void respond(Response response);
  // Writes a refusal and closes after draining what the client still sends (so that the client
  // sees the status instead of a reset).
  void refuse(Response response);
  void await_answer(uint64_t session, uint64_t stream) {
    mode_ = Mode::awaiting;
    session_id = session;
    stream_id = stream;
  }
  // Starts an SSE response (status 200, chunked); events follow with send_event().
  void start_sse(uint64_t session, uint64_t stream);
  // Sends one SSE event (its framed text) as a chunk. The text is shared with the session's
  // history, not copied: a large answer is held once, however many places wait for it.
  void send_event(SharedText event);
  // Ends the SSE response with the last chunk and closes the connection.
  void end_sse();
  // Closes at once; pending writes are dropped. Tells the transport (once).
  void close();

 private:
  void on_handshake(beast::error_code ec);
  void refuse_plain_http();
  void read_request();
  void on_request(beast::error_code ec);
  void write(std::string bytes);
  void write_next();
  // What waits to be written: head, then body (when set), then tail.
  struct Piece {
    std::string head;
    SharedText body;
    std::string_view tail;
  };
  void watch_sse();
  void arm_keepalive();
  void drain();
  Response base_response(bhttp::status status) const;

  // The TCP layer under either stream.
  beast::tcp_stream& tcp() { return tls_ ? tls_->next_layer() : *plain_; }
  // Calls f with the stream that carries HTTP: the TLS stream, or the TCP one when there is no
  // TLS (or when answering a plain-HTTP request that arrived on the TLS port).
  template <class F>
  void with_stream(F&& f) {
    if (tls_ && !raw_) {
      f(*tls_);
    } else {
      f(tcp());
    }
  }

  HttpTransport& transport_;
  std::optional<beast::tcp_stream> plain_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
  bool raw_ = false;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  ReplyContext context_;
  Mode mode_ = Mode::reading;
  std::deque<Piece> out_;
  bool writing_ = false;
  enum class After { nothing, read, close, drain } after_ = After::nothing;
  asio::steady_timer keepalive_;
  std::array<char, 512> scratch_{};
  std::size_t drained_ = 0;
};

struct Event {
  uint64_t stream;
  uint64_t sequence;
  SharedText framed;  // the whole SSE event (id and data lines), as it is sent and replayed
  bool delivered;
};

// A POST whose request(s) the core has not finished answering.
struct PostStream {
  std::shared_ptr<Connection> connection;  // null once the client went away
  bool sse = false;                        // the answer has switched to an SSE stream
  bool priming = true;                     // the client's protocol version allows priming events
};

struct Session {
  uint64_t id = 0;
  std::string key;     // the Mcp-Session-Id value
  std::string client;  // remote address, for the per-client limit
  Clock::time_point last_active;
  uint64_t next_sequence = 1;
  std::deque<Event> history;
  std::size_t history_bytes = 0;
  std::shared_ptr<Connection> standalone;  // the GET stream, when open
  std::unordered_map<uint64_t, PostStream> streams;
};

class HttpTransport final : public pmcp::sdk::TransportBase {
 public:
  HttpTransport(const pmcp_host* host, const pmcp_transport_sink* sink, HttpConfig config)
      : host_(host),
        sink_(*sink),
        config_(std::move(config)),
        acceptor_(io_),
        sweep_(io_),
        work_(io_.get_executor()) {}

  ~HttpTransport() override {
    if (thread_.joinable()) {
      asio::post(io_, [this] {
        close_everything();
        io_.stop();
      });
      thread_.join();
    }
    sessions_.clear();
    connections_.clear();
  }

  void start() override {
    if (!config_.tls_cert.empty()) tls_ = make_tls_context(config_.tls_cert, config_.tls_key);
    tcp::endpoint endpoint;
    try {
      tcp::resolver resolver(io_);
      auto results = resolver.resolve(config_.listen_host, std::to_string(config_.listen_port),
                                      tcp::resolver::numeric_service);
      endpoint = results.begin()->endpoint();
      acceptor_.open(endpoint.protocol());
      acceptor_.set_option(asio::socket_base::reuse_address(true));
      acceptor_.bind(endpoint);
      acceptor_.listen(asio::socket_base::max_listen_connections);
    } catch (const std::exception& e) {
      throw Error(PMCP_ERR_IO, "cannot listen on " + config_.listen_host + ":" +
                                   std::to_string(config_.listen_port) + ": " + e.what());
    }
    auto bound = acceptor_.local_endpoint();
    if (!config_.port_file.empty()) write_port_file(bound.port());
    std::string host = bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                               : bound.address().to_string();
    log(PMCP_LOG_INFO, std::string("listening on ") + (tls_ ? "https://" : "http://") + host + ":" +
                           std::to_string(bound.port()) + config_.path +
                           (config_.auth_token.empty() ? "" : " (bearer auth)"));
    accept();
    arm_sweep();
    thread_ = std::thread([this] { io_.run(); });
  }

  void send(uint64_t session, uint64_t stream, std::string_view json, uint32_t flags) override {
    {
      std::lock_guard lock(live_mutex_);
      if (!live_sessions_.contains(session)) throw Error(PMCP_ERR_NOT_FOUND, "no such session");
    }
    asio::post(io_, [this, session, stream, text = std::string(json),
                     final = (flags & PMCP_SEND_FINAL) != 0]() mutable {
      deliver(session, stream, std::move(text), final);
    });
  }

  void stop() override {
    asio::post(io_, [this] { begin_stop(); });
  }

  // --- called by connections, on the io thread ---

  const HttpConfig& config() const { return config_; }
  bool stopping() const { return stopping_; }
  void handle(const std::shared_ptr<Connection>& connection, Request& request);
  void connection_closed(Connection& connection);
  void log(pmcp_log_level level, const std::string& text) { pmcp::sdk::log(host_, level, text); }

 private:
  void accept();
  void arm_sweep();
  void write_port_file(uint16_t port);
  void begin_stop();
  void close_everything();

  void handle_post(const std::shared_ptr<Connection>& connection, Request& request);
  void handle_get(const std::shared_ptr<Connection>& connection, Request& request);
  void handle_delete(const std::shared_ptr<Connection>& connection, Request& request);
  Session* find_session(const std::shared_ptr<Connection>& connection, const Request& request);
  Session* create_session(const std::string& client);
  void end_session(uint64_t id, bool tell_core);

  void deliver(uint64_t session, uint64_t stream, std::string text, bool final);
  void remember(Session& session, uint64_t stream, uint64_t sequence, const SharedText& framed,
                bool delivered);

  Response make(const std::shared_ptr<Connection>& connection, bhttp::status status,
                std::string body = {}, std::string_view content_type = {});
  void fail(const std::shared_ptr<Connection>& connection, bhttp::status status, int code,
            std::string_view message, bool refuse = false);

  const pmcp_host* host_;
  pmcp_transport_sink sink_;
  HttpConfig config_;
  // Set by start() when tls_cert/tls_key are; outlives every connection that refers to it.
  std::shared_ptr<asio::ssl::context> tls_;
  asio::io_context io_;  // declared before everything that holds sockets or timers
  tcp::acceptor acceptor_;
  asio::steady_timer sweep_;
  // Keeps io_.run() going while POSTs wait for the core with no I/O pending; the destructor
  // ends the loop with io_.stop().
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  bool stopping_ = false;
  uint64_t next_session_ = 1;
  uint64_t next_stream_ = 1;
  std::unordered_map<uint64_t, Session> sessions_;
  std::unordered_map<std::string, uint64_t> session_by_key_;
  std::unordered_map<std::string, std::size_t> sessions_per_client_;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> connections_;
  std::unordered_map<std::string, std::size_t> connections_per_client_;
  std::unordered_set<std::string> refused_clients_;  // at their limit, already logged
  bool refusing_all_ = false;                         // at max_connections, already logged
  std::mutex live_mutex_;
  std::unordered_set<uint64_t> live_sessions_;
};

// ---------------------------------------------------------------------------------------------
// Connection

Connection::Connection(HttpTransport& transport, tcp::socket socket, std::string remote,
                       asio::ssl::context* tls)
    : transport_(transport), remote_(std::move(remote)), keepalive_(socket.get_executor()) {
  if (tls != nullptr) {
    tls_.emplace(std::move(socket), *tls);
  } else {
    plain_.emplace(std::move(socket));
  }
}

// TLS first: the handshake has the same deadline as a request, so a client that connects and
// stays silent (or handshakes slowly) holds its connection slot no longer than a plain one.
void Connection::start() {
  if (!tls_) {
    read_request();
    return;
  }
  tcp().expires_after(std::chrono::milliseconds(transport_.config().idle_timeout_ms));
  tls_->async_handshake(
      asio::ssl::stream_base::server,
      [self = shared_from_this()](beast::error_code ec) { self->on_handshake(ec); });
}

void Connection::on_handshake(beast::error_code ec) {
  if (mode_ == Mode::closed) return;
  tcp().expires_never();
  if (!ec) {
    read_request();
    return;
  }
  if (ec.category() == asio::error::get_ssl_category() &&
      ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_HTTP_REQUEST) {
    refuse_plain_http();
    return;
  }
  if (ec != beast::error::timeout && ec != asio::error::eof &&
      ec != asio::error::connection_reset && ec != asio::error::operation_aborted &&
      ec != asio::ssl::error::stream_truncated) {
    transport_.log(PMCP_LOG_DEBUG, "TLS handshake with " + remote_ + " failed: " + ec.message());
  }
  close();
}

// A plain-HTTP request on the HTTPS port: answer in plain HTTP with a status that says so (the
// client would otherwise see a connection closed without a word), then close.
void Connection::refuse_plain_http() {
  transport_.log(PMCP_LOG_WARN,
                 "refused a plain-HTTP request from " + remote_ + " on the HTTPS port");
  raw_ = true;
  context_.keep_alive = false;
  Response res = base_response(bhttp::status::bad_request);
  res.set(bhttp::field::content_type, "application/json");
  res.body() = jsonrpc_error_body(-32600,
                                  "Bad Request: this endpoint speaks HTTPS only (TLS); use "
                                  "https:// in the URL");
  refuse(std::move(res));
}

void Connection::read_request() {
  if (mode_ == Mode::closed) return;
  mode_ = Mode::reading;
  session_id = 0;
  stream_id = 0;
  context_ = {};
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(transport_.config().max_header_bytes));
  parser_->body_limit(transport_.config().max_body_bytes);
  tcp().expires_after(std::chrono::milliseconds(transport_.config().idle_timeout_ms));
  with_stream([&](auto& stream) {
    bhttp::async_read(
        stream, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_request(ec); });
  });
}

void Connection::on_request(beast::error_code ec) {
  if (mode_ == Mode::closed) return;
  tcp().expires_never();
  if (ec == bhttp::error::body_limit || ec == bhttp::error::header_limit) {
    const auto& header = parser_->get();
    context_.version = header.version() ? header.version() : 11;
    context_.keep_alive = false;
    bool body = ec == bhttp::error::body_limit;
    Response res = base_response(body ? bhttp::status::payload_too_large
                                      : bhttp::status::request_header_fields_too_large);
    res.set(bhttp::field::content_type, "application/json");
    res.body() = jsonrpc_error_body(
        -32600, body ? "request body larger than " +
                           std::to_string(transport_.config().max_body_bytes) + " bytes"
                     : std::string("request header too large"));
    refuse(std::move(res));
    return;
  }
  if (ec) {
    if (ec != bhttp::error::end_of_stream && ec != beast::error::timeout &&
        ec != asio::error::operation_aborted && ec != asio::error::connection_reset &&
        ec != asio::error::eof && ec != asio::ssl::error::stream_truncated &&
        ec.category() != asio::error::get_ssl_category()) {
      Response res = base_response(bhttp::status::bad_request);
      context_.keep_alive = false;
      res.set(bhttp::field::content_type, "application/json");
      res.body() = jsonrpc_error_body(-32600, "malformed HTTP request: " + ec.message());
      refuse(std::move(res));
      return;
    }
    close();
    return;
  }
  Request request = parser_->release();
  context_.version = request.version();
  context_.keep_alive = request.keep_alive() && !transport_.stopping();
  transport_.handle(shared_from_this(), request);
}

Response Connection::base_response(bhttp::status status) const {
  Response res{status, context_.version};
  if (!context_.origin.empty()) {
    res.set(bhttp::field::access_control_allow_origin, context_.origin);
    res.set(bhttp::field::access_control_expose_headers, "Mcp-Session-Id, MCP-Protocol-Version");
    res.set(bhttp::field::vary, "Origin");
  }
  if (!context_.session_key.empty()) res.set("Mcp-Session-Id", context_.session_key);
  return res;
}

void Connection::respond(Response response) {
  if (mode_ == Mode::closed) return;
  response.keep_alive(context_.keep_alive);
  response.prepare_payload();
  std::ostringstream os;
  os << response;
  after_ = context_.keep_alive ? After::read : After::close;
  mode_ = Mode::awaiting;  // no reads until the write is done
  write(std::move(os).str());
}

void Connection::refuse(Response response) {
  if (mode_ == Mode::closed) return;
  context_.keep_alive = false;
  response.keep_alive(false);
  response.prepare_payload();
  std::ostringstream os;
  os << response;
  after_ = After::drain;
  mode_ = Mode::awaiting;
  write(std::move(os).str());
}

void Connection::start_sse(uint64_t session, uint64_t stream) {
  if (mode_ == Mode::closed) return;
  session_id = session;
  stream_id = stream;
  mode_ = Mode::sse;
  bhttp::response<bhttp::empty_body> res{bhttp::status::ok, context_.version};
  for (const auto& field : base_response(bhttp::status::ok)) {
    res.set(field.name_string(), field.value());
  }
  res.set(bhttp::field::content_type, "text/event-stream");
  res.set(bhttp::field::cache_control, "no-cache, no-transform");
  res.set("X-Accel-Buffering", "no");
  res.keep_alive(false);  // an SSE response ends by closing the connection
  res.chunked(true);
  std::ostringstream os;
  os << res.base();
  write(std::move(os).str());
  watch_sse();
  arm_keepalive();
}

void Connection::send_event(SharedText event) {
  if (mode_ != Mode::sse) return;
  char size[24];
  std::snprintf(size, sizeof(size), "%zx\r\n", event->size());
  out_.push_back(Piece{size, std::move(event), "\r\n"});
  if (!writing_) write_next();
}

void Connection::end_sse() {
  if (mode_ != Mode::sse) return;
  after_ = After::close;
  write("0\r\n\r\n");
  mode_ = Mode::awaiting;  // no more events; the connection closes after the last write
}

void Connection::close() {
  if (mode_ == Mode::closed) return;
  mode_ = Mode::closed;
  keepalive_.cancel();
  beast::error_code ignored;
  tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
  tcp().socket().close(ignored);
  out_.clear();
  transport_.connection_closed(*this);
}

void Connection::write(std::string bytes) {
  out_.push_back(Piece{std::move(bytes), nullptr, {}});
  if (!writing_) write_next();
}

void Connection::write_next() {
  if (mode_ == Mode::closed) return;
  if (out_.empty()) {
    writing_ = false;
    After after = after_;
    if (mode_ == Mode::sse) return;  // more events may come
    after_ = After::nothing;
    if (after == After::read) {
      read_request();
    } else if (after == After::close) {
      close();
    } else if (after == After::drain) {
      drain();
    }
    return;
  }
  writing_ = true;
  // Writes may stall on a client that stops reading; the idle timeout bounds them.
  tcp().expires_after(std::chrono::milliseconds(transport_.config().idle_timeout_ms));
  const Piece& piece = out_.front();
  std::array<asio::const_buffer, 3> buffers{
      asio::buffer(piece.head), piece.body ? asio::buffer(*piece.body) : asio::const_buffer(),
      asio::buffer(piece.tail.data(), piece.tail.size())};
  with_stream([&](auto& stream) {
    asio::async_write(stream, buffers,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        if (self->mode_ == Mode::closed) return;
                        self->tcp().expires_never();
                        if (ec) {
                          self->close();
                          return;
                        }
                        self->out_.pop_front();
                        self->write_next();
                      });
  });
}

// While streaming, the client sends nothing; a completed read means it went away. The read is
// on the bare socket, also under TLS: nothing it could carry is needed, and it stays clear of
// the stream's write deadline.
void Connection::watch_sse() {
  tcp().socket().async_read_some(asio::buffer(scratch_),
                                 [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                   if (self->mode_ == Mode::closed) return;
                                   if (ec) {
                                     self->close();
                                     return;
                                   }
                                   self->watch_sse();
                                 });
}

void Connection::arm_keepalive() {
  keepalive_.expires_after(std::chrono::milliseconds(transport_.config().keepalive_ms));
  keepalive_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->mode_ != Mode::sse) return;
    if (!self->writing_) self->send_event(keepalive_event());
    self->arm_keepalive();
  });
}

// After a refusal: stop sending, read and drop what the client still sends (bounded in bytes
// and time), then close. The client thereby reads the status instead of a connection reset.
void Connection::drain() {
  beast::error_code ignored;
  tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
  if (drained_ == 0) tcp().expires_after(kDrainTime);
  // Bytes are dropped unread, so under TLS there is nothing to decrypt either.
  tcp().async_read_some(asio::buffer(scratch_),
                        [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                          if (self->mode_ == Mode::closed) return;
                          self->drained_ += n;
                          if (ec || self->drained_ > kDrainBytes) {
                            self->close();
                            return;
                          }
                          self->drain();
                        });
}

// ---------------------------------------------------------------------------------------------
// HttpTransport: accepting, stopping

void HttpTransport::accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      log(PMCP_LOG_WARN, "accept failed: " + ec.message());
    } else if (connections_.size() >= config_.max_connections) {
      // Said once until a connection closes: a flood of connections is not a flood of lines.
      if (!refusing_all_) {
        refusing_all_ = true;
        log(PMCP_LOG_WARN, "refused connections: max_connections (" +
                               std::to_string(config_.max_connections) + ") reached");
      }
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      beast::error_code addr_ec;
      auto peer = socket.remote_endpoint(addr_ec);
      std::string remote = addr_ec ? "?" : peer.address().to_string();
      std::size_t& count = connections_per_client_[remote];
      if (count >= config_.max_connections_per_client) {
        // Said once per burst: a client at its limit may retry many times a second.
        if (!refused_clients_.contains(remote)) {
          refused_clients_.insert(remote);
          log(PMCP_LOG_WARN, "refused connections from " + remote +
                                 ": max_connections_per_client (" +
                                 std::to_string(config_.max_connections_per_client) +
                                 ") reached");
        }
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        ++count;
        socket.set_option(tcp::no_delay(true), addr_ec);
        auto connection =
            std::make_shared<Connection>(*this, std::move(socket), remote, tls_.get());
        connections_[connection.get()] = connection;
        connection->start();
      }
    }
    accept();
  });
}

void HttpTransport::connection_closed(Connection& connection) {
  if (connections_.erase(&connection) > 0) {
    auto count = connections_per_client_.find(connection.remote());
    if (count != connections_per_client_.end() && --count->second == 0)
      connections_per_client_.erase(count);
    refused_clients_.erase(connection.remote());
    refusing_all_ = false;
  }
  if (connection.session_id == 0) return;
  auto it = sessions_.find(connection.session_id);
  if (it == sessions_.end()) return;
  Session& session = it->second;
  session.last_active = Clock::now();
  if (session.standalone.get() == &connection) session.standalone.reset();
  auto stream = session.streams.find(connection.stream_id);
  if (stream != session.streams.end() && stream->second.connection.get() == &connection) {
    // The client may come back with Last-Event-ID; until then events go to the history.
    stream->second.connection.reset();
    stream->second.sse = true;
  }
}

void HttpTransport::arm_sweep() {
  uint64_t period = config_.session_timeout_ms == 0 ? 60000 : config_.session_timeout_ms / 4;
  period = std::clamp<uint64_t>(period, 100, 30000);
  sweep_.expires_after(std::chrono::milliseconds(period));
  sweep_.async_wait([this](beast::error_code ec) {
    if (ec || stopping_) return;
    if (config_.session_timeout_ms != 0) {
      auto limit = Clock::now() - std::chrono::milliseconds(config_.session_timeout_ms);
      std::vector<uint64_t> expired;
      for (auto& [id, session] : sessions_) {
        bool busy = session.standalone != nullptr;
        for (auto& [sid, stream] : session.streams) busy = busy || stream.connection != nullptr;
        if (!busy && session.last_active < limit) expired.push_back(id);
      }
      for (uint64_t id : expired) {
        log(PMCP_LOG_INFO, "session " + std::to_string(id) + " expired after " +
                               std::to_string(config_.session_timeout_ms) + " ms idle");
        end_session(id, true);
      }
    }
    arm_sweep();
  });
}

void HttpTransport::write_port_file(uint16_t port) {
  std::filesystem::path target(config_.port_file);
  std::filesystem::path temp = target;
  temp += ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << port << '\n';
    if (!out) throw Error(PMCP_ERR_IO, "cannot write http.port_file " + config_.port_file);
  }
  std::error_code ec;
  std::filesystem::rename(temp, target, ec);
  if (ec) {
    throw Error(PMCP_ERR_IO, "cannot write http.port_file " + config_.port_file + ": " +
                                 ec.message());
  }
}

// Stop accepting; end standalone streams and idle connections; POSTs in flight finish.
void HttpTransport::begin_stop() {
  if (stopping_) return;
  stopping_ = true;
  beast::error_code ignored;
  acceptor_.close(ignored);
  sweep_.cancel();
  for (auto& [id, session] : sessions_) {
    if (session.standalone) session.standalone->end_sse();
  }
  std::vector<std::shared_ptr<Connection>> idle;
  for (auto& [raw, weak] : connections_) {
    auto connection = weak.lock();
    if (connection && connection->mode() == Connection::Mode::reading) idle.push_back(connection);
  }
  for (auto& connection : idle) connection->close();
}

void HttpTransport::close_everything() {
  stopping_ = true;
  beast::error_code ignored;
  acceptor_.close(ignored);
  sweep_.cancel();
  std::vector<std::shared_ptr<Connection>> all;
  for (auto& [raw, weak] : connections_) {
    if (auto connection = weak.lock()) all.push_back(connection);
  }
  for (auto& connection : all) connection->close();
}

// ---------------------------------------------------------------------------------------------
// HttpTransport: requests

Response HttpTransport::make(const std::shared_ptr<Connection>& connection, bhttp::status status,
                             std::string body, std::string_view content_type) {
  const ReplyContext& ctx = connection->context();
  Response res{status, ctx.version};
  if (!ctx.origin.empty()) {
    res.set(bhttp::field::access_control_allow_origin, ctx.origin);
    res.set(bhttp::field::access_control_expose_headers, "Mcp-Session-Id, MCP-Protocol-Version");
    res.set(bhttp::field::vary, "Origin");
  }
  if (!ctx.session_key.empty()) res.set("Mcp-Session-Id", ctx.session_key);
  if (!content_type.empty()) res.set(bhttp::field::content_type, content_type);
  res.body() = std::move(body);
  return res;
}

void HttpTransport::fail(const std::shared_ptr<Connection>& connection, bhttp::status status,
                         int code, std::string_view message, bool refuse) {
  Response res = make(connection, status, jsonrpc_error_body(code, message), "application/json");
  if (status == bhttp::status::unauthorized) {
    res.set(bhttp::field::www_authenticate, "Bearer realm=\"process-mcp\"");
  } else if (status == bhttp::status::method_not_allowed) {
    res.set(bhttp::field::allow, "GET, POST, DELETE, OPTIONS");
  } else if (status == bhttp::status::service_unavailable) {
    res.set(bhttp::field::retry_after, "5");
  }
  if (refuse) {
    connection->refuse(std::move(res));
  } else {
    connection->respond(std::move(res));
  }
}

void HttpTransport::handle(const std::shared_ptr<Connection>& connection, Request& request) {
  // DNS-rebinding protection first: a foreign Host or Origin learns nothing else.
  std::string host = host_of_host_header(request[bhttp::field::host]);
  if (!host_allowed(host, config_.allowed_hosts)) {
    log(PMCP_LOG_WARN, "refused a request from " + connection->remote() + " with Host '" +
                           std::string(request[bhttp::field::host]) + "'");
    fail(connection, bhttp::status::forbidden, -32000, "Forbidden: Host not allowed", true);
    return;
  }
  if (auto origin = request.find(bhttp::field::origin); origin != request.end()) {
    if (!origin_allowed(origin->value(), config_.allowed_origins)) {
      log(PMCP_LOG_WARN, "refused a request from " + connection->remote() + " with Origin '" +
                             std::string(origin->value()) + "'");
      fail(connection, bhttp::status::forbidden, -32000, "Forbidden: Origin not allowed", true);
      return;
    }
    connection->context().origin = std::string(origin->value());
  }
  std::string_view target = request.target();
  std::string_view path = target.substr(0, target.find('?'));
  if (path != config_.path) {
    fail(connection, bhttp::status::not_found, -32000, "Not Found: the MCP endpoint is " +
                                                           config_.path);
    return;
  }
  if (request.method() == bhttp::verb::options) {
    Response res = make(connection, bhttp::status::no_content);
    res.set(bhttp::field::access_control_allow_methods, "GET, POST, DELETE, OPTIONS");
    res.set(bhttp::field::access_control_allow_headers,
            "Content-Type, Accept, Authorization, Mcp-Session-Id, MCP-Protocol-Version, "
            "Last-Event-ID");
    res.set(bhttp::field::access_control_max_age, "600");
    connection->respond(std::move(res));
    return;
  }
  if (!config_.auth_token.empty()) {
    std::string_view auth = request[bhttp::field::authorization];
    bool ok = false;
    if (auth.size() > 7 && beast::iequals(auth.substr(0, 7), "Bearer ")) {
      ok = constant_time_equal(auth.substr(7), config_.auth_token);
    }
    if (!ok) {
      log(PMCP_LOG_WARN, "refused a request from " + connection->remote() +
                             (auth.empty() ? ": no bearer token" : ": wrong bearer token"));
      fail(connection, bhttp::status::unauthorized, -32000,
           auth.empty() ? "Unauthorized: a bearer token is required"
                        : "Unauthorized: invalid bearer token",
           true);
      return;
    }
  }
  if (auto version = request.find("MCP-Protocol-Version"); version != request.end()) {
    if (!supported_protocol_version(version->value())) {
      fail(connection, bhttp::status::bad_request, -32000,
           "Bad Request: unsupported MCP-Protocol-Version '" + std::string(version->value()) +
               "' (supported: 2025-11-25, 2025-06-18, 2025-03-26, 2024-11-05)");
      return;
    }
  }
  switch (request.method()) {
    case bhttp::verb::post:
      handle_post(connection, request);
      return;
    case bhttp::verb::get:
      handle_get(connection, request);
      return;
    case bhttp::verb::delete_:
      handle_delete(connection, request);
      return;
    default:
      fail(connection, bhttp::status::method_not_allowed, -32000, "Method Not Allowed");
      return;
  }
}

Session* HttpTransport::find_session(const std::shared_ptr<Connection>& connection,
                                     const Request& request) {
  auto header = request.find("Mcp-Session-Id");
  if (header == request.end() || header->value().empty()) {
    fail(connection, bhttp::status::bad_request, -32000,
         "Bad Request: Mcp-Session-Id header is required");
    return nullptr;
  }
  auto it = session_by_key_.find(std::string(header->value()));
  if (it == session_by_key_.end()) {
    fail(connection, bhttp::status::not_found, -32001, "Session not found");
    return nullptr;
  }
  Session& session = sessions_.at(it->second);
  session.last_active = Clock::now();
  connection->context().session_key = session.key;
  return &session;
}

Session* HttpTransport::create_session(const std::string& client) {
  uint64_t id = next_session_++;
  Session& session = sessions_[id];
  session.id = id;
  do {
    session.key = random_session_id();
  } while (session_by_key_.contains(session.key));
  session.client = client;
  session.last_active = Clock::now();
  session_by_key_[session.key] = id;
  ++sessions_per_client_[client];
  {
    std::lock_guard lock(live_mutex_);
    live_sessions_.insert(id);
  }
  return &session;
}

void HttpTransport::end_session(uint64_t id, bool tell_core) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  Session session = std::move(it->second);
  sessions_.erase(it);
  session_by_key_.erase(session.key);
  if (auto count = sessions_per_client_.find(session.client); count != sessions_per_client_.end()) {
    if (--count->second == 0) sessions_per_client_.erase(count);
  }
  {
    std::lock_guard lock(live_mutex_);
    live_sessions_.erase(id);
  }
  if (session.standalone) session.standalone->end_sse();
  for (auto& [sid, stream] : session.streams) {
    if (!stream.connection) continue;
    if (stream.sse) {
      stream.connection->end_sse();
    } else {
      fail(stream.connection, bhttp::status::not_found, -32001, "Session ended");
    }
  }
  if (tell_core) sink_.on_session_closed(sink_.ctx, id);
}

void HttpTransport::handle_post(const std::shared_ptr<Connection>& connection, Request& request) {
  std::string_view content_type = request[bhttp::field::content_type];
  if (!beast::iequals(content_type.substr(0, content_type.find(';')), "application/json")) {
    fail(connection, bhttp::status::unsupported_media_type, -32000,
         "Unsupported Media Type: Content-Type must be application/json");
    return;
  }
  std::string_view accept = request[bhttp::field::accept];
  if (!accepts(accept, "application/json") || !accepts(accept, "text/event-stream")) {
    fail(connection, bhttp::status::not_acceptable, -32000,
         "Not Acceptable: Accept must list both application/json and text/event-stream");
    return;
  }
  BodyKind kind = classify_body(request.body());
  if (!kind.valid) {
    bool parse_error = kind.error.rfind("the body is not JSON", 0) == 0;
    fail(connection, bhttp::status::bad_request, parse_error ? -32700 : -32600,
         (parse_error ? "Parse error: " : "Invalid Request: ") + kind.error);
    return;
  }
  Session* session = nullptr;
  bool has_session_header = request.find("Mcp-Session-Id") != request.end();
  if (kind.has_initialize && !has_session_header) {
    if (kind.batch) {
      fail(connection, bhttp::status::bad_request, -32600,
           "Invalid Request: initialize must not be part of a batch");
      return;
    }
    if (stopping_) {
      fail(connection, bhttp::status::service_unavailable, -32000, "the server is stopping");
      return;
    }
    if (sessions_.size() >= config_.max_sessions) {
      log(PMCP_LOG_WARN, "refused a session: max_sessions (" +
                             std::to_string(config_.max_sessions) + ") reached");
      fail(connection, bhttp::status::service_unavailable, -32000,
           "Service Unavailable: too many sessions");
      return;
    }
    if (auto it = sessions_per_client_.find(connection->remote());
        it != sessions_per_client_.end() && it->second >= config_.max_sessions_per_client) {
      log(PMCP_LOG_WARN, "refused a session for " + connection->remote() +
                             ": max_sessions_per_client (" +
                             std::to_string(config_.max_sessions_per_client) + ") reached");
      fail(connection, bhttp::status::service_unavailable, -32000,
           "Service Unavailable: too many sessions from this client");
      return;
    }
    session = create_session(connection->remote());
    connection->context().session_key = session->key;
    log(PMCP_LOG_DEBUG, "session " + std::to_string(session->id) + " opened by " +
                            connection->remote());
  } else {
    session = find_session(connection, request);
    if (session == nullptr) return;
  }
  if (!kind.has_request) {
    sink_.on_message(sink_.ctx, session->id, 0, pmcp::sdk::str(request.body()));
    connection->respond(make(connection, bhttp::status::accepted));
    return;
  }
  uint64_t stream = next_stream_++;
  PostStream& post = session->streams[stream];
  post.connection = connection;
  std::string_view version = request["MCP-Protocol-Version"];
  post.priming = version.empty() || version >= "2025-11-25";
  connection->await_answer(session->id, stream);
  sink_.on_message(sink_.ctx, session->id, stream, pmcp::sdk::str(request.body()));
}

void HttpTransport::handle_get(const std::shared_ptr<Connection>& connection, Request& request) {
  if (!accepts(request[bhttp::field::accept], "text/event-stream")) {
    fail(connection, bhttp::status::not_acceptable, -32000,
         "Not Acceptable: Accept must list text/event-stream");
    return;
  }
  Session* session = find_session(connection, request);
  if (session == nullptr) return;
  std::string_view version = request["MCP-Protocol-Version"];
  bool priming = version.empty() || version >= "2025-11-25";
  uint64_t stream = 0;
  uint64_t after = 0;
  bool resume = false;
  if (auto last = request.find("Last-Event-ID"); last != request.end()) {
    resume = parse_event_id(last->value(), stream, after);
    if (!resume) stream = 0;
  }
  if (resume && stream != 0) {
    // Resuming a POST's stream: replay what it missed; keep streaming if it is not finished.
    connection->start_sse(session->id, stream);
    for (auto& event : session->history) {
      if (event.stream != stream || event.sequence <= after) continue;
      event.delivered = true;
      connection->send_event(event.framed);
    }
    auto post = session->streams.find(stream);
    if (post == session->streams.end()) {
      connection->end_sse();
      return;
    }
    if (post->second.connection && post->second.connection != connection) {
      auto old = std::move(post->second.connection);
      old->session_id = 0;  // detach first so that its close does not touch this stream
      old->close();
    }
    post->second.connection = connection;
    post->second.sse = true;
    return;
  }
  if (session->standalone && session->standalone->open()) {
    if (!resume) {
      fail(connection, bhttp::status::conflict, -32000,
           "Conflict: this session already has a standalone SSE stream");
      return;
    }
    auto old = std::move(session->standalone);
    old->session_id = 0;
    old->close();
  }
  connection->start_sse(session->id, 0);
  session->standalone = connection;
  if (priming) {
    uint64_t sequence = session->next_sequence++;
    connection->send_event(shared(sse_event(event_id(0, sequence), "", config_.retry_ms)));
  }
  for (auto& event : session->history) {
    if (event.stream != 0) continue;
    if (resume ? event.sequence <= after : event.delivered) continue;
    event.delivered = true;
    connection->send_event(event.framed);
  }
}

void HttpTransport::handle_delete(const std::shared_ptr<Connection>& connection,
                                  Request& request) {
  Session* session = find_session(connection, request);
  if (session == nullptr) return;
  uint64_t id = session->id;
  log(PMCP_LOG_DEBUG, "session " + std::to_string(id) + " deleted by the client");
  end_session(id, true);
  connection->respond(make(connection, bhttp::status::ok));
}

// ---------------------------------------------------------------------------------------------
// HttpTransport: messages from the core

void HttpTransport::remember(Session& session, uint64_t stream, uint64_t sequence,
                             const SharedText& framed, bool delivered) {
  if (config_.history_events == 0) return;
  session.history.push_back(Event{stream, sequence, framed, delivered});
  session.history_bytes += framed->size();
  while (session.history.size() > config_.history_events ||
         (session.history_bytes > kHistoryBytes && session.history.size() > 1)) {
    session.history_bytes -= session.history.front().framed->size();
    session.history.pop_front();
  }
}

void HttpTransport::deliver(uint64_t session_id, uint64_t stream, std::string text, bool final) {
  auto it = sessions_.find(session_id);
  if (it == sessions_.end()) return;
  Session& session = it->second;
  if (stream == 0) {
    uint64_t sequence = session.next_sequence++;
    bool open = session.standalone && session.standalone->open();
    SharedText framed = shared(sse_event(event_id(0, sequence), text));
    remember(session, 0, sequence, framed, open);
    if (open) session.standalone->send_event(std::move(framed));
    return;
  }
  auto found = session.streams.find(stream);
  if (found == session.streams.end()) return;  // finished, or its session was reset
  PostStream& post = found->second;
  if (post.connection && !post.connection->open()) post.connection.reset();
  if (post.connection && !post.sse) {
    if (final) {
      // The whole answer is this one response: plain JSON.
      auto connection = std::move(post.connection);
      session.streams.erase(found);
      connection->respond(make(connection, bhttp::status::ok, std::move(text),
                               "application/json"));
      return;
    }
    post.sse = true;
    post.connection->start_sse(session.id, stream);
    if (post.priming) {
      uint64_t sequence = session.next_sequence++;
      post.connection->send_event(
          shared(sse_event(event_id(stream, sequence), "", config_.retry_ms)));
    }
  }
  uint64_t sequence = session.next_sequence++;
  SharedText framed = shared(sse_event(event_id(stream, sequence), text));
  text = std::string();  // only the framed copy is needed from here: free this one now
  remember(session, stream, sequence, framed, post.connection != nullptr);
  if (post.connection) post.connection->send_event(std::move(framed));
  if (final) {
    if (post.connection) post.connection->end_sse();
    session.streams.erase(found);
  }
}

}  // namespace

std::unique_ptr<pmcp::sdk::TransportBase> make_http_transport(const pmcp_host* host,
                                                              const pmcp_transport_sink* sink,
                                                              HttpConfig config) {
  return std::make_unique<HttpTransport>(host, sink, std::move(config));
}

}  // namespace pmcp::http
