// The filtering proxy's policy (plugins/netpolicy): validation, name matching, address
// classification, and the HTTP head handling it relies on.
#include <gtest/gtest.h>

#include "http_head.hpp"
#include "pmcp/netpolicy/policy.hpp"

namespace pmcp::netpolicy {
namespace {

namespace ip = boost::asio::ip;

std::string_view kind(const char* address) {
  return forbidden_address_kind(ip::make_address(address));
}

NameVerdict verdict(const Policy& p, std::string_view host) { return check_name(p, host).verdict; }

TEST(NetPolicy, NormalizeHost) {
  EXPECT_EQ(normalize_host("Example.COM."), "example.com");
  EXPECT_EQ(normalize_host("[::0001]"), "::1");
  EXPECT_EQ(normalize_host("[2001:DB8::7]"), "2001:db8::7");
  EXPECT_EQ(normalize_host("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(normalize_host("*.Example.com"), "*.example.com");
}

TEST(NetPolicy, ValidHosts) {
  EXPECT_TRUE(is_valid_host("a.example.com"));
  EXPECT_TRUE(is_valid_host("my_host-1"));
  EXPECT_TRUE(is_valid_host("::ffff:127.0.0.1"));
  EXPECT_FALSE(is_valid_host(""));
  EXPECT_FALSE(is_valid_host("a..b"));
  EXPECT_FALSE(is_valid_host("a b"));
  EXPECT_FALSE(is_valid_host("evil.com\r\nX: y"));
  EXPECT_FALSE(is_valid_host(std::string(64, 'a') + ".com"));
  EXPECT_TRUE(is_valid_host(std::string(63, 'a') + ".com"));
}

TEST(NetPolicy, ValidateNamesTheBadEntry) {
  EXPECT_EQ(validate({}), "");
  EXPECT_EQ(validate({.allowed_domains = {"*", "*.example.com", "example.org.", "10.0.0.1",
                                          "[2001:db8::1]", "2001:db8::2"},
                      .denied_domains = {"*.bad.example.com"}}),
            "");
  EXPECT_EQ(validate({.allowed_domains = {"*.*.com"}}),
            "allowed_domains entry \"*.*.com\" is not \"*\", \"*.domain\", a host name or an IP "
            "address");
  EXPECT_NE(validate({.allowed_domains = {"ok.com", "foo*.com"}}).find("\"foo*.com\""),
            std::string::npos);
  EXPECT_NE(validate({.denied_domains = {""}}).find("denied_domains entry \"\""),
            std::string::npos);
  EXPECT_NE(validate({.allowed_domains = {"*."}}), "");
  EXPECT_NE(validate({.allowed_domains = {"*.10.0.0.1"}}), "");
  EXPECT_NE(validate({.allowed_domains = {"http://example.com"}}), "");
  EXPECT_EQ(validate({.test_resolve = {{"api.test", "127.0.0.1"}}}), "");
  EXPECT_NE(validate({.test_resolve = {{"api.test", "localhost"}}}).find("\"localhost\""),
            std::string::npos);
  EXPECT_NE(validate({.test_resolve = {{"a b", "127.0.0.1"}}}).find("\"a b\""), std::string::npos);
}

TEST(NetPolicy, WildcardDepthAndBase) {
  EXPECT_TRUE(pattern_matches("*.example.com", "a.example.com"));
  EXPECT_TRUE(pattern_matches("*.example.com", "a.b.example.com"));
  EXPECT_FALSE(pattern_matches("*.example.com", "example.com"));
  EXPECT_FALSE(pattern_matches("*.example.com", "badexample.com"));
  EXPECT_FALSE(pattern_matches("*.example.com", "example.com.evil.org"));
  EXPECT_TRUE(pattern_matches("*", "anything.at.all"));
  EXPECT_TRUE(pattern_matches("*", "10.1.2.3"));
  EXPECT_FALSE(pattern_matches("*.3.4", "1.2.3.4"));  // wildcards do not cut IP literals
  EXPECT_TRUE(pattern_matches("example.com", "example.com"));
  EXPECT_FALSE(pattern_matches("example.com", "a.example.com"));
}

TEST(NetPolicy, CaseAndTrailingDotsAreIgnored) {
  const Policy p{.allowed_domains = {"*.Example.COM.", "Exact.Org"}};
  EXPECT_EQ(verdict(p, "API.example.com"), NameVerdict::allowed);
  EXPECT_EQ(verdict(p, "api.example.com."), NameVerdict::allowed);
  EXPECT_EQ(verdict(p, "exact.org."), NameVerdict::allowed_exactly);
  EXPECT_EQ(verdict(p, "EXACT.ORG"), NameVerdict::allowed_exactly);
  EXPECT_EQ(verdict(p, "other.org"), NameVerdict::not_allowed);
}

TEST(NetPolicy, DenyWinsAndSaysWhichEntry) {
  const Policy p{.allowed_domains = {"*", "exact.example.com"},
                 .denied_domains = {"*.example.com", "10.0.0.9"}};
  const auto d = check_name(p, "exact.example.com");
  EXPECT_EQ(d.verdict, NameVerdict::denied);
  EXPECT_EQ(d.rule, "*.example.com");
  EXPECT_EQ(verdict(p, "example.com"), NameVerdict::allowed);
  EXPECT_EQ(verdict(p, "10.0.0.9"), NameVerdict::denied);
  EXPECT_EQ(verdict(p, "10.0.0.8"), NameVerdict::allowed);
}

TEST(NetPolicy, EmptyAllowedListAllowsNothing) {
  const Policy p{.allowed_domains = {}};
  EXPECT_EQ(verdict(p, "example.com"), NameVerdict::not_allowed);
  EXPECT_EQ(verdict(p, "1.2.3.4"), NameVerdict::not_allowed);
  EXPECT_EQ(check_name(p, "x").rule, "");
}

TEST(NetPolicy, IpLiteralsMatchAsNames) {
  const Policy p{.allowed_domains = {"127.0.0.1", "::1", "*.example.com"}};
  EXPECT_EQ(verdict(p, "127.0.0.1"), NameVerdict::allowed_exactly);
  EXPECT_EQ(verdict(p, "[0:0::1]"), NameVerdict::allowed_exactly);
  EXPECT_EQ(verdict(p, "127.0.0.2"), NameVerdict::not_allowed);
  EXPECT_EQ(verdict(Policy{}, "127.0.0.1"), NameVerdict::allowed);  // "*" allows, not exactly
  EXPECT_EQ(check_name(Policy{}, "127.0.0.1").rule, "*");
}

TEST(NetPolicy, ForbiddenAddresses) {
  EXPECT_EQ(kind("127.0.0.1"), "loopback");
  EXPECT_EQ(kind("127.255.1.2"), "loopback");
  EXPECT_EQ(kind("::1"), "loopback");
  EXPECT_EQ(kind("169.254.1.1"), "link-local");
  EXPECT_EQ(kind("fe80::1"), "link-local");
  EXPECT_EQ(kind("febf::1"), "link-local");
  EXPECT_EQ(kind("0.0.0.0"), "unspecified");
  EXPECT_EQ(kind("::"), "unspecified");
  EXPECT_EQ(kind("169.254.169.254"), "cloud metadata");
  EXPECT_EQ(kind("fd00:ec2::254"), "cloud metadata");
  EXPECT_EQ(kind("100.100.100.200"), "cloud metadata");
  EXPECT_EQ(kind("93.184.216.34"), "");
  EXPECT_EQ(kind("10.0.0.1"), "");
  EXPECT_EQ(kind("128.0.0.1"), "");
  EXPECT_EQ(kind("169.255.0.1"), "");
  EXPECT_EQ(kind("fec0::1"), "");
  EXPECT_EQ(kind("2001:db8::1"), "");
  EXPECT_EQ(kind("100.100.100.201"), "");
}

TEST(NetPolicy, Ipv4MappedAddressesAreJudgedAsIpv4) {
  EXPECT_EQ(kind("::ffff:127.0.0.1"), "loopback");
  EXPECT_EQ(kind("::ffff:169.254.169.254"), "cloud metadata");
  EXPECT_EQ(kind("::ffff:169.254.3.4"), "link-local");
  EXPECT_EQ(kind("::ffff:0.0.0.0"), "unspecified");
  EXPECT_EQ(kind("::ffff:100.100.100.200"), "cloud metadata");
  EXPECT_EQ(kind("::ffff:8.8.8.8"), "");
}

// ---- HTTP heads ----

TEST(NetPolicyHttp, Authority) {
  auto a = http::parse_authority("example.com:443", 0);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "example.com");
  EXPECT_EQ(a->port, 443);
  a = http::parse_authority("[::1]:8080", 0);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 8080);
  a = http::parse_authority("example.com", 80);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->port, 80);
  EXPECT_FALSE(http::parse_authority("example.com", 0));
  EXPECT_FALSE(http::parse_authority("example.com:0", 0));
  EXPECT_FALSE(http::parse_authority("example.com:65536", 0));
  EXPECT_FALSE(http::parse_authority("example.com:80x", 0));
  EXPECT_FALSE(http::parse_authority(":80", 0));
  EXPECT_FALSE(http::parse_authority("::1:80", 0));
}

TEST(NetPolicyHttp, RequestHeadAndUpstreamRewrite) {
  std::string error;
  const auto request = http::parse_request_head(
      "GET http://Example.com:8080/a/b?q=1#frag HTTP/1.1\r\nHost: other.org\r\n"
      "Proxy-Authorization: Basic eA==\r\nProxy-Connection: keep-alive\r\n"
      "Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nAccept: */*\r\n\r\n",
      error);
  ASSERT_TRUE(request) << error;
  EXPECT_EQ(request->method, "GET");
  const auto url = http::parse_http_url(request->target, error);
  ASSERT_TRUE(url) << error;
  EXPECT_EQ(url->destination.host, "Example.com");
  EXPECT_EQ(url->destination.port, 8080);
  EXPECT_EQ(http::upstream_request_head(*request, *url),
            "GET /a/b?q=1 HTTP/1.1\r\nHost: Example.com:8080\r\nAccept: */*\r\n"
            "Connection: close\r\n\r\n");
}

TEST(NetPolicyHttp, BadRequests) {
  std::string error;
  EXPECT_FALSE(http::parse_request_head("GET / HTTP/2\r\n\r\n", error));
  EXPECT_FALSE(http::parse_request_head("GET  http://a/ HTTP/1.1\r\n\r\n", error));
  EXPECT_FALSE(http::parse_request_head("GET http://a/ HTTP/1.1\r\n folded\r\n\r\n", error));
  EXPECT_FALSE(http::parse_http_url("/path", error));
  EXPECT_FALSE(http::parse_http_url("https://a.com/", error));
  EXPECT_NE(error.find("CONNECT"), std::string::npos);
  EXPECT_FALSE(http::parse_http_url("http://user@a.com/", error));
  const auto url = http::parse_http_url("http://a.com", error);
  ASSERT_TRUE(url);
  EXPECT_EQ(url->path, "/");
  EXPECT_EQ(url->destination.port, 80);
}

TEST(NetPolicyHttp, BodyFraming) {
  std::string error;
  auto f = http::request_body_framing({{"Content-Length", "12"}}, error);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->kind, http::BodyFraming::Kind::length);
  EXPECT_EQ(f->length, 12u);
  f = http::request_body_framing({{"Transfer-Encoding", "gzip, chunked"}}, error);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->kind, http::BodyFraming::Kind::chunked);
  f = http::request_body_framing({}, error);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->kind, http::BodyFraming::Kind::none);
  EXPECT_FALSE(http::request_body_framing(
      {{"Content-Length", "3"}, {"Transfer-Encoding", "chunked"}}, error));
  EXPECT_FALSE(
      http::request_body_framing({{"Content-Length", "3"}, {"Content-Length", "4"}}, error));
  EXPECT_FALSE(http::request_body_framing({{"Content-Length", "-1"}}, error));
  EXPECT_FALSE(http::request_body_framing({{"Transfer-Encoding", "gzip"}}, error));
}

TEST(NetPolicyHttp, ChunkedScannerFindsTheEnd) {
  const std::string body = "4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\n";
  const std::string next = "GET http://other/ HTTP/1.1\r\n\r\n";
  http::ChunkedScanner whole;
  EXPECT_EQ(whole.feed(body + next), body.size());
  EXPECT_TRUE(whole.done());
  http::ChunkedScanner bytewise;  // the same, one byte at a time
  std::size_t taken = 0;
  for (char c : body + next) taken += bytewise.feed(std::string_view(&c, 1));
  EXPECT_EQ(taken, body.size());
  EXPECT_TRUE(bytewise.done());
  http::ChunkedScanner bad;
  bad.feed("zz\r\n");
  EXPECT_TRUE(bad.failed());
}

TEST(NetPolicyHttp, ResponseHeadGetsConnectionClose) {
  int status = 0;
  EXPECT_EQ(http::downstream_response_head(
                "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
                "Content-Length: 2\r\n\r\n",
                status),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status, 200);
  http::downstream_response_head("garbage\r\n\r\n", status);
  EXPECT_EQ(status, 0);
}

}  // namespace
}  // namespace pmcp::netpolicy
