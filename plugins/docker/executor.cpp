#include "executor.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <future>
#include <optional>
#include <random>
#include <utility>
#include <vector>

#include "stream.hpp"

namespace pmcp::docker {

namespace json = boost::json;
namespace http = boost::beast::http;
using asio::use_awaitable;
using namespace std::chrono_literals;
using sdk::Error;

namespace {

// The oldest engine API we accept (Docker 19.03) and the newest we ask for.
constexpr int kMinApiMajor = 1, kMinApiMinor = 40;
constexpr int kMaxApiMajor = 1, kMaxApiMinor = 45;
constexpr std::size_t kReadChunk = 64 * 1024;

// Where the container sees the proxy's directory (read-only): the proxy's socket and the bridge.
constexpr const char* kNetMount = "/run/process-mcp";
constexpr const char* kProxySocketName = "proxy.sock";
constexpr const char* kBridgeName = "pmcp-net-bridge";
// The bridge listens on the container's own loopback, at the port the host sandbox uses too.
constexpr const char* kProxyPort = "3128";

// Starts the bridge unless something listens on 127.0.0.1:3128 already (0x0C38 = 3128, state
// 0A = LISTEN in /proc/net/tcp). The command substitution returns once the bridge wrote its
// ready byte and closed fd 3, or died. POSIX sh (dash, bash, busybox ash); no other tool than
// grep.
constexpr const char* kBridgeScript =
    "S=/run/process-mcp/proxy.sock; B=/run/process-mcp/pmcp-net-bridge\n"
    "if grep -q ' 0100007F:0C38 00000000:0000 0A ' /proc/net/tcp 2>/dev/null; then\n"
    "  echo bridge-running; exit 0\n"
    "fi\n"
    "if [ ! -S \"$S\" ]; then echo \"the proxy's socket $S is missing in the container\"; "
    "exit 0; fi\n"
    "r=$(\"$B\" --listen 127.0.0.1:3128 --connect \"$S\" --ready-fd 3 3>&1 </dev/null "
    ">/dev/null 2>&1 &)\n"
    "if [ \"$r\" = r ]; then echo bridge-started; else echo \"the network bridge $B did not "
    "start\"; fi\n";

std::string errno_text(int e) {
  char buf[256];
  return std::string(strerror_r(e, buf, sizeof buf));
}

// The container name as a directory name: itself when it is a short Docker name
// ([a-zA-Z0-9][a-zA-Z0-9_.-]*), else a stable hash (too long for a socket path, or a name the
// engine will refuse anyway: never a path of its own).
std::string short_name(const std::string& name) {
  bool plain =
      !name.empty() && name.size() <= 48 && std::isalnum(static_cast<unsigned char>(name[0]));
  for (unsigned char c : name)
    plain = plain && (std::isalnum(c) || c == '_' || c == '.' || c == '-');
  if (plain) return name;
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return std::string("h-") + buf;
}

bool is_dir_path(const char* path) {
  struct stat st {};
  return path != nullptr && path[0] == '/' && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

// Copies src to dst through a temporary file and a rename, so that a bridge running from the
// old file goes on undisturbed. Returns "" or the reason.
std::string copy_executable(const std::string& src, const std::string& dst) {
  std::ifstream in(src, std::ios::binary);
  if (!in) return "cannot read " + src + ": " + errno_text(errno);
  const std::string tmp = dst + ".new";
  unlink(tmp.c_str());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return "cannot write " + tmp + ": " + errno_text(errno);
    out << in.rdbuf();
    out.flush();
    if (!out) return "cannot write " + tmp;
  }
  if (chmod(tmp.c_str(), 0755) != 0 || rename(tmp.c_str(), dst.c_str()) != 0) {
    const int e = errno;
    unlink(tmp.c_str());
    return "cannot install " + dst + ": " + errno_text(e);
  }
  return {};
}

bool parse_version(const std::string& v, int& major, int& minor) {
  const std::size_t dot = v.find('.');
  if (dot == std::string::npos) return false;
  try {
    major = std::stoi(v.substr(0, dot));
    minor = std::stoi(v.substr(dot + 1));
  } catch (...) {
    return false;
  }
  return true;
}

json::value parse_body(const Response& r) {
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  if (ec) return json::value();
  return v;
}

const json::value* field(const json::value& v, std::string_view key) {
  if (!v.is_object()) return nullptr;
  return v.as_object().if_contains(key);
}

std::string string_field(const json::value& v, std::string_view key) {
  const json::value* f = field(v, key);
  return f && f->is_string() ? std::string(f->as_string()) : std::string();
}

json::array string_array(const std::vector<std::string>& items) {
  json::array a;
  for (const auto& s : items) a.emplace_back(s);
  return a;
}

// "ubuntu:22.04" -> ("ubuntu", "22.04"); "repo/x@sha256:..." -> (whole, ""); no tag -> "latest".
std::pair<std::string, std::string> split_image(const std::string& image) {
  if (image.find('@') != std::string::npos) return {image, ""};
  const std::size_t slash = image.rfind('/');
  const std::size_t colon = image.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash))
    return {image.substr(0, colon), image.substr(colon + 1)};
  return {image, "latest"};
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && (s[i] == '\n' || s[i] == '\r' || s[i] == ' ')) ++i;
  return s.substr(i);
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  t.expires_after(d);
  co_await t.async_wait(asio::as_tuple(use_awaitable));
}

}  // namespace

struct DockerExecutor::Proc {
  uint64_t id = 0;
  bool tty = false;
  uint16_t cols = 0;
  uint16_t rows = 0;
  std::string argv0;
  std::string cwd;
  std::string create_body;  // exec create request
  std::string exec_id;
  std::optional<EngineStream> socket;
  MarkerReader marker;
  Demuxer demux;
  std::string held;  // output that arrived before the marker
  bool started = false;
  bool ended = false;
  int64_t pgid = 0;
  std::deque<std::string> stdin_queue;
  bool close_requested = false;
  bool write_side_closed = false;
  bool writing = false;
  std::vector<int> pending_signals;
  std::optional<std::pair<uint16_t, uint16_t>> wanted_size;
  bool resizing = false;
  bool signalled = false;  // a signal was sent to it on request
  std::unique_ptr<char[]> buffer;
};

struct DockerExecutor::Guard {
  std::optional<EngineStream> socket;
  std::deque<std::string> queue;
  bool writing = false;
};

namespace {

// The guard's script (POSIX sh: dash, bash and busybox ash). It keeps the live groups as
// " 1 2 3 " and kills them all at the end of its input. "x n" kills what is left of the group of
// a command that has ended and forgets it: with `kill` a builtin of the shell, that costs the
// engine nothing, where an exec per ended command doubled its work per command. The kill comes
// 0.1 s after the end (as it did when an exec made it), so that a daemon whose parent exits
// before it calls setsid (the classic double fork) has left the group by then and survives; a
// `sleep` that takes no fraction fails at once, and the kill is then immediate.
constexpr const char* kGuardScript =
    "g=' '\n"
    "while read -r op n; do\n"
    "  case \"$op\" in\n"
    "    +) g=\"$g$n \" ;;\n"
    "    x) ( sleep 0.1; kill -9 -\"$n\" ) </dev/null >/dev/null 2>&1 &\n"
    "       case \"$g\" in *\" $n \"*) g=\"${g%%\" $n \"*} ${g#*\" $n \"}\" ;; esac ;;\n"
    "    -) case \"$g\" in *\" $n \"*) g=\"${g%%\" $n \"*} ${g#*\" $n \"}\" ;; esac ;;\n"
    "    bye) exit 0 ;;\n"
    "  esac\n"
    "done\n"
    "for n in $g; do kill -9 -\"$n\" 2>/dev/null; done\n"
    "exit 0\n";

// The guard runs as `/bin/sh -c kGuardScript process-mcp-guard <instance>`, so that its command
// line tells which server it guards; every process we start has kInstanceVariable=<instance>
// in its environment (inherited by its children, also those that leave the process group).
constexpr const char* kGuardName = "process-mcp-guard";
constexpr const char* kInstanceVariable = "PROCESS_MCP_INSTANCE";

// Run once at start-up: kills every process that carries an instance whose guard is not running
// (a server that was SIGKILLed while its guard was down, or whose guard was killed or stopped)
// and prints their pids. A live server's processes keep theirs: its guard runs from before its
// first process until its end. POSIX sh and tr only.
constexpr const char* kSweepScript =
    "g=process-mcp-; g=\"${g}guard\"; v=PROCESS_MCP_INSTANCE=; live=' '\n"
    "for d in /proc/[0-9]*; do\n"
    "  c=$(tr '\\0' ' ' 2>/dev/null <\"$d/cmdline\") || continue\n"
    "  case \"$c\" in *\" $g \"*) t=${c#*\" $g \"}; live=\"$live${t%% *} \" ;; esac\n"
    "done\n"
    "for d in /proc/[0-9]*; do\n"
    "  p=${d#/proc/}\n"
    "  o=$(tr '\\0' '\\n' 2>/dev/null <\"$d/environ\" | while IFS= read -r l; do\n"
    "    case \"$l\" in \"$v\"*) echo \"${l#\"$v\"}\"; break ;; esac; done)\n"
    "  [ -n \"$o\" ] || continue\n"
    "  case \"$live\" in *\" $o \"*) continue ;; esac\n"
    "  kill -9 \"$p\" 2>/dev/null && echo \"$p\"\n"
    "done\n"
    "true\n";

// 16 random hex digits: this executor instance, as the guard and our processes name it.
std::string new_instance_id() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

}  // namespace

DockerExecutor::DockerExecutor(const pmcp_host* host, const pmcp_executor_sink& sink, Config config,
                               Endpoint endpoint, std::string bridge)
    : host_(host),
      sink_(sink),
      config_(std::move(config)),
      bridge_(std::move(bridge)),
      proxied_(config_.policy && !config_.allowed_domains.empty()),
      instance_(new_instance_id()),
      work_(asio::make_work_guard(io_)),
      client_(io_, std::move(endpoint)) {
  default_cwd_ = config_.workdir;
  thread_ = std::thread([this] {
    for (;;) {
      try {
        io_.run();
        return;
      } catch (const std::exception& e) {
        log(PMCP_LOG_ERROR, std::string("unexpected error on the docker thread: ") + e.what());
      } catch (...) {
        log(PMCP_LOG_ERROR, "unexpected error on the docker thread");
      }
    }
  });
}

DockerExecutor::~DockerExecutor() {
  if (!thread_.joinable()) return;
  try {
    auto done = asio::co_spawn(io_, shutdown(), asio::use_future);
    if (done.wait_for(60s) != std::future_status::ready)
      log(PMCP_LOG_WARN, "the docker engine did not answer in time while shutting down");
  } catch (...) {
  }
  work_.reset();
  io_.stop();
  thread_.join();
  if (proxy_ != nullptr) proxy_->stop();  // removes the socket file
  if (drop_net_dir_) remove_net_dir();
}

void DockerExecutor::log(pmcp_log_level level, const std::string& message) const {
  sdk::log(host_, level, message);
}

// ---- start-up ----

void DockerExecutor::setup() {
  try {
    if (proxied_) start_proxy();
    auto done = asio::co_spawn(io_, setup_async(), asio::use_future);
    done.get();  // rethrows sdk::Error
  } catch (...) {
    // No container of ours mounts a directory made just now: it goes with the proxy.
    if (net_dir_made_ && !created_) drop_net_dir_ = true;
    throw;
  }
}

asio::awaitable<void> DockerExecutor::setup_async() {
  const std::string& url = client_.endpoint().url;
  Response version;
  try {
    version = co_await client_.call(http::verb::get, "/version", {}, 15s, false);
  } catch (const ApiError& e) {
    std::string hint;
    const std::string what = e.what();
    if (what.find("ermission denied") != std::string::npos)
      hint =
          " (this user may not use the Docker socket: add it to the docker group, or point "
          "[docker] host / DOCKER_HOST at an engine it may use)";
    else if (e.unreachable)
      hint = " (is dockerd running? set [docker] host or DOCKER_HOST to its address)";
    throw Error(PMCP_ERR_UNAVAILABLE, what + hint);
  }
  // Go's TLS server answers a plain request with this 400.
  if (version.status == 400 && version.body.find("HTTPS server") != std::string::npos)
    throw Error(PMCP_ERR_UNAVAILABLE,
                "the Docker engine at " + url +
                    " expects TLS (it answered: " + engine_message(version.body) +
                    "): set [docker] tls_verify = true and cert_path (or DOCKER_TLS_VERIFY=1 and "
                    "DOCKER_CERT_PATH) to the directory with ca.pem, cert.pem and key.pem");
  if (version.status != 200)
    throw Error(PMCP_ERR_UNAVAILABLE, "the Docker engine at " + url +
                                          " answered GET /version with "
                                          "status " +
                                          std::to_string(version.status) + ": " +
                                          engine_message(version.body));
  const json::value v = parse_body(version);
  const std::string api = string_field(v, "ApiVersion");
  int major = 0, minor = 0;
  if (!parse_version(api, major, minor))
    throw Error(PMCP_ERR_UNAVAILABLE,
                "the Docker engine at " + url + " did not say which API version it speaks");
  if (std::pair(major, minor) < std::pair(kMinApiMajor, kMinApiMinor))
    throw Error(PMCP_ERR_UNAVAILABLE,
                "the Docker engine at " + url + " is too old: it speaks API " + api + " (Docker " +
                    string_field(v, "Version") + "), process-mcp needs API " +
                    std::to_string(kMinApiMajor) + "." + std::to_string(kMinApiMinor) +
                    " (Docker 19.03) or newer");
  if (std::pair(major, minor) > std::pair(kMaxApiMajor, kMaxApiMinor)) {
    major = kMaxApiMajor;
    minor = kMaxApiMinor;
  }
  client_.set_api_version(std::to_string(major) + "." + std::to_string(minor));
  api_console_size_ = std::pair(major, minor) >= std::pair(1, 42);
  log(PMCP_LOG_DEBUG, "Docker engine " + string_field(v, "Version") + " at " + url + ", API " +
                          client_.api_version());
  try {
    co_await ensure_container(true);
    if (proxied_) co_await ensure_bridge();
  } catch (const ApiError& e) {
    throw Error(PMCP_ERR_UNAVAILABLE, e.what());
  }
  log(PMCP_LOG_INFO, std::string(created_ ? "created" : "using") + " container '" +
                         config_.container + "' (" + container_id_.substr(0, 12) + ")");
  if (!created_) co_await sweep_leftovers();
  // Our guard runs before our first process starts, so that a sweep by another server on the
  // same container never takes our processes for leftovers.
  asio::co_spawn(io_, guard_loop(), asio::detached);
  for (auto waited = 0ms; !guard_ && !guard_failed_ && waited < 10s; waited += 20ms)
    co_await sleep_for(20ms);
}

asio::awaitable<void> DockerExecutor::sweep_leftovers() {
  std::string out;
  try {
    out = trim(co_await run_helper(kSweepScript));
  } catch (const std::exception& e) {
    log(PMCP_LOG_WARN, "cannot look for processes left in container '" + config_.container +
                           "' by an earlier server: " + e.what());
    co_return;
  }
  std::string pids;
  std::size_t count = 0;
  for (std::size_t pos = 0; pos < out.size();) {
    std::size_t end = out.find('\n', pos);
    if (end == std::string::npos) end = out.size();
    const std::string line = trim(out.substr(pos, end - pos));
    pos = end + 1;
    // Only the pids count; anything else the shell said (a process that just ended) does not.
    if (line.empty() || line.size() > 18 ||
        !std::all_of(line.begin(), line.end(), [](char c) { return c >= '0' && c <= '9'; }))
      continue;
    pids += (pids.empty() ? "" : " ") + line;
    ++count;
  }
  if (count == 0) co_return;
  log(PMCP_LOG_WARN, "killed " + std::to_string(count) + " process" + (count == 1 ? "" : "es") +
                         " left in container '" + config_.container +
                         "' by a server that ended without stopping them (pid " + pids + ")");
}

asio::awaitable<void> DockerExecutor::ensure_container(bool initial) {
  const std::string& name = config_.container;
  Response r = co_await client_.call(http::verb::get, "/containers/" + url_encode(name) + "/json");
  if (r.status == 404) {
    if (config_.use_existing)
      throw Error(PMCP_ERR_NOT_FOUND,
                  "container '" + name +
                      "' does not exist (use_existing = true / "
                      "DOCKER_USE_EXISTING=true uses a container as it is and never creates one: "
                      "create it first, or set use_existing = false)");
    co_await ensure_image();
    co_await create_container();
    r = co_await client_.call(http::verb::get, "/containers/" + url_encode(name) + "/json");
  }
  if (r.status != 200)
    throw Error(PMCP_ERR_UNAVAILABLE,
                "cannot inspect container '" + name + "': " + engine_message(r.body));
  json::value info = parse_body(r);
  check_policy_of(info);
  container_id_ = string_field(info, "Id");
  if (container_id_.empty())
    throw Error(PMCP_ERR_UNAVAILABLE, "the engine did not give the id of container '" + name + "'");
  const json::value* state = field(info, "State");
  const bool running = state && field(*state, "Running") && field(*state, "Running")->is_bool() &&
                       field(*state, "Running")->as_bool();
  const bool paused = state && field(*state, "Paused") && field(*state, "Paused")->is_bool() &&
                      field(*state, "Paused")->as_bool();
  if (initial && config_.use_existing && !config_.workdir_set) {
    const json::value* cfg = field(info, "Config");
    const std::string dir = cfg ? string_field(*cfg, "WorkingDir") : std::string();
    default_cwd_ = dir.empty() ? "/" : dir;
  }
  if (paused) throw Error(PMCP_ERR_STATE, "container '" + name + "' is paused; unpause it first");
  if (!running) {
    if (initial && !created_) log(PMCP_LOG_INFO, "starting the existing container '" + name + "'");
    co_await start_container();
  } else if (initial && !created_ && !config_.use_existing) {
    log(PMCP_LOG_INFO, "reusing the running container '" + name + "' with its own settings");
  }
}

asio::awaitable<void> DockerExecutor::ensure_image() {
  const std::string& image = config_.image;
  Response r = co_await client_.call(http::verb::get, "/images/" + image + "/json");
  if (r.status == 200) co_return;
  if (r.status != 404)
    throw Error(PMCP_ERR_UNAVAILABLE,
                "cannot inspect image '" + image + "': " + engine_message(r.body));
  log(PMCP_LOG_INFO, "pulling image '" + image + "'");
  auto [from, tag] = split_image(image);
  std::string target = "/images/create?fromImage=" + url_encode(from);
  if (!tag.empty()) target += "&tag=" + url_encode(tag);
  Response pull;
  try {
    pull = co_await client_.call(http::verb::post, target, {}, 30min);
  } catch (const ApiError& e) {
    throw Error(PMCP_ERR_UNAVAILABLE, "cannot pull image '" + image + "': " + e.what());
  }
  if (pull.status != 200)
    throw Error(PMCP_ERR_UNAVAILABLE,
                "cannot pull image '" + image + "': " + engine_message(pull.body));
  // The answer is a stream of JSON objects; a failure is one with an "error" field.
  std::size_t pos = 0;
  const std::string& body = pull.body;
  while (pos < body.size()) {
    std::size_t end = body.find('\n', pos);
    if (end == std::string::npos) end = body.size();
    boost::system::error_code ec;
    json::value line = json::parse(std::string_view(body).substr(pos, end - pos), ec);
    pos = end + 1;
    if (ec) continue;
    const std::string error = string_field(line, "error");
    if (!error.empty())
      throw Error(PMCP_ERR_UNAVAILABLE, "cannot pull image '" + image + "': " + error);
  }
  Response check = co_await client_.call(http::verb::get, "/images/" + image + "/json");
  if (check.status != 200)
    throw Error(PMCP_ERR_UNAVAILABLE, "cannot pull image '" + image +
                                          "': the engine reported no error but does not "
                                          "have the image afterwards");
}

asio::awaitable<void> DockerExecutor::create_container() {
  const Config& c = config_;
  json::object host;
  if (c.memory > 0) {
    host["Memory"] = c.memory;
    host["MemorySwap"] = c.memory;
  }
  if (c.cpus > 0) host["NanoCpus"] = static_cast<int64_t>(c.cpus * 1e9);
  if (c.pids_limit > 0) host["PidsLimit"] = c.pids_limit;
  host["Privileged"] = false;
  host["CapDrop"] = json::array{"ALL"};
  host["SecurityOpt"] = json::array{"no-new-privileges"};
  host["Tmpfs"] = json::object{{"/tmp", "rw,noexec,nosuid,size=100m"},
                               {"/var/tmp", "rw,noexec,nosuid,size=100m"}};
  json::array mounts;
  if (!c.volume.empty())
    mounts.push_back(json::object{{"Type", "volume"}, {"Source", c.volume}, {"Target", c.workdir}});
  if (proxied_)
    mounts.push_back(json::object{
        {"Type", "bind"}, {"Source", net_dir_}, {"Target", kNetMount}, {"ReadOnly", true}});
  if (!mounts.empty()) host["Mounts"] = std::move(mounts);
  host["NetworkMode"] = c.network;  // "none" with a domain policy
  host["Init"] = c.init;
  json::object body{{"Image", c.image},
                    {"Cmd", string_array(c.keep_alive)},
                    {"WorkingDir", c.workdir},
                    {"Labels", json::object{{"process-mcp", "shared-container"}}},
                    {"HostConfig", std::move(host)}};
  Response r =
      co_await client_.call(http::verb::post, "/containers/create?name=" + url_encode(c.container),
                            json::serialize(body));
  if (r.status == 409) {  // another server created it meanwhile: use that one
    log(PMCP_LOG_INFO, "container '" + c.container + "' appeared meanwhile; using it");
    co_return;
  }
  if (r.status != 201)
    throw Error(PMCP_ERR_UNAVAILABLE, "cannot create container '" + c.container + "' from image '" +
                                          c.image + "': " + engine_message(r.body));
  created_ = true;
}

asio::awaitable<void> DockerExecutor::start_container() {
  Response r = co_await client_.call(http::verb::post, "/containers/" + container_id_ + "/start");
  if (r.status != 204 && r.status != 304)
    throw Error(PMCP_ERR_UNAVAILABLE,
                "cannot start container '" + config_.container + "': " + engine_message(r.body));
  // A keep-alive command that ends at once leaves a stopped container: say so now.
  Response i = co_await client_.call(http::verb::get, "/containers/" + container_id_ + "/json");
  const json::value info = parse_body(i);
  const json::value* state = field(info, "State");
  const json::value* running = state ? field(*state, "Running") : nullptr;
  if (running && running->is_bool() && !running->as_bool())
    throw Error(PMCP_ERR_UNAVAILABLE,
                "container '" + config_.container + "' stopped right after it started (" +
                    string_field(*state, "Error") + "); check its command (keep_alive)");
}

// ---- the domain policy ----

void DockerExecutor::start_proxy() {
  if (bridge_.empty() || access(bridge_.c_str(), X_OK) != 0)
    throw Error(PMCP_ERR_UNAVAILABLE, "the network bridge '" + bridge_ +
                                          "' is missing or not executable; the domain policy "
                                          "(allowed_domains) needs it");
  // A directory of our own that only we may enter, then one per container in it: the same
  // path at every start, because the container's mounts are fixed when it is created.
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  const char* tmpdir = std::getenv("TMPDIR");
  std::string base = is_dir_path(xdg) ? xdg : is_dir_path(tmpdir) ? tmpdir : "/tmp";
  if (char* real = realpath(base.c_str(), nullptr)) {
    base = real;
    std::free(real);
  }
  const std::string top = base + "/process-mcp-net-" + std::to_string(geteuid());
  if (mkdir(top.c_str(), 0700) != 0 && errno != EEXIST)
    throw Error(PMCP_ERR_UNAVAILABLE, "cannot create " + top + ": " + errno_text(errno));
  struct stat st {};
  if (lstat(top.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
      (st.st_mode & 077) != 0)
    throw Error(PMCP_ERR_UNAVAILABLE,
                top +
                    " is not a private directory of this user (a directory of ours with mode "
                    "0700); remove it so that process-mcp creates it again");
  net_dir_ = top + "/" + short_name(config_.container);
  if (net_dir_.size() + 1 + std::strlen(kProxySocketName) >= 100)
    throw Error(PMCP_ERR_UNAVAILABLE, "the path of the proxy's socket in " + net_dir_ +
                                          " is too long for a unix socket; set TMPDIR to a "
                                          "shorter directory");
  // Entered by whichever user the container runs as (without capabilities); the private
  // parent keeps the other users of this host out.
  if (mkdir(net_dir_.c_str(), 0755) == 0)
    net_dir_made_ = true;
  else if (errno != EEXIST)
    throw Error(PMCP_ERR_UNAVAILABLE, "cannot create " + net_dir_ + ": " + errno_text(errno));
  if (lstat(net_dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
      chmod(net_dir_.c_str(), 0755) != 0)
    throw Error(PMCP_ERR_UNAVAILABLE, net_dir_ + " is not a directory of this user");
  const std::string copied = copy_executable(bridge_, net_dir_ + "/" + kBridgeName);
  if (!copied.empty()) throw Error(PMCP_ERR_UNAVAILABLE, copied);
  netpolicy::Policy policy{config_.allowed_domains, config_.denied_domains, config_.test_resolve};
  netpolicy::ProxyOptions options;
  options.socket_mode = 0666;  // any user in the container; the parent directory is private
  const pmcp_host* services = host_;
  try {
    proxy_ = netpolicy::Proxy::start(
        std::move(policy), net_dir_ + "/" + kProxySocketName,
        [services](netpolicy::LogLevel level, std::string_view line) {
          const pmcp_log_level l = level == netpolicy::LogLevel::debug     ? PMCP_LOG_DEBUG
                                   : level == netpolicy::LogLevel::info    ? PMCP_LOG_INFO
                                   : level == netpolicy::LogLevel::warning ? PMCP_LOG_WARN
                                                                           : PMCP_LOG_ERROR;
          sdk::log(services, l, "sandbox network: " + std::string(line));
        },
        options);
  } catch (const std::exception& e) {
    throw Error(PMCP_ERR_UNAVAILABLE,
                std::string("cannot start the network proxy for container '") + config_.container +
                    "': " + e.what() +
                    (std::string(e.what()).find("another process") != std::string::npos
                         ? " (another process-mcp serves this container's network; give this "
                           "server its own container name)"
                         : ""));
  }
  const auto list = [](const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& i : items) out += (out.empty() ? "" : ", ") + i;
    return out.empty() ? std::string("none") : out;
  };
  log(PMCP_LOG_INFO, "container network through the proxy, allowed " +
                         list(config_.allowed_domains) + ", denied " +
                         list(config_.denied_domains));
}

void DockerExecutor::remove_net_dir() {
  if (net_dir_.empty()) return;
  unlink((net_dir_ + "/" + kBridgeName).c_str());
  unlink((net_dir_ + "/" + kProxySocketName).c_str());
  rmdir(net_dir_.c_str());
}

void DockerExecutor::check_policy_of(const json::value& info) const {
  if (!config_.policy) return;
  const std::string& name = config_.container;
  const json::value* hc = field(info, "HostConfig");
  const std::string mode = hc ? string_field(*hc, "NetworkMode") : std::string();
  std::string problem;
  if (mode != "none") {
    problem = "it has the network '" + mode + "'";
  } else if (proxied_) {
    bool mounted = false;
    const json::value* mounts = field(info, "Mounts");
    if (mounts && mounts->is_array())
      for (const auto& m : mounts->as_array())
        mounted = mounted || (string_field(m, "Source") == net_dir_ &&
                              string_field(m, "Destination") == kNetMount);
    if (!mounted) problem = "it does not mount the proxy's directory " + net_dir_;
  }
  if (problem.empty()) return;
  throw Error(PMCP_ERR_STATE,
              "container '" + name + "' exists but was not made for the domain policy (" + problem +
                  "), and a container's network and mounts cannot be changed: remove it "
                  "(docker rm -f " +
                  name +
                  "; the volume stays) so that process-mcp creates it with the policy, or set "
                  "another container name");
}

asio::awaitable<void> DockerExecutor::ensure_bridge() {
  if (in_bridge_) co_return;
  in_bridge_ = true;
  std::string out;
  try {
    out = trim(co_await run_helper(kBridgeScript));
  } catch (...) {
    in_bridge_ = false;
    throw;
  }
  in_bridge_ = false;
  if (out == "bridge-started") {
    log(PMCP_LOG_DEBUG, "started the network bridge in container '" + config_.container + "'");
    co_return;
  }
  if (out == "bridge-running") co_return;
  throw ApiError("cannot start the network bridge in container '" + config_.container +
                     "': " + (out.empty() ? std::string("the helper said nothing") : out) +
                     " (if the container outlived a server whose proxy directory was removed, "
                     "restart it: docker restart " +
                     config_.container + ")",
                 false);
}

// ---- core-facing calls (core thread) ----

DockerExecutor::Entry& DockerExecutor::find_live_locked(uint64_t id) {
  auto it = live_.find(id);
  if (it != live_.end()) return it->second;
  if (finished_.count(id))
    throw Error(PMCP_ERR_STATE, "process " + std::to_string(id) + " has exited");
  throw Error(PMCP_ERR_NOT_FOUND, "no process " + std::to_string(id));
}

void DockerExecutor::spawn(const pmcp_spawn_options& o) {
  if (o.struct_size < sizeof(pmcp_spawn_options))
    throw Error(PMCP_ERR_INVALID_ARGUMENT, "spawn options are too small for this executor");
  if (o.argc == 0 || o.argv == nullptr || o.argv[0] == nullptr || o.argv[0][0] == '\0')
    throw Error(PMCP_ERR_INVALID_ARGUMENT, "no command to run");
  auto p = std::make_shared<Proc>();
  p->id = o.process_id;
  p->tty = (o.flags & PMCP_SPAWN_PTY) != 0;
  p->cols = o.cols != 0 ? o.cols : 120;
  p->rows = o.rows != 0 ? o.rows : 30;
  std::vector<std::string> argv;
  for (std::size_t i = 0; i < o.argc; ++i) {
    if (o.argv[i] == nullptr) throw Error(PMCP_ERR_INVALID_ARGUMENT, "argv has a null entry");
    argv.emplace_back(o.argv[i]);
  }
  std::vector<std::string> env;
  for (std::size_t i = 0; i < o.envc; ++i) {
    if (o.envp == nullptr || o.envp[i] == nullptr)
      throw Error(PMCP_ERR_INVALID_ARGUMENT, "envp has a null entry");
    std::string e(o.envp[i]);
    if (e.find('=') == std::string::npos || e.front() == '=')
      throw Error(PMCP_ERR_INVALID_ARGUMENT, "environment entry '" + e + "' is not NAME=value");
    env.push_back(std::move(e));
  }
  if (proxied_) {
    // The policy's variables (the proxy) replace any of the same name, as in host mode.
    const std::string http = std::string("http://127.0.0.1:") + kProxyPort;
    const std::string socks = std::string("socks5h://127.0.0.1:") + kProxyPort;
    for (const std::string& add :
         {"HTTP_PROXY=" + http, "HTTPS_PROXY=" + http, "http_proxy=" + http, "https_proxy=" + http,
          "ALL_PROXY=" + socks, "all_proxy=" + socks,
          std::string("NO_PROXY=localhost,127.0.0.1,::1"),
          std::string("no_proxy=localhost,127.0.0.1,::1")}) {
      const std::string name = add.substr(0, add.find('=') + 1);
      std::erase_if(env, [&](const std::string& e) { return e.starts_with(name); });
      env.push_back(add);
    }
  }
  {
    const std::string mark = std::string(kInstanceVariable) + "=";
    std::erase_if(env, [&](const std::string& e) { return e.starts_with(mark); });
    env.push_back(mark + instance_);
  }
  std::string cwd(sdk::view(o.cwd));
  if (cwd.empty()) cwd = default_cwd_;
  if (cwd.front() != '/') cwd = default_cwd_ + "/" + cwd;
  p->argv0 = argv.front();
  p->cwd = cwd;
  json::object body{{"AttachStdin", true},
                    {"AttachStdout", true},
                    {"AttachStderr", true},
                    {"Tty", p->tty},
                    {"Env", string_array(env)},
                    {"Cmd", string_array(wrap_command(argv, cwd, p->tty, p->cols, p->rows))}};
  if (p->tty && api_console_size_) body["ConsoleSize"] = json::array{p->rows, p->cols};
  p->create_body = json::serialize(body);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (live_.count(p->id) || finished_.count(p->id))
      throw Error(PMCP_ERR_INVALID_ARGUMENT, "process id " + std::to_string(p->id) + " is in use");
    live_[p->id] = Entry{p->tty, false};
  }
  asio::post(io_, [this, p] {
    procs_[p->id] = p;
    asio::co_spawn(io_, run_process(p), asio::detached);
  });
}

void DockerExecutor::write_stdin(uint64_t id, const uint8_t* data, std::size_t size) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Entry& e = find_live_locked(id);
    if (e.stdin_closed)
      throw Error(PMCP_ERR_STATE, "stdin of process " + std::to_string(id) + " is closed");
  }
  if (size == 0) return;
  std::string bytes(reinterpret_cast<const char*>(data), size);
  asio::post(io_, [this, id, bytes = std::move(bytes)]() mutable {
    auto it = procs_.find(id);
    if (it == procs_.end()) return;
    it->second->stdin_queue.push_back(std::move(bytes));
    kick_writer(it->second);
  });
}

void DockerExecutor::close_stdin(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Entry& e = find_live_locked(id);
    if (e.tty)
      throw Error(PMCP_ERR_UNSUPPORTED, "a terminal has no separate stdin to close; send ^D");
    if (e.stdin_closed) return;
    e.stdin_closed = true;
  }
  asio::post(io_, [this, id] {
    auto it = procs_.find(id);
    if (it == procs_.end()) return;
    it->second->close_requested = true;
    kick_writer(it->second);
  });
}

void DockerExecutor::signal(uint64_t id, int32_t signo) {
  if (signo < 1 || signo > 64)
    throw Error(PMCP_ERR_INVALID_ARGUMENT, "signal " + std::to_string(signo) + " is out of range");
  {
    std::lock_guard<std::mutex> lock(mu_);
    find_live_locked(id);
  }
  asio::post(io_, [this, id, signo] {
    auto it = procs_.find(id);
    if (it == procs_.end() || it->second->ended) return;
    if (!it->second->started) {
      it->second->pending_signals.push_back(signo);
      return;
    }
    send_signal(it->second, signo);
  });
}

void DockerExecutor::resize(uint64_t id, uint16_t cols, uint16_t rows) {
  if (cols == 0 || rows == 0)
    throw Error(PMCP_ERR_INVALID_ARGUMENT, "a terminal needs at least one column and one row");
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!find_live_locked(id).tty)
      throw Error(PMCP_ERR_UNSUPPORTED, "process " + std::to_string(id) + " has no terminal");
  }
  asio::post(io_, [this, id, cols, rows] {
    auto it = procs_.find(id);
    if (it == procs_.end() || it->second->ended) return;
    it->second->wanted_size = std::pair(cols, rows);
    kick_resizer(it->second);
  });
}

// ---- processes (io thread) ----

asio::awaitable<std::string> DockerExecutor::create_exec(const std::string& body, bool recover) {
  for (int attempt = 0;; ++attempt) {
    Response r =
        co_await client_.call(http::verb::post, "/containers/" + container_id_ + "/exec", body);
    if (r.status == 201) {
      std::string id = string_field(parse_body(r), "Id");
      if (id.empty()) throw ApiError("the engine did not give the exec id", false);
      co_return id;
    }
    // The container is gone or stopped (e.g. the engine restarted): bring it back once.
    if ((r.status == 404 || r.status == 409) && attempt == 0 && !stopping_ && recover) {
      // One recovery at a time: two calls that both create the container race for its name,
      // and the loser finds the name taken by a container that is not there yet.
      if (recovering_) {
        while (recovering_) co_await sleep_for(20ms);
        continue;
      }
      log(PMCP_LOG_WARN, "container '" + config_.container + "' is not running (" +
                             engine_message(r.body) + "); starting it again");
      recovering_ = true;
      try {
        co_await ensure_container(false);
      } catch (const Error& e) {
        recovering_ = false;
        throw ApiError(e.message, false);
      } catch (...) {
        recovering_ = false;
        throw;
      }
      recovering_ = false;
      if (proxied_ && !in_bridge_) {
        try {
          co_await ensure_bridge();
        } catch (const std::exception& e) {
          log(PMCP_LOG_WARN, e.what());
        }
      }
      continue;
    }
    throw ApiError(
        "cannot create an exec in container '" + config_.container + "': " + engine_message(r.body),
        false, r.status);
  }
}

asio::awaitable<void> DockerExecutor::run_process(ProcPtr p) {
  std::string failure;
  try {
    p->exec_id = co_await create_exec(p->create_body);
    json::object start{{"Detach", false}, {"Tty", p->tty}};
    if (p->tty && api_console_size_) start["ConsoleSize"] = json::array{p->rows, p->cols};
    Hijacked h =
        co_await client_.hijack("/exec/" + p->exec_id + "/start", json::serialize(start), 30s);
    p->socket.emplace(std::move(h.stream));
    p->buffer.reset(new char[kReadChunk]);
    if (!h.leftover.empty()) handle_bytes(*p, h.leftover.data(), h.leftover.size());
    for (;;) {
      auto [ec, n] = co_await p->socket->async_read_some(asio::buffer(p->buffer.get(), kReadChunk),
                                                         asio::as_tuple(use_awaitable));
      if (n > 0) handle_bytes(*p, p->buffer.get(), n);
      if (ec) {
        if (ec != asio::error::eof && ec != asio::error::operation_aborted &&
            ec != asio::error::connection_reset)
          log(PMCP_LOG_DEBUG, "process " + std::to_string(p->id) + ": " + ec.message());
        break;
      }
    }
  } catch (const ApiError& e) {
    failure = e.what();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  co_await finish(p, std::move(failure));
}

void DockerExecutor::handle_bytes(Proc& p, const char* data, std::size_t size) {
  if (p.tty) {
    handle_stream(p, PMCP_STREAM_STDOUT, data, size);
    return;
  }
  p.demux.feed(data, size,
               [&](int stream, const char* d, std::size_t n) { handle_stream(p, stream, d, n); });
}

// The marker is the first line on stderr (pipes) or on the terminal (tty). Until it arrived,
// other output is held back so that it follows on_spawned.
void DockerExecutor::handle_stream(Proc& p, int stream, const char* data, std::size_t size) {
  const int marker_stream = p.tty ? PMCP_STREAM_STDOUT : PMCP_STREAM_STDERR;
  if (p.marker.state() == MarkerReader::State::reading) {
    if (stream != marker_stream) {
      p.held.append(data, size);
      return;
    }
    const std::size_t used = p.marker.feed(data, size);
    data += used;
    size -= used;
    if (p.marker.state() == MarkerReader::State::started) on_marker(p);
  }
  if (p.marker.state() == MarkerReader::State::failed) {
    p.held.append(data, size);
    return;
  }
  if (size == 0 || p.marker.state() != MarkerReader::State::started) return;
  sink_.on_output(sink_.ctx, p.id, stream, reinterpret_cast<const uint8_t*>(data), size);
}

void DockerExecutor::on_marker(Proc& p) {
  p.started = true;
  p.pgid = p.marker.pid();
  if (p.pgid > 1) {
    guarded_.insert(p.pgid);
    guard_send("+ " + std::to_string(p.pgid) + "\n");
  }
  sink_.on_spawned(sink_.ctx, p.id, PMCP_OK, p.pgid, sdk::str(""));
  if (!p.held.empty()) {
    std::string held;
    held.swap(p.held);
    sink_.on_output(sink_.ctx, p.id, PMCP_STREAM_STDOUT,
                    reinterpret_cast<const uint8_t*>(held.data()), held.size());
  }
  auto it = procs_.find(p.id);
  if (it == procs_.end()) return;
  ProcPtr self = it->second;
  for (int signo : p.pending_signals) send_signal(self, signo);
  p.pending_signals.clear();
  kick_writer(self);
  // The wrapper set the size with stty; this also covers images without stty.
  if (p.tty && !p.wanted_size) p.wanted_size = std::pair(p.cols, p.rows);
  kick_resizer(self);
}

asio::awaitable<void> DockerExecutor::finish(ProcPtr p, std::string failure) {
  if (p->socket) {
    boost::system::error_code ignored;
    p->socket->close(ignored);
  }
  if (!p->started) {
    std::string message;
    if (p->marker.state() == MarkerReader::State::failed && p->marker.failure() == "cwd") {
      message = "cannot use '" + p->cwd +
                "' as the working directory in the container: it does "
                "not exist, is not a directory, or may not be entered";
    } else if (p->marker.state() == MarkerReader::State::failed && p->marker.failure() == "exec") {
      message = "command not found in the container: " + p->argv0;
    } else if (!failure.empty()) {
      message = failure;
    } else {
      std::string text = trim(p->marker.failure() + p->marker.partial() + p->held);
      message = "the process could not be started in the container" +
                (text.empty() ? std::string(" (the exec ended without a word)") : ": " + text);
    }
    p->ended = true;
    procs_.erase(p->id);
    {
      std::lock_guard<std::mutex> lock(mu_);
      live_.erase(p->id);
      finished_.insert(p->id);
    }
    sink_.on_spawned(sink_.ctx, p->id, PMCP_ERR_IO, 0, sdk::str(message));
    co_return;
  }
  // The stream ended: ask the engine for the exit status (it may lag behind by a moment).
  int32_t exit_code = -1, term_signal = 0;
  std::string message = failure;
  bool engine_lost = false;
  if (message.empty()) {
    try {
      for (int attempt = 0;; ++attempt) {
        Response r =
            co_await client_.call(http::verb::get, "/exec/" + p->exec_id + "/json", {}, 15s);
        const json::value info = parse_body(r);
        const json::value* running = field(info, "Running");
        const json::value* code = field(info, "ExitCode");
        if (r.status != 200) {
          message = "cannot read the exit status: " + engine_message(r.body);
          break;
        }
        if (running && running->is_bool() && !running->as_bool() && code && code->is_number()) {
          map_exit_status(code->to_number<int64_t>(), exit_code, term_signal);
          break;
        }
        if (attempt >= 100) {
          message =
              "the output stream ended but the engine still reports the process as "
              "running; it was killed";
          break;
        }
        co_await sleep_for(20ms);
      }
    } catch (const std::exception& e) {
      message =
          std::string("lost the Docker engine while the process ran (is dockerd running?): ") +
          e.what();
      engine_lost = true;
    }
  } else {
    message = "lost the connection to the process: " + message;
  }
  // A process that ended with its container (removed or stopped from outside, or by an engine
  // restart) says so, rather than only "killed" or a failed exec inspect.
  // An engine that shuts down reports the execs it cut off with no status (-1).
  const bool unknown = exit_code < 0 && term_signal == 0;
  if (!stopping_ && !engine_lost && (!message.empty() || term_signal == SIGKILL || unknown)) {
    const std::string why =
        co_await container_trouble((term_signal == SIGKILL && !p->signalled) || unknown);
    if (!why.empty()) {
      message = why + (message.empty() ? std::string() : " (" + message + ")");
    } else if (unknown && message.empty()) {
      message =
          "the Docker engine ended the process's stream without an exit status (was dockerd "
          "restarted or stopped?)";
    }
  }
  p->ended = true;
  procs_.erase(p->id);
  {
    std::lock_guard<std::mutex> lock(mu_);
    live_.erase(p->id);
    finished_.insert(p->id);
  }
  sink_.on_exit(sink_.ctx, p->id, exit_code, term_signal, sdk::str(message));
  // Like the host executor: what is left of the process group goes with the process. The guard
  // kills it when it runs; else an exec of its own does.
  if (p->pgid > 1) {
    const bool guarded = guarded_.erase(p->pgid) > 0;
    const std::string group = std::to_string(p->pgid);
    if (!stopping_ && guarded && guard_ && guard_->socket) {
      guard_send("x " + group + "\n");
    } else {
      if (!stopping_) queue_signal({SIGKILL, p->pgid, p->id, true});
      if (guarded) guard_send("- " + group + "\n");
    }
  }
}

asio::awaitable<std::string> DockerExecutor::container_trouble(bool wait_for_stop) {
  const std::string& name = config_.container;
  // A stopping container still reports itself running for a moment after its processes died.
  for (int attempt = 0;; ++attempt) {
    Response r;
    try {
      r = co_await client_.call(http::verb::get, "/containers/" + container_id_ + "/json", {}, 5s);
    } catch (const ApiError& e) {
      if (e.unreachable)
        co_return "the Docker engine went away while the process ran (is dockerd running?)";
      co_return std::string();
    } catch (const std::exception&) {
      co_return std::string();  // the exit is reported all the same, without a reason
    }
    if (r.status == 404) co_return "container '" + name + "' was removed while the process ran";
    if (r.status != 200) co_return std::string();
    const json::value info = parse_body(r);
    const json::value* state = field(info, "State");
    const json::value* running = state ? field(*state, "Running") : nullptr;
    if (running && running->is_bool() && !running->as_bool())
      co_return "container '" + name + "' stopped while the process ran";
    if (!wait_for_stop || attempt >= 5) co_return std::string();
    co_await sleep_for(200ms);
  }
}

void DockerExecutor::kick_writer(const ProcPtr& p) {
  if (p->writing || !p->started || p->ended || !p->socket) return;
  if (p->stdin_queue.empty() && (!p->close_requested || p->write_side_closed)) return;
  p->writing = true;
  asio::co_spawn(io_, write_loop(p), asio::detached);
}

asio::awaitable<void> DockerExecutor::write_loop(ProcPtr p) {
  while (!p->stdin_queue.empty() && p->socket && p->socket->is_open()) {
    std::string chunk = std::move(p->stdin_queue.front());
    p->stdin_queue.pop_front();
    auto [ec, n] =
        co_await asio::async_write(*p->socket, asio::buffer(chunk), asio::as_tuple(use_awaitable));
    (void)n;
    if (ec) {
      p->stdin_queue.clear();
      break;
    }
  }
  if (p->close_requested && !p->write_side_closed && p->socket && p->socket->is_open()) {
    boost::system::error_code ignored;
    p->socket->shutdown_send(ignored);
    p->write_side_closed = true;
  }
  p->writing = false;
}

void DockerExecutor::send_signal(const ProcPtr& p, int signo) {
  if (p->pgid <= 1) return;
  p->signalled = true;
  queue_signal({signo, p->pgid, p->id, false});
}

void DockerExecutor::queue_signal(PendingSignal s) {
  signal_queue_.push_back(s);
  if (signalling_) return;
  signalling_ = true;
  asio::co_spawn(io_, signal_loop(), asio::detached);
}

asio::awaitable<void> DockerExecutor::signal_loop() {
  while (!signal_queue_.empty()) {
    std::vector<PendingSignal> batch;
    batch.swap(signal_queue_);
    // One line per group, in the order asked. A group asked for by the user that is already
    // gone reports itself; the sweep of a finished process's leftovers stays quiet.
    std::string script;
    for (const PendingSignal& s : batch) {
      const std::string group = std::to_string(s.pgid);
      script += "kill -" + std::to_string(s.signo) + " -" + group + " 2>/dev/null";
      if (s.quiet) {
        script += ";\n";
      } else {
        script += " || echo 'signal " + std::to_string(s.signo) + " to process " +
                  std::to_string(s.id) + " (group " + group + "): no such process group';\n";
      }
    }
    script += "true\n";
    co_await helper_detached(std::move(script), "signals");
  }
  signalling_ = false;
}

void DockerExecutor::kick_resizer(const ProcPtr& p) {
  if (p->resizing || !p->started || p->ended || !p->wanted_size) return;
  p->resizing = true;
  asio::co_spawn(io_, resize_loop(p), asio::detached);
}

asio::awaitable<void> DockerExecutor::resize_loop(ProcPtr p) {
  while (p->wanted_size && !p->ended) {
    auto [cols, rows] = *p->wanted_size;
    p->wanted_size.reset();
    try {
      Response r =
          co_await client_.call(http::verb::post,
                                "/exec/" + p->exec_id + "/resize?h=" + std::to_string(rows) +
                                    "&w=" + std::to_string(cols),
                                {}, 15s);
      if (r.status >= 300 && !p->ended)  // also fails when the process just ended
        log(PMCP_LOG_DEBUG,
            "resize of process " + std::to_string(p->id) + " failed: " + engine_message(r.body));
    } catch (const std::exception& e) {
      log(PMCP_LOG_WARN, "resize of process " + std::to_string(p->id) + " failed: " + e.what());
    }
  }
  p->resizing = false;
}

// Runs a short shell script in the container and returns what it wrote (stdout and stderr).
asio::awaitable<std::string> DockerExecutor::run_helper(std::string script) {
  json::object body{{"AttachStdin", false},
                    {"AttachStdout", true},
                    {"AttachStderr", true},
                    {"Tty", false},
                    {"Cmd", json::array{"/bin/sh", "-c", script}}};
  const std::string exec_id = co_await create_exec(json::serialize(body));
  Hijacked h = co_await client_.hijack("/exec/" + exec_id + "/start",
                                       R"({"Detach":false,"Tty":false})", 30s);
  std::string text;
  Demuxer demux;
  auto collect = [&](int, const char* d, std::size_t n) { text.append(d, n); };
  demux.feed(h.leftover.data(), h.leftover.size(), collect);
  auto socket = std::make_shared<EngineStream>(std::move(h.stream));
  asio::steady_timer deadline(io_);
  deadline.expires_after(30s);
  deadline.async_wait([socket](boost::system::error_code ec) {
    if (!ec) {
      boost::system::error_code ignored;
      socket->close(ignored);
    }
  });
  char buf[4096];
  for (;;) {
    auto [ec, n] =
        co_await socket->async_read_some(asio::buffer(buf), asio::as_tuple(use_awaitable));
    if (n > 0) demux.feed(buf, n, collect);
    if (ec) break;
  }
  deadline.cancel();
  co_return text;
}

asio::awaitable<void> DockerExecutor::helper_detached(std::string script, std::string what) {
  try {
    std::string out = trim(co_await run_helper(std::move(script)));
    if (!out.empty() && !what.empty()) log(PMCP_LOG_DEBUG, what + ": " + out);
  } catch (const std::exception& e) {
    if (!what.empty()) log(PMCP_LOG_WARN, what + " failed: " + e.what());
  }
}

// ---- the guard (io thread) ----

asio::awaitable<void> DockerExecutor::guard_loop() {
  const std::string body = json::serialize(
      json::object{{"AttachStdin", true},
                   {"AttachStdout", true},
                   {"AttachStderr", true},
                   {"Tty", false},
                   {"Cmd", json::array{"/bin/sh", "-c", kGuardScript, kGuardName, instance_}}});
  auto delay = 100ms;
  bool first = true;
  bool failing = false;
  while (!stopping_) {
    auto g = std::make_shared<Guard>();
    try {
      // Not recovering the container: the next spawn does that, as the user expects.
      const std::string exec_id = co_await create_exec(body, false);
      Hijacked h = co_await client_.hijack("/exec/" + exec_id + "/start",
                                           R"({"Detach":false,"Tty":false})", 30s);
      if (stopping_) co_return;
      // The guard ends when the container stops or restarts, and the bridge with it.
      if (!first && proxied_ && !in_bridge_) {
        try {
          co_await ensure_bridge();
        } catch (const std::exception& e) {
          log(PMCP_LOG_WARN, e.what());
        }
      }
      first = false;
      g->socket.emplace(std::move(h.stream));
      failing = false;
      for (int64_t group : guarded_) g->queue.push_back("+ " + std::to_string(group) + "\n");
      guard_ = g;
      kick_guard_writer();
      // The guard says nothing; its stream ends when it exits.
      std::string said = h.leftover;
      char buf[1024];
      for (;;) {
        auto [ec, n] =
            co_await g->socket->async_read_some(asio::buffer(buf), asio::as_tuple(use_awaitable));
        if (said.size() < 4096) said.append(buf, n);
        if (ec) break;
      }
      delay = 100ms;
      if (!stopping_)
        log(PMCP_LOG_WARN, "the guard of our processes in container '" + config_.container +
                               "' ended; starting it again" +
                               (said.empty() ? std::string() : ": " + trim(said)));
    } catch (const std::exception& e) {
      // Said once per outage (e.g. a stopped container), then quietly retried.
      if (!stopping_)
        log(failing ? PMCP_LOG_DEBUG : PMCP_LOG_WARN,
            "cannot start the guard of our processes in container '" + config_.container +
                "': " + e.what());
      failing = true;
      guard_failed_ = true;
    }
    if (guard_ == g) guard_.reset();
    if (stopping_) break;
    co_await sleep_for(delay);
    delay = std::min<std::chrono::milliseconds>(delay * 2, 5000ms);
  }
}

void DockerExecutor::guard_send(std::string line) {
  if (!guard_ || !guard_->socket) return;  // the next guard learns the groups from guarded_
  guard_->queue.push_back(std::move(line));
  kick_guard_writer();
}

void DockerExecutor::kick_guard_writer() {
  if (!guard_ || guard_->writing || guard_->queue.empty()) return;
  guard_->writing = true;
  asio::co_spawn(io_, guard_write_loop(guard_), asio::detached);
}

asio::awaitable<void> DockerExecutor::guard_write_loop(std::shared_ptr<Guard> g) {
  while (!g->queue.empty() && g->socket && g->socket->is_open()) {
    std::string chunk;
    while (!g->queue.empty()) {
      chunk += g->queue.front();
      g->queue.pop_front();
    }
    auto [ec, n] =
        co_await asio::async_write(*g->socket, asio::buffer(chunk), asio::as_tuple(use_awaitable));
    (void)n;
    if (ec) {
      g->queue.clear();
      break;
    }
  }
  g->writing = false;
}

// ---- shutdown (io thread) ----

asio::awaitable<void> DockerExecutor::shutdown() {
  stopping_ = true;
  using Clock = std::chrono::steady_clock;
  // Processes still starting get a moment to report their process group.
  auto deadline = Clock::now() + 5s;
  auto starting = [this] {
    return std::any_of(procs_.begin(), procs_.end(),
                       [](const auto& kv) { return !kv.second->started && !kv.second->ended; });
  };
  while (starting() && Clock::now() < deadline) co_await sleep_for(20ms);
  std::string groups;
  for (const auto& [id, p] : procs_) {
    if (p->started && !p->ended && p->pgid > 1) groups += " -" + std::to_string(p->pgid);
  }
  if (!groups.empty()) {
    try {
      co_await run_helper("kill -9" + groups + " 2>/dev/null; true");
    } catch (const std::exception& e) {
      log(PMCP_LOG_WARN, std::string("could not kill the processes in the container: ") + e.what());
    }
  }
  deadline = Clock::now() + 5s;
  while (!procs_.empty() && Clock::now() < deadline) co_await sleep_for(20ms);
  for (const auto& [id, p] : procs_) {
    if (p->socket) {
      boost::system::error_code ignored;
      p->socket->close(ignored);
    }
  }
  deadline = Clock::now() + 2s;
  while (!procs_.empty() && Clock::now() < deadline) co_await sleep_for(20ms);
  // When all our processes are gone the guard leaves without killing anything (a group
  // number may have been reused since). Otherwise it kills what is left as the stream closes.
  if (auto g = guard_; g && g->socket && g->socket->is_open()) {
    if (procs_.empty()) {
      g->queue.push_back("bye\n");
      kick_guard_writer();
    }
    deadline = Clock::now() + 2s;
    while (g->writing && Clock::now() < deadline) co_await sleep_for(10ms);
    boost::system::error_code ignored;
    g->socket->close(ignored);
  }
  if (created_ && config_.remove_on_exit && !container_id_.empty()) {
    try {
      Response r = co_await client_.call(
          http::verb::delete_, "/containers/" + container_id_ + "?force=true&v=false", {}, 30s);
      if (r.status != 204 && r.status != 404)
        log(PMCP_LOG_WARN,
            "could not remove container '" + config_.container + "': " + engine_message(r.body));
      else
        drop_net_dir_ = proxied_;
    } catch (const std::exception& e) {
      log(PMCP_LOG_WARN, "could not remove container '" + config_.container + "': " + e.what());
    }
  }
}

}  // namespace pmcp::docker
