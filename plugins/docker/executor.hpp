// The docker executor: every process is an exec in one shared container, driven through the
// Docker Engine API (see http.hpp) from the plugin's own io_context thread.
//
// Threads: the core calls spawn/write_stdin/close_stdin/signal/resize from its thread; they
// validate against a small table under mu_, post the work to the io thread and return without
// touching the network. The io thread owns every Proc, runs one coroutine per exec (create,
// start with a hijacked connection, read, inspect the exit code) and is the only caller of the
// sink. Per process: on_spawned once (when the wrapper's marker arrives or the start failed),
// then on_output, then one on_exit after the stream ended.
//
// Container side: the wrapper of stream.hpp reports the pid of each exec, which is its process
// group; signals are a short helper exec running `kill -SIG -PGID`. destroy() kills every known
// group, then removes the container if this instance created it (the volume is kept).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "config.hpp"
#include "http.hpp"
#include "pmcp/executor.h"
#include "pmcp/netpolicy/proxy.hpp"
#include "pmcp/plugin.hpp"

namespace pmcp::docker {

class DockerExecutor final : public sdk::ExecutorBase {
 public:
  // Starts the io thread; does no I/O yet.
  // bridge: the host path of pmcp-net-bridge (needed when the config has a domain policy).
  DockerExecutor(const pmcp_host* host, const pmcp_executor_sink& sink, Config config,
                 Endpoint endpoint, std::string bridge = {});
  // Kills what still runs, removes a container we created, joins the io thread.
  ~DockerExecutor() override;

  DockerExecutor(const DockerExecutor&) = delete;
  DockerExecutor& operator=(const DockerExecutor&) = delete;

  // Blocking, for create(): checks the engine and its API version, then finds or creates and
  // starts the container. Throws sdk::Error with the reason (unreachable, denied, too old,
  // image cannot be pulled, container missing with use_existing, ...).
  void setup();

  void spawn(const pmcp_spawn_options& options) override;
  void write_stdin(uint64_t id, const uint8_t* data, std::size_t size) override;
  void close_stdin(uint64_t id) override;
  void signal(uint64_t id, int32_t signo) override;
  void resize(uint64_t id, uint16_t cols, uint16_t rows) override;

  // The working directory when the core gives none: workdir, or with use_existing and no
  // workdir set, the container's own working directory. Fixed once setup() returned.
  const char* default_cwd() const noexcept { return default_cwd_.c_str(); }

 private:
  struct Proc;
  using ProcPtr = std::shared_ptr<Proc>;

  // What the core thread may check without waiting for the io thread (under mu_).
  struct Entry {
    bool tty = false;
    bool stdin_closed = false;
  };

  Entry& find_live_locked(uint64_t id);

  // io thread: container.
  boost::asio::awaitable<void> setup_async();
  // Kills what servers that are gone left in the container (see kSweepScript); logs it.
  boost::asio::awaitable<void> sweep_leftovers();
  boost::asio::awaitable<void> ensure_container(bool initial);
  boost::asio::awaitable<void> ensure_image();
  boost::asio::awaitable<void> create_container();
  boost::asio::awaitable<void> start_container();
  // recover: when the container is stopped or gone, bring it back once (a spawn does; the
  // guard does not, so that a container stopped on purpose stays stopped until the next call).
  boost::asio::awaitable<std::string> create_exec(const std::string& body, bool recover = true);

  // The domain policy (config_.policy with a non-empty allowed list): the filtering proxy on
  // this host, its socket and a copy of the bridge in net_dir_, which the container mounts
  // read-only at kNetMount; the bridge runs in the container on 127.0.0.1:3128.
  void start_proxy();
  void remove_net_dir();
  // Starts the bridge in the container unless it already listens. Throws ApiError.
  boost::asio::awaitable<void> ensure_bridge();
  // Refuses a container made without the policy (its own network, no proxy mount).
  void check_policy_of(const boost::json::value& info) const;

  // io thread: processes.
  boost::asio::awaitable<void> run_process(ProcPtr p);
  void handle_bytes(Proc& p, const char* data, std::size_t size);
  void handle_stream(Proc& p, int stream, const char* data, std::size_t size);
  void on_marker(Proc& p);
  boost::asio::awaitable<void> finish(ProcPtr p, std::string failure);
  // Why a process may have ended with its container: removed, stopped, or the engine gone;
  // "" when the container runs. wait_for_stop: give a container that is stopping a second.
  boost::asio::awaitable<std::string> container_trouble(bool wait_for_stop);
  void kick_writer(const ProcPtr& p);
  boost::asio::awaitable<void> write_loop(ProcPtr p);
  void send_signal(const ProcPtr& p, int signo);
  void kick_resizer(const ProcPtr& p);
  boost::asio::awaitable<void> resize_loop(ProcPtr p);
  boost::asio::awaitable<std::string> run_helper(std::string script);
  boost::asio::awaitable<void> helper_detached(std::string script, std::string what);
  boost::asio::awaitable<void> signal_loop();
  boost::asio::awaitable<void> shutdown();

  void log(pmcp_log_level level, const std::string& message) const;

  const pmcp_host* host_;
  pmcp_executor_sink sink_{};
  const Config config_;
  const std::string bridge_;  // host path of pmcp-net-bridge
  const bool proxied_;        // a policy that lets something through: proxy + bridge
  std::string net_dir_;       // host directory mounted at kNetMount
  std::unique_ptr<netpolicy::Proxy> proxy_;
  bool net_dir_made_ = false;  // this instance created net_dir_
  bool drop_net_dir_ = false;  // no container mounts net_dir_ any more
  bool in_bridge_ = false;     // ensure_bridge() is under way (io thread)
  // Random, per instance: in the environment of every process we start and on the guard's
  // command line, so that a later server can tell our leftovers from a live server's processes.
  const std::string instance_;

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  Client client_;

  // Shared between the core thread and the io thread.
  std::mutex mu_;
  std::unordered_map<uint64_t, Entry> live_;
  std::unordered_set<uint64_t> finished_;

  // io thread only (and setup() before any process exists).
  std::string container_id_;
  std::string default_cwd_;
  bool created_ = false;  // this instance created the container
  bool recovering_ = false;  // create_exec() is bringing the container back
  bool stopping_ = false;
  bool api_console_size_ = false;  // the engine takes ConsoleSize on exec create/start
  std::unordered_map<uint64_t, ProcPtr> procs_;
  // Signals wait here while one helper exec delivers the previous batch: a burst of kills
  // becomes a few execs instead of one per process (each exec is an engine round trip).
  struct PendingSignal {
    int signo;
    int64_t pgid;
    uint64_t id;
    bool quiet;  // the sweep after a process ended: a missing group is expected
  };
  void queue_signal(PendingSignal s);
  std::vector<PendingSignal> signal_queue_;
  bool signalling_ = false;

  // The guard: one long-lived exec in the container whose stdin is a connection of ours. It
  // learns every process group we start ("+ N") and end ("- N"). When the connection drops
  // without a goodbye (the server was SIGKILLed or crashed), the engine closes its stdin and
  // it kills every group it still holds, so nothing we started outlives us.
  struct Guard;
  std::shared_ptr<Guard> guard_;
  std::set<int64_t> guarded_;  // live process groups, re-sent when the guard restarts
  bool guard_failed_ = false;  // a start of the guard failed (setup() stops waiting for it)
  boost::asio::awaitable<void> guard_loop();
  void guard_send(std::string line);
  void kick_guard_writer();
  boost::asio::awaitable<void> guard_write_loop(std::shared_ptr<Guard> g);

  std::thread thread_;
};

}  // namespace pmcp::docker
