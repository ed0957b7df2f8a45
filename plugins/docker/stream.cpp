#include "stream.hpp"

#include <cctype>

namespace pmcp::docker {

namespace {

// $1 = cwd, $2 = rows (0 for pipes), $3 = cols, then argv. Plain POSIX sh: works with dash,
// bash and busybox ash. Nothing is written on stdout, and only the marker line on stderr.
constexpr const char* kWrapper =
    "cd \"$1\" 2>/dev/null || { echo '!cwd' >&2; exit 126; }\n"
    "[ \"$2\" = 0 ] || stty rows \"$2\" cols \"$3\" 2>/dev/null\n"
    "shift 3\n"
    "command -v \"$1\" >/dev/null 2>&1 || { echo '!exec' >&2; exit 127; }\n"
    "echo \"$$\" >&2\n"
    "exec \"$@\"\n";

constexpr std::size_t kMaxMarker = 4096;

}  // namespace

std::vector<std::string> wrap_command(const std::vector<std::string>& argv, const std::string& cwd,
                                      bool tty, uint16_t cols, uint16_t rows) {
  std::vector<std::string> cmd = {"/bin/sh", "-c", kWrapper, "process-mcp", cwd};
  if (tty && cols > 0 && rows > 0) {
    cmd.push_back(std::to_string(rows));
    cmd.push_back(std::to_string(cols));
  } else {
    cmd.push_back("0");
    cmd.push_back("0");
  }
  cmd.insert(cmd.end(), argv.begin(), argv.end());
  return cmd;
}

std::size_t MarkerReader::feed(const char* data, std::size_t size) {
  if (state_ != State::reading) return 0;
  for (std::size_t i = 0; i < size; ++i) {
    const char c = data[i];
    if (c != '\n') {
      line_ += c;
      if (line_.size() > kMaxMarker) {
        state_ = State::failed;
        failure_ = line_;
        return i + 1;
      }
      continue;
    }
    std::string line = line_;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    bool digits = !line.empty() && line.size() <= 18;
    for (char d : line) digits = digits && std::isdigit(static_cast<unsigned char>(d));
    if (digits) {
      state_ = State::started;
      pid_ = std::stoll(line);
    } else {
      state_ = State::failed;
      failure_ = (line == "!cwd" || line == "!exec") ? line.substr(1) : line;
    }
    line_.clear();
    return i + 1;
  }
  return size;
}

void Demuxer::feed(const char* data, std::size_t size, const Sink& sink) {
  std::size_t i = 0;
  while (i < size) {
    if (remaining_ == 0) {
      while (header_used_ < 8 && i < size)
        header_[header_used_++] = static_cast<unsigned char>(data[i++]);
      if (header_used_ < 8) return;
      header_used_ = 0;
      stream_ = header_[0] == 2 ? 2 : 1;
      remaining_ = (uint32_t{header_[4]} << 24) | (uint32_t{header_[5]} << 16) |
                   (uint32_t{header_[6]} << 8) | uint32_t{header_[7]};
      continue;
    }
    const std::size_t n = std::min<std::size_t>(remaining_, size - i);
    sink(stream_, data + i, n);
    remaining_ -= static_cast<uint32_t>(n);
    i += n;
  }
}

void map_exit_status(int64_t status, int32_t& exit_code, int32_t& term_signal) {
  if (status > 128 && status < 160) {
    exit_code = -1;
    term_signal = static_cast<int32_t>(status - 128);
  } else {
    exit_code = static_cast<int32_t>(status);
    term_signal = 0;
  }
}

}  // namespace pmcp::docker
