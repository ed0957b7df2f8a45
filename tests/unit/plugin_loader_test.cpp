// Tests of the plugin loader and the host services: a good plugin loads, initialises and is
// deinitialised; every broken plugin is refused with a message naming its file and the reason.
#include "plugin/plugin_loader.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "plugin/host_services.hpp"
#include "pmcp/core_loop.h"
#include "pmcp/executor.h"
#include "pmcp/transport.h"

namespace pmcp::plugin {
namespace {

namespace fs = std::filesystem;

#ifdef PMCP_BROKEN_PLUGIN_DIR
const fs::path kTestPluginDir = PMCP_BROKEN_PLUGIN_DIR;
#define REQUIRE_TEST_PLUGINS() (void)0
#else
const fs::path kTestPluginDir;
#define REQUIRE_TEST_PLUGINS() GTEST_SKIP() << "PMCP_BROKEN_PLUGIN_DIR is not defined"
#endif

fs::path test_plugin(const std::string& kind) { return kTestPluginDir / ("pmcp-" + kind + ".so"); }

std::string abi_text(int major, int minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

// Routes the default spdlog logger into memory for the life of the object.
class CapturedLog {
 public:
  CapturedLog()
      : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(128)),
        previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>("test", sink_);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }

  // Each line as "<level> <message>", e.g. "warning [good] hello".
  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    for (const auto& msg : sink_->last_raw()) {
      auto level = spdlog::level::to_string_view(msg.level);
      out.push_back(std::string(level.data(), level.size()) + " " +
                    std::string(msg.payload.data(), msg.payload.size()));
    }
    return out;
  }

  bool has(const std::string& line) const {
    for (const auto& l : lines()) {
      if (l == line) return true;
    }
    return false;
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

// A fresh directory, removed with its content at the end of the test.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("pmcp-loader-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

class PluginLoaderTest : public ::testing::Test {
 protected:
  boost::asio::io_context io_;
  HostServices services_{io_};
};

// Expects a refusal whose message is "<file>: ...<reason>...".
void expect_refused(const Result<std::shared_ptr<LoadedPlugin>>& result, const fs::path& file,
                    const std::string& reason) {
  ASSERT_FALSE(result.ok()) << file;
  const std::string& message = result.error().message;
  EXPECT_EQ(message.rfind(file.string() + ": ", 0), 0u) << message;
  EXPECT_NE(message.find(reason), std::string::npos) << message;
}

TEST_F(PluginLoaderTest, GoodPluginLoadsInitialisesAndDeinitialises) {
  REQUIRE_TEST_PLUGINS();
  CapturedLog log;
  const fs::path file = test_plugin("good");
  auto plugin = load_plugin(file, services_.host_for("good"));
  ASSERT_TRUE(plugin.ok()) << plugin.error().message;

  const PluginInfo& info = (*plugin)->info();
  EXPECT_EQ(info.id, "good");
  EXPECT_EQ(info.version, "1.2.3");
  EXPECT_EQ(info.description, "a plugin for the loader tests");
  EXPECT_EQ(info.path, file);
  EXPECT_EQ(info.abi_major, PMCP_ABI_VERSION_MAJOR);
  EXPECT_EQ(info.abi_minor, PMCP_ABI_VERSION_MINOR);
  EXPECT_TRUE(log.has("info [good] init"));

  auto factory = (*plugin)->factory(PMCP_EXECUTOR_FACTORY_ID);
  ASSERT_TRUE(factory.ok()) << factory.error().message;
  const auto* executor_factory = static_cast<const pmcp_executor_factory*>(*factory);
  EXPECT_EQ(executor_factory->struct_size, sizeof(pmcp_executor_factory));
  EXPECT_NE(executor_factory->create, nullptr);

  auto missing = (*plugin)->factory(PMCP_TRANSPORT_FACTORY_ID);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::not_found);
  EXPECT_EQ(
      missing.error().message,
      file.string() +
          ": plugin 'good' has no factory 'pmcp.transport/1' (it is not a transport plugin?)");

  EXPECT_FALSE(log.has("info [good] deinit"));
  plugin = make_error(ErrorCode::internal, "dropped");  // destroys the plugin
  EXPECT_TRUE(log.has("info [good] deinit"));
}

TEST_F(PluginLoaderTest, RefusesAMissingFile) {
  TempDir dir;
  const fs::path file = dir.path() / "pmcp-nothing.so";
  auto result = load_plugin(file, services_.host_for("nothing"));
  expect_refused(result, file, "no such file");
  EXPECT_EQ(result.error().code, ErrorCode::not_found);
}

TEST_F(PluginLoaderTest, RefusesAFileThatIsNotASharedObject) {
  TempDir dir;
  const fs::path file = dir.path() / "pmcp-text.so";
  std::ofstream(file) << "this is not an ELF file\n";
  expect_refused(load_plugin(file, services_.host_for("text")), file,
                 "not a loadable shared object (");
  expect_refused(load_plugin(dir.path(), services_.host_for("text")), dir.path(), "is a directory");
}

TEST_F(PluginLoaderTest, RefusesEachBrokenPluginWithItsReason) {
  REQUIRE_TEST_PLUGINS();
  const std::string ours = abi_text(PMCP_ABI_VERSION_MAJOR, PMCP_ABI_VERSION_MINOR);
  struct Case {
    std::string kind;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"no-entry", "no entry symbol 'pmcp_plugin_entry'"},
      {"entry-is-function", "'pmcp_plugin_entry' is a function"},
      {"misaligned-entry", "entry symbol 'pmcp_plugin_entry' is not aligned for an entry struct"},
      {"abi-major", "built for plugin ABI " +
                        abi_text(PMCP_ABI_VERSION_MAJOR + 1, PMCP_ABI_VERSION_MINOR) +
                        ", but this server speaks ABI " + ours},
      {"abi-minor", "built for plugin ABI " +
                        abi_text(PMCP_ABI_VERSION_MAJOR, PMCP_ABI_VERSION_MINOR + 1) +
                        ", but this server speaks ABI " + ours},
      {"small-entry", "entry struct_size is 8 bytes, smaller than the " +
                          std::to_string(sizeof(pmcp_plugin_entry)) + " bytes"},
      {"null-id", "entry field 'id' is NULL"},
      {"init-fails", "plugin 'init-fails' failed to initialise (init returned 0)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.kind);
    expect_refused(load_plugin(test_plugin(c.kind), services_.host_for(c.kind)),
                   test_plugin(c.kind), c.reason);
  }
}

TEST_F(PluginLoaderTest, FailedInitLogsThePluginsReasonAndSkipsDeinit) {
  REQUIRE_TEST_PLUGINS();
  CapturedLog log;
  auto result = load_plugin(test_plugin("init-fails"), services_.host_for("init-fails"));
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(log.has("error [init-fails] cannot start: the frobnicator is missing"));
  EXPECT_FALSE(log.has("info [init-fails] deinit"));
}

TEST_F(PluginLoaderTest, PluginWithoutTheFactoryLoadsButNamesTheMissingFactory) {
  REQUIRE_TEST_PLUGINS();
  const fs::path file = test_plugin("no-factory");
  auto plugin = load_plugin(file, services_.host_for("no-factory"));
  ASSERT_TRUE(plugin.ok()) << plugin.error().message;
  auto factory = (*plugin)->factory(PMCP_EXECUTOR_FACTORY_ID);
  ASSERT_FALSE(factory.ok());
  EXPECT_EQ(factory.error().message,
            file.string() +
                ": plugin 'no-factory' has no factory 'pmcp.executor/1' (it is not "
                "an executor plugin?)");
}

TEST_F(PluginLoaderTest, RefusesANullHost) {
  REQUIRE_TEST_PLUGINS();
  expect_refused(load_plugin(test_plugin("good"), nullptr), test_plugin("good"), "host");
}

TEST(FindPlugin, FirstDirectoryThatHasTheFileWins) {
  REQUIRE_TEST_PLUGINS();
  TempDir missing;
  TempDir first;
  fs::copy_file(test_plugin("good"), first.path() / "pmcp-good.so");
  const fs::path gone = missing.path() / "gone";

  auto found = find_plugin("good", {gone, kTestPluginDir});
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_EQ(*found, test_plugin("good"));

  found = find_plugin("good", {first.path(), kTestPluginDir});
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_EQ(*found, first.path() / "pmcp-good.so");
}

TEST(FindPlugin, ErrorListsEveryDirectoryAndHowToFixIt) {
  TempDir empty;
  const fs::path gone = empty.path() / "gone";
  auto found = find_plugin("docker", {gone, empty.path()});
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.error().code, ErrorCode::not_found);
  EXPECT_EQ(found.error().message,
            "plugin 'docker' not found: no pmcp-docker.so in " + gone.string() +
                " (no such directory), " + empty.path().string() +
                "; add the directory that holds it to plugin_dirs in the config file, or "
                "install the package that provides the 'docker' plugin "
                "(process-mcp-plugin-docker)");

  auto nowhere = find_plugin("docker", {});
  ASSERT_FALSE(nowhere.ok());
  EXPECT_NE(nowhere.error().message.find("no plugin directories"), std::string::npos);

  auto bad_name = find_plugin("../docker", {empty.path()});
  ASSERT_FALSE(bad_name.ok());
  EXPECT_EQ(bad_name.error().code, ErrorCode::invalid_argument);
}

TEST(ListPlugins, ReadsEveryEntryWithoutInitAndReportsEachBrokenFile) {
  REQUIRE_TEST_PLUGINS();
  CapturedLog log;
  TempDir extra;
  std::ofstream(extra.path() / "pmcp-text.so") << "not a library\n";
  std::ofstream(extra.path() / "README") << "not a plugin name, ignored\n";

  auto results = list_plugins({kTestPluginDir, extra.path() / "gone", extra.path()});
  std::vector<std::string> loaded;
  std::vector<std::string> refused;
  for (const auto& result : results) {
    if (result.ok()) {
      loaded.push_back(result->id);
    } else {
      refused.push_back(result.error().message);
    }
  }
  // init is not called, so init-fails and no-factory list fine.
  EXPECT_EQ(loaded, (std::vector<std::string>{"good", "init-fails", "no-factory"}));
  ASSERT_EQ(refused.size(), 8u);
  for (std::string kind : {"abi-major", "abi-minor", "entry-is-function", "misaligned-entry",
                           "no-entry", "null-id", "small-entry"}) {
    const std::string prefix = test_plugin(kind).string() + ": ";
    bool named = false;
    for (const auto& message : refused) named = named || message.rfind(prefix, 0) == 0;
    EXPECT_TRUE(named) << kind;
  }
  EXPECT_EQ(refused.back().rfind((extra.path() / "pmcp-text.so").string() + ": ", 0), 0u);
  EXPECT_TRUE(log.lines().empty()) << "nothing was initialised, so nothing logged";
}

TEST(HostServices, OneTablePerPluginWithTheHostsVersion) {
  boost::asio::io_context io;
  HostServices services(io);
  const pmcp_host* a = services.host_for("a");
  const pmcp_host* b = services.host_for("b");
  EXPECT_NE(a, b);
  EXPECT_EQ(services.host_for("a"), a);
  EXPECT_NE(a->host_data, b->host_data);
  EXPECT_EQ(a->struct_size, sizeof(pmcp_host));
  EXPECT_EQ(a->abi_major, PMCP_ABI_VERSION_MAJOR);
  EXPECT_EQ(a->abi_minor, PMCP_ABI_VERSION_MINOR);
  EXPECT_EQ(a->get_extension(a, "pmcp.ext.anything/1"), nullptr);
}

// The core-loop extension: ready() on the core thread once input arrives, once per rearm(),
// never after cancel(), also from inside ready(); the plugin's descriptor stays open.
struct Readiness {
  int fd = -1;
  int calls = 0;
  std::string read;
  const pmcp_core_loop* loop = nullptr;
  pmcp_fd_watch* watch = nullptr;
  bool cancel_inside = false;
  static void ready(void* user) {
    auto* self = static_cast<Readiness*>(user);
    ++self->calls;
    char buffer[64];
    const ssize_t n = ::read(self->fd, buffer, sizeof buffer);
    if (n > 0) self->read.append(buffer, static_cast<std::size_t>(n));
    if (self->cancel_inside) {
      self->loop->cancel(self->watch);
      self->watch = nullptr;
    }
  }
};

const pmcp_core_loop* core_loop_of(const pmcp_host* host) {
  return static_cast<const pmcp_core_loop*>(host->get_extension(host, PMCP_CORE_LOOP_EXTENSION_ID));
}

void run_briefly(boost::asio::io_context& io) {
  io.restart();
  io.run_for(std::chrono::milliseconds(30));
}

TEST(HostServices, CoreLoopCallsReadyOncePerRearmAndNeverAfterCancel) {
  boost::asio::io_context io;
  HostServices services(io);
  const pmcp_host* host = services.host_for("stdio");
  const pmcp_core_loop* loop = core_loop_of(host);
  ASSERT_NE(loop, nullptr);
  EXPECT_EQ(loop->struct_size, sizeof(pmcp_core_loop));
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  Readiness r;
  r.fd = fds[0];
  r.loop = loop;
  char err[256] = {};
  ASSERT_EQ(loop->watch_input(host, fds[0], &Readiness::ready, &r, &r.watch,
                              pmcp_error_buf{err, sizeof err}),
            PMCP_OK)
      << err;
  run_briefly(io);
  EXPECT_EQ(r.calls, 0) << "nothing to read yet";
  ASSERT_EQ(write(fds[1], "one", 3), 3);
  run_briefly(io);
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.read, "one");
  ASSERT_EQ(write(fds[1], "two", 3), 3);
  run_briefly(io);
  EXPECT_EQ(r.calls, 1) << "not again before rearm()";
  ASSERT_EQ(read(fds[0], err, 3), 3);  // drained by hand: the next rearm waits for new input
  loop->rearm(r.watch);
  loop->rearm(r.watch);  // a second rearm() while one is asked for does nothing
  ASSERT_EQ(write(fds[1], "three", 5), 5);
  run_briefly(io);
  EXPECT_EQ(r.calls, 2);
  EXPECT_EQ(r.read, "onethree");
  // Cancelled while a call is due: none comes.
  loop->rearm(r.watch);
  ASSERT_EQ(write(fds[1], "four", 4), 4);
  loop->cancel(r.watch);
  r.watch = nullptr;
  run_briefly(io);
  EXPECT_EQ(r.calls, 2);
  EXPECT_GE(fcntl(fds[0], F_GETFD), 0) << "the plugin's descriptor stays open";
  // Cancelled from inside ready(): the call that did it is the last.
  ASSERT_EQ(read(fds[0], err, 4), 4);
  r.cancel_inside = true;
  ASSERT_EQ(loop->watch_input(host, fds[0], &Readiness::ready, &r, &r.watch,
                              pmcp_error_buf{err, sizeof err}),
            PMCP_OK);
  ASSERT_EQ(write(fds[1], "five", 4), 4);
  run_briefly(io);
  EXPECT_EQ(r.calls, 3);
  EXPECT_EQ(r.watch, nullptr);
  ASSERT_EQ(write(fds[1], "six", 3), 3);
  run_briefly(io);
  EXPECT_EQ(r.calls, 3);
  // The end of the input wakes it too.
  r.cancel_inside = false;
  ASSERT_EQ(loop->watch_input(host, fds[0], &Readiness::ready, &r, &r.watch,
                              pmcp_error_buf{err, sizeof err}),
            PMCP_OK);
  ASSERT_EQ(read(fds[0], err, 3), 3);
  close(fds[1]);
  run_briefly(io);
  EXPECT_EQ(r.calls, 4);
  loop->cancel(r.watch);
  close(fds[0]);
}

TEST(HostServices, CoreLoopRefusesWhatItCannotWaitOn) {
  boost::asio::io_context io;
  HostServices services(io);
  const pmcp_host* host = services.host_for("stdio");
  const pmcp_core_loop* loop = core_loop_of(host);
  ASSERT_NE(loop, nullptr);
  char path[] = "/tmp/pmcp-core-loop-XXXXXX";
  const int file = mkstemp(path);
  ASSERT_GE(file, 0);
  unlink(path);
  Readiness r;
  pmcp_fd_watch* watch = reinterpret_cast<pmcp_fd_watch*>(&r);
  char err[256] = {};
  EXPECT_EQ(
      loop->watch_input(host, file, &Readiness::ready, &r, &watch, pmcp_error_buf{err, sizeof err}),
      PMCP_ERR_UNSUPPORTED);
  EXPECT_EQ(watch, nullptr);
  EXPECT_EQ(std::string(err),
            "the core loop cannot wait on this descriptor: Operation not permitted");
  EXPECT_GE(fcntl(file, F_GETFD), 0) << "the plugin's descriptor stays open";
  close(file);
  EXPECT_EQ(
      loop->watch_input(host, -1, &Readiness::ready, &r, &watch, pmcp_error_buf{err, sizeof err}),
      PMCP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(loop->watch_input(host, 0, nullptr, &r, &watch, pmcp_error_buf{err, sizeof err}),
            PMCP_ERR_INVALID_ARGUMENT);
}

TEST(HostServices, LogWritesThroughSpdlogWithThePluginId) {
  CapturedLog log;
  boost::asio::io_context io;
  HostServices services(io);
  const pmcp_host* host = services.host_for("docker");
  auto say = [&](pmcp_log_level level, std::string_view text) {
    host->log(host, level, pmcp_str{text.data(), text.size()});
  };
  say(PMCP_LOG_TRACE, "t");
  say(PMCP_LOG_DEBUG, "d");
  say(PMCP_LOG_INFO, "daemon is up\n");
  say(PMCP_LOG_WARN, "w {} not a format");
  say(PMCP_LOG_ERROR, "e");
  host->log(host, PMCP_LOG_INFO, pmcp_str{nullptr, 0});
  EXPECT_EQ(log.lines(), (std::vector<std::string>{
                             "trace [docker] t",
                             "debug [docker] d",
                             "info [docker] daemon is up",
                             "warning [docker] w {} not a format",
                             "error [docker] e",
                             "info [docker] ",
                         }));
}

TEST(HostServices, PostRunsOnTheIoThreadFromAnyThreadUntilShutdown) {
  boost::asio::io_context io;
  HostServices services(io);
  const pmcp_host* host = services.host_for("stdio");

  struct Counter {
    std::atomic<int> calls{0};
    std::thread::id io_thread;
    std::atomic<bool> wrong_thread{false};
  } counter;
  counter.io_thread = std::this_thread::get_id();
  auto fn = [](void* user) {
    auto* c = static_cast<Counter*>(user);
    if (std::this_thread::get_id() != c->io_thread) c->wrong_thread = true;
    ++c->calls;
  };

  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 250; ++i) {
        if (host->post(host, fn, &counter) != PMCP_OK) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(counter.calls, 0) << "nothing runs inside post";
  io.run();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(counter.calls, 1000);
  EXPECT_FALSE(counter.wrong_thread);

  EXPECT_EQ(host->post(host, nullptr, &counter), PMCP_ERR_INVALID_ARGUMENT);
  services.shutdown();
  EXPECT_EQ(host->post(host, fn, &counter), PMCP_ERR_STATE);
  io.restart();
  io.run();
  EXPECT_EQ(counter.calls, 1000);
}

}  // namespace
}  // namespace pmcp::plugin
