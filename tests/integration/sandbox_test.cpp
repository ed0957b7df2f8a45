// The host sandbox's escape suite: real bubblewrap, real seccomp, the real proxy, loopback only.
// Each attempt to get out must fail with an error a user can see, and the matching allowed
// operation must work, so that a sandbox that blocks everything cannot pass.
#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "pmcp/executor.h"
#include "pmcp/plugin.h"
#include "test_child.hpp"

namespace {

using namespace std::chrono_literals;

const std::string kChild = pmcp::test::visible_child();
const std::string kPluginDir = PMCP_PLUGIN_DIR;
constexpr const char* kProxyPort = "3128";

std::string g_log;  // what the plugin logged, for the fail-closed checks
std::mutex g_log_mu;

void host_log(const pmcp_host*, pmcp_log_level, pmcp_str message) {
  std::lock_guard<std::mutex> lock(g_log_mu);
  g_log.append(message.data, message.size);
  g_log += '\n';
}
int32_t host_post(const pmcp_host*, void (*)(void*), void*) { return PMCP_ERR_STATE; }
const void* host_extension(const pmcp_host*, const char*) { return nullptr; }
pmcp_host g_host{
    sizeof(pmcp_host), PMCP_ABI_VERSION_MAJOR, PMCP_ABI_VERSION_MINOR, nullptr, &host_log,
    &host_post,        &host_extension};

struct Result {
  bool spawned = false;
  int32_t status = 1;
  std::string message;
  std::string out;
  bool exited = false;
  int32_t code = 0;
  int32_t sig = 0;
};

class Sink {
 public:
  Sink() {
    sink.struct_size = sizeof sink;
    sink.ctx = this;
    sink.on_spawned = [](void* ctx, uint64_t id, int32_t status, int64_t, pmcp_str msg) {
      auto& s = *static_cast<Sink*>(ctx);
      std::lock_guard<std::mutex> lock(s.mu);
      Result& r = s.results[id];
      r.spawned = true;
      r.status = status;
      r.message.assign(msg.data != nullptr ? msg.data : "", msg.size);
      s.cv.notify_all();
    };
    sink.on_output = [](void* ctx, uint64_t id, int32_t, const uint8_t* data, std::size_t size) {
      auto& s = *static_cast<Sink*>(ctx);
      std::lock_guard<std::mutex> lock(s.mu);
      s.results[id].out.append(reinterpret_cast<const char*>(data), size);
      s.cv.notify_all();
    };
    sink.on_exit = [](void* ctx, uint64_t id, int32_t code, int32_t sig, pmcp_str) {
      auto& s = *static_cast<Sink*>(ctx);
      std::lock_guard<std::mutex> lock(s.mu);
      Result& r = s.results[id];
      r.exited = true;
      r.code = code;
      r.sig = sig;
      s.cv.notify_all();
    };
  }
  template <class Pred>
  bool wait(uint64_t id, std::chrono::milliseconds timeout, Pred pred) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, timeout, [&] { return pred(results[id]); });
  }
  Result get(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu);
    return results[id];
  }

  pmcp_executor_sink sink{};
  std::mutex mu;
  std::condition_variable cv;
  std::map<uint64_t, Result> results;
};

// A loopback HTTP server that answers every request with "hello from the test server".
class TestServer {
 public:
  TestServer() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 ||
        listen(fd_, 16) < 0 || getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) < 0)
      return;
    port_ = ntohs(sa.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~TestServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) close(fd_);
  }
  uint16_t port() const { return port_; }
  int hits() const { return hits_; }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::string head;
      char buf[1024];
      while (head.find("\r\n\r\n") == std::string::npos) {
        pollfd q{c, POLLIN, 0};
        if (poll(&q, 1, 2000) <= 0) break;
        const ssize_t n = read(c, buf, sizeof buf);
        if (n <= 0) break;
        head.append(buf, static_cast<std::size_t>(n));
      }
      ++hits_;
      const std::string body = "hello from the test server";
      const std::string reply =
          "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\nConnection: close\r\n\r\n" + body;
      ssize_t ignored = write(c, reply.data(), reply.size());
      (void)ignored;
      close(c);
    }
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> hits_{0};
  std::thread thread_;
};

class SandboxTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string lib = kPluginDir + "/pmcp-host.so";
    void* handle = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(handle, nullptr) << dlerror();
    const auto* entry = static_cast<const pmcp_plugin_entry*>(dlsym(handle, PMCP_ENTRY_SYMBOL));
    ASSERT_NE(entry, nullptr);
    ASSERT_NE(entry->init(&g_host), 0);
    factory_ =
        static_cast<const pmcp_executor_factory*>(entry->get_factory(PMCP_EXECUTOR_FACTORY_ID));
    ASSERT_NE(factory_, nullptr);
  }

  void SetUp() override {
    char dir[] = "/tmp/pmcp-sandbox-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    work_ = dir;
    std::ofstream(work_ + "/public.txt") << "public data\n";
  }

  void TearDown() override {
    if (ex_ != nullptr) ex_->destroy(ex_);
    ex_ = nullptr;
    std::error_code ec;
    std::filesystem::remove_all(work_, ec);
  }

  // Creates the executor; `extra` is spliced into the JSON object after the work directory's
  // allow_write rule (e.g. R"("network": {...})").
  int32_t create(const std::string& filesystem, const std::string& extra = "") {
    config_ = R"({"filesystem": {"allow_write": [")" + work_ + "\"]" +
              (filesystem.empty() ? "" : ", " + filesystem) + "}" +
              (extra.empty() ? "" : ", " + extra) + "}";
    err_[0] = '\0';
    return factory_->create(factory_, &g_host, pmcp_str{config_.data(), config_.size()},
                            &sink_.sink, &ex_, {err_, sizeof err_});
  }

  int32_t spawn(uint64_t id, const std::vector<std::string>& argv, bool pty = false) {
    std::vector<const char*> args;
    for (const auto& a : argv) args.push_back(a.c_str());
    const char* env[] = {"PATH=/usr/bin:/bin", "HOME=/tmp", "TERM=xterm", "LANG=C"};
    pmcp_spawn_options so{};
    so.struct_size = sizeof so;
    so.process_id = id;
    so.argv = args.data();
    so.argc = args.size();
    so.envp = env;
    so.envc = 4;
    so.cwd = pmcp_str{work_.data(), work_.size()};
    so.flags = pty ? PMCP_SPAWN_PTY : 0;
    so.cols = 80;
    so.rows = 24;
    err_[0] = '\0';
    return ex_->spawn(ex_, &so, {err_, sizeof err_});
  }

  // Runs a shell command in the sandbox; returns its output (stderr folded into stdout).
  std::string sh(const std::string& script) {
    const uint64_t id = ++next_id_;
    EXPECT_EQ(spawn(id, {"/bin/sh", "-c", "exec 2>&1; " + script}), PMCP_OK) << err_;
    EXPECT_TRUE(sink_.wait(
        id, 20s, [](const Result& r) { return r.exited || (r.spawned && r.status != 0); }));
    const Result r = sink_.get(id);
    EXPECT_EQ(r.status, PMCP_OK) << r.message;
    return r.out;
  }

  std::string child(const std::vector<std::string>& args) {
    std::string script = kChild;
    for (const std::string& a : args) script += " '" + a + "'";
    return sh(script);
  }

  static inline const pmcp_executor_factory* factory_ = nullptr;
  Sink sink_;
  pmcp_executor* ex_ = nullptr;
  std::string work_;
  std::string config_;
  char err_[2048] = {};
  uint64_t next_id_ = 0;
};

#define EXPECT_HAS(text, needle) EXPECT_NE((text).find(needle), std::string::npos) << (text)
#define EXPECT_LACKS(text, needle) EXPECT_EQ((text).find(needle), std::string::npos) << (text)

// ---- filesystem ----

TEST_F(SandboxTest, ReadingADeniedFileOrDirectoryFails) {
  std::ofstream(work_ + "/secret.txt") << "the secret\n";
  std::filesystem::create_directory(work_ + "/secrets");
  std::ofstream(work_ + "/secrets/key") << "the key\n";
  ASSERT_EQ(create(R"("deny_read": [")" + work_ + R"(/secret.txt", ")" + work_ + "/secrets\"]"),
            PMCP_OK)
      << err_;
  std::string out = sh("cat secret.txt");
  EXPECT_HAS(out, "Permission denied");
  EXPECT_LACKS(out, "the secret");
  out = sh("cat secrets/key; ls secrets");
  EXPECT_HAS(out, "Permission denied");
  EXPECT_LACKS(out, "the key");
  EXPECT_EQ(sh("cat public.txt"), "public data\n");
}

TEST_F(SandboxTest, WritingOutsideTheAllowedPathsFails) {
  char other[] = "/var/tmp/pmcp-sandbox-other-XXXXXX";
  ASSERT_NE(mkdtemp(other), nullptr);
  ASSERT_EQ(create(""), PMCP_OK) << err_;
  std::string out =
      sh(std::string("echo x > ") + other + "/f; echo x > /etc/pmcp-test; rm /etc/hostname");
  EXPECT_HAS(out, "Read-only file system");
  EXPECT_FALSE(std::filesystem::exists(std::string(other) + "/f"));
  EXPECT_FALSE(std::filesystem::exists("/etc/pmcp-test"));
  EXPECT_TRUE(std::filesystem::exists("/etc/hostname"));
  rmdir(other);
  // The work directory is writable, and what is written there is really there.
  EXPECT_EQ(sh("echo written > out.txt && cat out.txt"), "written\n");
  std::string text;
  std::getline(std::ifstream(work_ + "/out.txt"), text);
  EXPECT_EQ(text, "written");
  // /tmp is a private tmpfs: writable, but nothing reaches the host's /tmp (unless the server
  // runs in /tmp, whose working directory is writable).
  if (std::filesystem::current_path() != "/tmp") {
    EXPECT_EQ(sh("echo t > /tmp/pmcp-private-probe && cat /tmp/pmcp-private-probe"), "t\n");
    EXPECT_FALSE(std::filesystem::exists("/tmp/pmcp-private-probe"));
  }
}

TEST_F(SandboxTest, ADenyInsideAnAllowedTreeWins) {
  std::filesystem::create_directory(work_ + "/protected");
  std::ofstream(work_ + "/protected/config") << "original\n";
  ASSERT_EQ(create(R"("deny_write": [")" + work_ + "/protected\"]"), PMCP_OK) << err_;
  const std::string out = sh("echo changed > protected/config; echo new > protected/new");
  EXPECT_HAS(out, "Read-only file system");
  std::string text;
  std::getline(std::ifstream(work_ + "/protected/config"), text);
  EXPECT_EQ(text, "original");
  EXPECT_FALSE(std::filesystem::exists(work_ + "/protected/new"));
  // Reading it is fine, and so is writing beside it.
  EXPECT_EQ(sh("cat protected/config"), "original\n");
  EXPECT_EQ(sh("echo ok > beside && cat beside"), "ok\n");
}

TEST_F(SandboxTest, SymlinksAndProcSelfRootDoNotEscape) {
  std::ofstream(work_ + "/secret.txt") << "the secret\n";
  ASSERT_EQ(create(R"("deny_read": [")" + work_ + "/secret.txt\"]"), PMCP_OK) << err_;
  std::string out = sh("ln -s secret.txt link && cat link; cat /proc/self/root" + work_ +
                       "/secret.txt; cat /proc/1/root" + work_ + "/secret.txt");
  EXPECT_LACKS(out, "the secret");
  EXPECT_HAS(out, "Permission denied");
  // A link to a read-only place does not make it writable.
  out = sh("ln -s /etc etc-link && echo x > etc-link/pmcp-test");
  EXPECT_HAS(out, "Read-only file system");
  EXPECT_FALSE(std::filesystem::exists("/etc/pmcp-test"));
  // The same ways to a readable file work.
  EXPECT_EQ(sh("ln -s public.txt plink && cat plink"), "public data\n");
  EXPECT_EQ(sh("cat /proc/self/root" + work_ + "/public.txt"), "public data\n");
}

// ---- processes ----

TEST_F(SandboxTest, HostProcessesAreInvisibleAndOutOfReach) {
  const pid_t outside = fork();
  if (outside == 0) {
    pause();
    _exit(0);
  }
  ASSERT_GT(outside, 0);
  ASSERT_EQ(create(""), PMCP_OK) << err_;
  const std::string out = child({"kill", std::to_string(outside)});
  EXPECT_HAS(out, "kill: No such process");
  EXPECT_EQ(sh("ls /proc/" + std::to_string(outside) + " >/dev/null 2>&1 || echo hidden"),
            "hidden\n");
  // Only the sandbox's own few processes are there.
  const std::string count = sh("ls -d /proc/[0-9]* | wc -l");
  EXPECT_LT(std::atoi(count.c_str()), 10) << count;
  // Its own processes it can see and signal.
  EXPECT_EQ(sh(kChild + " sleep 100000 & " + kChild + " kill $!; kill $! && echo killed"),
            "kill ok\nkilled\n");
  kill(outside, SIGKILL);
  waitpid(outside, nullptr, 0);
}

TEST_F(SandboxTest, SetuidProgramsGainNoPrivileges) {
  // A set-user-id copy of id(1), owned by another user than the one we run as.
  const std::string copy = work_ + "/suid-id";
  std::filesystem::copy_file("/usr/bin/id", copy);
  const uid_t other = getuid() == 0 ? 65534 : 0;
  const bool owned = chown(copy.c_str(), other, static_cast<gid_t>(-1)) == 0;
  ASSERT_EQ(chmod(copy.c_str(), 04755), 0);
  ASSERT_EQ(create(""), PMCP_OK) << err_;
  const std::string me = std::to_string(getuid());
  EXPECT_EQ(sh("./suid-id -u"), me + "\n");  // the set-user-id bit is ignored
  if (!owned) {
    // Not root: Debian's set-user-id su(1) cannot become root either.
    if (access("/usr/bin/su", X_OK) == 0) {
      EXPECT_LACKS(sh("su -c id root </dev/null"), "uid=0");
    }
  }
  const std::string status = sh("grep -E '^(NoNewPrivs|CapEff)' /proc/self/status");
  EXPECT_HAS(status, "NoNewPrivs:\t1");
  EXPECT_HAS(status, "CapEff:\t0000000000000000");
  // The program itself runs fine.
  EXPECT_EQ(sh("id -u"), me + "\n");
}

// ---- system calls ----

TEST_F(SandboxTest, MountNamespacesAndKernelInterfacesAreRefused) {
  ASSERT_EQ(create(""), PMCP_OK) << err_;
  const std::string out = child({"syscalls"});
  for (const char* name : {"io_uring_setup", "bpf", "keyctl", "unshare", "mount", "ptrace", "setns",
                           "userfaultfd", "perf_event_open", "clone-newnet"})
    EXPECT_HAS(out, std::string(name) + ": Operation not permitted");
  EXPECT_HAS(out, "clone3: Function not implemented");  // libc falls back to clone
  EXPECT_HAS(out, "fork ok");
  EXPECT_HAS(sh("mount -t tmpfs none " + work_ + " || echo refused"), "refused");
  EXPECT_HAS(sh("unshare -r true || echo refused"), "refused");
  EXPECT_EQ(sh("mkdir sub && echo made"), "made\n");
}

TEST_F(SandboxTest, UnixSocketsToHostServicesAreRefused) {
  // A service of the host listening on a unix socket that the sandbox can see.
  const std::string path = work_ + "/service.sock";
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  ASSERT_EQ(create(""), PMCP_OK) << err_;
  EXPECT_EQ(child({"unix-connect", path}), "socket: Operation not permitted\n");
  EXPECT_EQ(child({"socketpair"}), "socketpair ok\n");
  close(fd);
}

TEST_F(SandboxTest, TerminalInjectionIsRefusedAndTheTerminalWorks) {
  ASSERT_EQ(create(""), PMCP_OK) << err_;
  ASSERT_EQ(spawn(1, {kChild, "tiocsti"}, true), PMCP_OK) << err_;
  ASSERT_TRUE(sink_.wait(1, 10s, [](const Result& r) { return r.exited; }));
  EXPECT_HAS(sink_.get(1).out, "tiocsti: Operation not permitted");
  ASSERT_EQ(spawn(2, {kChild, "tty"}, true), PMCP_OK) << err_;
  ASSERT_TRUE(sink_.wait(2, 10s, [](const Result& r) { return r.exited; }));
  EXPECT_HAS(sink_.get(2).out, "tty yes");
  EXPECT_HAS(sink_.get(2).out, "size 24 80");
  // The terminal has a name in the sandbox too: it is made in the sandbox's own devpts.
  ASSERT_EQ(spawn(3, {"/bin/sh", "-c", "tty; test -t 0 && echo interactive; ls -1 /dev/pts"}, true),
            PMCP_OK);
  ASSERT_TRUE(sink_.wait(3, 10s, [](const Result& r) { return r.exited; }));
  // "/dev/pts/N", "interactive", then the listing: N and ptmx, the sandbox's only terminal (the
  // two commands before it have ended), none of the host's.
  std::istringstream lines(sink_.get(3).out);
  std::vector<std::string> got;
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    got.push_back(line);
  }
  ASSERT_EQ(got.size(), 4u) << sink_.get(3).out;
  ASSERT_TRUE(got[0].starts_with("/dev/pts/")) << got[0];
  EXPECT_EQ(got[1], "interactive");
  std::vector<std::string> listing = {got[2], got[3]};
  std::sort(listing.begin(), listing.end());
  EXPECT_EQ(listing, (std::vector<std::string>{got[0].substr(9), "ptmx"}));
}

TEST_F(SandboxTest, ReplsAndEditorsRunSandboxed) {
  ASSERT_EQ(create(""), PMCP_OK) << err_;
  const auto type = [&](uint64_t id, const std::string& text) {
    ASSERT_EQ(ex_->write_stdin(ex_, id, reinterpret_cast<const uint8_t*>(text.data()), text.size(),
                               {err_, sizeof err_}),
              PMCP_OK)
        << err_;
  };
  if (access("/usr/bin/python3", X_OK) == 0) {
    ASSERT_EQ(spawn(1, {"/usr/bin/python3", "-q", "-i"}, true), PMCP_OK) << err_;
    ASSERT_TRUE(sink_.wait(1, 10s, [](const Result& r) {
      return r.out.find(">>> ") != std::string::npos;
    })) << sink_.get(1).out;
    const auto prompts = [](std::size_t n) {
      return [n](const Result& r) {
        std::size_t count = 0;
        for (std::size_t at = r.out.find(">>> "); at != std::string::npos;
             at = r.out.find(">>> ", at + 1))
          ++count;
        return count >= n;
      };
    };
    type(1, "print(6 * 7)\r");
    EXPECT_TRUE(sink_.wait(1, 10s, prompts(2)));
    EXPECT_HAS(sink_.get(1).out, "42");
    // Python notices a SIGINT that lands between printing the prompt and waiting for input only
    // at the next line (so would a person typing that fast): give it a moment first.
    std::this_thread::sleep_for(300ms);
    type(1, "\x03");  // ^C in the REPL interrupts the input line, and it goes on
    EXPECT_TRUE(sink_.wait(1, 10s, prompts(3))) << sink_.get(1).out;
    type(1, "exit()\r");
    ASSERT_TRUE(sink_.wait(1, 10s, [](const Result& r) { return r.exited; }));
    EXPECT_EQ(sink_.get(1).code, 0);
  }
  if (access("/usr/bin/vim", X_OK) == 0) {
    ASSERT_EQ(spawn(2, {"/usr/bin/vim", "-u", "NONE", "-N", "-n", "edited.txt"}, true), PMCP_OK)
        << err_;
    std::this_thread::sleep_for(500ms);
    ASSERT_EQ(ex_->resize(ex_, 2, 100, 30, {err_, sizeof err_}), PMCP_OK) << err_;
    type(2, "ihello from vim\x1b:wq\r");
    ASSERT_TRUE(sink_.wait(2, 10s, [](const Result& r) { return r.exited; })) << sink_.get(2).out;
    EXPECT_EQ(sink_.get(2).code, 0);
    std::string text;
    std::getline(std::ifstream(work_ + "/edited.txt"), text);
    EXPECT_EQ(text, "hello from vim");
  }
}

// ---- network ----

std::string network(const TestServer& server, const std::string& allowed) {
  const std::string port = std::to_string(server.port());
  (void)port;
  return R"("network": {"allowed_domains": [)" + allowed +
         R"(], "denied_domains": ["blocked.allowed.test"], "test_resolve": {)"
         R"("api.allowed.test": "127.0.0.1", "blocked.allowed.test": "127.0.0.1",)"
         R"("exact.test": "127.0.0.1", "wild.test": "127.0.0.1", "other.test": "127.0.0.1"}})";
}

TEST_F(SandboxTest, NoRouteOutExceptThroughTheProxy) {
  TestServer server;
  ASSERT_GT(server.port(), 0);
  ASSERT_EQ(create("", network(server, R"("exact.test")")), PMCP_OK) << err_;
  const std::string port = std::to_string(server.port());
  // Straight to the test server's address: the sandbox's loopback is its own.
  EXPECT_EQ(child({"connect", "127.0.0.1", port}), "connect: Connection refused\n");
  // Anywhere else: no route at all.
  EXPECT_EQ(child({"connect", "192.0.2.1", "80"}), "connect: Network is unreachable\n");
  EXPECT_EQ(server.hits(), 0);
  // Through the proxy, an allowed name gets there.
  const std::string out = child({"proxy-get", kProxyPort, "http://exact.test:" + port + "/"});
  EXPECT_HAS(out, "HTTP/1.1 200 OK");
  EXPECT_HAS(out, "hello from the test server");
  EXPECT_EQ(server.hits(), 1);
  // The environment points programs at it.
  const std::string env = child({"env"});
  EXPECT_HAS(env, "HTTP_PROXY=http://127.0.0.1:3128");
  EXPECT_HAS(env, "ALL_PROXY=socks5h://127.0.0.1:3128");
  EXPECT_HAS(env, "NO_PROXY=localhost,127.0.0.1,::1");
  if (access("/usr/bin/curl", X_OK) == 0) {  // a real client that reads the variables
    EXPECT_HAS(sh("curl -sS http://exact.test:" + port + "/"), "hello from the test server");
    EXPECT_HAS(sh("curl -sS --noproxy '*' http://127.0.0.1:" + port + "/"), "Failed to connect");
  }
}

TEST_F(SandboxTest, TheProxyRefusesWhatIsNotAllowed) {
  TestServer server;
  ASSERT_EQ(create("", network(server, R"("*.allowed.test")")), PMCP_OK) << err_;
  const std::string port = std::to_string(server.port());
  // Not in allowed_domains.
  std::string out = child({"proxy-get", kProxyPort, "http://other.test:" + port + "/"});
  EXPECT_HAS(out, "HTTP/1.1 403 Forbidden");
  // Allowed by the wildcard, denied by denied_domains.
  out = child({"proxy-get", kProxyPort, "http://blocked.allowed.test:" + port + "/"});
  EXPECT_HAS(out, "HTTP/1.1 403 Forbidden");
  // Allowed by a wildcard, but it resolves to a loopback address: only an exact entry may.
  out = child({"proxy-get", kProxyPort, "http://api.allowed.test:" + port + "/"});
  EXPECT_HAS(out, "HTTP/1.1 403 Forbidden");
  EXPECT_HAS(out, "loopback");
  // A raw IP address is a destination like any other.
  out = child({"proxy-get", kProxyPort, "http://127.0.0.1:" + port + "/"});
  EXPECT_HAS(out, "HTTP/1.1 403 Forbidden");
  EXPECT_EQ(server.hits(), 0);
}

TEST_F(SandboxTest, AnEmptyAllowedListMeansNoNetworkAtAll) {
  TestServer server;
  ASSERT_EQ(create("", R"("network": {"allowed_domains": []})"), PMCP_OK) << err_;
  EXPECT_EQ(child({"connect", "127.0.0.1", kProxyPort}), "connect: Connection refused\n");
  EXPECT_LACKS(child({"env"}), "PROXY");
  EXPECT_EQ(child({"connect", "192.0.2.1", "80"}), "connect: Network is unreachable\n");
}

// ---- one sandbox for all the commands of an executor ----

TEST_F(SandboxTest, CommandsShareTheSandboxsLoopbackAndTmp) {
  ASSERT_EQ(create(""), PMCP_OK) << err_;
  // A server that one command starts ...
  ASSERT_EQ(spawn(100, {kChild, "listen", "4711"}), PMCP_OK) << err_;
  ASSERT_TRUE(sink_.wait(100, 10s, [](const Result& r) {
    return r.out.find("listen") != std::string::npos || r.exited;
  }));
  ASSERT_EQ(sink_.get(100).out, "listening\n");
  // ... the next one reaches, on the sandbox's own loopback.
  EXPECT_EQ(child({"connect", "127.0.0.1", "4711"}), "connected\n");
  EXPECT_EQ(child({"connect", "127.0.0.1", "4712"}), "connect: Connection refused\n");
  // What one writes to /tmp, the next reads; the host's /tmp does not see it.
  const std::string probe = "/tmp/pmcp-shared-" + std::filesystem::path(work_).filename().string();
  EXPECT_EQ(sh("echo kept > " + probe), "");
  EXPECT_EQ(sh("cat " + probe), "kept\n");
  if (std::filesystem::current_path() != "/tmp") {
    EXPECT_FALSE(std::filesystem::exists(probe));
  } else {
    std::filesystem::remove(probe);  // the server's directory, writable: it is the host's /tmp
  }
  ASSERT_EQ(ex_->signal(ex_, 100, SIGKILL, {err_, sizeof err_}), PMCP_OK) << err_;
  ASSERT_TRUE(sink_.wait(100, 10s, [](const Result& r) { return r.exited; }));
  EXPECT_EQ(sink_.get(100).sig, SIGKILL);
}

// The policy's paths are resolved at each spawn: a deny_write path that appears later protects
// from the next command on (which then runs in a new sandbox).
TEST_F(SandboxTest, ADeniedPathThatAppearsLaterIsProtectedFromTheNextCommand) {
  {
    std::lock_guard<std::mutex> lock(g_log_mu);
    g_log.clear();
  }
  ASSERT_EQ(create(R"("deny_write": [")" + work_ + "/later\"]"), PMCP_OK) << err_;
  EXPECT_EQ(sh("mkdir later && echo first > later/f && cat later/f"), "first\n");
  EXPECT_HAS(sh("echo second > later/f"), "Read-only file system");
  std::string text;
  std::getline(std::ifstream(work_ + "/later/f"), text);
  EXPECT_EQ(text, "first");
  std::lock_guard<std::mutex> lock(g_log_mu);
  EXPECT_HAS(g_log, "new sandbox");
}

// Every live process: its parent, name (comm) and state, from /proc/PID/stat.
struct ProcEntry {
  long ppid = 0;
  std::string comm;
  char state = 0;
};

std::map<long, ProcEntry> process_table() {
  std::map<long, ProcEntry> all;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const std::size_t open = line.find('(');
    const std::size_t close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    ProcEntry p;
    p.comm = line.substr(open + 1, close - open - 1);
    if (std::sscanf(line.c_str() + close + 1, " %c %ld", &p.state, &p.ppid) != 2) continue;
    all[std::stol(name)] = p;
  }
  return all;
}

// The bubblewraps that this test process started (never those of another test).
std::vector<pid_t> bubblewraps() {
  std::vector<pid_t> out;
  for (const auto& [pid, p] : process_table()) {
    if (p.comm == "bwrap" && p.ppid == getpid() && p.state != 'Z')
      out.push_back(static_cast<pid_t>(pid));
  }
  return out;
}

TEST_F(SandboxTest, ASandboxThatWasKilledIsReplacedAtTheNextCommand) {
  ASSERT_EQ(create(""), PMCP_OK) << err_;
  EXPECT_EQ(sh("echo one"), "one\n");
  const std::vector<pid_t> before = bubblewraps();
  ASSERT_EQ(before.size(), 1u);
  kill(before[0], SIGKILL);
  // bubblewrap takes the sandbox down with it (--die-with-parent); then a new one starts.
  for (int i = 0; i < 200 && !bubblewraps().empty(); ++i) std::this_thread::sleep_for(10ms);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(sh("echo two"), "two\n");
  const std::vector<pid_t> after = bubblewraps();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_NE(after[0], before[0]);
}

// The live processes named `comm` below this test process (never those of another test that
// runs at the same time).
std::vector<pid_t> descendants_named(const std::string& comm) {
  const std::map<long, ProcEntry> all = process_table();
  std::vector<pid_t> out;
  for (const auto& [pid, p] : all) {
    if (p.comm != comm || p.state == 'Z') continue;
    long up = p.ppid;
    for (int hops = 0; up > 1 && up != getpid() && hops < 64; ++hops) {
      auto it = all.find(up);
      if (it == all.end()) break;
      up = it->second.ppid;
    }
    if (up == getpid()) out.push_back(static_cast<pid_t>(pid));
  }
  return out;
}

// The bridge's end retires the sandbox: its supervisor takes no more commands and lets the
// spare launcher it keeps forked for the next one go (it has none yet). The whole sandbox ends,
// and the next command starts in a new one.
TEST_F(SandboxTest, ASandboxWhoseBridgeDiedEndsWithItsSpareAndIsReplaced) {
  ASSERT_EQ(create(""), PMCP_OK) << err_;
  EXPECT_EQ(sh("echo one"), "one\n");
  const std::vector<pid_t> before = bubblewraps();
  ASSERT_EQ(before.size(), 1u);
  const std::vector<pid_t> bridges = descendants_named("pmcp-net-bridge");
  ASSERT_EQ(bridges.size(), 1u);
  // The next spare is forked after a command is handed over.
  bool spare = false;
  for (int i = 0; i < 200 && !spare; ++i) {
    spare = descendants_named("pmcp-spare").size() == 1;
    if (!spare) std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(spare) << descendants_named("pmcp-spare").size() << " spare launchers";
  for (pid_t p : bridges) kill(p, SIGKILL);
  // The supervisor retires; with no command running it ends, and bubblewrap with it.
  bool gone = false;
  for (int i = 0; i < 300 && !gone; ++i) {
    gone = bubblewraps().empty();
    if (!gone) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(gone) << "the retired sandbox is still there";
  EXPECT_TRUE(descendants_named("pmcp-spare").empty());
  EXPECT_EQ(sh("echo two"), "two\n");
  const std::vector<pid_t> after = bubblewraps();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_NE(after[0], before[0]);
}

// ---- fail closed ----

TEST_F(SandboxTest, WithoutBubblewrapEverySpawnIsRefusedWithTheReason) {
  {
    std::lock_guard<std::mutex> lock(g_log_mu);
    g_log.clear();
  }
  ASSERT_EQ(create("", R"("sandbox": {"bwrap": "/nonexistent/bwrap"})"), PMCP_OK) << err_;
  {
    std::lock_guard<std::mutex> lock(g_log_mu);
    EXPECT_HAS(g_log, "/nonexistent/bwrap");  // said at start-up
  }
  EXPECT_EQ(spawn(1, {kChild, "echo", "never"}), PMCP_ERR_UNAVAILABLE);
  std::string message = err_;
  EXPECT_HAS(message, "/nonexistent/bwrap");
  EXPECT_HAS(message, "[host.sandbox] enabled = false");
  ex_->destroy(ex_);
  ex_ = nullptr;

  // Not in PATH.
  const std::string saved = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
  setenv("PATH", work_.c_str(), 1);
  const int32_t rc = create("");
  setenv("PATH", saved.c_str(), 1);
  ASSERT_EQ(rc, PMCP_OK) << err_;
  EXPECT_EQ(spawn(2, {kChild, "echo", "never"}), PMCP_ERR_UNAVAILABLE);
  message = err_;
  EXPECT_HAS(message, "bubblewrap");
  EXPECT_HAS(message, "PATH");
  EXPECT_HAS(message, "[host.sandbox] enabled = false");
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(sink_.get(2).spawned);

  // A bubblewrap that does not work (here: one that always fails) is just as unavailable.
  ex_->destroy(ex_);
  ex_ = nullptr;
  ASSERT_EQ(create("", R"("sandbox": {"bwrap": "/bin/false"})"), PMCP_OK) << err_;
  EXPECT_EQ(spawn(3, {kChild, "echo", "never"}), PMCP_ERR_UNAVAILABLE);
  EXPECT_HAS(std::string(err_), "the sandbox did not start (bubblewrap exited with status 1)");
  {
    std::lock_guard<std::mutex> lock(g_log_mu);
    EXPECT_HAS(g_log, "the sandbox did not start");  // said in the log too, once it was known
  }
}

// The trial sandbox runs beside start-up: creating the executor does not wait for it, the first
// spawn does, and a sandbox that turns out broken still refuses that spawn.
TEST_F(SandboxTest, StartUpDoesNotWaitForTheTrialSandboxButTheFirstSpawnDoes) {
  const std::string slow = work_ + "/slow-bwrap";
  {
    std::ofstream script(slow);
    script << "#!/bin/sh\nsleep 2\necho slow bubblewrap gave up\nexit 1\n";
  }
  ASSERT_EQ(chmod(slow.c_str(), 0755), 0);
  const auto t = std::chrono::steady_clock::now();
  ASSERT_EQ(create("", R"("sandbox": {"bwrap": ")" + slow + R"("})"), PMCP_OK) << err_;
  EXPECT_LT(std::chrono::steady_clock::now() - t, 1500ms) << "creation waited for the probe";
  EXPECT_EQ(spawn(1, {kChild, "echo", "never"}), PMCP_ERR_UNAVAILABLE);
  EXPECT_GE(std::chrono::steady_clock::now() - t, 2s) << "the spawn did not wait for the probe";
  EXPECT_HAS(std::string(err_), "slow bubblewrap gave up");
  EXPECT_HAS(std::string(err_), "[host.sandbox] enabled = false");
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(sink_.get(1).spawned);

  // Destroyed while the probe still runs: it waits for the probe, then ends cleanly.
  ex_->destroy(ex_);
  ex_ = nullptr;
  ASSERT_EQ(create("", R"("sandbox": {"bwrap": ")" + slow + R"("})"), PMCP_OK) << err_;
  ex_->destroy(ex_);
  ex_ = nullptr;
}

}  // namespace
