// Exec round-trip latency of a foreground `echo hi` in docker mode beside host mode, and beside
// the engine's own floor: the same exec made straight through the Engine API (create the exec,
// start it and read its stream to the end, inspect its exit code) over the engine's unix socket,
// in the same container, interleaved call by call with ours. Also the start-up and shut-down of
// docker mode (engine check, container create and start; container removal). Measured through
// the library API. Needs the engine and test image of scripts/docker-test-env.sh, and an engine
// on a unix socket (DOCKER_HOST=unix://..., else /var/run/docker.sock).
//
//   pmcp-bench-docker-latency [--short] [iterations=100] [image=pmcp-test-busybox:latest]
//   --short: 5 iterations (a quick check that every case works)
// Prints a table (median, p99, min and max of each series), then one JSON line.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "pmcp/process_mcp.hpp"
#include "stats.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "pmcp-bench-docker-latency: %s\n", why.c_str());
  std::exit(1);
}

// One foreground `echo hi` through the library API; milliseconds.
double ours_once(pmcp::ProcessMcp& server) {
  const auto t = Clock::now();
  auto r = server.executor().spawn({.command = "echo hi"});
  const double d = ms_since(t);
  if (!r.ok() || r.value->exit_code != 0)
    die(std::string("echo hi failed: ") + (r.ok() ? "exit code" : r.error.c_str()));
  return d;
}

// ---- the engine's floor: the Engine API spoken directly, one connection per request ----

std::string engine_socket() {
  const char* host = std::getenv("DOCKER_HOST");
  if (host == nullptr || *host == '\0') return "/var/run/docker.sock";
  const std::string h = host;
  if (!h.starts_with("unix://")) die("the engine floor needs an engine on a unix socket");
  return h.substr(7);
}

// Sends one request with `Connection: close` and reads the answer to its end; returns the
// status code and the body (a stream's raw bytes, for an exec start).
std::pair<int, std::string> engine_call(const std::string& socket_path, const std::string& method,
                                        const std::string& path, const std::string& body) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, socket_path.c_str(), sizeof a.sun_path - 1);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    die("cannot connect to the engine at " + socket_path);
  std::string request = method + " /v1.41" + path + " HTTP/1.1\r\nHost: docker\r\n" +
                        "Connection: close\r\nContent-Type: application/json\r\n" +
                        "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  for (std::size_t done = 0; done < request.size();) {
    const ssize_t n = write(fd, request.data() + done, request.size() - done);
    if (n <= 0) die("cannot write to the engine");
    done += static_cast<std::size_t>(n);
  }
  std::string answer;
  char buf[16384];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    answer.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  const std::size_t head_end = answer.find("\r\n\r\n");
  if (!answer.starts_with("HTTP/1.1 ") || head_end == std::string::npos)
    die("the engine gave no HTTP answer to " + method + " " + path);
  return {std::atoi(answer.c_str() + 9), answer.substr(head_end + 4)};
}

// The value of "key":"..." in a JSON text (enough for the exec id).
std::string json_string_field(const std::string& text, const std::string& key) {
  const std::string needle = "\"" + key + "\":\"";
  const std::size_t at = text.find(needle);
  if (at == std::string::npos) return {};
  const std::size_t from = at + needle.size();
  return text.substr(from, text.find('"', from) - from);
}

// `echo hi` in `container` as the engine runs it, without us; milliseconds.
double floor_once(const std::string& socket_path, const std::string& container) {
  const auto t = Clock::now();
  auto [status, created] =
      engine_call(socket_path, "POST", "/containers/" + container + "/exec",
                  R"({"AttachStdout":true,"AttachStderr":true,"Cmd":["/bin/sh","-c","echo hi"]})");
  const std::string id = json_string_field(created, "Id");
  if (status != 201 || id.empty()) die("exec create failed: " + created);
  auto [started, stream] =
      engine_call(socket_path, "POST", "/exec/" + id + "/start", R"({"Detach":false,"Tty":false})");
  // The multiplexed stream: an 8-byte header, then "hi\n".
  if (started != 200 || stream.find("hi\n") == std::string::npos) die("exec start failed");
  auto [inspected, info] = engine_call(socket_path, "GET", "/exec/" + id + "/json", "");
  if (inspected != 200 || info.find("\"ExitCode\":0") == std::string::npos)
    die("exec inspect: " + info);
  return ms_since(t);
}

// ---- the table ----

using pmcp::bench::Stats;
using pmcp::bench::stats;

struct Row {
  std::string key, name;
  Stats s;
};

std::unique_ptr<pmcp::ProcessMcp> make(const std::string& toml) {
  pmcp::CreateOptions options;
  options.config_toml = toml;
  auto created = pmcp::create_process_mcp(options);
  if (!created.ok()) die("cannot start: " + created.error);
  return std::move(*created.value);
}

}  // namespace

int main(int argc, char** argv) {
  int arg = 1;
  const bool quick = argc > 1 && std::string(argv[1]) == "--short";
  if (quick) ++arg;
  const int iterations = argc > arg ? std::max(1, std::atoi(argv[arg])) : quick ? 5 : 100;
  const std::string image = argc > arg + 1 ? argv[arg + 1] : "pmcp-test-busybox:latest";
  const std::string dirs = std::string("plugin_dirs = [\"") + PMCP_PLUGIN_DIR + "\"]\n";
  const std::string tag = std::to_string(getpid());
  const std::string socket_path = engine_socket();

  std::vector<double> host_ms, floor_ms, docker_ms;
  {
    auto host = make("executor = \"host\"\n" + dirs);
    ours_once(*host);  // warm-up
    for (int i = 0; i < iterations; ++i) host_ms.push_back(ours_once(*host));
  }

  const std::string container = "pmcp-bench-" + tag;
  const std::string volume = "pmcp-bench-vol-" + tag;
  const auto t = Clock::now();
  auto docker = make("executor = \"docker\"\n" + dirs + "[docker]\nimage = \"" + image +
                     "\"\ncontainer = \"" + container + "\"\nvolume = \"" + volume + "\"\n");
  ours_once(*docker);  // the container is created at the first spawn
  const double startup_ms = ms_since(t);
  floor_once(socket_path, container);     // warm-up
  for (int i = 0; i < iterations; ++i) {  // interleaved, so that load hits both alike
    floor_ms.push_back(floor_once(socket_path, container));
    docker_ms.push_back(ours_once(*docker));
  }
  const auto s = Clock::now();
  docker.reset();
  const double shutdown_ms = ms_since(s);
  const std::string rm = "DOCKER_HOST= /usr/bin/docker volume rm -f " + volume + " >/dev/null 2>&1";
  const int rm_status = std::system(rm.c_str());

  const std::vector<Row> rows{
      {"host_ms", "spawn echo hi, host mode", stats(host_ms)},
      {"engine_floor_ms", "floor: exec echo hi through the Engine API", stats(floor_ms)},
      {"docker_ms", "spawn echo hi, docker mode", stats(docker_ms)},
  };
  const double ratio = rows[2].s.p50 / rows[1].s.p50;
  std::printf("%-48s %6s %6s %10s %10s %10s %10s\n", "case", "unit", "n", "p50", "p99", "min",
              "max");
  for (const auto& r : rows) {
    std::printf("%-48s %6s %6zu %10.2f %10.2f %10.2f %10.2f\n", r.name.c_str(), "ms", r.s.n,
                r.s.p50, r.s.p99, r.s.min, r.s.max);
  }
  std::printf("%-48s %6s %6s %10.2f\n", "docker mode / engine floor at p50", "x", "", ratio);
  std::printf("%-48s %6s %6s %10.0f\n", "docker start-up to the first answer", "ms", "",
              startup_ms);
  std::printf("%-48s %6s %6s %10.0f\n", "docker shut-down (container removed)", "ms", "",
              shutdown_ms);
  std::string json = "{\"bench\":\"docker_latency\",\"iterations\":" + std::to_string(iterations);
  char buf[256];
  for (const auto& r : rows) {
    std::snprintf(buf, sizeof buf, ",\"%s\":{\"p50\":%.3f,\"p99\":%.3f,\"min\":%.3f,\"max\":%.3f}",
                  r.key.c_str(), r.s.p50, r.s.p99, r.s.min, r.s.max);
    json += buf;
  }
  std::snprintf(buf, sizeof buf,
                ",\"docker_floor_ratio_p50\":%.3f,\"startup_ms\":%.1f,\"shutdown_ms\":%.1f}", ratio,
                startup_ms, shutdown_ms);
  std::printf("%s\n", (json + buf).c_str());
  return rm_status == 0 ? 0 : 1;
}
