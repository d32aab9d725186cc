// Mailboxes: Mailbox<T>, a bounded many-to-one message queue, and the
// per-fiber mailbox of Polyphony (fiber.send(msg) / spindle::receive()).
#pragma once

#include <any>
#include <chrono>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "spindle/fiber/fiber.hpp"
#include "spindle/sync/detail/channel_core.hpp"

namespace spindle {

// A send to a full mailbox whose policy is MailboxPolicy::fail.
class MailboxFull : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What send() does when the mailbox is full.
enum class MailboxPolicy : std::uint8_t {
  fail,   // throw spindle::MailboxFull (try_send returns false): never waits
  block,  // wait for room (a fiber suspends, a thread blocks), like a bounded Queue
};

// A bounded queue of messages, meant for one receiver (the owner) and any
// number of senders on any fiber, runtime or thread. close() ends it:
// receive() drains what was sent, then throws spindle::ChannelClosed;
// sends throw ChannelClosed. T must be nothrow move constructible.
//
// Cancellation and deadlines as for Channel (only when the call would wait;
// a message already handed over is never lost).
template <class T>
class Mailbox {
 public:
  using value_type = T;
  static constexpr std::size_t kDefaultCapacity = 65536;

  explicit Mailbox(std::size_t capacity = kDefaultCapacity,
                   MailboxPolicy policy = MailboxPolicy::fail)
      : policy_(policy), core_(check(capacity), false, "Mailbox") {}
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  void send(T&& msg) {
    detail::Op r = core_.send(msg, detail::kNoDeadline, policy_ == MailboxPolicy::block);
    if (r == detail::Op::full) {
      throw MailboxFull("spindle::Mailbox: full (" + std::to_string(core_.capacity()) +
                        " messages)");
    }
    expect_sent(r);
  }
  void send(const T& msg) {
    T copy(msg);
    send(std::move(copy));
  }
  // Never waits: false when full.
  bool try_send(T&& msg) { return expect_sent(core_.send(msg, detail::kNoDeadline, false)); }
  bool try_send(const T& msg) {
    T copy(msg);
    return try_send(std::move(copy));
  }
  // Waits for room until the deadline, whatever the policy: false if it passed.
  template <class Rep, class Period>
  bool send_for(T&& msg, const std::chrono::duration<Rep, Period>& timeout) {
    return expect_sent(core_.send(msg, detail::sync_deadline(timeout), true));
  }

  // The next message, waiting for one. Throws ChannelClosed once the
  // mailbox is closed and drained.
  T receive() {
    std::optional<T> out;
    if (core_.receive(out, detail::kNoDeadline, true) == detail::Op::closed) throw_closed();
    return std::move(*out);
  }
  std::optional<T> try_receive() { return core_.receive_value(detail::kNoDeadline, false); }
  // Empty on timeout (or closed and drained).
  template <class Rep, class Period>
  std::optional<T> receive_for(const std::chrono::duration<Rep, Period>& timeout) {
    return core_.receive_value(detail::sync_deadline(timeout), true);
  }
  // Calls fn(msg) for each message, forever; returns when the mailbox is
  // closed and drained, or when fn returns false (if it returns bool).
  template <class F>
  void receive_loop(F&& fn) {
    for (;;) {
      std::optional<T> out;
      if (core_.receive(out, detail::kNoDeadline, true) == detail::Op::closed) return;
      if constexpr (std::is_same_v<std::invoke_result_t<F&, T&&>, bool>) {
        if (!fn(std::move(*out))) return;
      } else {
        fn(std::move(*out));
      }
    }
  }

  bool close() noexcept { return core_.close(); }
  bool closed() const noexcept { return core_.closed(); }
  std::size_t size() const noexcept { return core_.size(); }
  std::size_t capacity() const noexcept { return core_.capacity(); }
  MailboxPolicy policy() const noexcept { return policy_; }

 private:
  static std::size_t check(std::size_t capacity) {
    if (capacity == 0) throw std::invalid_argument("spindle::Mailbox: capacity 0");
    return capacity;
  }
  static bool expect_sent(detail::Op r) {
    if (r == detail::Op::closed) throw ChannelClosed("spindle::Mailbox: send to a closed mailbox");
    return r == detail::Op::ok;
  }
  [[noreturn]] static void throw_closed() {
    throw ChannelClosed("spindle::Mailbox: receive from a closed mailbox");
  }

  const MailboxPolicy policy_;
  detail::ChannelCore<T> core_;
};

// --- The per-fiber mailbox ----------------------------------------------------
//
// Every fiber has a mailbox of std::any messages, created on first use (by a
// send or by the fiber's own receive) and freed with the fiber's control
// block. Any fiber or thread sends with fiber.send(msg) (FiberRef::send);
// the fiber itself takes them with spindle::receive(). Typed messages: send
// your type (a struct, or a std::variant of several) and receive<T>().
//
// Policy: bounded to Mailbox<std::any>::kDefaultCapacity (65,536) messages,
// MailboxPolicy::fail: send() never waits, and throws spindle::MailboxFull
// when the mailbox is full (try_send returns false). Never waiting keeps
// senders safe from a receiver that is slow, stuck or finished. Messages sent
// to a finished fiber are kept (counting against the capacity) until its last
// handle is gone.

namespace detail {

// The mailbox of `fiber`, created if it has none (thread-safe).
Mailbox<std::any>& fiber_mailbox(FiberControl* fiber);
// The calling fiber's; std::logic_error outside a fiber.
Mailbox<std::any>& own_mailbox();

}  // namespace detail

// The calling fiber's mailbox (to look at its size, or close it).
inline Mailbox<std::any>& mailbox() {
  return detail::own_mailbox();
}

// The next message of the calling fiber, waiting for one.
inline std::any receive() {
  return detail::own_mailbox().receive();
}
// The same, as a T: a message of another type is removed and
// std::bad_any_cast thrown.
template <class T>
T receive() {
  return std::any_cast<T>(receive());
}
inline std::optional<std::any> try_receive() {
  return detail::own_mailbox().try_receive();
}
template <class Rep, class Period>
std::optional<std::any> receive_for(const std::chrono::duration<Rep, Period>& timeout) {
  return detail::own_mailbox().receive_for(timeout);
}
// Calls fn(msg) for each message of the calling fiber, until fn returns
// false (if it returns bool), the mailbox is closed, or the fiber is
// cancelled. With a type: receive_loop<Msg>(fn) casts each message.
template <class T = std::any, class F>
void receive_loop(F&& fn) {
  detail::own_mailbox().receive_loop([&fn](std::any&& msg) {
    if constexpr (std::is_same_v<T, std::any>) {
      return fn(std::move(msg));
    } else {
      return fn(std::any_cast<T>(std::move(msg)));
    }
  });
}

template <class M>
void FiberRef::send(M&& msg) const {
  if (ctrl_ == nullptr) throw std::logic_error("spindle::FiberRef::send: empty handle");
  detail::fiber_mailbox(ctrl_).send(std::any(std::forward<M>(msg)));
}

template <class M>
bool FiberRef::try_send(M&& msg) const {
  if (ctrl_ == nullptr) throw std::logic_error("spindle::FiberRef::try_send: empty handle");
  return detail::fiber_mailbox(ctrl_).try_send(std::any(std::forward<M>(msg)));
}

}  // namespace spindle
