// Floods at full size against the built server over stdio (host executor, sandbox off): a
// child that writes 1 GiB as fast as it can, a child that writes one 100 MiB line with no
// newline (on pipes and on a terminal), and 1,000 children writing at once. During each, a
// ping goes out every 10 ms; the table gives its latency (p50, p99, max) against the 100 ms
// target, and the server's peak RSS (VmHWM, each case on a fresh server) against the bound
// its config sets: RSS before the flood + processes x 2 streams x [limits] output_buffer_bytes
// (+ scrollback_lines x columns x 4 bytes for a terminal).
//
//   pmcp-bench-floods [--short] [--only gib|line|line-tty|many] [--line-mb N]
// --short (what CI runs): 64 MiB, an 8 MiB line, 50 children; a check that every case works.
// --line-mb: the size of the long line (both cases), e.g. to compare two builds quickly.
// Prints a table, then one JSON line with every figure.
#include <sys/stat.h>

#include <functional>

#include "bench_client.hpp"

namespace {

using namespace pmcp::bench;

constexpr double kTargetPingMs = 100;
constexpr auto kPingEvery = 10ms;
constexpr uint64_t MiB = 1 << 20;

std::string config_text(const fs::path& dir, uint64_t buffer_bytes, int max_processes) {
  return "executor = \"host\"\ntransports = [\"stdio\"]\nlog_level = \"warn\"\n"
         "[defaults]\nworkdir = \"" +
         dir.string() +
         "\"\n"
         "[limits]\noutput_buffer_bytes = " +
         std::to_string(buffer_bytes) + "\nmax_processes = " + std::to_string(max_processes) +
         "\n[host]\nsandbox = { enabled = false }\n";
}

// Pings every kPingEvery until done() says the flood is over (done may send and take requests
// of its own); returns the ping latencies in ms.
std::vector<double> ping_until(StdioServer& s, const std::function<bool()>& done,
                               std::chrono::seconds limit = 600s) {
  std::vector<double> ms;
  const auto give_up = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > give_up) die("the flood did not end in time");
    const uint64_t id = s.send_request("ping");
    const auto deadline = Clock::now() + 30s;
    while (!s.answered(id)) {
      if (Clock::now() > deadline) die("no answer to ping for 30 s");
      s.pump(1000ms);
    }
    ms.push_back(s.take(id).second);
    const auto next = Clock::now() + kPingEvery;
    while (Clock::now() < next)
      s.pump(std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()));
  }
  return ms;
}

struct Result {
  std::string name;
  double seconds = 0;
  double megabytes = 0;  // through the server
  Stats ping;
  double baseline_mb = 0, peak_mb = 0, bound_mb = 0;
};

std::vector<Result> results;

void report(Result r, StdioServer& s, double baseline_kb, double bound_extra_bytes) {
  r.baseline_mb = baseline_kb / 1024.0;
  r.peak_mb = double(proc_status(s.pid(), "VmHWM")) / 1024.0;
  r.bound_mb = r.baseline_mb + bound_extra_bytes / double(MiB);
  results.push_back(std::move(r));
}

// One child writing `command`'s output in the background; pings until it has exited; checks
// that the server counted `bytes` on `stream`.
void flood_one(const fs::path& dir, const std::string& name, const std::string& command,
               uint64_t bytes, bool tty) {
  const uint64_t buffer = MiB;
  StdioServer s(dir, name, config_text(dir, buffer, 1000));
  const double baseline_kb = double(proc_status(s.pid(), "VmRSS"));
  // Pings on an idle server first, for comparison.
  int idle = 0;
  Result quiet{name + ": idle server, before"};
  quiet.ping = stats(ping_until(s, [&] { return ++idle > 100; }));
  const auto t0 = Clock::now();
  json::object args{{"command", command}, {"background", true}};
  if (tty) args["tty"] = true;
  const std::string id(s.call("spawn", args).at("pid").as_string());
  uint64_t wait_id = 0;
  json::object ended;
  auto done = [&] {
    if (wait_id != 0 && s.answered(wait_id)) {
      ended = structured(s.take(wait_id).first, "wait");
      if (ended.at("status").as_string() != "timeout") return true;
      wait_id = 0;
    }
    if (wait_id == 0)
      wait_id = s.send_call(
          "wait",
          json::object{{"id", id}, {"until", json::object{{"exit", true}}}, {"timeoutMs", 60000}});
    return false;
  };
  Result r{name};
  r.ping = stats(ping_until(s, done));
  r.seconds = ms_between(t0, Clock::now()) / 1000.0;
  const uint64_t counted =
      ended.at("next").as_object().at(tty ? "terminal" : "stdout").to_number<uint64_t>();
  if (counted < bytes)
    die(name + ": the server counted " + std::to_string(counted) + " of " + std::to_string(bytes));
  r.megabytes = double(counted) / double(MiB);
  results.push_back(quiet);
  // A terminal also keeps its scrollback: rows of at most 120 cells of up to 4 bytes.
  const double extra = 2.0 * double(buffer) + (tty ? 10000.0 * 120 * 4 : 0.0);
  report(std::move(r), s, baseline_kb, extra);
}

// `count` children wait on a FIFO, then each writes per_stream bytes to stdout and to stderr
// and exits.
void flood_many(const fs::path& dir, int count, uint64_t per_stream) {
  const uint64_t buffer = 64 * 1024;
  StdioServer s(dir, "many", config_text(dir, buffer, count));
  const double baseline_kb = double(proc_status(s.pid(), "VmRSS"));
  const fs::path fifo = dir / "go";
  if (mkfifo(fifo.c_str(), 0600) != 0) die("mkfifo failed");
  const int go = open(fifo.c_str(), O_RDWR | O_CLOEXEC);
  if (go < 0) die("open of the FIFO failed");

  // 1: spawn them all, at most 32 requests in flight, pinging meanwhile.
  const auto t0 = Clock::now();
  std::vector<std::string> ids;
  std::map<uint64_t, int> spawning;
  int sent = 0;
  const std::string n_bytes = std::to_string(per_stream);
  auto spawned = [&] {
    for (auto it = spawning.begin(); it != spawning.end();) {
      if (!s.answered(it->first)) {
        ++it;
        continue;
      }
      ids.push_back(
          std::string(structured(s.take(it->first).first, "spawn").at("pid").as_string()));
      it = spawning.erase(it);
    }
    while (sent < count && spawning.size() < 32) {
      const std::string n = std::to_string(sent);
      const std::string command = "read -r x < '" + fifo.string() + "'; yes out-" + n +
                                  " | head -c " + n_bytes + "; yes err-" + n + " | head -c " +
                                  n_bytes + " >&2";
      spawning[s.send_call("spawn", json::object{{"command", command}, {"background", true}})] =
          sent;
      ++sent;
    }
    return spawning.empty();
  };
  Result spawn_phase{"many: spawning " + std::to_string(count) + " children"};
  spawn_phase.ping = stats(ping_until(s, spawned));
  spawn_phase.seconds = ms_between(t0, Clock::now()) / 1000.0;
  results.push_back(spawn_phase);

  // 2: a wait for each exit, then the signal: all write at once.
  std::vector<uint64_t> waits;
  for (const auto& id : ids) {
    waits.push_back(s.send_call(
        "wait",
        json::object{{"id", id}, {"until", json::object{{"exit", true}}}, {"timeoutMs", 60000}}));
  }
  s.pump(200ms);
  const auto t1 = Clock::now();
  const std::string newlines(static_cast<std::size_t>(count), '\n');
  if (write(go, newlines.data(), newlines.size()) != static_cast<ssize_t>(newlines.size()))
    die("write to the FIFO failed");
  std::size_t finished = 0;
  auto all_exited = [&] {
    for (auto& w : waits) {
      if (w == 0 || !s.answered(w)) continue;
      json::object r = structured(s.take(w).first, "wait");
      const auto& next = r.at("next").as_object();
      if (r.at("status").as_string() != "exited" ||
          next.at("stdout").to_number<uint64_t>() != per_stream ||
          next.at("stderr").to_number<uint64_t>() != per_stream)
        die("a child did not write all its output: " + json::serialize(r).substr(0, 300));
      w = 0;
      ++finished;
    }
    return finished == waits.size();
  };
  Result r{"many: " + std::to_string(count) + " children writing at once"};
  r.ping = stats(ping_until(s, all_exited));
  r.seconds = ms_between(t1, Clock::now()) / 1000.0;
  r.megabytes = double(2 * per_stream * uint64_t(count)) / double(MiB);
  close(go);
  report(std::move(r), s, baseline_kb, double(count) * 2.0 * double(buffer));
}

}  // namespace

int main(int argc, char** argv) {
  g_program = "pmcp-bench-floods";
  bool short_mode = false;
  std::string only;
  uint64_t line_mb = 0;  // 0: the mode's size
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--short") {
      short_mode = true;
    } else if (arg == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else if (arg == "--line-mb" && i + 1 < argc) {
      line_mb = std::strtoull(argv[++i], nullptr, 10);
    } else {
      die("usage: pmcp-bench-floods [--short] [--only gib|line|line-tty|many] [--line-mb N]");
    }
  }
  auto run = [&](const char* name) { return only.empty() || only == name; };
  signal(SIGPIPE, SIG_IGN);
  TempDir dir("pmcp-bench-floods-");
  const auto started = Clock::now();
  const uint64_t gib = short_mode ? 64 * MiB : 1024 * MiB;
  const uint64_t line = line_mb != 0 ? line_mb * MiB : short_mode ? 8 * MiB : 100 * MiB;
  const uint64_t tty_line = line_mb != 0 ? line_mb * MiB : short_mode ? 2 * MiB : 100 * MiB;
  const int children = short_mode ? 50 : 1000;
  if (run("gib"))
    flood_one(dir.path, "gib", "yes flood-line | head -c " + std::to_string(gib), gib, false);
  if (run("line"))
    flood_one(dir.path, "line", "head -c " + std::to_string(line) + " /dev/zero | tr '\\0' a", line,
              false);
  if (run("line-tty"))
    flood_one(dir.path, "line-tty",
              "head -c " + std::to_string(tty_line) + " /dev/zero | tr '\\0' a", tty_line, true);
  if (run("many")) flood_many(dir.path, children, short_mode ? 64 * 1024 : 512 * 1024);

  std::printf("%-44s %8s %8s %6s %8s %8s %8s %5s %8s %8s %8s %5s\n", "case", "seconds", "MB/s",
              "pings", "p50 ms", "p99 ms", "max ms", "<100", "base MB", "peak MB", "bound MB",
              "ok");
  json::array items;
  bool all_ok = true;
  for (const auto& r : results) {
    const bool ping_ok = r.ping.max < kTargetPingMs;
    const bool rss_ok = r.bound_mb == 0 || r.peak_mb <= r.bound_mb;
    all_ok = all_ok && ping_ok && rss_ok;
    std::printf("%-44s %8.2f %8.1f %6zu %8.2f %8.2f %8.2f %5s", r.name.c_str(), r.seconds,
                r.seconds > 0 ? r.megabytes / r.seconds : 0.0, r.ping.n, r.ping.p50, r.ping.p99,
                r.ping.max, ping_ok ? "yes" : "NO");
    if (r.bound_mb > 0) {
      std::printf(" %8.2f %8.2f %8.2f %5s\n", r.baseline_mb, r.peak_mb, r.bound_mb,
                  rss_ok ? "yes" : "NO");
    } else {
      std::printf("\n");
    }
    json::object item{{"case", r.name},      {"seconds", r.seconds}, {"mb", r.megabytes},
                      {"pings", r.ping.n},   {"p50_ms", r.ping.p50}, {"p99_ms", r.ping.p99},
                      {"max_ms", r.ping.max}};
    if (r.bound_mb > 0) {
      item["baseline_mb"] = r.baseline_mb;
      item["peak_mb"] = r.peak_mb;
      item["bound_mb"] = r.bound_mb;
    }
    items.push_back(std::move(item));
  }
  double load[3] = {0, 0, 0};
  getloadavg(load, 3);
  json::object out{{"bench", "floods"},
                   {"mode", short_mode ? "short" : "full"},
                   {"nproc", std::thread::hardware_concurrency()},
                   {"load1", load[0]},
                   {"seconds", ms_between(started, Clock::now()) / 1000.0},
                   {"all_within_targets", all_ok},
                   {"results", std::move(items)}};
  std::printf("%s\n", to_text(out).c_str());
  return 0;
}
