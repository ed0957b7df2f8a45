// Server wiring and lifecycle. Start: load plugins, create the executor, registry, dispatcher
// and transports. Stop: stop transports, SIGTERM every process, SIGKILL after the grace time,
// destroy instances, unload plugins.
#include "server/server.hpp"

#include <dlfcn.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <optional>

#include "pmcp/config_check.h"
#include "pmcp/executor.h"
#include "pmcp/transport.h"
#include "process/signals.hpp"

namespace pmcp::server {

namespace fs = std::filesystem;
namespace json = boost::json;

fs::path executable_dir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::current_path() : exe.parent_path();
}

namespace {

// Directory of libpmcp-core itself, so an embedding program finds the plugins too.
fs::path core_library_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&executable_dir), &info) != 0 && info.dli_fname != nullptr) {
    std::error_code ec;
    fs::path p = fs::canonical(info.dli_fname, ec);
    if (!ec) return p.parent_path();
  }
  return {};
}

void add_unique(std::vector<fs::path>& list, const fs::path& p) {
  if (p.empty()) return;
  fs::path normal = p.lexically_normal();
  if (std::find(list.begin(), list.end(), normal) == list.end()) list.push_back(normal);
}

using ErrorText = std::array<char, 1024>;

// "file:line" of a plugin's table, or the file alone, or "configuration" for a config given as
// text.
std::string table_location(const config::Config& config, const std::string& name) {
  std::string where = config.source.empty() ? "configuration" : config.source;
  auto line = config.plugin_table_lines.find(name);
  if (line != config.plugin_table_lines.end() && line->second > 0) {
    where += ":" + std::to_string(line->second);
  }
  return where;
}

// Every plugin table must name a plugin that exists, so a typo such as [hots] is caught.
Result<void> check_tables_name_plugins(const config::Config& config,
                                       const std::vector<fs::path>& dirs) {
  for (const auto& [name, table] : config.plugin_tables) {
    if (plugin::find_plugin(name, dirs)) continue;
    return make_error(
        ErrorCode::invalid_argument,
        table_location(config, name) + ": table [" + name +
            "] does not configure any installed plugin "
            "(core tables are [defaults], [limits] and [environment]; a plugin table is "
            "named after its plugin, such as [host] or [stdio])");
  }
  return {};
}

// The JSON text a plugin's factory receives: its table, "{}" when absent, with what the core
// fills in.
std::string plugin_table_json(const config::Config& config, const std::string& name) {
  auto it = config.plugin_tables.find(name);
  json::object table = it == config.plugin_tables.end() ? json::object() : it->second;
  // The host sandbox makes the working directory writable: that is [defaults] workdir when
  // it is set, unless [host.filesystem] workdir says otherwise.
  if (name == "host" && !config.defaults.workdir.empty()) {
    json::value& fs_table = table["filesystem"];
    if (fs_table.is_null()) fs_table = json::object();
    if (fs_table.is_object() && !fs_table.as_object().contains("workdir"))
      fs_table.as_object()["workdir"] = config.defaults.workdir;
  }
  return json::serialize(table);
}

}  // namespace

Result<std::vector<std::string>> check_plugins(const config::Config& config) {
  const auto dirs = plugin_search_path(config);
  if (auto named = check_tables_name_plugins(config, dirs); !named) return std::move(named).error();

  // Each plugin once, with the factory its role needs ("" for a table of a plugin that the
  // config does not select, which is checked all the same).
  std::vector<std::pair<std::string, std::string>> wanted;
  auto want = [&](const std::string& name, const std::string& factory_id) {
    for (auto& [n, f] : wanted) {
      if (n == name) {
        if (f.empty()) f = factory_id;
        return;
      }
    }
    wanted.emplace_back(name, factory_id);
  };
  want(config.executor, PMCP_EXECUTOR_FACTORY_ID);
  for (const auto& name : config.transports) want(name, PMCP_TRANSPORT_FACTORY_ID);
  for (const auto& [name, table] : config.plugin_tables) want(name, "");

  boost::asio::io_context io;
  plugin::HostServices services(io);
  std::vector<std::string> notes;
  for (const auto& [name, factory_id] : wanted) {
    const std::string role = factory_id == PMCP_EXECUTOR_FACTORY_ID    ? "executor '"
                             : factory_id == PMCP_TRANSPORT_FACTORY_ID ? "transport '"
                                                                       : "plugin '";
    auto path = plugin::find_plugin(name, dirs);
    if (!path) return make_error(path.error().code, role + name + "': " + path.error().message);
    auto loaded = plugin::load_plugin(*path, services.host_for(name));
    if (!loaded)
      return make_error(loaded.error().code, role + name + "': " + loaded.error().message);
    if (!factory_id.empty()) {
      if (auto factory = (*loaded)->factory(factory_id); !factory) {
        return make_error(factory.error().code, role + name + "': " + factory.error().message);
      }
    }
    auto table = (*loaded)->factory(PMCP_CONFIG_CHECK_FACTORY_ID);
    const auto* check = static_cast<const pmcp_config_check_factory*>(table ? *table : nullptr);
    if (check == nullptr || check->struct_size < sizeof(pmcp_config_check_factory) ||
        check->check == nullptr) {
      notes.push_back("[" + name + "] not checked: plugin '" + name + "' (" + path->string() +
                      ") offers no config check; the server checks it when it starts");
      continue;
    }
    const std::string text = plugin_table_json(config, name);
    ErrorText error{};
    const int32_t status = check->check(check, pmcp_str{text.data(), text.size()},
                                        pmcp_error_buf{error.data(), error.size()});
    if (status != PMCP_OK) {
      std::string reason = error.data();
      if (reason.empty()) reason = "refused (status " + std::to_string(status) + ")";
      const std::string tag = "[" + name + "]";
      if (!reason.starts_with(tag)) reason = tag + " " + reason;
      return make_error(ErrorCode::invalid_argument, table_location(config, name) + ": " + reason);
    }
  }
  return notes;
}

std::vector<fs::path> plugin_search_path(const config::Config& config) {
  std::vector<fs::path> dirs;
  for (const auto& d : config.plugin_dirs) add_unique(dirs, d);
  add_unique(dirs, executable_dir() / ".." / PMCP_PLUGIN_RELDIR);
  fs::path lib = core_library_dir();
  if (!lib.empty()) add_unique(dirs, lib / "process-mcp" / "plugins");
  add_unique(dirs, PMCP_INSTALL_PLUGINDIR);
  return dirs;
}

std::vector<fs::path> default_config_paths() {
  std::vector<fs::path> paths;
  add_unique(paths, executable_dir() / ".." / PMCP_CONFIG_RELDIR / "process-mcp.toml");
  add_unique(paths, fs::path(PMCP_SYSCONFDIR) / "process-mcp" / "process-mcp.toml");
  return paths;
}

// One transport instance and what its sink callbacks need on the way to the core thread.
struct Server::TransportSlot {
  struct Shared : std::enable_shared_from_this<Shared> {
    boost::asio::io_context* io = nullptr;
    Server* server = nullptr;
    uint32_t index = 0;
    std::atomic<bool> alive{true};
  };
  std::string name;
  pmcp_transport* instance = nullptr;
  pmcp_transport_sink sink{};
  std::shared_ptr<Shared> shared = std::make_shared<Shared>();
  bool stopped = false;
};

Server::Server(config::Config config, ServerOptions options)
    : config_(std::move(config)), options_(options) {}

Server::~Server() {
  if (thread_.joinable()) {
    shutdown();
    thread_.join();
  }
  if (!finished_) {
    // Never ran (or run() returned early): tear down on this thread.
    finish_shutdown();
  }
}

Result<std::unique_ptr<Server>> Server::create(config::Config config, ServerOptions options) {
  std::unique_ptr<Server> server(new Server(std::move(config), options));
  if (auto loaded = server->load(); !loaded) return std::move(loaded).error();
  return server;
}

Result<void> Server::load() {
  host_services_ = std::make_unique<plugin::HostServices>(io_);
  auto dirs = plugin_search_path(config_);

  if (auto named = check_tables_name_plugins(config_, dirs); !named)
    return std::move(named).error();

  auto load_one = [&](const std::string& name, const char* factory_id) -> Result<const void*> {
    auto path = plugin::find_plugin(name, dirs);
    if (!path) return std::move(path).error();
    auto loaded = plugin::load_plugin(*path, host_services_->host_for(name));
    if (!loaded) return std::move(loaded).error();
    plugins_.push_back(*loaded);
    spdlog::debug("loaded plugin '{}' {} from {}", (*loaded)->info().id, (*loaded)->info().version,
                  path->string());
    return (*loaded)->factory(factory_id);
  };
  auto table_json = [&](const std::string& name) { return plugin_table_json(config_, name); };

  auto factory = load_one(config_.executor, PMCP_EXECUTOR_FACTORY_ID);
  if (!factory) {
    return make_error(factory.error().code,
                      "executor '" + config_.executor + "': " + factory.error().message);
  }
  executor_ = std::make_unique<process::Executor>(io_);
  process::RegistryLimits limits;
  limits.output_buffer_bytes = config_.limits.output_buffer_bytes;
  limits.scrollback_lines = config_.limits.scrollback_lines;
  limits.keep_terminated = config_.limits.keep_terminated;
  limits.max_processes = config_.limits.max_processes;
  registry_ = std::make_unique<process::Registry>(*executor_, limits);
  auto created = executor_->create(static_cast<const pmcp_executor_factory*>(*factory),
                                   host_services_->host_for(config_.executor),
                                   table_json(config_.executor), *registry_);
  if (!created) {
    return make_error(created.error().code,
                      "executor '" + config_.executor + "' refused its configuration" +
                          (config_.source.empty() ? "" : " from " + config_.source) + ": " +
                          created.error().message);
  }

  mcp::ServerInfo info;
  info.version = PMCP_VERSION;
  info.instructions =
      "Run and steer processes. spawn runs a shell command (foreground with a timeout that "
      "moves it to the background, or background: true); ps lists processes; stdout reads "
      "output; stdin types into a process (escapes like \\n, \\r, \\x03); kill signals its "
      "process group. Use tty: true for interactive programs.";
  dispatcher_ =
      std::make_unique<mcp::Dispatcher>(static_cast<mcp::Outbound&>(*this), std::move(info));
  tool_context_ = std::make_unique<tools::ToolContext>(
      tools::ToolContext{io_, *registry_, config_, config::current_environment()});
  for (auto& tool : tools::make_tools(*tool_context_)) dispatcher_->add_tool(std::move(tool));
  resources_ = std::make_unique<tools::ProcessResources>(*tool_context_, *dispatcher_);
  dispatcher_->set_resources(resources_.get());
  registry_->set_output_listener([this](const process::Process& p, int stream) {
    resources_->changed(p, stream == PMCP_STREAM_STDERR ? "stderr" : "stdout");
  });
  // Exit notice: every session that has seen the process hears that it ended.
  registry_->set_exit_listener([this](const process::Process& p) {
    resources_->changed(p, "exit");
    json::object data;
    data["event"] = "exit";
    data["id"] = p.id;
    data["exitCode"] = p.exit_code ? json::value(*p.exit_code) : json::value(nullptr);
    data["signal"] =
        p.term_signal ? json::value(process::signal_name(p.term_signal)) : json::value(nullptr);
    for (const auto& [transport, session] : p.seen_by) {
      dispatcher_->log(mcp::LogLevel::info, "process", data, mcp::SessionKey{transport, session});
    }
  });

  if (!options_.start_transports) return {};
  for (const auto& name : config_.transports) {
    auto tfactory = load_one(name, PMCP_TRANSPORT_FACTORY_ID);
    if (!tfactory) {
      return make_error(tfactory.error().code,
                        "transport '" + name + "': " + tfactory.error().message);
    }
    auto slot = std::make_unique<TransportSlot>();
    slot->name = name;
    slot->shared->io = &io_;
    slot->shared->server = this;
    slot->shared->index = static_cast<uint32_t>(transports_.size());
    slot->sink.struct_size = sizeof(slot->sink);
    slot->sink.ctx = slot->shared.get();
    slot->sink.on_message = [](void* ctx, uint64_t session, uint64_t stream, pmcp_str text) {
      auto shared = static_cast<TransportSlot::Shared*>(ctx)->shared_from_this();
      if (!shared->alive) return;
      std::string copy(text.data ? text.data : "", text.size);
      boost::asio::post(*shared->io, [shared, session, stream, copy = std::move(copy)] {
        if (!shared->alive || shared->server->dispatcher_ == nullptr) return;
        shared->server->dispatcher_->on_message({shared->index, session}, stream, copy);
      });
    };
    slot->sink.on_session_closed = [](void* ctx, uint64_t session) {
      auto shared = static_cast<TransportSlot::Shared*>(ctx)->shared_from_this();
      if (!shared->alive) return;
      boost::asio::post(*shared->io, [shared, session] {
        if (!shared->alive || shared->server->dispatcher_ == nullptr) return;
        shared->server->session_closed({shared->index, session});
      });
    };
    slot->sink.on_stopped = [](void* ctx, pmcp_str reason) {
      auto shared = static_cast<TransportSlot::Shared*>(ctx)->shared_from_this();
      if (!shared->alive) return;
      std::string why(reason.data ? reason.data : "", reason.size);
      boost::asio::post(*shared->io, [shared, why = std::move(why)] {
        if (!shared->alive) return;
        Server* server = shared->server;
        auto& slot = server->transports_[shared->index];
        slot->stopped = true;
        spdlog::info("transport '{}' stopped: {}", slot->name, why);
        bool all = std::all_of(server->transports_.begin(), server->transports_.end(),
                               [](const auto& s) { return s->stopped; });
        if (all) server->begin_shutdown();
      });
    };
    ErrorText text{};
    pmcp_transport* instance = nullptr;
    auto* tf = static_cast<const pmcp_transport_factory*>(*tfactory);
    std::string table = table_json(name);
    int32_t status =
        tf->create(tf, host_services_->host_for(name), pmcp_str{table.data(), table.size()},
                   &slot->sink, &instance, pmcp_error_buf{text.data(), text.size()});
    if (status != PMCP_OK || instance == nullptr) {
      return make_error(ErrorCode::invalid_argument,
                        "transport '" + name + "' refused its configuration" +
                            (config_.source.empty() ? "" : " from " + config_.source) + ": " +
                            std::string(text.data()));
    }
    slot->instance = instance;
    transports_.push_back(std::move(slot));
  }
  return {};
}

Result<void> Server::start_transports() {
  for (auto& slot : transports_) {
    ErrorText text{};
    int32_t status =
        slot->instance->start(slot->instance, pmcp_error_buf{text.data(), text.size()});
    if (status != PMCP_OK) {
      return make_error(ErrorCode::unavailable,
                        "transport '" + slot->name + "' could not start: " + text.data());
    }
  }
  return {};
}

int Server::run() {
  // Keeps the loop alive while idle; finish_shutdown() releases it.
  shutdown_guard_ =
      std::make_unique<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>(
          io_.get_executor());
  if (options_.handle_signals) {
    signals_ = std::make_unique<boost::asio::signal_set>(io_, SIGINT, SIGTERM, SIGHUP);
    signals_->async_wait([this](boost::system::error_code ec, int signo) {
      if (ec) return;
      spdlog::info("received {}, shutting down", strsignal(signo));
      begin_shutdown();
    });
  }
  std::signal(SIGPIPE, SIG_IGN);
  if (auto started = start_transports(); !started) {
    spdlog::error("{}", started.error().message);
    exit_code_ = 1;
    boost::asio::post(io_, [this] { begin_shutdown(); });
  }
  io_.run();
  return exit_code_;
}

Result<void> Server::start() {
  if (thread_.joinable()) return make_error(ErrorCode::state, "the server is already running");
  thread_ = std::thread([this] { run(); });
  return {};
}

void Server::join() {
  if (thread_.joinable()) thread_.join();
}

void Server::shutdown() {
  boost::asio::post(io_, [this] { begin_shutdown(); });
}

void Server::begin_shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  if (signals_) signals_->cancel();
  for (auto& slot : transports_) {
    if (slot->instance) slot->instance->stop(slot->instance);
  }
  // The kill ladder: SIGTERM to every running process group, SIGKILL after the grace time.
  std::vector<process::ProcessPtr> running;
  for (const auto& p : registry_->list()) {
    if (p->running()) running.push_back(p);
  }
  if (running.empty()) {
    finish_shutdown();
    return;
  }
  spdlog::info("stopping {} running process(es)", running.size());
  auto remaining = std::make_shared<std::size_t>(running.size());
  auto timer = std::make_shared<boost::asio::steady_timer>(io_);
  for (const auto& p : running) {
    (void)executor_->signal(p->number, SIGTERM);
    registry_->on_exit(p, [remaining, timer](const process::Process&) {
      if (--*remaining == 0) timer->cancel();
    });
  }
  timer->expires_after(std::chrono::milliseconds(config_.limits.kill_grace_ms));
  timer->async_wait([this, running, timer](boost::system::error_code) {
    bool any = false;
    for (const auto& p : running) {
      if (p->running()) {
        any = true;
        (void)executor_->signal(p->number, SIGKILL);
      }
    }
    if (!any) {
      finish_shutdown();
      return;
    }
    // destroy() reaps whatever is left; give SIGKILL a moment to be reported first.
    timer->expires_after(std::chrono::milliseconds(500));
    timer->async_wait([this, timer](boost::system::error_code) { finish_shutdown(); });
  });
}

void Server::finish_shutdown() {
  if (finished_) return;
  finished_ = true;
  shutting_down_ = true;
  if (executor_) executor_->destroy();
  for (auto& slot : transports_) {
    slot->shared->alive = false;
    if (slot->instance) {
      pmcp_transport* instance = slot->instance;
      slot->instance = nullptr;
      instance->destroy(instance);
    }
  }
  if (host_services_) host_services_->shutdown();
  shutdown_guard_.reset();
  io_.stop();
}

void Server::send(mcp::SessionKey session, uint64_t stream, std::string text, bool final) {
  if (session.transport == kLocalTransport) {
    auto it = local_sessions_.find(session.session);
    if (it != local_sessions_.end()) it->second(std::move(text));
    return;
  }
  if (session.transport >= transports_.size()) return;
  auto& slot = transports_[session.transport];
  if (slot->instance == nullptr) return;
  ErrorText err{};
  int32_t status = slot->instance->send(
      slot->instance, session.session, stream, pmcp_str{text.data(), text.size()},
      final ? PMCP_SEND_FINAL : 0u, pmcp_error_buf{err.data(), err.size()});
  if (status != PMCP_OK && status != PMCP_ERR_NOT_FOUND) {
    spdlog::warn("transport '{}' could not send: {}", slot->name, err.data());
  }
}

uint64_t Server::open_local_session(std::function<void(std::string)> on_send) {
  uint64_t id = next_local_session_++;
  local_sessions_[id] = std::move(on_send);
  return id;
}

void Server::deliver_local(uint64_t session, std::string text) {
  dispatcher_->on_message({kLocalTransport, session}, 0, text);
}

void Server::close_local_session(uint64_t session) {
  local_sessions_.erase(session);
  session_closed({kLocalTransport, session});
}

void Server::session_closed(mcp::SessionKey key) {
  dispatcher_->on_session_closed(key);
  if (config_.on_session_end != "kill" || shutting_down_) return;
  // on_session_end = "kill": the session's processes end with it (SIGTERM, then SIGKILL).
  std::vector<process::ProcessPtr> owned;
  for (const auto& p : registry_->list()) {
    if (p->running() && p->owner == tools::session_tag(key)) owned.push_back(p);
  }
  if (owned.empty()) return;
  for (const auto& p : owned) (void)executor_->signal(p->number, SIGTERM);
  auto timer = std::make_shared<boost::asio::steady_timer>(io_);
  timer->expires_after(std::chrono::milliseconds(config_.limits.kill_grace_ms));
  timer->async_wait([this, owned, timer](boost::system::error_code) {
    if (finished_) return;
    for (const auto& p : owned) {
      if (p->running()) (void)executor_->signal(p->number, SIGKILL);
    }
  });
}

}  // namespace pmcp::server
