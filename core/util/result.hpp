// A value-or-error result used across the core: errors are values with a code and a message a
// person can act on, mapped once to JSON-RPC errors or tool results.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace pmcp {

enum class ErrorCode {
  invalid_argument,  // the caller gave a bad value; message says which and what to do
  not_found,         // an id that does not exist
  state,             // the object is in the wrong state (e.g. the process already exited)
  unsupported,       // the operation does not apply
  io,                // an operating-system call failed
  denied,            // refused by policy
  unavailable,       // a dependency is missing or unreachable
  internal,          // a bug
};

struct Error {
  ErrorCode code = ErrorCode::internal;
  std::string message;
};

inline Error make_error(ErrorCode code, std::string message) {
  return Error{code, std::move(message)};
}

// Result<T>: either a T or an Error. Result<void> holds only success or an Error.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design

  bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const Error& error() const& { return error_; }
  Error&& error() && { return std::move(error_); }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace pmcp
