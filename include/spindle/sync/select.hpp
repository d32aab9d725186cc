// spindle::select: wait on several channel operations (and a deadline) at
// once, like Go's select statement.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "spindle/sync/channel.hpp"
#include "spindle/sync/detail/waiter.hpp"

namespace spindle {

namespace detail {

// A handler that does nothing (cases without one).
struct NoHandler {
  template <class... A>
  void operator()(A&&...) const noexcept {}
};

// The type-erased face of a case, for select()'s loops.
class SelectCase {
 public:
  enum class Kind : std::uint8_t { receive, send, deadline, otherwise };
  enum class Poll : std::uint8_t { ready, not_ready };

  explicit SelectCase(Kind k) noexcept : kind(k) {}
  const Kind kind;
  std::int64_t deadline_ns = kNoDeadline;  // Kind::deadline

  // Channel cases, under lock(): try without waiting (*wake: a waiter to
  // complete after unlocking); link/unlink the case's node.
  virtual SpinLock* lock() noexcept { return nullptr; }
  virtual Poll poll(WaitNode** /*wake*/) { return Poll::not_ready; }
  virtual void enqueue(WaitNode*) noexcept {}
  virtual void dequeue(WaitNode*) noexcept {}
  // The case won: after a poll (node nullptr) or through its node.
  virtual void finish(WaitNode* /*node*/) {}
  virtual void run() {}

 protected:
  ~SelectCase() = default;
};

std::uint32_t select_random() noexcept;

}  // namespace detail

// select(on_receive(ch, fn)): the case is ready when a value can be taken
// or the channel is closed and drained; fn(std::optional<T>) gets the value
// (empty: closed). Without fn, read result() from the case object.
template <class T, class F = detail::NoHandler>
class ReceiveCase final : public detail::SelectCase {
 public:
  ReceiveCase(Channel<T>& ch, F fn)
      : SelectCase(Kind::receive), core_(ch.core()), fn_(std::move(fn)) {}
  std::optional<T>& result() noexcept { return result_; }

  detail::SpinLock* lock() noexcept override { return &core_.lock(); }
  Poll poll(detail::WaitNode** wake) noexcept override {
    return core_.poll_receive(result_, wake) == detail::Op::empty ? Poll::not_ready : Poll::ready;
  }
  void enqueue(detail::WaitNode* n) noexcept override {
    n->slot = &result_;
    core_.enqueue_receive(n);
  }
  void dequeue(detail::WaitNode* n) noexcept override { core_.dequeue_receive(n); }
  void run() override { fn_(std::move(result_)); }

 private:
  detail::ChannelCore<T>& core_;
  F fn_;
  std::optional<T> result_;
};

// select(on_send(ch, value, fn)): ready when a receiver waits or the buffer
// has room; fn() runs once the value was sent. A closed channel makes the
// select throw spindle::ChannelClosed (as send does). If another case wins,
// the value stays in the case object (value()).
template <class T, class F = detail::NoHandler>
class SendCase final : public detail::SelectCase {
 public:
  SendCase(Channel<T>& ch, T value, F fn)
      : SelectCase(Kind::send), core_(ch.core()), value_(std::move(value)), fn_(std::move(fn)) {}
  T& value() noexcept { return value_; }

  detail::SpinLock* lock() noexcept override { return &core_.lock(); }
  Poll poll(detail::WaitNode** wake) override {
    detail::Op r = core_.poll_send(value_, wake);
    if (r == detail::Op::full) return Poll::not_ready;
    closed_ = r == detail::Op::closed;
    return Poll::ready;
  }
  void enqueue(detail::WaitNode* n) noexcept override {
    n->slot = &value_;
    core_.enqueue_send(n);
  }
  void dequeue(detail::WaitNode* n) noexcept override { core_.dequeue_send(n); }
  void finish(detail::WaitNode* n) override {
    if (n != nullptr) closed_ = n->status == detail::ChannelCore<T>::kClosed;
    if (closed_) throw ChannelClosed("spindle::select: send on a closed channel");
  }
  void run() override { fn_(); }

 private:
  detail::ChannelCore<T>& core_;
  T value_;
  F fn_;
  bool closed_ = false;
};

// select(on_timeout(d, fn)) / on_deadline(tp, fn): wins when the deadline
// passes before any other case is ready.
template <class F = detail::NoHandler>
class DeadlineCase final : public detail::SelectCase {
 public:
  DeadlineCase(std::int64_t deadline, F fn) : SelectCase(Kind::deadline), fn_(std::move(fn)) {
    deadline_ns = deadline;
  }
  void run() override { fn_(); }

 private:
  F fn_;
};

// select(on_default(fn)): wins at once when no other case is ready (Go's
// `default:`), so the select never waits.
template <class F = detail::NoHandler>
class DefaultCase final : public detail::SelectCase {
 public:
  explicit DefaultCase(F fn) : SelectCase(Kind::otherwise), fn_(std::move(fn)) {}
  void run() override { fn_(); }

 private:
  F fn_;
};

template <class T, class F = detail::NoHandler>
ReceiveCase<T, F> on_receive(Channel<T>& ch, F fn = {}) {
  return ReceiveCase<T, F>(ch, std::move(fn));
}
template <class T, class U, class F = detail::NoHandler>
SendCase<T, F> on_send(Channel<T>& ch, U&& value, F fn = {}) {
  return SendCase<T, F>(ch, T(std::forward<U>(value)), std::move(fn));
}
template <class Rep, class Period, class F = detail::NoHandler>
DeadlineCase<F> on_timeout(const std::chrono::duration<Rep, Period>& timeout, F fn = {}) {
  return DeadlineCase<F>(detail::sync_deadline(timeout), std::move(fn));
}
template <class Clock, class Duration, class F = detail::NoHandler>
DeadlineCase<F> on_deadline(const std::chrono::time_point<Clock, Duration>& deadline, F fn = {}) {
  return DeadlineCase<F>(detail::sync_deadline_at(deadline), std::move(fn));
}
template <class F = detail::NoHandler>
DefaultCase<F> on_default(F fn = {}) {
  return DefaultCase<F>(std::move(fn));
}

namespace detail {

// The non-template part of select() (src/sync/select.cpp).
// `nodes`, `locks` and `order` are scratch arrays of n entries.
std::size_t select_cases(SelectCase** cases, WaitNode* nodes, SpinLock** locks,
                         std::uint32_t* order, std::size_t n);

template <class C>
inline constexpr bool is_select_case_v = std::is_base_of_v<SelectCase, std::remove_cvref_t<C>>;

}  // namespace detail

// Waits until one of the cases can proceed, performs exactly that one, runs
// its handler, and returns its position in the argument list.
//
// - When several cases are ready, one is chosen at random (fair: no case
//   starves another).
// - A case that does not win has no effect: no value is taken from or given
//   to its channel (a receive case that loses leaves the value for others;
//   a send case keeps its value).
// - on_timeout/on_deadline bounds the wait (the earliest wins if several);
//   on_default makes it non-blocking. At most one on_default.
// - Works from fibers (suspend) and plain threads (block), with channels
//   shared across runtimes.
// - Cancellation: only if it would wait; spindle::Cancelled is thrown with
//   no case performed, unless a case won first (then it returns normally
//   and the cancellation comes at the next suspension point).
// - Throws spindle::ChannelClosed when the winning case is a send on a
//   closed channel, std::length_error for an unbounded channel at its limit.
//
// Cases may be temporaries (with handlers) or lvalues, e.g.
//   auto r = spindle::on_receive(ch);
//   if (spindle::select(r, spindle::on_timeout(10ms)) == 0) use(*r.result());
template <class... Cases>
requires(sizeof...(Cases) > 0 && (detail::is_select_case_v<Cases> && ...)) std::size_t
    select(Cases&&... cases) {
  constexpr std::size_t n = sizeof...(Cases);
  std::array<detail::SelectCase*, n> list{static_cast<detail::SelectCase*>(&cases)...};
  std::array<detail::WaitNode, n> nodes{};
  std::array<detail::SpinLock*, n> locks{};
  std::array<std::uint32_t, n> order{};
  std::size_t winner =
      detail::select_cases(list.data(), nodes.data(), locks.data(), order.data(), n);
  list[winner]->run();
  return winner;
}

}  // namespace spindle
