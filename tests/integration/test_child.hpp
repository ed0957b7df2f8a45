// The test child program (tests/helpers/child.cpp) at a path a sandboxed command can see.
//
// The host sandbox gives every command a private /tmp, so when the build tree lies under the
// temporary directory the child is copied once to a scratch folder under /var/tmp, which is
// removed when the test program exits.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace pmcp::test {

inline const std::string& visible_child() {
  static const std::string path = [] {
    namespace fs = std::filesystem;
    const std::string built = PMCP_CHILD_PATH;
    const std::string tmp = fs::temp_directory_path().lexically_normal().string();
    const std::string prefix = tmp.ends_with('/') ? tmp : tmp + "/";
    if (!built.starts_with(prefix)) return built;
    std::string dir = "/var/tmp/pmcp-test-child-XXXXXX";
    if (mkdtemp(dir.data()) == nullptr) return built;
    const std::string copy = dir + "/pmcp-test-child";
    std::error_code ec;
    fs::copy_file(built, copy, ec);
    if (ec) return built;
    fs::permissions(copy,
                    fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                        fs::perms::others_read | fs::perms::others_exec,
                    ec);
    static std::string to_remove;
    to_remove = dir;
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(to_remove, ignored);
    });
    return copy;
  }();
  return path;
}

}  // namespace pmcp::test
