// Fuzz harness: the request path of the HTTP transport up to the point where it needs a session:
// raw bytes through Beast's request parser with the transport's limits (max_header_bytes,
// max_body_bytes), then every check the transport makes on a parsed request: Host and Origin
// allowlists, Accept, MCP-Protocol-Version, the SSE resumption id (Last-Event-ID) and the
// classification of the JSON-RPC body. The session state machine behind it is exercised by the
// JSON-RPC harness and the HTTP tests, not here.
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "wire.hpp"

namespace http = boost::beast::http;
namespace wire = pmcp::http;

namespace {

void check(const http::request<http::string_body>& request) {
  static const std::vector<std::string> kAllowed = {"localhost", "127.0.0.1", "[::1]"};
  const std::string host = wire::host_of_host_header(request[http::field::host]);
  (void)wire::host_allowed(host, kAllowed);
  (void)wire::origin_allowed(request[http::field::origin], kAllowed);
  (void)wire::accepts(request[http::field::accept], "application/json");
  (void)wire::accepts(request[http::field::accept], "text/event-stream");
  (void)wire::supported_protocol_version(request["mcp-protocol-version"]);
  (void)wire::constant_time_equal(request[http::field::authorization], "Bearer secret");
  uint64_t stream = 0;
  uint64_t sequence = 0;
  if (wire::parse_event_id(request["last-event-id"], stream, sequence)) {
    // What the transport sends back must parse to the same id.
    uint64_t s2 = 0;
    uint64_t q2 = 0;
    if (!wire::parse_event_id(wire::event_id(stream, sequence), s2, q2) || s2 != stream ||
        q2 != sequence) {
      std::abort();
    }
  }
  const auto kind = wire::classify_body(request.body());
  if (!kind.valid && kind.error.empty()) std::abort();  // a refusal always says why
  (void)wire::sse_event(request["last-event-id"], request.body(), 1000);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A keep-alive connection: requests one after another, each parsed by a fresh parser, as the
  // transport does; the first malformed one ends the connection.
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  for (int requests = 0; !rest.empty() && requests < 16; ++requests) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(16384);  // [http] max_header_bytes default
    parser.body_limit(4194304);  // [http] max_body_bytes default
    boost::beast::error_code ec;
    // In two reads, as a request can arrive: the first ends in the middle of it.
    const std::size_t first = std::min(rest.size(), std::size_t{1} + rest.size() / 3);
    std::size_t used = parser.put(boost::asio::buffer(rest.data(), first), ec);
    if (ec == http::error::need_more) ec = {};
    if (!ec && !parser.is_done()) {
      std::string copy(rest.substr(used));  // Beast may look at the bytes it did not consume
      used += parser.put(boost::asio::buffer(copy), ec);
      if (ec == http::error::need_more) ec = {};
    }
    if (!ec && !parser.is_done() && parser.is_header_done()) parser.put_eof(ec);
    if (ec || !parser.is_done()) break;
    check(parser.get());
    if (used == 0) break;
    rest.remove_prefix(std::min(used, rest.size()));
  }
  return 0;
}
