// Loads plugin shared objects through the C ABI of sdk/include/pmcp/plugin.h: finds them by
// name, checks their entry (size, ABI version, required fields) and owns the library handle.
#include "plugin/plugin_loader.hpp"

#include <dlfcn.h>
#include <link.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <system_error>
#include <utility>

namespace pmcp::plugin {

namespace fs = std::filesystem;

struct LoadedPlugin::Library {
  boost::dll::shared_library library;
};

namespace {

constexpr std::string_view kFilePrefix = "pmcp-";
constexpr std::string_view kFileSuffix = ".so";
constexpr std::size_t kMaxIdLength = 64;

// struct_size, abi_major and abi_minor: present in every version of the entry.
constexpr std::size_t kEntryHeaderSize = offsetof(pmcp_plugin_entry, id);
// Every field this loader reads; an entry with a smaller struct_size is refused.
constexpr std::size_t kEntrySizeRead =
    offsetof(pmcp_plugin_entry, get_factory) + sizeof(pmcp_plugin_entry::get_factory);

std::string abi_text(unsigned major, unsigned minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

Error file_error(ErrorCode code, const fs::path& file, std::string_view reason) {
  std::string message = file.string();
  message += ": ";
  message += reason;
  return make_error(code, std::move(message));
}

// The last dlopen error of this thread, without the "<file>: " that dlerror() puts in front.
std::string take_dl_error(const fs::path& file) {
  const char* text = dlerror();
  if (text == nullptr) return "unknown reason";
  std::string_view reason(text);
  for (const std::string& prefix : {file.string(), (fs::path(".") / file).string()}) {
    if (reason.size() > prefix.size() + 2 && reason.substr(0, prefix.size()) == prefix &&
        reason.substr(prefix.size(), 2) == ": ") {
      reason.remove_prefix(prefix.size() + 2);
      break;
    }
  }
  return std::string(reason);
}

bool is_valid_id(const char* id) {
  std::size_t n = strnlen(id, kMaxIdLength + 1);
  if (n == 0 || n > kMaxIdLength) return false;
  return std::all_of(id, id + n, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

// What the dynamic linker knows about the entry symbol: its size, whether it is data, and
// whether it was found in `handle` itself rather than in one of its dependencies.
struct SymbolFacts {
  bool known = false;
  std::size_t size = 0;
  bool is_object = true;
  bool in_this_library = true;
};

SymbolFacts symbol_facts(void* handle, const void* address) {
  SymbolFacts facts;
  Dl_info info{};
  void* extra = nullptr;
  if (dladdr1(address, &info, &extra, RTLD_DL_SYMENT) != 0 && extra != nullptr &&
      info.dli_saddr == address) {
    const auto* sym = static_cast<const ElfW(Sym)*>(extra);
    facts.known = true;
    facts.size = sym->st_size;
    facts.is_object = ELF64_ST_TYPE(sym->st_info) == STT_OBJECT;  // same as ELF32_ST_TYPE
  }
  void* owner = nullptr;
  void* self = nullptr;
  if (dladdr1(address, &info, &owner, RTLD_DL_LINKMAP) != 0 &&
      dlinfo(handle, RTLD_DI_LINKMAP, &self) == 0 && owner != nullptr && self != nullptr) {
    facts.in_this_library = owner == self;
  }
  return facts;
}

struct Opened {
  std::unique_ptr<LoadedPlugin::Library> library;
  const pmcp_plugin_entry* entry = nullptr;
  PluginInfo info;
};

// Loads `file` and checks its entry, everything load_plugin does short of init().
Result<Opened> open_plugin(const fs::path& file) {
  std::error_code ec;
  fs::file_status status = fs::status(file, ec);
  if (!fs::exists(status)) return file_error(ErrorCode::not_found, file, "no such file");
  if (fs::is_directory(status)) {
    return file_error(ErrorCode::invalid_argument, file,
                      "is a directory, not a plugin shared object");
  }

  auto library = std::make_unique<LoadedPlugin::Library>();
  dlerror();  // forget an older error so the one reported is this load's
  library->library.load(file, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local,
                        ec);
  if (ec || !library->library.is_loaded()) {
    return file_error(ErrorCode::invalid_argument, file,
                      "not a loadable shared object (" + take_dl_error(file) + ")");
  }

  const std::string entry_name = PMCP_ENTRY_SYMBOL;
  // The address alone, as a void pointer: what it points to is checked before it is read as
  // an entry (a function of that name lies at any alignment, and a reference to a misaligned
  // struct is undefined behaviour already).
  const void* address = dlsym(library->library.native(), entry_name.c_str());
  const std::string no_entry =
      "no entry symbol '" + entry_name + "' (not a process-mcp plugin, or its entry is not " +
      "exported: define it with PMCP_EXPORT and build with pmcp_add_plugin)";
  if (address == nullptr) return file_error(ErrorCode::invalid_argument, file, no_entry);
  SymbolFacts facts = symbol_facts(library->library.native(), address);
  if (!facts.in_this_library) return file_error(ErrorCode::invalid_argument, file, no_entry);
  if (!facts.is_object) {
    return file_error(ErrorCode::invalid_argument, file,
                      "'" + entry_name + "' is a function; it must be the const entry struct");
  }
  if (reinterpret_cast<std::uintptr_t>(address) % alignof(pmcp_plugin_entry) != 0) {
    return file_error(ErrorCode::invalid_argument, file,
                      "entry symbol '" + entry_name + "' is not aligned for an entry struct (" +
                          std::to_string(alignof(pmcp_plugin_entry)) +
                          " bytes); it must be the const entry struct");
  }
  const auto* entry = static_cast<const pmcp_plugin_entry*>(address);
  if (facts.known && facts.size < kEntryHeaderSize) {
    return file_error(ErrorCode::invalid_argument, file,
                      "entry symbol '" + entry_name + "' is only " + std::to_string(facts.size) +
                          " bytes, too small for an entry");
  }

  // struct_size and the ABI version first: they decide what else may be read.
  const uint32_t struct_size = entry->struct_size;
  const uint16_t abi_major = entry->abi_major;
  const uint16_t abi_minor = entry->abi_minor;
  const std::string theirs = abi_text(abi_major, abi_minor);
  const std::string ours = abi_text(PMCP_ABI_VERSION_MAJOR, PMCP_ABI_VERSION_MINOR);
  if (abi_major != PMCP_ABI_VERSION_MAJOR) {
    return file_error(ErrorCode::unsupported, file,
                      "built for plugin ABI " + theirs + ", but this server speaks ABI " + ours +
                          "; rebuild the plugin against this server's SDK");
  }
  if (PMCP_ABI_VERSION_MAJOR == 0 && abi_minor != PMCP_ABI_VERSION_MINOR) {
    return file_error(ErrorCode::unsupported, file,
                      "built for plugin ABI " + theirs + ", but this server speaks ABI " + ours +
                          " (while the ABI is 0.x the minor version must match too); rebuild "
                          "the plugin against this server's SDK");
  }
  if (struct_size < kEntrySizeRead) {
    return file_error(ErrorCode::invalid_argument, file,
                      "entry struct_size is " + std::to_string(struct_size) +
                          " bytes, smaller than the " + std::to_string(kEntrySizeRead) +
                          " bytes of the fields of ABI " + ours + " (a corrupt entry?)");
  }
  if (facts.known && facts.size < struct_size) {
    return file_error(ErrorCode::invalid_argument, file,
                      "entry struct_size says " + std::to_string(struct_size) +
                          " bytes, but the symbol '" + entry_name + "' has only " +
                          std::to_string(facts.size) + " (a corrupt entry?)");
  }

  for (auto [field, missing] :
       {std::pair{"id", entry->id == nullptr}, std::pair{"init", entry->init == nullptr},
        std::pair{"get_factory", entry->get_factory == nullptr}}) {
    if (missing) {
      return file_error(ErrorCode::invalid_argument, file,
                        std::string("entry field '") + field + "' is NULL; it is required");
    }
  }
  if (!is_valid_id(entry->id)) {
    return file_error(
        ErrorCode::invalid_argument, file,
        "entry id must be 1 to " + std::to_string(kMaxIdLength) + " characters of [a-z0-9-]");
  }

  Opened opened;
  opened.info.id = entry->id;
  opened.info.version = entry->version != nullptr ? entry->version : "";
  opened.info.description = entry->description != nullptr ? entry->description : "";
  opened.info.path = file;
  opened.info.abi_major = abi_major;
  opened.info.abi_minor = abi_minor;
  opened.entry = entry;
  opened.library = std::move(library);
  return opened;
}

// "pmcp.transport/1" -> "transport"; "" when the id does not have that shape.
std::string_view factory_kind(std::string_view factory_id) {
  constexpr std::string_view kPrefix = "pmcp.";
  std::size_t slash = factory_id.find('/');
  if (factory_id.substr(0, kPrefix.size()) != kPrefix || slash == std::string_view::npos ||
      slash <= kPrefix.size()) {
    return {};
  }
  return factory_id.substr(kPrefix.size(), slash - kPrefix.size());
}

}  // namespace

LoadedPlugin::LoadedPlugin(Token, std::unique_ptr<Library> library, const pmcp_plugin_entry* entry,
                           PluginInfo info)
    : library_(std::move(library)), entry_(entry), info_(std::move(info)) {}

LoadedPlugin::~LoadedPlugin() {
  if (entry_ != nullptr && entry_->deinit != nullptr) entry_->deinit();
  entry_ = nullptr;
  library_.reset();  // unloads; nothing of the plugin may be used after this
}

Result<const void*> LoadedPlugin::factory(std::string_view factory_id) const {
  const std::string id(factory_id);
  const void* table = entry_->get_factory(id.c_str());
  if (table != nullptr) return table;
  std::string reason = "plugin '" + info_.id + "' has no factory '" + id + "'";
  std::string_view kind = factory_kind(factory_id);
  if (!kind.empty()) {
    reason += std::string_view("aeiou").find(kind.front()) == std::string_view::npos
                  ? " (it is not a "
                  : " (it is not an ";
    reason += kind;
    reason += " plugin?)";
  }
  return file_error(ErrorCode::not_found, info_.path, reason);
}

Result<std::shared_ptr<LoadedPlugin>> load_plugin(const fs::path& file, const pmcp_host* host) {
  if (host == nullptr) {
    return file_error(ErrorCode::internal, file, "no host services given to the loader");
  }
  Result<Opened> opened = open_plugin(file);
  if (!opened) return std::move(opened).error();
  if (opened->entry->init(host) == 0) {
    return file_error(ErrorCode::unavailable, file,
                      "plugin '" + opened->info.id +
                          "' failed to initialise (init returned 0); its log says why");
  }
  return std::make_shared<LoadedPlugin>(LoadedPlugin::Token{}, std::move(opened->library),
                                        opened->entry, std::move(opened->info));
}

Result<fs::path> find_plugin(std::string_view name, const std::vector<fs::path>& dirs) {
  const std::string file_name =
      std::string(kFilePrefix) + std::string(name) + std::string(kFileSuffix);
  if (name.empty() || name.find('/') != std::string_view::npos || name == "." || name == "..") {
    return make_error(ErrorCode::invalid_argument,
                      "invalid plugin name '" + std::string(name) +
                          "': a plugin is named by its id, e.g. \"host\" for pmcp-host.so");
  }
  std::string searched;
  for (const fs::path& dir : dirs) {
    std::error_code ec;
    fs::path candidate = dir / file_name;
    if (fs::is_regular_file(candidate, ec)) return candidate;
    if (!searched.empty()) searched += ", ";
    searched += dir.string();
    if (!fs::is_directory(dir, ec)) searched += " (no such directory)";
  }
  std::string message = "plugin '" + std::string(name) + "' not found: ";
  if (dirs.empty()) {
    message += "no plugin directories to search for " + file_name;
  } else {
    message += "no " + file_name + " in " + searched;
  }
  message +=
      "; add the directory that holds it to plugin_dirs in the config file, or install "
      "the package that provides the '" +
      std::string(name) + "' plugin";
  // The plugins of this project have packages of their own (packaging/CMakeLists.txt).
  if (name == "host" || name == "docker") {
    message += " (process-mcp-plugin-" + std::string(name) + ")";
  } else if (name == "stdio" || name == "http") {
    message += " (process-mcp-transport-" + std::string(name) + ")";
  }
  return make_error(ErrorCode::not_found, std::move(message));
}

std::vector<Result<PluginInfo>> list_plugins(const std::vector<fs::path>& dirs) {
  std::vector<Result<PluginInfo>> results;
  std::vector<fs::path> seen;
  for (const fs::path& dir : dirs) {
    std::error_code ec;
    fs::path canonical = fs::weakly_canonical(dir, ec);
    if (ec) canonical = dir;
    if (std::find(seen.begin(), seen.end(), canonical) != seen.end()) continue;
    seen.push_back(canonical);

    fs::file_status status = fs::status(dir, ec);
    if (!fs::exists(status)) continue;
    if (!fs::is_directory(status)) {
      results.emplace_back(file_error(ErrorCode::invalid_argument, dir, "not a directory"));
      continue;
    }
    std::vector<fs::path> files;
    fs::directory_iterator it(dir, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.size() > kFilePrefix.size() + kFileSuffix.size() && name.starts_with(kFilePrefix) &&
          name.ends_with(kFileSuffix)) {
        files.push_back(it->path());
      }
    }
    if (ec) {
      results.emplace_back(
          file_error(ErrorCode::io, dir, "cannot read the directory: " + ec.message()));
      continue;
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& file : files) {
      Result<Opened> opened = open_plugin(file);
      if (opened) {
        results.emplace_back(std::move(opened->info));
      } else {
        results.emplace_back(std::move(opened).error());
      }
    }
  }
  return results;
}

}  // namespace pmcp::plugin
