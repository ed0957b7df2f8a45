// Integration tests of the docker executor plugin (plugins/docker) against a real Docker
// engine: the plugin is loaded with dlopen and driven through the C ABI of executor.h. Needs a
// running dockerd and the local test image made by scripts/docker-test-env.sh; without them
// the tests fail and say so. Containers and volumes get unique names and are removed.
#include <arpa/inet.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pmcp/executor.h"
#include "pmcp/plugin.h"

namespace {

using namespace std::chrono_literals;

const std::string kPluginDir = PMCP_PLUGIN_DIR;

std::string test_image() {
  const char* env = std::getenv("PMCP_TEST_DOCKER_IMAGE");
  return env != nullptr && env[0] != '\0' ? env : "pmcp-test-busybox:latest";
}

// Runs a shell command on the host; returns its stdout (stderr folded in) and exit status.
std::string run(const std::string& command, int* status = nullptr) {
  std::string out;
  FILE* f = popen((command + " 2>&1").c_str(), "r");
  if (f == nullptr) return out;
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) out.append(buf.data(), n);
  const int st = pclose(f);
  if (status != nullptr) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

std::string docker_cli() { return "DOCKER_HOST= /usr/bin/docker"; }

std::string unique(const std::string& what) {
  static int counter = 0;
  return "pmcp-test-" + what + "-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
}

void host_log(const pmcp_host*, pmcp_log_level level, pmcp_str message) {
  std::fprintf(stderr, "[docker plugin, level %d] %.*s\n", static_cast<int>(level),
               static_cast<int>(message.size), message.data);
}
int32_t host_post(const pmcp_host*, void (*)(void*), void*) { return PMCP_ERR_STATE; }
const void* host_extension(const pmcp_host*, const char*) { return nullptr; }

pmcp_host g_host{
    sizeof(pmcp_host), PMCP_ABI_VERSION_MAJOR, PMCP_ABI_VERSION_MINOR, nullptr, &host_log,
    &host_post,        &host_extension};

struct Record {
  int spawned = 0;
  int32_t spawn_status = 1;
  int64_t pid = 0;
  std::string spawn_message;
  std::string out;
  std::string err;
  int exits = 0;
  int32_t code = 0;
  int32_t sig = 0;
  std::string exit_message;
  std::vector<std::string> violations;
};

// Records every event and checks the order rules of executor.h as they happen.
class Recorder {
 public:
  Recorder() {
    sink.struct_size = sizeof sink;
    sink.ctx = this;
    sink.on_spawned = &Recorder::on_spawned;
    sink.on_output = &Recorder::on_output;
    sink.on_exit = &Recorder::on_exit;
  }
  pmcp_executor_sink sink{};

  template <class Pred>
  bool wait(std::chrono::milliseconds timeout, Pred pred) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return pred(records_); });
  }
  bool wait_spawned(uint64_t id) {
    return wait(30s, [id](auto& r) { return r[id].spawned > 0; });
  }
  bool wait_exit(uint64_t id, std::chrono::milliseconds timeout = 30s) {
    return wait(timeout, [id](auto& r) { return r[id].exits > 0; });
  }
  bool wait_output(uint64_t id, const std::string& needle) {
    return wait(30s, [&](auto& r) { return r[id].out.find(needle) != std::string::npos; });
  }
  Record get(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    return records_[id];
  }
  std::vector<std::string> violations() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> all;
    for (auto& [id, r] : records_)
      for (auto& v : r.violations) all.push_back("process " + std::to_string(id) + ": " + v);
    return all;
  }

 private:
  static Recorder& self(void* ctx) { return *static_cast<Recorder*>(ctx); }
  static void on_spawned(void* ctx, uint64_t id, int32_t status, int64_t pid, pmcp_str msg) {
    Recorder& s = self(ctx);
    std::lock_guard<std::mutex> lock(s.mu_);
    Record& r = s.records_[id];
    if (r.spawned > 0) r.violations.push_back("second on_spawned");
    if (r.exits > 0 || !r.out.empty() || !r.err.empty())
      r.violations.push_back("on_spawned after other events");
    ++r.spawned;
    r.spawn_status = status;
    r.pid = pid;
    r.spawn_message.assign(msg.data != nullptr ? msg.data : "", msg.size);
    s.cv_.notify_all();
  }
  static void on_output(void* ctx, uint64_t id, int32_t stream, const uint8_t* data,
                        std::size_t size) {
    Recorder& s = self(ctx);
    std::lock_guard<std::mutex> lock(s.mu_);
    Record& r = s.records_[id];
    if (r.spawned == 0 || r.spawn_status != PMCP_OK)
      r.violations.push_back("output before on_spawned(OK)");
    if (r.exits > 0) r.violations.push_back("output after on_exit");
    (stream == PMCP_STREAM_STDERR ? r.err : r.out)
        .append(reinterpret_cast<const char*>(data), size);
    s.cv_.notify_all();
  }
  static void on_exit(void* ctx, uint64_t id, int32_t code, int32_t sig, pmcp_str msg) {
    Recorder& s = self(ctx);
    std::lock_guard<std::mutex> lock(s.mu_);
    Record& r = s.records_[id];
    if (r.spawned == 0 || r.spawn_status != PMCP_OK) r.violations.push_back("exit without start");
    if (r.exits > 0) r.violations.push_back("second on_exit");
    ++r.exits;
    r.code = code;
    r.sig = sig;
    r.exit_message.assign(msg.data != nullptr ? msg.data : "", msg.size);
    s.cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Record> records_;
};

struct Options {
  std::vector<std::string> env = {"PATH=/usr/local/bin:/usr/bin:/bin"};
  std::string cwd;
  bool pty = false;
  uint16_t cols = 120;
  uint16_t rows = 30;
};

const pmcp_executor_factory* g_factory = nullptr;

// Loads the plugin once and checks that the engine and the test image are there.
void load_plugin() {
  if (g_factory != nullptr) return;
  void* handle = dlopen((kPluginDir + "/pmcp-docker.so").c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr) << dlerror();
  auto* entry = static_cast<const pmcp_plugin_entry*>(dlsym(handle, PMCP_ENTRY_SYMBOL));
  ASSERT_NE(entry, nullptr);
  ASSERT_STREQ(entry->id, "docker");
  ASSERT_NE(entry->init(&g_host), 0);
  g_factory =
      static_cast<const pmcp_executor_factory*>(entry->get_factory(PMCP_EXECUTOR_FACTORY_ID));
  ASSERT_NE(g_factory, nullptr);
  int status = 0;
  const std::string out = run(docker_cli() + " image inspect " + test_image(), &status);
  ASSERT_EQ(status, 0) << "the Docker engine or the test image " << test_image()
                       << " is missing; run scripts/docker-test-env.sh first:\n"
                       << out;
}

// One executor instance with its own container and volume, removed afterwards.
struct Instance {
  Recorder rec;
  pmcp_executor* ex = nullptr;
  char err[1024] = {};
  std::string container = unique("ctr");
  std::string volume = unique("vol");
  std::string image = test_image();

  std::string config(const std::string& extra = "") const {
    return R"({"host":"unix:///var/run/docker.sock","image":")" + image + R"(","container":")" +
           container + R"(","volume":")" + volume + "\"" + extra + "}";
  }
  int32_t create(const std::string& json) {
    err[0] = '\0';
    return g_factory->create(g_factory, &g_host, pmcp_str{json.data(), json.size()}, &rec.sink, &ex,
                             {err, sizeof err});
  }
  void destroy() {
    if (ex != nullptr) ex->destroy(ex);
    ex = nullptr;
  }
  ~Instance() {
    destroy();
    run(docker_cli() + " rm -f " + container);
    run(docker_cli() + " volume rm -f " + volume);
  }

  int32_t spawn(uint64_t id, const std::string& command, const Options& o = {}) {
    std::vector<std::string> argv = {"/bin/sh", "-c", command};
    std::vector<const char*> args;
    for (const auto& a : argv) args.push_back(a.c_str());
    std::vector<const char*> env;
    for (const auto& e : o.env) env.push_back(e.c_str());
    pmcp_spawn_options so{};
    so.struct_size = sizeof so;
    so.process_id = id;
    so.argv = args.data();
    so.argc = args.size();
    so.envp = env.data();
    so.envc = env.size();
    so.cwd = pmcp_str{o.cwd.data(), o.cwd.size()};
    so.flags = o.pty ? PMCP_SPAWN_PTY : 0;
    so.cols = o.cols;
    so.rows = o.rows;
    err[0] = '\0';
    return ex->spawn(ex, &so, {err, sizeof err});
  }
  // Spawns, waits for the end and returns the record.
  Record finish(uint64_t id, const std::string& command, const Options& o = {}) {
    EXPECT_EQ(spawn(id, command, o), PMCP_OK) << err;
    EXPECT_TRUE(rec.wait_spawned(id)) << "no on_spawned for: " << command;
    if (rec.get(id).spawn_status != PMCP_OK) {
      ADD_FAILURE() << "cannot start '" << command << "': " << rec.get(id).spawn_message;
      return rec.get(id);
    }
    EXPECT_TRUE(rec.wait_exit(id)) << "no exit of: " << command;
    return rec.get(id);
  }
  int32_t write(uint64_t id, const std::string& bytes) {
    return ex->write_stdin(ex, id, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                           {err, sizeof err});
  }
  // What runs in the container (docker top needs no ps inside it).
  std::string top() { return run(docker_cli() + " top " + container + " -o pid,args"); }
};

class DockerExecutorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    load_plugin();
    if (g_factory == nullptr) return;
    inst_ = new Instance();
    const int32_t rc = inst_->create(inst_->config());
    if (rc != PMCP_OK) {
      failure_ = inst_->err;
      delete inst_;
      inst_ = nullptr;
    }
  }
  static void TearDownTestSuite() {
    delete inst_;
    inst_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(g_factory, nullptr);
    ASSERT_NE(inst_, nullptr) << "cannot create the docker executor: " << failure_;
  }
  void TearDown() override {
    if (inst_ != nullptr)
      for (const std::string& v : inst_->rec.violations()) ADD_FAILURE() << v;
  }
  static uint64_t next_id() { return ++id_; }

  static Instance* inst_;
  static std::string failure_;
  static uint64_t id_;
};

Instance* DockerExecutorTest::inst_ = nullptr;
std::string DockerExecutorTest::failure_;
uint64_t DockerExecutorTest::id_ = 0;

TEST_F(DockerExecutorTest, EchoExitCodeAndStreams) {
  Instance& in = *inst_;
  EXPECT_STREQ(in.ex->id_prefix, "docker");
  EXPECT_STREQ(in.ex->default_cwd, "/home/agent");
  const uint64_t a = next_id();
  Record r = in.finish(a, "echo hello");
  EXPECT_EQ(r.spawn_status, PMCP_OK) << r.spawn_message;
  EXPECT_GT(r.pid, 1);
  EXPECT_EQ(r.out, "hello\n");
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.sig, 0);
  EXPECT_EQ(r.exit_message, "");

  const uint64_t b = next_id();
  r = in.finish(b, "echo out; echo err >&2; exit 3");
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_EQ(r.code, 3);
}

TEST_F(DockerExecutorTest, CwdEnvAndBadInputs) {
  Instance& in = *inst_;
  Options o;
  Record r = in.finish(next_id(), "pwd", o);
  EXPECT_EQ(r.out, "/home/agent\n");
  o.cwd = "/tmp";
  o.env.push_back("GREETING=hi there");
  r = in.finish(next_id(), "pwd; echo \"$GREETING\"", o);
  EXPECT_EQ(r.out, "/tmp\nhi there\n");

  const uint64_t bad_cwd = next_id();
  o.cwd = "/no/such/dir";
  ASSERT_EQ(in.spawn(bad_cwd, "pwd", o), PMCP_OK);
  ASSERT_TRUE(in.rec.wait_spawned(bad_cwd));
  r = in.rec.get(bad_cwd);
  EXPECT_NE(r.spawn_status, PMCP_OK);
  EXPECT_NE(r.spawn_message.find("/no/such/dir"), std::string::npos) << r.spawn_message;

  // Unknown and finished ids, out-of-range signals, resize of a pipe, close of a tty.
  char err[256];
  EXPECT_EQ(in.ex->signal(in.ex, 999999, 15, {err, sizeof err}), PMCP_ERR_NOT_FOUND);
  EXPECT_EQ(in.ex->signal(in.ex, 1, 15, {err, sizeof err}), PMCP_ERR_STATE);
  const uint64_t pipe = next_id();
  ASSERT_EQ(in.spawn(pipe, "sleep 30"), PMCP_OK);
  EXPECT_EQ(in.ex->resize(in.ex, pipe, 80, 24, {err, sizeof err}), PMCP_ERR_UNSUPPORTED);
  EXPECT_EQ(in.ex->signal(in.ex, pipe, 0, {err, sizeof err}), PMCP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(in.ex->signal(in.ex, pipe, 9, {err, sizeof err}), PMCP_OK);
  ASSERT_TRUE(in.rec.wait_exit(pipe));
  EXPECT_EQ(in.rec.get(pipe).sig, 9);
  EXPECT_EQ(in.ex->signal(in.ex, pipe, 9, {err, sizeof err}), PMCP_ERR_STATE);
}

TEST_F(DockerExecutorTest, StdinToAPipeAndEof) {
  Instance& in = *inst_;
  const uint64_t id = next_id();
  ASSERT_EQ(in.spawn(id, "cat; echo done"), PMCP_OK) << in.err;
  ASSERT_EQ(in.write(id, "line one\n"), PMCP_OK) << in.err;
  ASSERT_TRUE(in.rec.wait_output(id, "line one\n"));
  ASSERT_EQ(in.write(id, "two"), PMCP_OK);
  char err[256];
  ASSERT_EQ(in.ex->close_stdin(in.ex, id, {err, sizeof err}), PMCP_OK) << err;
  ASSERT_TRUE(in.rec.wait_exit(id));
  const Record r = in.rec.get(id);
  EXPECT_EQ(r.out, "line one\ntwodone\n");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(in.write(id, "late"), PMCP_ERR_STATE);
}

TEST_F(DockerExecutorTest, TerminalSizeResizeAndCtrlC) {
  Instance& in = *inst_;
  Options o;
  o.pty = true;
  o.env.push_back("TERM=xterm");
  Record r = in.finish(next_id(), "stty size; test -t 0 && echo tty", o);
  EXPECT_EQ(r.out, "30 120\r\ntty\r\n");
  EXPECT_EQ(r.err, "");

  // Each line typed prints the size; the resize is asynchronous, so type until it shows.
  const uint64_t id = next_id();
  ASSERT_EQ(in.spawn(id, "echo ready; while read line; do stty size; done", o), PMCP_OK);
  ASSERT_TRUE(in.rec.wait_output(id, "ready"));
  char err[256];
  EXPECT_EQ(in.ex->close_stdin(in.ex, id, {err, sizeof err}), PMCP_ERR_UNSUPPORTED);
  auto type_until = [&](const std::string& size) {
    for (int i = 0; i < 50; ++i) {
      if (in.write(id, "\r") != PMCP_OK) return false;
      if (in.rec.wait(300ms, [&](auto& r) { return r[id].out.find(size) != std::string::npos; }))
        return true;
    }
    return false;
  };
  ASSERT_EQ(in.ex->resize(in.ex, id, 100, 40, {err, sizeof err}), PMCP_OK) << err;
  EXPECT_TRUE(type_until("40 100")) << in.rec.get(id).out;
  ASSERT_EQ(in.ex->resize(in.ex, id, 90, 20, {err, sizeof err}), PMCP_OK) << err;
  EXPECT_TRUE(type_until("20 90")) << in.rec.get(id).out;
  ASSERT_EQ(in.ex->signal(in.ex, id, 9, {err, sizeof err}), PMCP_OK) << err;
  ASSERT_TRUE(in.rec.wait_exit(id));

  // ^C reaches the foreground process group through the terminal.
  const uint64_t c = next_id();
  ASSERT_EQ(in.spawn(c, "echo go; sleep 300", o), PMCP_OK);
  ASSERT_TRUE(in.rec.wait_output(c, "go"));
  ASSERT_EQ(in.write(c, "\x03"), PMCP_OK);
  ASSERT_TRUE(in.rec.wait_exit(c, 15s));
  r = in.rec.get(c);
  EXPECT_EQ(r.code, -1);
  EXPECT_EQ(r.sig, 2);
}

TEST_F(DockerExecutorTest, ViWritesAFile) {
  Instance& in = *inst_;
  Options o;
  o.pty = true;
  o.env.push_back("TERM=xterm");
  const uint64_t id = next_id();
  ASSERT_EQ(in.spawn(id, "vi /home/agent/vi-test.txt", o), PMCP_OK);
  ASSERT_TRUE(in.rec.wait_output(id, "~"));  // the empty buffer is on the screen
  ASSERT_EQ(in.write(id, "ihello from vi\x1b"), PMCP_OK);
  std::this_thread::sleep_for(1s);  // a lone ESC, not the start of a key sequence
  ASSERT_EQ(in.write(id, ":wq\r"), PMCP_OK);
  ASSERT_TRUE(in.rec.wait_exit(id)) << in.rec.get(id).out;
  EXPECT_EQ(in.rec.get(id).code, 0);
  const Record r = in.finish(next_id(), "cat /home/agent/vi-test.txt; rm /home/agent/vi-test.txt");
  EXPECT_EQ(r.out, "hello from vi\n");
}

TEST_F(DockerExecutorTest, KillReachesTheWholeProcessGroup) {
  Instance& in = *inst_;
  const uint64_t id = next_id();
  ASSERT_EQ(in.spawn(id, "sleep 4101 & sleep 4102 & echo started; wait"), PMCP_OK);
  ASSERT_TRUE(in.rec.wait_output(id, "started"));
  EXPECT_NE(in.top().find("sleep 4102"), std::string::npos) << in.top();
  char err[256];
  ASSERT_EQ(in.ex->signal(in.ex, id, 15, {err, sizeof err}), PMCP_OK) << err;
  ASSERT_TRUE(in.rec.wait_exit(id));
  const Record r = in.rec.get(id);
  EXPECT_EQ(r.code, -1);
  EXPECT_EQ(r.sig, 15);
  const std::string ps = in.finish(next_id(), "ps -o pid,args").out;
  EXPECT_EQ(ps.find("sleep 410"), std::string::npos) << ps;
}

TEST_F(DockerExecutorTest, LeftoversOfAFinishedCommandAreKilled) {
  Instance& in = *inst_;
  const Record r = in.finish(next_id(), "sleep 4201 >/dev/null 2>&1 & echo bye");
  EXPECT_EQ(r.out, "bye\n");
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = in.top().find("sleep 4201") == std::string::npos;
    if (!gone) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(gone) << in.top();
}

TEST_F(DockerExecutorTest, ContainerLimits) {
  Instance& in = *inst_;
  const std::string fmt =
      "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} "
      "{{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}} {{.HostConfig.Privileged}} "
      "{{json .HostConfig.Tmpfs}} {{.HostConfig.NetworkMode}} {{.Config.WorkingDir}}";
  const std::string out = run(docker_cli() + " inspect -f '" + fmt + "' " + in.container);
  EXPECT_NE(out.find("536870912 1000000000 4096 [ALL] [no-new-privileges] false"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\"/tmp\":\"rw,noexec,nosuid,size=100m\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"/var/tmp\":\"rw,noexec,nosuid,size=100m\""), std::string::npos) << out;
  EXPECT_NE(out.find("bridge /home/agent"), std::string::npos) << out;
  const std::string mounts = run(docker_cli() +
                                 " inspect -f '{{range .Mounts}}{{.Name}} "
                                 "{{.Destination}}{{end}}' " +
                                 in.container);
  EXPECT_NE(mounts.find(in.volume + " /home/agent"), std::string::npos) << mounts;
}

// ---- instances of their own ----

// Forwards loopback TCP connections to the engine's unix socket, half-closes included, so that
// the tcp:// client path can be tested without reconfiguring dockerd.
class TcpForwarder {
 public:
  TcpForwarder() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(listen_fd_, 16);
    thread_ = std::thread([this] { accept_loop(); });
  }
  ~TcpForwarder() {
    stop_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    close(listen_fd_);
    for (auto& t : pumps_) t.join();
  }
  int port() const { return port_; }

 private:
  void accept_loop() {
    for (;;) {
      const int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) return;
      const int engine = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un ua{};
      ua.sun_family = AF_UNIX;
      std::snprintf(ua.sun_path, sizeof ua.sun_path, "/var/run/docker.sock");
      if (connect(engine, reinterpret_cast<sockaddr*>(&ua), sizeof ua) != 0) {
        close(client);
        close(engine);
        continue;
      }
      pumps_.emplace_back([this, client, engine] { pump(client, engine); });
    }
  }
  // Copies both ways until both directions ended; an EOF becomes shutdown(SHUT_WR).
  void pump(int a, int b) {
    bool open_ab = true, open_ba = true;
    char buf[65536];
    while ((open_ab || open_ba) && !stop_) {
      pollfd fds[2] = {{a, static_cast<short>(open_ab ? POLLIN : 0), 0},
                       {b, static_cast<short>(open_ba ? POLLIN : 0), 0}};
      if (poll(fds, 2, 200) <= 0) continue;
      for (int i = 0; i < 2; ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const int from = i == 0 ? a : b, to = i == 0 ? b : a;
        const ssize_t n = read(from, buf, sizeof buf);
        if (n <= 0) {
          shutdown(to, SHUT_WR);
          (i == 0 ? open_ab : open_ba) = false;
          continue;
        }
        for (ssize_t off = 0; off < n;) {
          const ssize_t w = write(to, buf + off, static_cast<std::size_t>(n - off));
          if (w <= 0) break;
          off += w;
        }
      }
    }
    close(a);
    close(b);
  }
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<std::thread> pumps_;
};

class DockerSetupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    load_plugin();
    ASSERT_NE(g_factory, nullptr);
  }
};

TEST_F(DockerSetupTest, DestroyRemovesTheContainerKeepsTheVolumeAndKillsProcesses) {
  Instance in;
  const std::string limits = R"(,"memory":"256m","cpus":0.5,"pids_limit":100,"network":"none")";
  ASSERT_EQ(in.create(in.config(limits)), PMCP_OK) << in.err;
  const std::string out = run(docker_cli() +
                              " inspect -f '{{.HostConfig.Memory}} "
                              "{{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} "
                              "{{.HostConfig.NetworkMode}}' " +
                              in.container);
  EXPECT_EQ(out, "268435456 500000000 100 none\n");
  ASSERT_EQ(in.spawn(1, "echo x; sleep 4301"), PMCP_OK);
  ASSERT_TRUE(in.rec.wait_output(1, "x"));
  in.destroy();
  Record r = in.rec.get(1);
  EXPECT_EQ(r.exits, 1);
  int status = 0;
  run(docker_cli() + " container inspect " + in.container, &status);
  EXPECT_NE(status, 0) << "the container we created is still there";
  run(docker_cli() + " volume inspect " + in.volume, &status);
  EXPECT_EQ(status, 0) << "the volume was removed";
}

TEST_F(DockerSetupTest, UseExistingLeavesTheContainerAsItWas) {
  Instance in;
  int status = 0;
  const std::string id =
      run(docker_cli() + " run -d --name " + in.container + " " + test_image() + " sleep infinity",
          &status);
  ASSERT_EQ(status, 0) << id;
  run(docker_cli() + " stop -t 0 " + in.container);
  const std::string before = run(docker_cli() +
                                 " inspect -f '{{.Id}} {{.Created}} "
                                 "{{.HostConfig.Memory}} {{.HostConfig.CapDrop}}' " +
                                 in.container);
  ASSERT_EQ(in.create(R"({"host":"unix:///var/run/docker.sock","container":")" + in.container +
                      R"(","use_existing":true})"),
            PMCP_OK)
      << in.err;
  EXPECT_EQ(run(docker_cli() + " inspect -f '{{.State.Running}}' " + in.container), "true\n");
  EXPECT_STREQ(in.ex->default_cwd, "/");  // the container's own working directory
  Record r = in.finish(1, "echo inside; pwd");
  EXPECT_EQ(r.out, "inside\n/\n");
  ASSERT_EQ(in.spawn(2, "echo x; sleep 4401"), PMCP_OK);
  ASSERT_TRUE(in.rec.wait_output(2, "x"));
  in.destroy();
  const std::string after = run(docker_cli() +
                                " inspect -f '{{.Id}} {{.Created}} "
                                "{{.HostConfig.Memory}} {{.HostConfig.CapDrop}}' " +
                                in.container);
  EXPECT_EQ(before, after);
  EXPECT_EQ(run(docker_cli() + " inspect -f '{{.State.Running}}' " + in.container), "true\n");
  EXPECT_EQ(run(docker_cli() + " top " + in.container).find("sleep 4401"), std::string::npos);
}

// What an engine restart leaves behind (a stopped container) or a removed container: the next
// spawn brings the container back and runs.
TEST_F(DockerSetupTest, StoppedOrRemovedContainerComesBackAtTheNextSpawn) {
  Instance in;
  ASSERT_EQ(in.create(in.config()), PMCP_OK) << in.err;
  EXPECT_EQ(in.finish(1, "echo one").out, "one\n");
  run(docker_cli() + " stop -t 0 " + in.container);
  EXPECT_EQ(in.finish(2, "echo two").out, "two\n");
  run(docker_cli() + " rm -f " + in.container);
  EXPECT_EQ(in.finish(3, "echo three").out, "three\n");
  in.destroy();
  int status = 0;
  run(docker_cli() + " container inspect " + in.container, &status);
  EXPECT_NE(status, 0) << "the recreated container was not removed";
}

TEST_F(DockerSetupTest, TcpEngineAddress) {
  TcpForwarder forwarder;
  Instance in;
  std::string config = in.config();
  const std::string tcp = "tcp://127.0.0.1:" + std::to_string(forwarder.port());
  config.replace(config.find("unix:///var/run/docker.sock"), 27, tcp);
  ASSERT_EQ(in.create(config), PMCP_OK) << in.err;
  EXPECT_EQ(in.finish(1, "echo over tcp").out, "over tcp\n");
  ASSERT_EQ(in.spawn(2, "cat"), PMCP_OK) << in.err;
  ASSERT_EQ(in.write(2, "typed\n"), PMCP_OK);
  char err[256];
  ASSERT_EQ(in.ex->close_stdin(in.ex, 2, {err, sizeof err}), PMCP_OK);
  ASSERT_TRUE(in.rec.wait_exit(2));
  EXPECT_EQ(in.rec.get(2).out, "typed\n");
  EXPECT_EQ(in.rec.get(2).code, 0);
  in.destroy();
}

TEST_F(DockerSetupTest, UseExistingWithoutTheContainerFails) {
  Instance in;
  EXPECT_NE(in.create(R"({"host":"unix:///var/run/docker.sock","container":")" + in.container +
                      R"(","use_existing":true})"),
            PMCP_OK);
  EXPECT_NE(std::string(in.err).find(in.container), std::string::npos) << in.err;
  EXPECT_NE(std::string(in.err).find("does not exist"), std::string::npos) << in.err;
}

TEST_F(DockerSetupTest, MissingImageWithoutRegistryNamesTheImage) {
  Instance in;
  const std::string image = "pmcp-test-no-such-image-" + std::to_string(getpid()) + ":none";
  EXPECT_NE(in.create(R"({"host":"unix:///var/run/docker.sock","image":")" + image +
                      R"(","container":")" + in.container + "\"}"),
            PMCP_OK);
  EXPECT_NE(std::string(in.err).find("cannot pull image '" + image + "'"), std::string::npos)
      << in.err;
}

TEST_F(DockerSetupTest, UnreachableEngineSaysWhy) {
  Instance in;
  EXPECT_EQ(in.create(R"({"host":"unix:///nonexistent/pmcp/docker.sock"})"), PMCP_ERR_UNAVAILABLE);
  const std::string err = in.err;
  EXPECT_NE(err.find("cannot connect to the Docker engine at unix:///nonexistent/pmcp/docker.sock"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("No such file or directory"), std::string::npos) << err;
  EXPECT_EQ(in.create(R"({"host":"tcp://127.0.0.1:1"})"), PMCP_ERR_UNAVAILABLE);
  EXPECT_NE(std::string(in.err).find("refused"), std::string::npos) << in.err;
  // Without [docker] host, DOCKER_HOST names the engine.
  const char* old = std::getenv("DOCKER_HOST");
  const std::string saved = old != nullptr ? old : "";
  setenv("DOCKER_HOST", "unix:///nonexistent/pmcp/env.sock", 1);
  EXPECT_EQ(in.create("{}"), PMCP_ERR_UNAVAILABLE);
  if (old != nullptr)
    setenv("DOCKER_HOST", saved.c_str(), 1);
  else
    unsetenv("DOCKER_HOST");
  EXPECT_NE(std::string(in.err).find("unix:///nonexistent/pmcp/env.sock"), std::string::npos)
      << in.err;
}

// An engine that speaks an API older than the plugin accepts: start-up says so.
TEST_F(DockerSetupTest, TooOldEngineIsRefused) {
  const std::string path = "/tmp/pmcp-test-old-engine-" + std::to_string(getpid()) + ".sock";
  unlink(path.c_str());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un ua{};
  ua.sun_family = AF_UNIX;
  std::snprintf(ua.sun_path, sizeof ua.sun_path, "%s", path.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&ua), sizeof ua), 0);
  ASSERT_EQ(listen(fd, 4), 0);
  std::thread engine([fd] {
    const int c = accept(fd, nullptr, nullptr);
    if (c < 0) return;
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = read(c, buf, sizeof buf);
      if (n <= 0) break;
      request.append(buf, static_cast<std::size_t>(n));
    }
    const std::string body = R"({"Version":"17.03.0","ApiVersion":"1.26","MinAPIVersion":"1.12"})";
    const std::string reply =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    (void)!write(c, reply.data(), reply.size());
    close(c);
  });
  Instance in;
  EXPECT_EQ(in.create(R"({"host":"unix://)" + path + "\"}"), PMCP_ERR_UNAVAILABLE);
  engine.join();
  close(fd);
  unlink(path.c_str());
  const std::string err = in.err;
  EXPECT_NE(err.find("too old"), std::string::npos) << err;
  EXPECT_NE(err.find("API 1.26"), std::string::npos) << err;
  EXPECT_NE(err.find("1.40"), std::string::npos) << err;
}

TEST_F(DockerSetupTest, BadConfigNamesTheKey) {
  Instance in;
  EXPECT_EQ(in.create(R"({"imagee":"x"})"), PMCP_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(in.err).find("imagee"), std::string::npos) << in.err;
  EXPECT_EQ(in.create(R"({"memory":"lots"})"), PMCP_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(in.err).find("memory"), std::string::npos) << in.err;
  EXPECT_EQ(in.create(R"({"workdir":"relative"})"), PMCP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(in.create(R"({"host":"http://x"})"), PMCP_ERR_INVALID_ARGUMENT);
}

// ---- TLS: a second engine that speaks only TLS (tests/integration/tls_dockerd.sh) ----

class DockerTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    load_plugin();
    char tmpl[] = "/tmp/pmcp-tls-dockerd-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return;
    dir_ = tmpl;
    int status = 0;
    const std::string out =
        run("bash " PMCP_SOURCE_DIR "/tests/integration/tls_dockerd.sh start " + dir_ + " 2>&1",
            &status);
    if (status != 0) {
      failure_ = out;
      return;
    }
    port_ = std::atoi(out.c_str() + (out.find_last_of('\n', out.size() - 2) + 1));
  }
  static void TearDownTestSuite() {
    if (!dir_.empty())
      run("bash " PMCP_SOURCE_DIR "/tests/integration/tls_dockerd.sh stop " + dir_);
  }
  void SetUp() override {
    ASSERT_NE(g_factory, nullptr);
    ASSERT_NE(port_, 0) << "the TLS engine did not start:\n" << failure_;
    // The variables of the docker CLI must not leak in from the environment.
    unsetenv("DOCKER_TLS_VERIFY");
    unsetenv("DOCKER_CERT_PATH");
  }
  // A config for the TLS engine: host and extra JSON members.
  static std::string config(const Instance& in, const std::string& host, const std::string& extra) {
    return R"({"host":")" + host + R"(","image":")" + test_image() + R"(","container":")" +
           in.container + R"(","volume":")" + in.volume + R"(","network":"none")" + extra + "}";
  }
  static std::string tcp() { return "tcp://127.0.0.1:" + std::to_string(port_); }

  static std::string dir_;
  static std::string failure_;
  static int port_;
};

std::string DockerTlsTest::dir_;
std::string DockerTlsTest::failure_;
int DockerTlsTest::port_ = 0;

TEST_F(DockerTlsTest, EchoAndStdinOverTls) {
  Instance in;
  ASSERT_EQ(
      in.create(config(in, tcp(), R"(,"tls_verify":true,"cert_path":")" + dir_ + R"(/client")")),
      PMCP_OK)
      << in.err;
  EXPECT_EQ(in.finish(1, "echo hi").out, "hi\n");
  // stdin, and its end (a TCP half-close under TLS, as the docker CLI does).
  ASSERT_EQ(in.spawn(2, "cat"), PMCP_OK) << in.err;
  ASSERT_EQ(in.write(2, "typed over tls\n"), PMCP_OK);
  char err[256];
  ASSERT_EQ(in.ex->close_stdin(in.ex, 2, {err, sizeof err}), PMCP_OK);
  ASSERT_TRUE(in.rec.wait_exit(2));
  EXPECT_EQ(in.rec.get(2).out, "typed over tls\n");
  EXPECT_EQ(in.rec.get(2).code, 0);
  in.destroy();
}

// The docker CLI's variables, and an https:// address that implies TLS.
TEST_F(DockerTlsTest, DockerTlsVerifyAndCertPathFromTheEnvironment) {
  Instance in;
  setenv("DOCKER_TLS_VERIFY", "1", 1);
  setenv("DOCKER_CERT_PATH", (dir_ + "/client").c_str(), 1);
  const int32_t rc = in.create(config(in, tcp(), ""));
  unsetenv("DOCKER_TLS_VERIFY");
  ASSERT_EQ(rc, PMCP_OK) << in.err;
  EXPECT_EQ(in.finish(1, "echo env").out, "env\n");
  in.destroy();
  Instance https;
  ASSERT_EQ(https.create(config(https, "https://127.0.0.1:" + std::to_string(port_), "")), PMCP_OK)
      << https.err;
  unsetenv("DOCKER_CERT_PATH");
  EXPECT_EQ(https.finish(1, "echo https").out, "https\n");
}

TEST_F(DockerTlsTest, WrongCaIsACertificateVerifyError) {
  // The right client certificate, but a CA that did not sign the engine's certificate.
  const std::string wrong = dir_ + "/wrong-ca";
  run("mkdir -p " + wrong + " && cp " + dir_ + "/client/cert.pem " + dir_ + "/client/key.pem " +
      wrong + "/ && cp " + dir_ + "/other-ca/ca.pem " + wrong + "/");
  Instance in;
  EXPECT_NE(in.create(config(in, tcp(), R"(,"tls_verify":true,"cert_path":")" + wrong + "\"")),
            PMCP_OK);
  const std::string err = in.err;
  EXPECT_NE(err.find("TLS handshake with the Docker engine at " + tcp() + " failed"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("certificate verify failed"), std::string::npos) << err;
}

TEST_F(DockerTlsTest, TlsEngineWithoutTlsConfiguredSaysItExpectsTls) {
  Instance in;
  EXPECT_NE(in.create(config(in, tcp(), "")), PMCP_OK);
  const std::string err = in.err;
  EXPECT_NE(err.find("expects TLS"), std::string::npos) << err;
  EXPECT_NE(err.find("tls_verify"), std::string::npos) << err;
}

TEST_F(DockerTlsTest, MissingCaFileIsNamed) {
  Instance in;
  EXPECT_EQ(
      in.create(config(in, tcp(), R"(,"tls_verify":true,"cert_path":")" + dir_ + R"(/nowhere")")),
      PMCP_ERR_INVALID_ARGUMENT);
  const std::string err = in.err;
  EXPECT_NE(err.find(dir_ + "/nowhere/ca.pem cannot be read"), std::string::npos) << err;
}

// TLS toward an engine that does not speak it (the main engine, through a TCP forwarder).
TEST_F(DockerTlsTest, TlsToAPlainEngineSaysItDoesNotSpeakTls) {
  TcpForwarder forwarder;
  Instance in;
  EXPECT_NE(in.create(config(in, "tcp://127.0.0.1:" + std::to_string(forwarder.port()),
                             R"(,"tls_verify":true,"cert_path":")" + dir_ + R"(/client")")),
            PMCP_OK);
  const std::string err = in.err;
  EXPECT_NE(err.find("does not speak TLS"), std::string::npos) << err;
}

// ---- the domain policy (the network cases of the escape suite, in docker mode) ----

// A loopback HTTP server on the host that answers every request with a fixed text.
class HttpServer {
 public:
  HttpServer() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(fd_, 16);
    thread_ = std::thread([this] {
      for (;;) {
        const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;
        char buf[4096];
        std::string head;
        while (head.find("\r\n\r\n") == std::string::npos) {
          pollfd p{c, POLLIN, 0};
          if (poll(&p, 1, 5000) <= 0) break;
          const ssize_t n = read(c, buf, sizeof buf);
          if (n <= 0) break;
          head.append(buf, static_cast<std::size_t>(n));
        }
        ++hits_;
        const std::string body = "hello from the test server\n";
        const std::string answer =
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
        (void)!write(c, answer.data(), answer.size());
        close(c);
      }
    });
  }
  ~HttpServer() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  std::string port() const { return std::to_string(port_); }
  int hits() const { return hits_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> hits_{0};
  std::thread thread_;
};

// Both local images: busybox (wget, nc) and Debian (python3), two different libcs.
class DockerPolicyTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    load_plugin();
    ASSERT_NE(g_factory, nullptr);
    int status = 0;
    const std::string out = run(docker_cli() + " image inspect " + GetParam(), &status);
    ASSERT_EQ(status, 0) << "the test image " << GetParam()
                         << " is missing; run scripts/docker-test-env.sh first:\n"
                         << out;
  }
  bool python() const { return GetParam().find("debian") != std::string::npos; }

  // The policy of the host sandbox's escape suite; every test name resolves to the host's
  // loopback, where the test server listens.
  static std::string policy(const std::string& allowed = R"("exact.test", "*.allowed.test")") {
    return R"(,"allowed_domains":[)" + allowed +
           R"(],"denied_domains":["blocked.allowed.test"],"test_resolve":{)"
           R"("exact.test":"127.0.0.1","blocked.allowed.test":"127.0.0.1",)"
           R"("api.allowed.test":"127.0.0.1","other.test":"127.0.0.1"})";
  }
  // A shell command that fetches url through the proxy of the environment and prints the body,
  // or the error.
  std::string get(const std::string& url) const {
    if (python())
      return "NO_PROXY= no_proxy= python3 -c 'import sys, urllib.request as u\ntry:\n "
             "print(u.urlopen(sys.argv[1], "
             "timeout=10).read().decode())\nexcept Exception as e:\n print(\"failed:\", e)' " +
             url;
    // A plain proxy request by hand (busybox's static wget cannot be relied on here).
    return "printf 'GET " + url + " HTTP/1.0\\r\\n\\r\\n' | nc -w 10 127.0.0.1 3128 || echo failed";
  }
  // A shell command that opens a TCP connection without any proxy; prints "connected" or why
  // not.
  std::string connect(const std::string& ip, const std::string& port) const {
    if (python())
      return "python3 -c 'import socket, sys\ntry:\n socket.create_connection((sys.argv[1], "
             "int(sys.argv[2])), timeout=5); print(\"connected\")\nexcept Exception as e:\n "
             "print(\"failed:\", e)' " +
             ip + " " + port;
    return "if echo | nc -w 5 " + ip + " " + port +
           " >/dev/null 2>&1; then echo connected; else echo failed; fi";
  }
  // The host directory that the container mounts at /run/process-mcp.
  static std::string net_dir(const Instance& in) {
    std::string out = run(docker_cli() +
                          " inspect -f '{{range .Mounts}}{{if eq .Destination "
                          "\"/run/process-mcp\"}}{{.Source}}{{end}}{{end}}' " +
                          in.container);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }
  static bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }
};

INSTANTIATE_TEST_SUITE_P(Images, DockerPolicyTest,
                         ::testing::Values("pmcp-test-busybox:latest", "pmcp-test-debian:latest"),
                         [](const auto& info) {
                           return info.param.find("debian") != std::string::npos ? "debian"
                                                                                 : "busybox";
                         });

TEST_P(DockerPolicyTest, NoRouteOutExceptThroughTheProxy) {
  HttpServer server;
  Instance in;
  in.image = GetParam();
  ASSERT_EQ(in.create(in.config(policy())), PMCP_OK) << in.err;
  EXPECT_EQ(run(docker_cli() + " inspect -f '{{.HostConfig.NetworkMode}}' " + in.container),
            "none\n");
  const std::string dir = net_dir(in);
  ASSERT_FALSE(dir.empty());
  EXPECT_TRUE(exists(dir + "/proxy.sock"));
  // Every exec is pointed at the proxy.
  const std::string env = in.finish(1, "env").out;
  for (const char* v : {"HTTP_PROXY=http://127.0.0.1:3128", "HTTPS_PROXY=http://127.0.0.1:3128",
                        "http_proxy=http://127.0.0.1:3128", "ALL_PROXY=socks5h://127.0.0.1:3128",
                        "NO_PROXY=localhost,127.0.0.1,::1"})
    EXPECT_NE(env.find(v), std::string::npos) << v << " missing in:\n" << env;
  // Straight to the test server: the container's loopback is its own, and there is no route
  // anywhere else (the engine's bridge gateway, a public-looking address).
  EXPECT_EQ(in.finish(2, connect("127.0.0.1", server.port())).out.substr(0, 6), "failed");
  EXPECT_EQ(in.finish(3, connect("172.17.0.1", server.port())).out.substr(0, 6), "failed");
  EXPECT_EQ(in.finish(4, connect("192.0.2.1", "80")).out.substr(0, 6), "failed");
  EXPECT_EQ(server.hits(), 0);
  // Not allowed, denied, allowed by a wildcard but resolving to loopback, a raw address: refused.
  uint64_t id = 10;
  for (const char* host : {"other.test", "blocked.allowed.test", "api.allowed.test", "127.0.0.1"}) {
    const Record r =
        in.finish(id++, get(std::string("http://") + host + ":" + server.port() + "/"));
    EXPECT_NE(r.out.find("403"), std::string::npos) << host << ": " << r.out << r.err;
    EXPECT_EQ(r.out.find("hello from the test server"), std::string::npos) << host;
  }
  EXPECT_EQ(server.hits(), 0);
  // An allowed name, listed exactly, reaches the server on the host's loopback.
  const Record ok = in.finish(30, get("http://exact.test:" + server.port() + "/"));
  EXPECT_NE(ok.out.find("hello from the test server"), std::string::npos) << ok.out << ok.err;
  EXPECT_EQ(server.hits(), 1);
  // The container we created goes, and the proxy's directory with it.
  in.destroy();
  EXPECT_FALSE(exists(dir + "/proxy.sock"));
  EXPECT_FALSE(exists(dir));
}

TEST_P(DockerPolicyTest, ContainerAndServerRestartsKeepThePolicy) {
  HttpServer server;
  Instance in;
  in.image = GetParam();
  const std::string config = in.config(policy() + R"(,"remove_on_exit":false)");
  ASSERT_EQ(in.create(config), PMCP_OK) << in.err;
  const std::string dir = net_dir(in);
  const std::string url = "http://exact.test:" + server.port() + "/";
  EXPECT_NE(in.finish(1, get(url)).out.find("hello"), std::string::npos);
  // The container restarts under us: the bridge is started again.
  run(docker_cli() + " restart -t 0 " + in.container);
  std::string out;
  for (int i = 0; i < 50 && out.find("hello") == std::string::npos; ++i) {
    if (i > 0) std::this_thread::sleep_for(200ms);
    out = in.finish(100 + i, get(url)).out;
  }
  EXPECT_NE(out.find("hello"), std::string::npos) << out;
  // The server stops (the container stays) and starts again on the same container.
  in.destroy();
  EXPECT_FALSE(exists(dir + "/proxy.sock")) << "a stale socket was left behind";
  EXPECT_EQ(run(docker_cli() + " inspect -f '{{.State.Running}}' " + in.container), "true\n");
  ASSERT_EQ(in.create(config), PMCP_OK) << in.err;
  EXPECT_EQ(net_dir(in), dir);
  EXPECT_NE(in.finish(200, get(url)).out.find("hello"), std::string::npos);
  EXPECT_NE(in.finish(201, get("http://other.test:" + server.port() + "/")).out.find("403"),
            std::string::npos);
  in.destroy();
  EXPECT_FALSE(exists(dir + "/proxy.sock")) << "a stale socket was left behind";
  run(docker_cli() + " rm -f " + in.container);
  run("rm -rf '" + dir + "'");
}

TEST_P(DockerPolicyTest, AnEmptyAllowedListMeansNoNetworkAtAll) {
  HttpServer server;
  Instance in;
  in.image = GetParam();
  ASSERT_EQ(in.create(in.config(R"(,"allowed_domains":[])")), PMCP_OK) << in.err;
  EXPECT_EQ(run(docker_cli() + " inspect -f '{{.HostConfig.NetworkMode}} {{len .Mounts}}' " +
                in.container),
            "none 1\n");  // the volume only
  EXPECT_EQ(in.finish(1, "env").out.find("PROXY"), std::string::npos);
  EXPECT_EQ(in.finish(2, connect("127.0.0.1", "3128")).out.substr(0, 6), "failed");
}

TEST_F(DockerSetupTest, APolicyOnAnExistingContainerIsRefusedWithTheReason) {
  Instance in;
  EXPECT_EQ(in.create(R"({"host":"unix:///var/run/docker.sock","container":")" + in.container +
                      R"(","use_existing":true,"allowed_domains":["example.com"]})"),
            PMCP_ERR_INVALID_ARGUMENT);
  std::string err = in.err;
  EXPECT_NE(err.find("cannot be enforced on an existing container"), std::string::npos) << err;
  EXPECT_NE(err.find("use_existing = false"), std::string::npos) << err;
  // A container of the same name made earlier without the policy is not silently reused.
  int status = 0;
  run(docker_cli() + " run -d --name " + in.container + " " + test_image() + " sleep infinity",
      &status);
  ASSERT_EQ(status, 0);
  EXPECT_NE(in.create(in.config(R"(,"allowed_domains":["example.com"])")), PMCP_OK);
  err = in.err;
  EXPECT_NE(err.find("was not made for the domain policy"), std::string::npos) << err;
  EXPECT_NE(err.find("docker rm -f " + in.container), std::string::npos) << err;
  const std::string dir_of_user = run("echo ${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}");
  int found = 0;
  run("ls -d " + dir_of_user.substr(0, dir_of_user.size() - 1) + "/process-mcp-net-*/" +
          in.container,
      &found);
  EXPECT_NE(found, 0) << "the proxy's directory of a refused container was left behind";
  // Without a policy, network stays what it was; a policy and network together are refused.
  EXPECT_EQ(in.create(in.config(R"(,"network":"bridge","allowed_domains":["example.com"])")),
            PMCP_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(in.err).find("cannot be combined with allowed_domains"), std::string::npos)
      << in.err;
}

}  // namespace
