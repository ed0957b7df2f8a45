// Executor wrapper: every sink callback copies its arguments and posts them to the core
// thread; a shared "alive" flag drops events that arrive after destroy().
#include "process/executor.hpp"

#include <array>
#include <boost/asio/post.hpp>

namespace pmcp::process {

struct Executor::Shared : std::enable_shared_from_this<Executor::Shared> {
  boost::asio::io_context* io;
  ExecutorEvents* events;
  std::atomic<bool> alive{true};
};

Error status_error(int32_t status, std::string message) {
  ErrorCode code = ErrorCode::internal;
  switch (status) {
    case PMCP_ERR_INVALID_ARGUMENT:
      code = ErrorCode::invalid_argument;
      break;
    case PMCP_ERR_NOT_FOUND:
      code = ErrorCode::not_found;
      break;
    case PMCP_ERR_UNSUPPORTED:
      code = ErrorCode::unsupported;
      break;
    case PMCP_ERR_STATE:
      code = ErrorCode::state;
      break;
    case PMCP_ERR_IO:
      code = ErrorCode::io;
      break;
    case PMCP_ERR_DENIED:
      code = ErrorCode::denied;
      break;
    case PMCP_ERR_UNAVAILABLE:
      code = ErrorCode::unavailable;
      break;
    default:
      break;
  }
  if (message.empty()) message = "executor error " + std::to_string(status);
  return Error{code, std::move(message)};
}

namespace {

using ErrorText = std::array<char, 1024>;

pmcp_error_buf buf(ErrorText& text) {
  text[0] = '\0';
  return pmcp_error_buf{text.data(), text.size()};
}

std::string to_string(pmcp_str s) { return s.data ? std::string(s.data, s.size) : std::string(); }

Result<void> check(int32_t status, const ErrorText& text) {
  if (status == PMCP_OK) return {};
  return status_error(status, std::string(text.data()));
}

}  // namespace

Executor::Executor(boost::asio::io_context& io) : io_(io), shared_(std::make_shared<Shared>()) {
  shared_->io = &io_;
  shared_->events = nullptr;
  sink_.struct_size = sizeof(sink_);
  // The sink keeps a raw pointer to Shared; Shared outlives the instance because destroy()
  // runs before this object (and its shared_ptr) goes away.
  sink_.ctx = shared_.get();
  sink_.on_spawned = [](void* ctx, uint64_t id, int32_t status, int64_t os_pid, pmcp_str msg) {
    auto shared = static_cast<Shared*>(ctx)->shared_from_this();
    if (!shared->alive) return;
    std::string text = to_string(msg);
    boost::asio::post(*shared->io, [shared, id, status, os_pid, text = std::move(text)]() mutable {
      if (!shared->alive) return;
      Result<void> outcome;
      if (status != PMCP_OK) outcome = status_error(status, std::move(text));
      shared->events->on_spawned(id, std::move(outcome), os_pid);
    });
  };
  sink_.on_output = [](void* ctx, uint64_t id, int32_t stream, const uint8_t* data, size_t size) {
    auto shared = static_cast<Shared*>(ctx)->shared_from_this();
    if (!shared->alive || size == 0) return;
    std::string bytes(reinterpret_cast<const char*>(data), size);
    boost::asio::post(*shared->io, [shared, id, stream, bytes = std::move(bytes)]() mutable {
      if (shared->alive) shared->events->on_output(id, stream, std::move(bytes));
    });
  };
  sink_.on_exit = [](void* ctx, uint64_t id, int32_t code, int32_t sig, pmcp_str msg) {
    auto shared = static_cast<Shared*>(ctx)->shared_from_this();
    if (!shared->alive) return;
    std::string text = to_string(msg);
    boost::asio::post(*shared->io, [shared, id, code, sig, text = std::move(text)]() mutable {
      if (shared->alive) shared->events->on_exit(id, code, sig, std::move(text));
    });
  };
}

Executor::~Executor() { destroy(); }

Result<void> Executor::create(const pmcp_executor_factory* factory, const pmcp_host* host,
                              const std::string& config_json, ExecutorEvents& events) {
  shared_->events = &events;
  if (factory == nullptr || factory->create == nullptr) {
    return make_error(ErrorCode::internal, "the executor factory has no create function");
  }
  ErrorText text;
  pmcp_executor* out = nullptr;
  int32_t status = factory->create(factory, host, pmcp_str{config_json.data(), config_json.size()},
                                   &sink_, &out, buf(text));
  if (status != PMCP_OK) return status_error(status, std::string(text.data()));
  if (out == nullptr ||
      out->struct_size < offsetof(pmcp_executor, destroy) + sizeof(out->destroy)) {
    return make_error(ErrorCode::internal, "the executor plugin returned an invalid instance");
  }
  instance_ = out;
  id_prefix_ = out->id_prefix ? out->id_prefix : "proc";
  default_cwd_ = out->default_cwd ? out->default_cwd : "/";
  return {};
}

Result<void> Executor::spawn(const SpawnRequest& request) {
  if (!instance_) return make_error(ErrorCode::unavailable, "the executor has shut down");
  std::vector<const char*> argv;
  for (const auto& a : request.argv) argv.push_back(a.c_str());
  std::vector<const char*> envp;
  for (const auto& e : request.env) envp.push_back(e.c_str());
  pmcp_spawn_options options{};
  options.struct_size = sizeof(options);
  options.process_id = request.id;
  options.argv = argv.data();
  options.argc = argv.size();
  options.envp = envp.data();
  options.envc = envp.size();
  options.cwd = pmcp_str{request.cwd.data(), request.cwd.size()};
  options.flags = request.tty ? PMCP_SPAWN_PTY : 0u;
  options.cols = request.cols;
  options.rows = request.rows;
  ErrorText text;
  return check(instance_->spawn(instance_, &options, buf(text)), text);
}

Result<void> Executor::write_stdin(uint64_t id, std::string_view bytes) {
  if (!instance_) return make_error(ErrorCode::unavailable, "the executor has shut down");
  ErrorText text;
  return check(instance_->write_stdin(instance_, id, reinterpret_cast<const uint8_t*>(bytes.data()),
                                      bytes.size(), buf(text)),
               text);
}

Result<void> Executor::close_stdin(uint64_t id) {
  if (!instance_) return make_error(ErrorCode::unavailable, "the executor has shut down");
  ErrorText text;
  return check(instance_->close_stdin(instance_, id, buf(text)), text);
}

Result<void> Executor::signal(uint64_t id, int signo) {
  if (!instance_) return make_error(ErrorCode::unavailable, "the executor has shut down");
  ErrorText text;
  return check(instance_->signal(instance_, id, signo, buf(text)), text);
}

Result<void> Executor::resize(uint64_t id, uint16_t cols, uint16_t rows) {
  if (!instance_) return make_error(ErrorCode::unavailable, "the executor has shut down");
  ErrorText text;
  return check(instance_->resize(instance_, id, cols, rows, buf(text)), text);
}

void Executor::destroy() {
  if (!instance_) return;
  pmcp_executor* instance = instance_;
  instance_ = nullptr;
  instance->destroy(instance);
  shared_->alive = false;
}

}  // namespace pmcp::process
