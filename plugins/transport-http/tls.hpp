// TLS for the Streamable HTTP transport: the server-side OpenSSL context made from the [http]
// tls_cert and tls_key files, checked at start so that a bad file fails start-up.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

namespace pmcp::http {

// Loads the PEM certificate chain and private key into a TLS 1.2+ server context.
// Throws pmcp::sdk::Error (PMCP_ERR_INVALID_ARGUMENT) naming the file and the reason when a file
// cannot be read, is not a PEM certificate or key (an encrypted key counts: there is nobody to
// type its passphrase), or the key does not belong to the certificate. Example:
//   auto context = make_tls_context("/etc/mcp/cert.pem", "/etc/mcp/key.pem");
std::shared_ptr<boost::asio::ssl::context> make_tls_context(const std::string& cert_file,
                                                            const std::string& key_file);

}  // namespace pmcp::http
