// The server TLS context; see tls.hpp.
#include "tls.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "pmcp/plugin.hpp"

namespace pmcp::http {
namespace {

using pmcp::sdk::Error;

[[noreturn]] void fail(std::string_view key, const std::string& file, const std::string& why) {
  throw Error(PMCP_ERR_INVALID_ARGUMENT, "http." + std::string(key) + " " + file + ": " + why);
}

// The reason of the most recent OpenSSL error (and clears the queue), e.g. "no start line".
std::string openssl_reason() {
  unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "unknown error";
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? reason : "error " + std::to_string(code);
}

void check_readable(std::string_view key, const std::string& file) {
  std::ifstream in(file);
  if (!in) fail(key, file, std::string("cannot be read: ") + std::strerror(errno));
}

// A key with a passphrase must not make OpenSSL prompt on the terminal.
int no_passphrase(char*, int, int, void*) { return 0; }

}  // namespace

std::shared_ptr<boost::asio::ssl::context> make_tls_context(const std::string& cert_file,
                                                            const std::string& key_file) {
  namespace ssl = boost::asio::ssl;
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = context->native_handle();
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                       ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_default_passwd_cb(native, &no_passphrase);
  ERR_clear_error();

  check_readable("tls_cert", cert_file);
  if (SSL_CTX_use_certificate_chain_file(native, cert_file.c_str()) != 1) {
    fail("tls_cert", cert_file, "not a PEM certificate (" + openssl_reason() + ")");
  }
  check_readable("tls_key", key_file);
  EVP_PKEY* key = nullptr;
  if (BIO* bio = BIO_new_file(key_file.c_str(), "r"); bio != nullptr) {
    key = PEM_read_bio_PrivateKey(bio, nullptr, &no_passphrase, nullptr);
    BIO_free(bio);
  }
  if (key == nullptr) {
    fail("tls_key", key_file,
         "not a PEM private key without passphrase (" + openssl_reason() + ")");
  }
  // Checks the key against the certificate loaded above.
  int used = SSL_CTX_use_PrivateKey(native, key);
  EVP_PKEY_free(key);
  if (used != 1 || SSL_CTX_check_private_key(native) != 1) {
    fail("tls_key", key_file,
         "does not match the certificate in " + cert_file + " (" + openssl_reason() + ")");
  }
  return context;
}

}  // namespace pmcp::http
