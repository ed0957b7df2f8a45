// pmcp-test-host-driver PLUGIN_DIR CHILD_PATH
//
// Stands in for the server in tests that kill it: loads pmcp-host.so with dlopen, starts
// `sh -c "CHILD fork-sleep 100000"` once on pipes and once on a PTY, and prints on stdout
//   pid N        for every process of those jobs it learns of (shell, child, grandchild)
//   ready        once both jobs have reported their pids
// Then it reads stdin: the line "exit" makes it _exit(0) without destroying the executor;
// end of file makes it wait until it is killed.
#include <dlfcn.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "pmcp/executor.h"
#include "pmcp/plugin.h"

namespace {

std::mutex g_mu;
std::condition_variable g_cv;
std::map<uint64_t, std::string> g_output;
int g_ready = 0;

void say(const std::string& line) {
  const std::string text = line + "\n";
  ssize_t ignored = write(1, text.data(), text.size());
  (void)ignored;
}

void host_log(const pmcp_host*, pmcp_log_level, pmcp_str message) {
  std::fprintf(stderr, "host: %.*s\n", static_cast<int>(message.size), message.data);
}

int32_t host_post(const pmcp_host*, void (*)(void*), void*) { return PMCP_ERR_STATE; }

const void* host_extension(const pmcp_host*, const char*) { return nullptr; }

void on_spawned(void*, uint64_t id, int32_t status, int64_t pid, pmcp_str message) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (status != PMCP_OK) {
    std::fprintf(stderr, "spawn %llu failed: %.*s\n", static_cast<unsigned long long>(id),
                 static_cast<int>(message.size), message.data);
    std::_Exit(1);
  }
  say("pid " + std::to_string(pid));
}

void on_output(void*, uint64_t id, int32_t, const uint8_t* data, size_t size) {
  std::lock_guard<std::mutex> lock(g_mu);
  std::string& text = g_output[id];
  const bool had = text.find('\n', text.find("parent ")) != std::string::npos &&
                   text.find("parent ") != std::string::npos;
  text.append(reinterpret_cast<const char*>(data), size);
  const std::size_t at = text.find("parent ");
  if (had || at == std::string::npos || text.find('\n', at) == std::string::npos) return;
  unsigned long parent = 0;
  unsigned long child = 0;
  if (std::sscanf(text.c_str() + at, "parent %lu child %lu", &parent, &child) == 2) {
    say("pid " + std::to_string(parent));
    say("pid " + std::to_string(child));
    ++g_ready;
    g_cv.notify_all();
  }
}

void on_exit(void*, uint64_t id, int32_t code, int32_t sig, pmcp_str) {
  std::lock_guard<std::mutex> lock(g_mu);
  say("exit " + std::to_string(id) + " " + std::to_string(code) + " " + std::to_string(sig));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: %s PLUGIN_DIR CHILD_PATH [CONFIG_JSON]\n", argv[0]);
    return 2;
  }
  const std::string lib = std::string(argv[1]) + "/pmcp-host.so";
  void* handle = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    std::fprintf(stderr, "dlopen: %s\n", dlerror());
    return 1;
  }
  const auto* entry = static_cast<const pmcp_plugin_entry*>(dlsym(handle, PMCP_ENTRY_SYMBOL));
  static pmcp_host host{
      sizeof(pmcp_host), PMCP_ABI_VERSION_MAJOR, PMCP_ABI_VERSION_MINOR, nullptr, &host_log,
      &host_post,        &host_extension};
  if (entry == nullptr || entry->init(&host) == 0) return 1;
  const auto* factory =
      static_cast<const pmcp_executor_factory*>(entry->get_factory(PMCP_EXECUTOR_FACTORY_ID));
  static pmcp_executor_sink sink{sizeof(pmcp_executor_sink), nullptr, &on_spawned, &on_output,
                                 &on_exit};
  char err[512] = {};
  const char* config = argc == 4 ? argv[3] : "{}";
  pmcp_executor* ex = nullptr;
  if (factory == nullptr || factory->create(factory, &host, pmcp_str{config, std::strlen(config)},
                                            &sink, &ex, {err, sizeof err}) != 0) {
    std::fprintf(stderr, "create: %s\n", err);
    return 1;
  }
  const std::string script = std::string(argv[2]) + " fork-sleep 100000";
  const char* args[] = {"/bin/sh", "-c", script.c_str()};
  const char* env[] = {"PATH=/usr/bin:/bin", "TERM=dumb"};
  for (uint64_t id = 1; id <= 2; ++id) {
    pmcp_spawn_options o{};
    o.struct_size = sizeof o;
    o.process_id = id;
    o.argv = args;
    o.argc = 3;
    o.envp = env;
    o.envc = 2;
    o.flags = id == 2 ? PMCP_SPAWN_PTY : 0;
    o.cols = 80;
    o.rows = 24;
    if (ex->spawn(ex, &o, {err, sizeof err}) != 0) {
      std::fprintf(stderr, "spawn: %s\n", err);
      return 1;
    }
  }
  {
    std::unique_lock<std::mutex> lock(g_mu);
    g_cv.wait(lock, [] { return g_ready >= 2; });
    say("ready");
  }
  char line[64];
  std::string command;
  for (;;) {
    const ssize_t n = read(0, line, sizeof line);
    if (n <= 0) break;
    command.append(line, static_cast<size_t>(n));
    if (command.find("exit") != std::string::npos) _exit(0);
  }
  for (;;) pause();
}
