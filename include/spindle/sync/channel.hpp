// spindle::Channel<T>: Go's channels for fibers and threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <iterator>
#include <optional>
#include <utility>

#include "spindle/sync/detail/channel_core.hpp"

namespace spindle {

// A channel of T values, with Go's semantics:
//
// - Channel<T> ch;                       unbuffered: send() waits until a
//                                        receiver takes the value (a rendezvous)
// - Channel<T> ch(16);                   bounded: up to 16 values are buffered,
//                                        send() waits while it is full
// - Channel<T> ch(spindle::unbounded);   send() never waits; it throws
//                                        std::length_error beyond the limit
//                                        (Unbounded{.limit = n}, default 2^20)
//
// receive() waits for a value and returns it, or an empty optional once the
// channel is closed and drained. close(): receivers drain what is buffered,
// then see the end; sending on a closed channel throws spindle::ChannelClosed
// (so does a sender blocked when the channel closes: its value is not
// delivered). Closing twice is allowed (close returns false). A range-for
// receives until the channel is closed and drained.
//
// Fibers suspend, plain OS threads block; both ends may be on different
// runtimes and threads. Values are handed over in FIFO order of the waiters.
// T must be nothrow move constructible. Not movable: waiters point into it;
// share it by reference (or a shared_ptr) and keep it alive while in use.
//
// Cancellation: only when the call would wait. A sender whose value was
// taken before its cancellation took effect returns normally; a receiver
// that was given a value returns it (the cancellation comes at the next
// suspension point); otherwise the value stays with the sender, and the
// send/receive throws spindle::Cancelled. A value is never lost or
// duplicated. The send forms leave their argument untouched unless the value
// was sent.
//
// Deadlines: send_for/send_until return false, receive_for/receive_until an
// empty optional (check closed() to tell the two apart).
template <class T>
class Channel {
 public:
  using value_type = T;

  Channel() : core_(0, false, "Channel") {}
  explicit Channel(std::size_t capacity) : core_(capacity, false, "Channel") {}
  explicit Channel(Unbounded u) : core_(u.limit, true, "Channel") {}
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  void send(T&& value) { expect_sent(core_.send(value, detail::kNoDeadline, true)); }
  void send(const T& value) {
    T copy(value);
    send(std::move(copy));
  }
  // Sends only if that needs no waiting (a receiver waits, or the buffer has
  // room). Throws ChannelClosed on a closed channel.
  bool try_send(T&& value) { return expect_sent(core_.send(value, detail::kNoDeadline, false)); }
  bool try_send(const T& value) {
    T copy(value);
    return try_send(std::move(copy));
  }
  template <class Rep, class Period>
  bool send_for(T&& value, const std::chrono::duration<Rep, Period>& timeout) {
    return expect_sent(core_.send(value, detail::sync_deadline(timeout), true));
  }
  template <class Rep, class Period>
  bool send_for(const T& value, const std::chrono::duration<Rep, Period>& timeout) {
    T copy(value);
    return send_for(std::move(copy), timeout);
  }
  template <class Clock, class Duration>
  bool send_until(T&& value, const std::chrono::time_point<Clock, Duration>& deadline) {
    return expect_sent(core_.send(value, detail::sync_deadline_at(deadline), true));
  }

  // The next value; empty once the channel is closed and drained.
  std::optional<T> receive() { return core_.receive_value(detail::kNoDeadline, true); }
  // A value if one is ready now.
  std::optional<T> try_receive() { return core_.receive_value(detail::kNoDeadline, false); }
  template <class Rep, class Period>
  std::optional<T> receive_for(const std::chrono::duration<Rep, Period>& timeout) {
    return core_.receive_value(detail::sync_deadline(timeout), true);
  }
  template <class Clock, class Duration>
  std::optional<T> receive_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    return core_.receive_value(detail::sync_deadline_at(deadline), true);
  }

  // From anywhere. True if this call closed it.
  bool close() noexcept { return core_.close(); }
  bool closed() const noexcept { return core_.closed(); }
  // Buffered values now (a snapshot).
  std::size_t size() const noexcept { return core_.size(); }
  // The buffer size (0: unbuffered), or the limit of an unbounded channel.
  std::size_t capacity() const noexcept { return core_.capacity(); }
  bool unbounded() const noexcept { return core_.growable(); }

  // for (T v : channel): receives until closed and drained.
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = T*;
    using reference = T&;

    iterator() noexcept = default;
    T& operator*() noexcept { return *value_; }
    T* operator->() noexcept { return &*value_; }
    iterator& operator++() {
      value_ = channel_->receive();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return !it.value_.has_value();
    }

   private:
    friend class Channel;
    explicit iterator(Channel* c) : channel_(c), value_(c->receive()) {}
    Channel* channel_ = nullptr;
    std::optional<T> value_;
  };
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

  // For select (spindle/sync/select.hpp).
  detail::ChannelCore<T>& core() noexcept { return core_; }

 private:
  static bool expect_sent(detail::Op r) {
    if (r == detail::Op::closed) throw ChannelClosed("spindle::Channel: send on a closed channel");
    return r == detail::Op::ok;
  }

  detail::ChannelCore<T> core_;
};

}  // namespace spindle
