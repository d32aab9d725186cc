// spindle::Queue<T>: a FIFO queue with an optional capacity (Polyphony's
// Queue, Ruby's SizedQueue) for fibers and threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <utility>

#include "spindle/sync/detail/channel_core.hpp"

namespace spindle {

// A queue of T values.
//
// - Queue<T> q;       unbounded: push() never waits; beyond the limit
//                     (Unbounded::kDefaultLimit, 2^20, or Queue(Unbounded{n}))
//                     it throws std::length_error
// - Queue<T> q(100);  bounded: push() waits while 100 values are queued
//
// pop() waits while the queue is empty. close() (optional, as Ruby's
// Queue#close) ends it: pop() drains what is queued, then returns an empty
// optional; push() throws spindle::ChannelClosed. Fibers suspend, threads
// block, across runtimes. T must be nothrow move constructible. Not movable.
//
// Cancellation and deadlines as for Channel: only when the call would wait;
// a value already handed over is never lost (a pusher whose value was taken
// returns normally, a popper that was given a value returns it); the push
// forms leave their argument untouched unless the value was queued.
template <class T>
class Queue {
 public:
  using value_type = T;

  Queue() : core_(Unbounded::kDefaultLimit, true, "Queue") {}
  // capacity 0 means unbounded (with the default limit), as in Polyphony.
  explicit Queue(std::size_t capacity)
      : core_(capacity == 0 ? Unbounded::kDefaultLimit : capacity, capacity == 0, "Queue") {}
  explicit Queue(Unbounded u) : core_(u.limit, true, "Queue") {}
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  void push(T&& value) { expect_pushed(core_.send(value, detail::kNoDeadline, true)); }
  void push(const T& value) {
    T copy(value);
    push(std::move(copy));
  }
  // Pushes only if there is room now.
  bool try_push(T&& value) { return expect_pushed(core_.send(value, detail::kNoDeadline, false)); }
  bool try_push(const T& value) {
    T copy(value);
    return try_push(std::move(copy));
  }
  template <class Rep, class Period>
  bool push_for(T&& value, const std::chrono::duration<Rep, Period>& timeout) {
    return expect_pushed(core_.send(value, detail::sync_deadline(timeout), true));
  }
  template <class Rep, class Period>
  bool push_for(const T& value, const std::chrono::duration<Rep, Period>& timeout) {
    T copy(value);
    return push_for(std::move(copy), timeout);
  }

  // The oldest value, waiting for one; empty only once closed and drained.
  std::optional<T> pop() { return core_.receive_value(detail::kNoDeadline, true); }
  std::optional<T> try_pop() { return core_.receive_value(detail::kNoDeadline, false); }
  // Empty on timeout (or closed and drained).
  template <class Rep, class Period>
  std::optional<T> pop_for(const std::chrono::duration<Rep, Period>& timeout) {
    return core_.receive_value(detail::sync_deadline(timeout), true);
  }
  // Polyphony's names.
  std::optional<T> shift() { return pop(); }
  void operator<<(T&& value) { push(std::move(value)); }

  // Removes the values queued now, oldest first, calling fn(T) for each;
  // never waits (values pushed meanwhile are left for later). Returns how
  // many were removed. fn may push to the queue again.
  template <class F>
  std::size_t shift_each(F&& fn) {
    std::size_t n = core_.size();
    std::size_t done = 0;
    for (; done < n; ++done) {
      std::optional<T> v = try_pop();
      if (!v) break;  // another consumer was faster
      fn(std::move(*v));
    }
    return done;
  }
  // Drops every queued value (pushers waiting for room then get in); returns
  // how many were dropped.
  std::size_t clear() noexcept { return core_.clear(); }

  std::size_t size() const noexcept { return core_.size(); }
  bool empty() const noexcept { return size() == 0; }
  // The capacity of a bounded queue, or the limit of an unbounded one.
  std::size_t capacity() const noexcept { return core_.capacity(); }
  bool bounded() const noexcept { return !core_.growable(); }

  bool close() noexcept { return core_.close(); }
  bool closed() const noexcept { return core_.closed(); }

 private:
  static bool expect_pushed(detail::Op r) {
    if (r == detail::Op::closed) throw ChannelClosed("spindle::Queue: push to a closed queue");
    return r == detail::Op::ok;
  }

  detail::ChannelCore<T> core_;
};

}  // namespace spindle
