// Pure pieces of the exec protocol, kept free of I/O so they can be tested alone: the wrapper
// that reports the container-side process group, its marker line, and the demultiplexer of
// Docker's 8-byte-header stream format.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace pmcp::docker {

// The command an exec runs for a process: /bin/sh runs a short wrapper that changes to cwd,
// sets the terminal size (tty only), checks that argv[0] can be found, then writes one marker
// line on stderr (on the terminal for a tty) and execs argv. Docker starts every exec as a
// session and process-group leader, so the pid in the marker is the process group to signal.
// Marker lines: "<pid>" (started), "!cwd" (cannot enter cwd), "!exec" (argv[0] not found).
std::vector<std::string> wrap_command(const std::vector<std::string>& argv, const std::string& cwd,
                                      bool tty, uint16_t cols, uint16_t rows);

// Collects the marker line from the first bytes of a stream.
class MarkerReader {
 public:
  enum class State { reading, started, failed };

  // Feeds bytes; returns how many were consumed (the rest belong to the process's output).
  std::size_t feed(const char* data, std::size_t size);
  State state() const { return state_; }
  int64_t pid() const { return pid_; }
  // For failed: "cwd", "exec", or the unexpected text (e.g. the engine's own error).
  const std::string& failure() const { return failure_; }
  // What was read so far without a complete line (reported when the stream ends early).
  const std::string& partial() const { return line_; }

 private:
  State state_ = State::reading;
  std::string line_;
  int64_t pid_ = 0;
  std::string failure_;
};

// Splits Docker's multiplexed stream (non-tty execs): frames of an 8-byte header
// [stream, 0, 0, 0, size as big-endian uint32] followed by size bytes.
class Demuxer {
 public:
  // Called with stream 1 (stdout) or 2 (stderr) and a payload piece; pieces of one frame may
  // arrive in several calls.
  using Sink = std::function<void(int stream, const char* data, std::size_t size)>;

  void feed(const char* data, std::size_t size, const Sink& sink);
  // True when the input ended in the middle of a frame.
  bool mid_frame() const { return header_used_ != 0 || remaining_ != 0; }

 private:
  unsigned char header_[8] = {};
  std::size_t header_used_ = 0;
  uint32_t remaining_ = 0;
  int stream_ = 1;
};

// Maps an exec's exit status to (exit_code, term_signal): Docker reports a death by signal n
// as 128 + n, so 129..159 become signal 1..31 with exit code -1; anything else is an exit code.
void map_exit_status(int64_t status, int32_t& exit_code, int32_t& term_signal);

}  // namespace pmcp::docker
