// Deadlines and error-code results of the io layer's operations.
#pragma once

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <system_error>
#include <type_traits>
#include <utility>

namespace spindle {

// When an operation gives up: a point on CLOCK_MONOTONIC (std::chrono::
// steady_clock), or none. Every io operation takes one as its last
// argument. Built from a duration (counted from the moment the Deadline is
// made, i.e. the call) or from a steady_clock time point:
//
//   spindle::read(fd, buf, 5s);               // 5 s from now
//   spindle::read(fd, buf, Deadline::at(t));  // at t
//   spindle::read(fd, buf);                   // no deadline
//
// A deadline that has already passed still lets an operation that can
// complete at once do so (a read of data already there); anything that
// would wait fails at once.
class Deadline {
 public:
  constexpr Deadline() noexcept = default;
  template <class Rep, class Period>
  Deadline(std::chrono::duration<Rep, Period> timeout) noexcept  // NOLINT: implicit on purpose
      : ns_(from_timeout(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout))) {}
  template <class Duration>
  Deadline(std::chrono::time_point<std::chrono::steady_clock, Duration> t) noexcept  // NOLINT
      : ns_(clamp(
            std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count())) {}

  static constexpr Deadline none() noexcept { return Deadline(); }
  static Deadline at(std::chrono::steady_clock::time_point t) noexcept { return Deadline(t); }
  static Deadline after(std::chrono::nanoseconds timeout) noexcept { return Deadline(timeout); }

  explicit constexpr operator bool() const noexcept { return ns_ != 0; }
  // Nanoseconds on CLOCK_MONOTONIC; 0 means none.
  constexpr std::int64_t ns() const noexcept { return ns_; }
  // The same point as a steady_clock time (for the sync layer's
  // wait_until); meaningless when there is no deadline.
  std::chrono::steady_clock::time_point time_point() const noexcept {
    return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(ns_));
  }
  // The earlier of two deadlines (none counts as infinitely late).
  friend constexpr Deadline earlier(Deadline a, Deadline b) noexcept {
    if (!a) return b;
    if (!b) return a;
    return a.ns_ < b.ns_ ? a : b;
  }

 private:
  static std::int64_t from_timeout(std::chrono::nanoseconds timeout) noexcept;
  static constexpr std::int64_t clamp(std::int64_t ns) noexcept { return ns <= 0 ? 1 : ns; }
  std::int64_t ns_ = 0;
};

// What a non-throwing operation returns: a value, or the errno that failed
// it (EAGAIN never: the operation waits instead). Cancellation of the fiber
// shows as ECANCELED and an expired Deadline as ETIMEDOUT. Trivially
// copyable, returned in registers.
template <class T>
class [[nodiscard]] Result {
 public:
  constexpr Result(T value) noexcept(std::is_nothrow_move_constructible_v<T>)  // NOLINT
      : value_(std::move(value)) {}
  static constexpr Result failure(int error) noexcept { return Result(error, Tag{}); }

  constexpr bool ok() const noexcept { return error_ == 0; }
  explicit constexpr operator bool() const noexcept { return ok(); }
  // The errno, or 0 on success.
  constexpr int error() const noexcept { return error_; }
  std::error_code error_code() const noexcept { return {error_, std::system_category()}; }

  // The value; throws std::system_error with the errno if there is none.
  T& value() & {
    if (!ok()) throw std::system_error(error_code(), "spindle::Result::value");
    return value_;
  }
  const T& value() const& {
    if (!ok()) throw std::system_error(error_code(), "spindle::Result::value");
    return value_;
  }
  T&& value() && {
    if (!ok()) throw std::system_error(error_code(), "spindle::Result::value");
    return std::move(value_);
  }
  constexpr T value_or(T fallback) const { return ok() ? value_ : fallback; }
  // Unchecked access.
  constexpr T& operator*() noexcept { return value_; }
  constexpr const T& operator*() const noexcept { return value_; }
  constexpr T* operator->() noexcept { return &value_; }
  constexpr const T* operator->() const noexcept { return &value_; }

 private:
  struct Tag {};
  constexpr Result(int error, Tag) noexcept : value_(), error_(error) {}
  T value_;
  int error_ = 0;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  constexpr Result() noexcept = default;
  static constexpr Result failure(int error) noexcept {
    Result r;
    r.error_ = error;
    return r;
  }
  constexpr bool ok() const noexcept { return error_ == 0; }
  explicit constexpr operator bool() const noexcept { return ok(); }
  constexpr int error() const noexcept { return error_; }
  std::error_code error_code() const noexcept { return {error_, std::system_category()}; }
  void value() const {
    if (!ok()) throw std::system_error(error_code(), "spindle::Result::value");
  }

 private:
  int error_ = 0;
};

}  // namespace spindle
