// Loads plugin shared objects through the C ABI of sdk/include/pmcp/plugin.h: finds them by
// name, checks their entry (size, ABI version, required fields) and owns the library handle.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "pmcp/plugin.h"
#include "util/result.hpp"

namespace pmcp::plugin {

// What a plugin says about itself, copied out of its entry (no pointer into the library).
struct PluginInfo {
  std::string id, version, description;
  std::filesystem::path path;             // the file it was loaded from
  uint16_t abi_major = 0, abi_minor = 0;  // the ABI the plugin was built against
};

// A loaded and initialised plugin. Owns the library handle: the destructor calls the entry's
// deinit() and then unloads the library, so every instance made by the plugin's factories
// must be destroyed first (hold the shared_ptr next to each instance). Factory pointers and
// anything else handed out by the plugin are dangling after the destructor.
// Thread rule: construct, call factory() and destroy on the main thread (the ABI's rule for
// get_factory and deinit); info() may be read from any thread.
// Boost.DLL stays out of this header, so includers need not agree on BOOST_DLL_USE_STD_FS.
class LoadedPlugin {
 public:
  struct Library;  // the library handle, defined in the .cpp

  LoadedPlugin(const LoadedPlugin&) = delete;
  LoadedPlugin& operator=(const LoadedPlugin&) = delete;
  ~LoadedPlugin();

  const PluginInfo& info() const { return info_; }

  // The factory table with this id (e.g. PMCP_EXECUTOR_FACTORY_ID), valid while this object
  // lives. Cast it to the table type named by the id. Error (not_found), e.g.
  //   "/usr/lib/process-mcp/plugins/pmcp-host.so: plugin 'host' has no factory
  //    'pmcp.transport/1' (it is not a transport plugin?)"
  pmcp::Result<const void*> factory(std::string_view factory_id) const;

 private:
  struct Token {};  // only load_plugin constructs

 public:
  LoadedPlugin(Token, std::unique_ptr<Library> library, const pmcp_plugin_entry* entry,
               PluginInfo info);

 private:
  friend pmcp::Result<std::shared_ptr<LoadedPlugin>> load_plugin(const std::filesystem::path&,
                                                                 const pmcp_host*);

  std::unique_ptr<Library> library_;
  const pmcp_plugin_entry* entry_;
  PluginInfo info_;
};

// Loads `file` with rtld_now | rtld_local, reads struct_size and the ABI version before any
// other field, checks the entry and calls init(host). `host` must stay valid until the
// returned plugin is destroyed (see HostServices). Every refusal is an Error whose message
// starts with the file name and says why, e.g.
//   "/opt/p/pmcp-foo.so: built for plugin ABI 1.0, but this server speaks ABI 0.1; rebuild the
//    plugin against this server's SDK"
// Refused: a missing file, a file that is not a loadable shared object, no entry symbol, an
// entry too small for the fields read, an ABI mismatch, NULL id/init/get_factory, an id that
// is not [a-z0-9-]+, init() returning 0 (deinit is then not called).
pmcp::Result<std::shared_ptr<LoadedPlugin>> load_plugin(const std::filesystem::path& file,
                                                        const pmcp_host* host);

// The file of plugin `name`: the first "<dir>/pmcp-<name>.so" that exists, in the order of
// `dirs`. The error (not_found) lists every directory searched and how to fix it, e.g.
//   "plugin 'docker' not found: no pmcp-docker.so in /etc/a (no such directory),
//    /usr/lib/process-mcp/plugins; add the directory that holds it to plugin_dirs in the
//    config file, or install the package that provides the 'docker' plugin"
pmcp::Result<std::filesystem::path> find_plugin(std::string_view name,
                                                const std::vector<std::filesystem::path>& dirs);

// For --list-plugins: every "pmcp-*.so" in `dirs` (directory order, then file name; a
// directory that does not exist is skipped), each loaded only to read and check its entry
// (init is not called; the library is unloaded again). One result per file: its info, or the
// reason it would be refused (same messages as load_plugin). A directory that exists but
// cannot be read gives one error naming it. Loading runs the library's static constructors.
std::vector<pmcp::Result<PluginInfo>> list_plugins(const std::vector<std::filesystem::path>& dirs);

}  // namespace pmcp::plugin
