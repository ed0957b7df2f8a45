#include "http.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

namespace pmcp::docker {

namespace http = boost::beast::http;
using asio::use_awaitable;

namespace {

constexpr std::size_t kBodyLimit = 256u << 20;

// Closes a socket when a deadline passes, so that a pending operation fails; tells afterwards
// whether that is why it failed. Safe against a timer handler that runs after destruction.
class Watchdog {
 public:
  Watchdog(Socket& socket, Client::Duration timeout)
      : timer_(socket.get_executor()), state_(std::make_shared<State>()) {
    state_->socket = &socket;
    timer_.expires_after(timeout);
    timer_.async_wait([state = state_](boost::system::error_code ec) {
      if (ec || !state->alive) return;
      state->fired = true;
      boost::system::error_code ignored;
      state->socket->close(ignored);
    });
  }
  ~Watchdog() {
    state_->alive = false;
    timer_.cancel();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  bool fired() const { return state_->fired; }

 private:
  struct State {
    Socket* socket = nullptr;
    bool alive = true;
    bool fired = false;
  };
  asio::steady_timer timer_;
  std::shared_ptr<State> state_;
};

http::request<http::string_body> make_request(http::verb verb, const std::string& target,
                                              std::string body) {
  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, "docker");
  req.set(http::field::user_agent, "process-mcp");
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = std::move(body);
  req.prepare_payload();
  return req;
}

// The reason of the most recent OpenSSL error (and clears the queue), e.g. "no start line".
std::string openssl_reason() {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "unknown error";
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? reason : "error " + std::to_string(code);
}

void check_readable(const std::string& file, const std::string& what) {
  std::ifstream in(file);
  if (!in)
    throw std::invalid_argument(what + " " + file + " cannot be read: " + std::strerror(errno));
}

// A key with a passphrase must not make OpenSSL prompt on the terminal.
int no_passphrase(char*, int, int, void*) { return 0; }

// Why a TLS handshake with the engine failed, in words a person can act on.
std::string handshake_failure(EngineStream& stream, const boost::system::error_code& ec) {
  if (ec.category() != asio::error::get_ssl_category()) return ec.message();
  const long verify = SSL_get_verify_result(stream.tls()->native_handle());
  if (verify != X509_V_OK) {
    return std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify) +
           " (is ca.pem the CA that signed the engine's certificate, and is the address one of "
           "the certificate's names?)";
  }
  const int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
  if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_UNEXPECTED_EOF_WHILE_READING ||
      reason == SSL_R_PACKET_LENGTH_TOO_LONG || reason == SSL_R_RECORD_LENGTH_MISMATCH) {
    return ec.message() +
           " (the engine does not speak TLS on this address; use tcp:// "
           "without TLS, or enable --tlsverify on the engine)";
  }
  if (reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED ||
      reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE || reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA) {
    return ec.message() +
           " (the engine did not accept the client certificate: cert.pem and "
           "key.pem must be signed by the CA the engine trusts)";
  }
  return ec.message();
}

}  // namespace

std::shared_ptr<asio::ssl::context> make_tls_context(const TlsFiles& files) {
  namespace ssl = asio::ssl;
  auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_default_passwd_cb(native, &no_passphrase);
  SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
  ERR_clear_error();
  check_readable(files.ca, "the CA certificate");
  if (SSL_CTX_load_verify_locations(native, files.ca.c_str(), nullptr) != 1)
    throw std::invalid_argument("the CA certificate " + files.ca + " is not a PEM certificate (" +
                                openssl_reason() + ")");
  if (files.cert.empty()) return context;
  check_readable(files.cert, "the client certificate");
  if (SSL_CTX_use_certificate_chain_file(native, files.cert.c_str()) != 1)
    throw std::invalid_argument("the client certificate " + files.cert +
                                " is not a PEM certificate (" + openssl_reason() + ")");
  check_readable(files.key, "the client key");
  EVP_PKEY* key = nullptr;
  if (BIO* bio = BIO_new_file(files.key.c_str(), "r"); bio != nullptr) {
    key = PEM_read_bio_PrivateKey(bio, nullptr, &no_passphrase, nullptr);
    BIO_free(bio);
  }
  if (key == nullptr)
    throw std::invalid_argument("the client key " + files.key +
                                " is not a PEM private key without passphrase (" +
                                openssl_reason() + ")");
  const int used = SSL_CTX_use_PrivateKey(native, key);
  EVP_PKEY_free(key);
  if (used != 1 || SSL_CTX_check_private_key(native) != 1)
    throw std::invalid_argument("the client key " + files.key + " does not match the certificate " +
                                files.cert + " (" + openssl_reason() + ")");
  return context;
}

Endpoint parse_endpoint(std::string_view url) {
  Endpoint ep;
  ep.url = std::string(url);
  if (url.starts_with("unix://")) {
    ep.path = std::string(url.substr(7));
  } else if (url.starts_with("/")) {
    ep.path = std::string(url);
  } else if (url.starts_with("tcp://") || url.starts_with("https://")) {
    ep.is_unix = false;
    ep.https = url.starts_with("https://");
    std::string_view rest = url.substr(ep.https ? 8 : 6);
    while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    const std::size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == rest.size())
      throw std::invalid_argument("'" + ep.url + "' has no port (expected " +
                                  (ep.https ? "https" : "tcp") + "://host:port)");
    ep.host = std::string(rest.substr(0, colon));
    if (ep.host.size() > 2 && ep.host.front() == '[' && ep.host.back() == ']')
      ep.host = ep.host.substr(1, ep.host.size() - 2);
    ep.port = std::string(rest.substr(colon + 1));
  } else {
    throw std::invalid_argument("'" + ep.url +
                                "' is not a Docker engine address (expected unix:///path/to/"
                                "docker.sock, tcp://host:port or https://host:port)");
  }
  if (ep.is_unix && ep.path.empty())
    throw std::invalid_argument("'" + ep.url + "' names no socket path");
  return ep;
}

std::string engine_message(const std::string& body) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  if (!ec && v.is_object()) {
    if (const auto* m = v.as_object().if_contains("message"); m && m->is_string())
      return std::string(m->as_string());
  }
  std::string text = body;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text.empty() ? "no reason given" : text;
}

std::string url_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string Client::full_target(const std::string& target, bool versioned) const {
  if (!versioned || api_version_.empty()) return target;
  return "/v" + api_version_ + target;
}

asio::awaitable<Socket> Client::connect_socket(Duration timeout) {
  Socket socket(io_);
  Watchdog dog(socket, timeout);
  try {
    if (endpoint_.is_unix) {
      asio::local::stream_protocol::endpoint ep(endpoint_.path);
      co_await socket.async_connect(asio::generic::stream_protocol::endpoint(ep), use_awaitable);
    } else {
      asio::ip::tcp::resolver resolver(io_);
      auto results = co_await resolver.async_resolve(endpoint_.host, endpoint_.port, use_awaitable);
      boost::system::error_code last = asio::error::host_not_found;
      for (const auto& entry : results) {
        boost::system::error_code ignored;
        socket.close(ignored);
        auto [ec] = co_await socket.async_connect(
            asio::generic::stream_protocol::endpoint(entry.endpoint()),
            asio::as_tuple(use_awaitable));
        if (!ec) {
          last = {};
          break;
        }
        last = ec;
        if (dog.fired()) break;
      }
      if (last) throw boost::system::system_error(last);
    }
  } catch (const boost::system::system_error& e) {
    const std::string why = dog.fired() ? "timed out" : e.code().message();
    throw ApiError("cannot connect to the Docker engine at " + endpoint_.url + ": " + why, true);
  }
  co_return socket;
}

asio::awaitable<EngineStream> Client::connect(Duration timeout) {
  Socket socket = co_await connect_socket(timeout);
  if (!endpoint_.tls) co_return EngineStream(std::move(socket));

  // The engine's certificate must be valid for the address we dialled: its IP address or its
  // name (also sent as SNI).
  EngineStream stream(std::move(socket), *endpoint_.tls);
  SSL* ssl = stream.tls()->native_handle();
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  boost::system::error_code not_ip;
  asio::ip::make_address(endpoint_.host, not_ip);
  if (!not_ip) {
    X509_VERIFY_PARAM_set1_ip_asc(param, endpoint_.host.c_str());
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    X509_VERIFY_PARAM_set1_host(param, endpoint_.host.c_str(), 0);
    SSL_set_tlsext_host_name(ssl, endpoint_.host.c_str());
  }
  Watchdog dog(stream.socket(), timeout);
  auto [ec] = co_await stream.tls()->async_handshake(asio::ssl::stream_base::client,
                                                     asio::as_tuple(use_awaitable));
  if (ec) {
    const std::string why = dog.fired() ? "timed out" : handshake_failure(stream, ec);
    throw ApiError("TLS handshake with the Docker engine at " + endpoint_.url + " failed: " + why,
                   true);
  }
  co_return stream;
}

asio::awaitable<Response> Client::call(http::verb verb, std::string target, std::string body,
                                       Duration timeout, bool versioned) {
  EngineStream socket = co_await connect(timeout);
  Watchdog dog(socket.socket(), timeout);
  const std::string path = full_target(target, versioned);
  Response out;
  try {
    auto req = make_request(verb, path, std::move(body));
    co_await http::async_write(socket, req, use_awaitable);
    boost::beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kBodyLimit);
    co_await http::async_read(socket, buffer, parser, use_awaitable);
    out.status = parser.get().result_int();
    out.body = std::move(parser.get().body());
  } catch (const boost::system::system_error& e) {
    const std::string why = dog.fired() ? "no answer in time" : e.code().message();
    throw ApiError(
        "Docker engine call " + std::string(http::to_string(verb)) + " " + path + " failed: " + why,
        false);
  }
  co_return out;
}

asio::awaitable<Hijacked> Client::hijack(std::string target, std::string body, Duration timeout) {
  EngineStream socket = co_await connect(timeout);
  const std::string path = full_target(target, true);
  std::string leftover;
  unsigned status = 0;
  std::string error_body;
  {
    Watchdog dog(socket.socket(), timeout);
    try {
      auto req = make_request(http::verb::post, path, std::move(body));
      req.set(http::field::connection, "Upgrade");
      req.set(http::field::upgrade, "tcp");
      co_await http::async_write(socket, req, use_awaitable);
      boost::beast::flat_buffer buffer;
      http::response_parser<http::string_body> parser;
      parser.body_limit(kBodyLimit);
      co_await http::async_read_header(socket, buffer, parser, use_awaitable);
      status = parser.get().result_int();
      if (status == 101 || status == 200) {
        leftover = boost::beast::buffers_to_string(buffer.data());
      } else {
        co_await http::async_read(socket, buffer, parser, use_awaitable);
        error_body = std::move(parser.get().body());
      }
    } catch (const boost::system::system_error& e) {
      const std::string why = dog.fired() ? "no answer in time" : e.code().message();
      throw ApiError("Docker engine call POST " + path + " failed: " + why, false);
    }
  }
  if (status != 101 && status != 200) throw ApiError(engine_message(error_body), false, status);
  co_return Hijacked{std::move(socket), std::move(leftover)};
}

}  // namespace pmcp::docker
