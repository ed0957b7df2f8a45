#include "sandbox.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "pmcp/plugin.hpp"
#include "protocol.hpp"
#include "supervisor_client.hpp"

namespace pmcp::host {

namespace {

// Where the bridge listens inside the sandbox's network namespace (its own loopback).
constexpr const char* kProxyPort = "3128";

constexpr const char* kWayOut =
    "; to run commands without the sandbox, set [host.sandbox] enabled = false";

bool is_executable(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

std::string find_in_path(const std::string& name) {
  const char* env = std::getenv("PATH");
  const std::string path = env != nullptr && *env != '\0' ? env : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t colon = path.find(':', start);
    if (colon == std::string::npos) colon = path.size();
    const std::string dir = path.substr(start, colon - start);
    if (!dir.empty() && is_executable(dir + "/" + name)) return dir + "/" + name;
    start = colon + 1;
  }
  return {};
}

// The path as it is now, symbolic links resolved; empty when it does not exist.
std::string resolve(const std::string& path) {
  char* real = realpath(path.c_str(), nullptr);
  if (real == nullptr) return {};
  std::string out = real;
  std::free(real);
  return out;
}

bool is_dir(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

Sandbox::Sandbox(const pmcp_host* host, SandboxConfig config, const std::string& helper_dir,
                 std::string writable_dir)
    : host_(host), config_(std::move(config)), writable_dir_(std::move(writable_dir)) {
  if (!config_.enabled) return;
  root_ = geteuid() == 0;
  if (writable_dir_ == "/") {
    // Making "/" writable would undo the sandbox: the server's working directory stays
    // read-only then, and only allow_write is writable.
    sdk::log(host_, PMCP_LOG_WARN,
             "host sandbox: the server runs in '/', which stays read-only; list the directories "
             "commands may write in [host.filesystem] allow_write");
    writable_dir_.clear();
  }
  for (const std::string& p : config_.allow_write) {
    if (resolve(p).empty())
      sdk::log(host_, PMCP_LOG_WARN,
               "host sandbox: allow_write path '" + p +
                   "' does not exist (yet); it is ignored "
                   "while it does not");
  }
  if (!config_.bwrap.empty()) {
    bwrap_ =
        config_.bwrap.find('/') == std::string::npos ? find_in_path(config_.bwrap) : config_.bwrap;
  } else {
    bwrap_ = find_in_path("bwrap");
  }
  if (bwrap_.empty() || !is_executable(bwrap_)) {
    unavailable_ = config_.bwrap.empty() || config_.bwrap.find('/') == std::string::npos
                       ? "bubblewrap ('" +
                             (config_.bwrap.empty() ? std::string("bwrap") : config_.bwrap) +
                             "') was not found in PATH; install it (Debian: apt-get install "
                             "bubblewrap) or name it in [host.sandbox] bwrap"
                       : "bubblewrap '" + config_.bwrap +
                             "' (from [host.sandbox] bwrap) is "
                             "missing or not executable";
  }
  init_ = helper_dir + "/" + proto::kSupervisorName;
  if (unavailable_.empty() && !is_executable(init_))
    unavailable_ = "the process supervisor '" + init_ + "' is missing or not executable";

  if (unavailable_.empty()) {
    std::string tmp = std::getenv("TMPDIR") != nullptr && std::getenv("TMPDIR")[0] == '/'
                          ? std::getenv("TMPDIR")
                          : "/tmp";
    std::string pattern = tmp + "/pmcp-sandbox-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      unavailable_ = "cannot create a private directory in " + tmp + ": " + std::strerror(errno);
    } else {
      private_dir_ = pattern;
      hidden_file_ = private_dir_ + "/hidden-file";
      hidden_dir_ = private_dir_ + "/hidden-dir";
      const int fd = open(hidden_file_.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0);
      if (fd >= 0) close(fd);
      if (fd < 0 || mkdir(hidden_dir_.c_str(), 0) < 0 || chmod(hidden_file_.c_str(), 0) < 0)
        unavailable_ = "cannot prepare " + private_dir_ + ": " + std::strerror(errno);
    }
  }
  network_ = !config_.allowed_domains.empty();
  if (unavailable_.empty() && network_) {
    bridge_ = helper_dir + "/pmcp-net-bridge";
    if (!is_executable(bridge_))
      unavailable_ = "the network bridge '" + bridge_ + "' is missing or not executable";
  }
  if (unavailable_.empty() && network_) {
    netpolicy::Policy policy{config_.allowed_domains, config_.denied_domains, config_.test_resolve};
    const pmcp_host* services = host_;
    try {
      proxy_ = netpolicy::Proxy::start(
          std::move(policy), private_dir_ + "/proxy.sock",
          [services](netpolicy::LogLevel level, std::string_view line) {
            const pmcp_log_level l = level == netpolicy::LogLevel::debug     ? PMCP_LOG_DEBUG
                                     : level == netpolicy::LogLevel::info    ? PMCP_LOG_INFO
                                     : level == netpolicy::LogLevel::warning ? PMCP_LOG_WARN
                                                                             : PMCP_LOG_ERROR;
            sdk::log(services, l, "sandbox network: " + std::string(line));
          });
    } catch (const std::exception& e) {
      unavailable_ = std::string("cannot start the network proxy: ") + e.what();
    }
  }
  if (!unavailable_.empty()) {
    conclude(std::move(unavailable_));
    return;
  }
  probed_ = false;  // run_trial() starts it, on the executor's thread
}

void Sandbox::run_trial(SupervisorClient& client) {
  {
    std::lock_guard lock(probe_mutex_);
    if (probed_) return;
  }
  std::string verdict;
  try {
    verdict = client.start(command_line());
  } catch (const std::exception& e) {
    verdict = std::string("the sandbox could not start: ") + e.what();
  }
  conclude(std::move(verdict));
}

void Sandbox::conclude(std::string unavailable) {
  if (!unavailable.empty()) {
    unavailable = "the host sandbox is not available: " + unavailable + kWayOut;
    sdk::log(host_, PMCP_LOG_ERROR, unavailable + "; every command will be refused");
  } else {
    const auto list = [](const std::vector<std::string>& items) {
      std::string out;
      for (const std::string& i : items) out += (out.empty() ? "" : ", ") + i;
      return out.empty() ? std::string("none") : out;
    };
    std::vector<std::string> writable = config_.allow_write;
    if (!writable_dir_.empty()) writable.insert(writable.begin(), writable_dir_);
    sdk::log(host_, PMCP_LOG_INFO,
             "host sandbox on (" + bwrap_ + "): writable " + list(writable) + "; deny_read " +
                 list(config_.deny_read) + "; deny_write " + list(config_.deny_write) +
                 "; network " +
                 (network_ ? "through the proxy, allowed " + list(config_.allowed_domains) +
                                 ", denied " + list(config_.denied_domains)
                           : std::string("none")));
  }
  std::lock_guard lock(probe_mutex_);
  unavailable_ = std::move(unavailable);
  probed_ = true;
  probe_done_.notify_all();
}

const std::string& Sandbox::unavailable() const {
  std::unique_lock lock(probe_mutex_);
  probe_done_.wait(lock, [this] { return probed_; });
  return unavailable_;
}

Sandbox::~Sandbox() {
  if (proxy_ != nullptr) proxy_->stop();
  if (private_dir_.empty()) return;
  rmdir(hidden_dir_.c_str());
  unlink(hidden_file_.c_str());
  rmdir(private_dir_.c_str());
}

std::vector<std::string> Sandbox::bwrap_args() const {
  // --as-pid-1: our supervisor is the namespace's init (one process less than bubblewrap's own
  // init); when it exits, the kernel kills whatever is left in the namespace.
  std::vector<std::string> a = {bwrap_,          "--die-with-parent",   "--unshare-pid",
                                "--as-pid-1",    "--unshare-net",       "--unshare-ipc",
                                "--unshare-uts", "--unshare-cgroup-try"};
  // Root keeps its capabilities in bubblewrap unless told; anyone else gets a user namespace
  // (where bubblewrap drops them).
  if (root_) {
    a.insert(a.end(), {"--cap-drop", "ALL"});
  } else {
    a.push_back("--unshare-user");
  }
  a.insert(a.end(), {"--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"});
  // Writable trees, parents before children, after /tmp so that one under /tmp still works.
  std::vector<std::string> writable;
  if (!writable_dir_.empty()) writable.push_back(writable_dir_);
  for (const std::string& p : config_.allow_write) writable.push_back(p);
  std::vector<std::string> resolved;
  for (const std::string& p : writable) {
    const std::string r = resolve(p);
    if (!r.empty()) resolved.push_back(r);
  }
  std::sort(resolved.begin(), resolved.end());
  resolved.erase(std::unique(resolved.begin(), resolved.end()), resolved.end());
  for (const std::string& p : resolved) a.insert(a.end(), {"--bind", p, p});
  // Denies come after, so that they win inside an allowed tree. A path that does not exist
  // has nothing to protect yet; it is covered from the first spawn after it appears.
  for (const std::string& p : config_.deny_write) {
    const std::string r = resolve(p);
    if (!r.empty()) a.insert(a.end(), {"--ro-bind", r, r});
  }
  for (const std::string& p : config_.deny_read) {
    const std::string r = resolve(p);
    if (r.empty()) continue;
    // An inaccessible placeholder: reading fails with "Permission denied", not with an
    // empty file that looks like data.
    a.insert(a.end(), {"--ro-bind", is_dir(r) ? hidden_dir_ : hidden_file_, r});
  }
  // Our helpers, visible whatever the rules above hid.
  a.insert(a.end(), {"--ro-bind", init_, init_});
  if (proxy_ != nullptr) {
    a.insert(a.end(), {"--ro-bind", bridge_, bridge_});
    a.insert(a.end(), {"--ro-bind", proxy_->socket_path(), proxy_->socket_path()});
  }
  a.insert(a.end(), {"--chdir", "/", "--"});
  return a;
}

std::vector<std::string> Sandbox::command_line() const {
  std::vector<std::string> a = bwrap_args();
  a.insert(a.end(), {init_, proto::kTag, "serve", "--sandbox"});
  if (proxy_ != nullptr)
    a.insert(a.end(), {"--bridge", bridge_, proxy_->socket_path(), kProxyPort});
  return a;
}

std::vector<std::string> Sandbox::environment() const {
  if (proxy_ == nullptr) return {};
  const std::string http = std::string("http://127.0.0.1:") + kProxyPort;
  const std::string socks = std::string("socks5h://127.0.0.1:") + kProxyPort;
  return {"HTTP_PROXY=" + http,
          "HTTPS_PROXY=" + http,
          "http_proxy=" + http,
          "https_proxy=" + http,
          "ALL_PROXY=" + socks,
          "all_proxy=" + socks,
          "NO_PROXY=localhost,127.0.0.1,::1",
          "no_proxy=localhost,127.0.0.1,::1"};
}

}  // namespace pmcp::host
