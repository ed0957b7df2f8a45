// stdio transport plugin: reads newline-delimited JSON-RPC texts from fd 0 and writes them to
// fd 1. One client session (id 1). Nothing but MCP messages ever reaches fd 1.
//
// Reading: where the core offers its loop (the core-loop host extension) and fd 0 is a pipe or a
// socket, the core thread itself waits for input and reads it, so a request is handled without
// a wake-up of another thread; otherwise (a terminal, a file, an older host) a reader thread
// reads and hands each message over.
//
// Flow control: a client that writes requests and does not read the answers must not make the
// server buffer without end. On the core thread, one read (64 KiB) is split and its messages
// are queued behind each other; the next read comes after them, and none while more than
// kMaxQueuedBytes of answers wait for the client (the writer thread asks for reading to resume).
// The reader thread instead, after every kSyncEvery messages, posts a marker to the core thread
// behind them and waits until the core has run the previous marker, so at most 2 x kSyncEvery
// messages are handed over and not yet taken up (and the core never runs dry while the reader
// catches up); and it reads nothing more while more than kMaxQueuedBytes of answers wait. The
// client's writes then block in the pipe, as with any program that stops reading.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "pmcp/config_check.h"
#include "pmcp/core_loop.h"
#include "pmcp/plugin.hpp"

namespace {

using pmcp::sdk::Error;

constexpr uint64_t kSession = 1;
constexpr std::size_t kDefaultMaxMessage = 16u << 20;
constexpr std::size_t kSyncEvery = 32;
constexpr std::size_t kMaxQueuedBytes = 4u << 20;
// At the end, how long the writer may take to hand the client what is queued.
constexpr auto kFinalFlush = std::chrono::seconds(2);

// The "id" member of the JSON object that `text` starts with, as JSON text, when it can be
// found without parsing the whole: an integer, or a string of printable ASCII without escapes,
// at the object's top level. "null" otherwise. Used to answer an oversized message, which is
// never parsed, so that the client can tell which request failed.
std::string top_level_id(std::string_view text) {
  const std::size_t n = text.size();
  std::size_t i = 0;
  auto skip_ws = [&] {
    while (i < n && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n')) ++i;
  };
  skip_ws();
  if (i >= n || text[i] != '{') return "null";
  ++i;
  int depth = 1;
  bool expect_key = true;
  while (i < n) {
    const char c = text[i];
    if (c == '"') {
      const std::size_t start = ++i;
      bool escaped = false;
      while (i < n && text[i] != '"') {
        if (text[i] == '\\') {
          escaped = true;
          ++i;
        }
        ++i;
      }
      if (i >= n) return "null";
      const std::string_view key = text.substr(start, i - start);
      ++i;
      if (depth != 1 || !expect_key) continue;
      expect_key = false;
      skip_ws();
      if (i >= n || text[i] != ':') return "null";
      ++i;
      skip_ws();
      if (key != "id" || escaped || i >= n) continue;
      std::size_t end = i;
      if (text[i] == '"') {
        ++end;
        while (end < n && end - i <= 256 && text[end] != '"' && text[end] != '\\' &&
               text[end] >= 0x20 && text[end] < 0x7f)
          ++end;
        if (end >= n || text[end] != '"') return "null";
        return std::string(text.substr(i, end - i + 1));
      }
      if (text[end] == '-') ++end;
      const std::size_t digits = end;
      while (end < n && end - i <= 20 && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
      if (end == digits || end >= n) return "null";
      if (text[end] != ',' && text[end] != '}' &&
          !std::isspace(static_cast<unsigned char>(text[end])))
        return "null";
      return std::string(text.substr(i, end - i));
    }
    if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return "null";
    } else if (c == ',' && depth == 1) {
      expect_key = true;
    }
    ++i;
  }
  return "null";
}

// Reads "max_message_bytes = N" from the plugin's JSON table; any other key is an error.
std::size_t parse_config(std::string_view json) {
  std::size_t max_message = kDefaultMaxMessage;
  std::size_t i = 0;
  auto skip_ws = [&] {
    while (i < json.size() && std::isspace(static_cast<unsigned char>(json[i]))) ++i;
  };
  skip_ws();
  if (i >= json.size() || json[i] != '{') throw Error(PMCP_ERR_INVALID_ARGUMENT, "config must be a table");
  ++i;
  while (true) {
    skip_ws();
    if (i < json.size() && json[i] == '}') break;
    if (i >= json.size() || json[i] != '"') throw Error(PMCP_ERR_INVALID_ARGUMENT, "malformed config");
    std::size_t end = json.find('"', i + 1);
    if (end == std::string_view::npos) throw Error(PMCP_ERR_INVALID_ARGUMENT, "malformed config");
    std::string key(json.substr(i + 1, end - i - 1));
    i = end + 1;
    skip_ws();
    if (i >= json.size() || json[i] != ':') throw Error(PMCP_ERR_INVALID_ARGUMENT, "malformed config");
    ++i;
    skip_ws();
    if (key != "max_message_bytes") {
      throw Error(PMCP_ERR_INVALID_ARGUMENT,
                  "unknown key 'stdio." + key + "'; the only key is max_message_bytes");
    }
    std::size_t start = i;
    while (i < json.size() && std::isdigit(static_cast<unsigned char>(json[i]))) ++i;
    if (start == i || i - start > 12) {
      throw Error(PMCP_ERR_INVALID_ARGUMENT,
                  "key 'stdio.max_message_bytes' must be an integer from 1024 to 1073741824");
    }
    max_message = std::stoull(std::string(json.substr(start, i - start)));
    if (max_message < 1024 || max_message > (1u << 30)) {
      throw Error(PMCP_ERR_INVALID_ARGUMENT,
                  "key 'stdio.max_message_bytes' must be an integer from 1024 to 1073741824");
    }
    skip_ws();
    if (i < json.size() && json[i] == ',') ++i;
  }
  return max_message;
}

class StdioTransport final : public pmcp::sdk::TransportBase {
 public:
  StdioTransport(const pmcp_host* host, const pmcp_transport_sink* sink, std::size_t max_message)
      : host_(host), sink_(*sink), max_message_(max_message) {
    // Keep private copies of fd 0 and 1 and point the originals elsewhere: nothing in this
    // process (or a library that prints) can then corrupt the protocol stream, and children
    // never inherit the client's pipes.
    in_fd_ = fcntl(0, F_DUPFD_CLOEXEC, 3);
    out_fd_ = fcntl(1, F_DUPFD_CLOEXEC, 3);
    if (in_fd_ < 0 || out_fd_ < 0) throw Error(PMCP_ERR_IO, std::string("dup: ") + strerror(errno));
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0) {
      dup2(devnull, 0);
      close(devnull);
    }
    dup2(2, 1);
    // Where the core thread may write an answer itself (send()): a pipe or a socket, which can
    // say without blocking whether a small message fits, or a file.
    struct stat st {};
    if (fstat(out_fd_, &st) == 0) {
      if (S_ISFIFO(st.st_mode)) out_kind_ = OutKind::kPipe;
      if (S_ISSOCK(st.st_mode)) out_kind_ = OutKind::kSocket;
      if (S_ISREG(st.st_mode)) out_kind_ = OutKind::kFile;
    }
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    abandon_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0 || abandon_fd_ < 0)
      throw Error(PMCP_ERR_IO, std::string("eventfd: ") + strerror(errno));
  }

  ~StdioTransport() override {
    stop();
    if (reader_.joinable()) reader_.join();
    if (writer_.joinable()) {
      // The writer flushes what is queued; a client that reads nothing must not hold the
      // server's exit, so after kFinalFlush the rest is abandoned.
      {
        std::unique_lock lock(mutex_);
        flow_cv_.wait_for(lock, kFinalFlush, [&] { return writer_done_; });
      }
      uint64_t one = 1;
      (void)!write(abandon_fd_, &one, sizeof(one));
      writer_.join();
    }
    close(in_fd_);
    close(out_fd_);
    close(wake_fd_);
    close(abandon_fd_);
  }

  void start() override {
    if (!watch_on_core_loop()) reader_ = std::thread([this] { read_loop(); });
    writer_ = std::thread([this] { write_loop(); });
  }

  void send(uint64_t session, uint64_t, std::string_view json, uint32_t) override {
    if (session != kSession) throw Error(PMCP_ERR_NOT_FOUND, "no such session");
    std::lock_guard lock(mutex_);
    if (closing_) throw Error(PMCP_ERR_NOT_FOUND, "the stdio transport is closed");
    if (queue_.empty() && !writer_busy_ && write_now(json)) return;
    enqueue(std::string(json));
  }

  // Stops reading, lets the writer flush what is queued, then both threads end.
  void stop() override {
    stop_watching();
    {
      std::lock_guard lock(mutex_);
      if (closing_) return;
      closing_ = true;
      cv_.notify_all();
      flow_cv_.notify_all();
    }
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }

 private:
  void log(pmcp_log_level level, const std::string& text) {
    pmcp::sdk::log(host_, level, text);
  }

  // With mutex_ held.
  void enqueue(std::string text) {
    text.push_back('\n');
    queued_bytes_ += text.size();
    queue_.push_back(std::move(text));
    cv_.notify_one();
  }

  // With mutex_ held, nothing queued and the writer idle: writes a small message from the calling
  // (core) thread when that cannot block, which spares the hand-off to the writer thread on
  // every answer. False when the writer must take it.
  bool write_now(std::string_view json) {
    if (out_kind_ == OutKind::kOther || json.size() + 1 > PIPE_BUF) return false;
    if (out_kind_ == OutKind::kPipe) {
      // A writable pipe takes PIPE_BUF bytes at once, without blocking.
      pollfd p{out_fd_, POLLOUT, 0};
      if (poll(&p, 1, 0) != 1 || (p.revents & POLLOUT) == 0) return false;
    }
    iovec iov[2] = {{const_cast<char*>(json.data()), json.size()}, {const_cast<char*>("\n"), 1}};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    ssize_t w;
    do {
      // A socket is asked not to wait: it may take part of it.
      w = out_kind_ == OutKind::kSocket ? sendmsg(out_fd_, &msg, MSG_DONTWAIT | MSG_NOSIGNAL)
                                        : writev(out_fd_, iov, 2);
    } while (w < 0 && errno == EINTR);
    if (w < 0) return errno != EAGAIN && errno != EWOULDBLOCK;  // gone: the reader sees EOF
    const auto done = static_cast<std::size_t>(w);
    if (done <= json.size()) enqueue(std::string(json.substr(done)));  // the rest goes first
    return true;
  }

  // Runs on the core thread once it has taken up every message delivered before the post.
  static void core_caught_up(void* self) {
    auto* transport = static_cast<StdioTransport*>(self);
    std::lock_guard lock(transport->mutex_);
    ++transport->markers_run_;
    transport->flow_cv_.notify_all();
  }

  // After kSyncEvery messages: posts a marker and waits until the core has run the one before
  // it. Either way, waits while too many answers are queued. False when the transport stops.
  bool throttle() {
    if (unsynced_ >= kSyncEvery) {
      unsynced_ = 0;
      const bool posted = host_ != nullptr && host_->post != nullptr &&
                          host_->post(host_, &StdioTransport::core_caught_up, this) == PMCP_OK;
      std::lock_guard lock(mutex_);
      ++markers_posted_;
      if (!posted) ++markers_run_;  // the core is shutting down: nothing to wait for there
    }
    std::unique_lock lock(mutex_);
    flow_cv_.wait(lock, [&] {
      return closing_ || (markers_run_ + 1 >= markers_posted_ && queued_bytes_ <= kMaxQueuedBytes);
    });
    return !closing_;
  }

  bool over_queue_limit() {
    std::lock_guard lock(mutex_);
    return queued_bytes_ > kMaxQueuedBytes;
  }

  // Reading on the core thread (the core-loop host extension), for a pipe or a socket: a
  // request is then read where it is handled, without a wake-up of a reader thread and a
  // hand-off to the core thread. A terminal is not read this way (its file description is shared
  // with whatever else reads it, such as a shell), nor a file (it cannot be waited on), nor
  // anything when the host does not offer the extension: those get the reader thread.
  bool watch_on_core_loop() {
    if (host_ == nullptr || host_->struct_size < sizeof(pmcp_host) ||
        host_->get_extension == nullptr)
      return false;
    struct stat st {};
    if (fstat(in_fd_, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) return false;
    const auto* loop = static_cast<const pmcp_core_loop*>(
        host_->get_extension(host_, PMCP_CORE_LOOP_EXTENSION_ID));
    if (loop == nullptr || loop->struct_size < sizeof(pmcp_core_loop)) return false;
    char text[256] = {};
    if (loop->watch_input(host_, in_fd_, &StdioTransport::input_ready, this, &watch_,
                          pmcp_error_buf{text, sizeof text}) != PMCP_OK) {
      log(PMCP_LOG_DEBUG, std::string("reading on a thread of its own: ") + text);
      return false;
    }
    loop_ = loop;
    return true;
  }

  // Core thread.
  void stop_watching() {
    if (watch_ == nullptr) return;
    loop_->cancel(watch_);
    watch_ = nullptr;
  }

  // Core thread: fd 0 is readable (or has hung up). Reads once, without blocking.
  //
  // The loop waits for a change (edge-triggered): a wait asked for while bytes are already
  // there may not be woken by them. So the wait is asked for again only right after a read
  // that left nothing behind, in the same call (the loop cannot look for events in between,
  // and whatever arrives later is a change it sees). After a full buffer, or when reading
  // resumes after a pause, the next read comes from a posted call that reads without waiting.
  static void input_ready(void* self) { static_cast<StdioTransport*>(self)->read_available(); }
  void read_available() {
    if (watch_ == nullptr) return;
    pollfd p{in_fd_, POLLIN, 0};
    const int ready = poll(&p, 1, 0);
    if (ready < 0 && errno != EINTR)
      return end_of_input(std::string("poll failed: ") + strerror(errno));
    if (ready <= 0) return loop_->rearm(watch_);  // nothing there (yet): wait for it
    const ssize_t got = read(in_fd_, buffer_.data(), buffer_.size());
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) return loop_->rearm(watch_);
      return end_of_input(std::string("read failed: ") + strerror(errno));
    }
    if (got == 0) return end_of_input("end of input");
    take(static_cast<std::size_t>(got), false);
    {
      // A client that does not take its answers: read nothing more until the writer has
      // handed it enough of them (it posts resume_reading).
      std::lock_guard lock(mutex_);
      if (queued_bytes_ > kMaxQueuedBytes) {
        paused_ = true;
        return;
      }
    }
    // More may be waiting: read on after the messages just handed over, without waiting.
    if (static_cast<std::size_t>(got) == buffer_.size() &&
        host_->post(host_, &StdioTransport::input_ready, this) == PMCP_OK)
      return;
    loop_->rearm(watch_);
  }

  // Core thread, posted by the writer once the answers waiting are few enough again.
  static void resume_reading(void* self) { static_cast<StdioTransport*>(self)->read_available(); }

  void end_of_input(const std::string& reason) {
    stop_watching();
    finish_input(reason);
  }

  // The reader thread, for input that the core loop does not wait on.
  void read_loop() {
    std::string reason = "end of input";
    while (true) {
      pollfd fds[2] = {{in_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
      int n = poll(fds, 2, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        reason = std::string("poll failed: ") + strerror(errno);
        break;
      }
      if (fds[1].revents) return;  // stop() was called: the core is shutting down
      ssize_t got = read(in_fd_, buffer_.data(), buffer_.size());
      if (got < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        reason = std::string("read failed: ") + strerror(errno);
        break;
      }
      if (got == 0) break;
      if (!take(static_cast<std::size_t>(got), true)) return;  // stop() was called meanwhile
    }
    finish_input(reason);
  }

  // Splits the `got` bytes read into buffer_ into messages and hands them to the core. On the
  // reader thread (`throttled`) it waits for the core as the flow control says; false when
  // stop() was called while it waited.
  bool take(std::size_t got, bool throttled) {
    std::size_t begin = 0;
    for (std::size_t i = 0; i < got; ++i) {
      if (buffer_[i] != '\n') continue;
      if (!discarding_) pending_.append(buffer_, begin, i - begin);
      const bool delivered = deliver(pending_, discarding_, discarded_id_);
      pending_.clear();
      discarding_ = false;
      begin = i + 1;
      if (throttled && delivered && (++unsynced_ >= kSyncEvery || over_queue_limit()) &&
          !throttle())
        return false;
    }
    if (!discarding_) pending_.append(buffer_, begin, got - begin);
    if (!discarding_ && pending_.size() > max_message_) {
      // An oversized message is dropped whole, unread, as it arrives: memory stays bounded
      // by the limit. Its answer names the request when its id comes first.
      discarding_ = true;
      discarded_id_ = top_level_id(std::string_view(pending_).substr(0, 64 * 1024));
      pending_.clear();
      pending_.shrink_to_fit();
    }
    return true;
  }

  // The input has ended: what is left is the last message, then the session and the transport
  // end.
  void finish_input(const std::string& reason) {
    if (!pending_.empty() || discarding_) deliver(pending_, discarding_, discarded_id_);
    pending_.clear();
    discarding_ = false;
    sink_.on_session_closed(sink_.ctx, kSession);
    sink_.on_stopped(sink_.ctx, pmcp::sdk::str(reason));
  }

  // Hands one line to the core; true when it did. An oversized message is answered here, with
  // an Invalid Request error that says why (the core never sees it).
  bool deliver(std::string& line, bool oversized, const std::string& oversized_id) {
    if (oversized) {
      const std::string limit = std::to_string(max_message_);
      log(PMCP_LOG_WARN, "dropped a message larger than max_message_bytes (" + limit + ")");
      std::lock_guard lock(mutex_);
      if (!closing_) {
        enqueue("{\"jsonrpc\":\"2.0\",\"id\":" + oversized_id +
                ",\"error\":{\"code\":-32600,\"message\":\"the message is larger than " + limit +
                " bytes, the server's limit ([stdio] max_message_bytes); it was dropped unread\"," +
                "\"data\":{\"maxMessageBytes\":" + limit + "}}}");
      }
      return false;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) return false;
    sink_.on_message(sink_.ctx, kSession, 0, pmcp::sdk::str(line));
    return true;
  }

  void write_loop() {
    while (true) {
      std::string text;
      {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return !queue_.empty() || closing_; });
        if (queue_.empty()) {
          writer_done_ = true;
          flow_cv_.notify_all();
          return;
        }
        text = std::move(queue_.front());
        queue_.pop_front();
        writer_busy_ = true;
      }
      std::size_t off = 0;
      bool gone = false;
      bool abandoned = false;
      while (off < text.size()) {
        // Wait until the client can take bytes, or the end gives up on it. Once poll says
        // writable, PIPE_BUF bytes go without blocking.
        pollfd fds[2] = {{out_fd_, POLLOUT, 0}, {abandon_fd_, POLLIN, 0}};
        if (poll(fds, 2, -1) < 0) {
          if (errno == EINTR) continue;
          gone = true;
          break;
        }
        if (fds[1].revents != 0) {
          abandoned = true;
          break;
        }
        const std::size_t chunk = std::min<std::size_t>(text.size() - off, PIPE_BUF);
        ssize_t w = write(out_fd_, text.data() + off, chunk);
        if (w < 0) {
          if (errno == EINTR || errno == EAGAIN) continue;
          gone = true;
          break;
        }
        off += static_cast<std::size_t>(w);
      }
      std::lock_guard lock(mutex_);
      writer_busy_ = false;
      if (abandoned) {
        writer_done_ = true;
        return;
      }
      if (gone) {
        // The client is gone; drop the rest quietly (the reader sees EOF next).
        queue_.clear();
        queued_bytes_ = 0;
      } else {
        queued_bytes_ -= text.size();
      }
      if (paused_ && queued_bytes_ <= kMaxQueuedBytes && !closing_) {
        paused_ = false;
        if (host_ != nullptr && host_->post != nullptr)
          host_->post(host_, &StdioTransport::resume_reading, this);
      }
      flow_cv_.notify_all();
    }
  }

  const pmcp_host* host_;
  pmcp_transport_sink sink_;
  std::size_t max_message_;
  int in_fd_ = -1;
  int out_fd_ = -1;
  int wake_fd_ = -1;
  int abandon_fd_ = -1;  // written when the final flush gives up
  std::thread reader_;
  std::thread writer_;
  std::mutex mutex_;
  std::condition_variable cv_;       // the writer waits on it
  std::condition_variable flow_cv_;  // the reader waits on it (flow control)
  std::deque<std::string> queue_;
  bool writer_busy_ = false;  // the writer holds a message it has not written out yet
  enum class OutKind { kOther, kPipe, kSocket, kFile };
  OutKind out_kind_ = OutKind::kOther;
  std::size_t queued_bytes_ = 0;  // in queue_ and being written
  uint64_t markers_posted_ = 0;
  uint64_t markers_run_ = 0;
  std::size_t unsynced_ = 0;  // messages delivered since the last marker (reader thread only)
  // What is read: on the reader thread, or on the core thread when the core loop waits on fd 0
  // (then loop_ and watch_ are set, core thread only).
  std::string buffer_ = std::string(64 * 1024, '\0');
  std::string pending_;      // the start of a message whose end has not arrived
  bool discarding_ = false;  // the rest of an oversized message is skipped
  std::string discarded_id_;
  const pmcp_core_loop* loop_ = nullptr;
  pmcp_fd_watch* watch_ = nullptr;
  bool paused_ = false;  // core-loop reading waits for the writer (mutex_)
  bool closing_ = false;
  bool writer_done_ = false;
};

const pmcp_host* g_host = nullptr;

int32_t create(const pmcp_transport_factory*, const pmcp_host* host, pmcp_str config,
               const pmcp_transport_sink* sink, pmcp_transport** out, pmcp_error_buf err) {
  return pmcp::sdk::guard(err, [&] {
    if (sink == nullptr || out == nullptr) throw Error(PMCP_ERR_INVALID_ARGUMENT, "null argument");
    std::size_t max_message = parse_config(pmcp::sdk::view(config));
    *out = pmcp::sdk::make_transport(std::make_unique<StdioTransport>(host ? host : g_host, sink,
                                                                      max_message));
    return int32_t{PMCP_OK};
  });
}

const pmcp_transport_factory kFactory = {sizeof(pmcp_transport_factory), &create};

// For `process-mcp --check-config`: the parse that create() does.
int32_t check_config(const pmcp_config_check_factory*, pmcp_str config, pmcp_error_buf err) {
  return pmcp::sdk::guard(err, [&] {
    parse_config(pmcp::sdk::view(config));
    return int32_t{PMCP_OK};
  });
}

const pmcp_config_check_factory kConfigCheck = {sizeof(pmcp_config_check_factory), &check_config};

int32_t plugin_init(const pmcp_host* host) {
  g_host = host;
  return 1;
}
void plugin_deinit() { g_host = nullptr; }
const void* plugin_get_factory(const char* id) {
  if (id == nullptr) return nullptr;
  if (std::strcmp(id, PMCP_TRANSPORT_FACTORY_ID) == 0) return &kFactory;
  if (std::strcmp(id, PMCP_CONFIG_CHECK_FACTORY_ID) == 0) return &kConfigCheck;
  return nullptr;
}

}  // namespace

// The one exported symbol (inside a namespace only to avoid the type's name; extern "C" gives
// it the plain symbol name).
namespace stdio_plugin_entry {
extern "C" PMCP_EXPORT const ::pmcp_plugin_entry pmcp_plugin_entry = {
    sizeof(::pmcp_plugin_entry), PMCP_ABI_VERSION_MAJOR, PMCP_ABI_VERSION_MINOR, "stdio", "0.1.0",
    "MCP over stdio: newline-delimited JSON-RPC on standard input and output", &plugin_init,
    &plugin_deinit, &plugin_get_factory};
}  // namespace stdio_plugin_entry
