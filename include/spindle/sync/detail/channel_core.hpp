// The value-passing core shared by Channel<T>, Queue<T> and Mailbox<T>
// (internal): a ring buffer, the waiting senders and receivers, close().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "spindle/sync/detail/waiter.hpp"

namespace spindle {

// Sending on (or pushing to) a closed channel, queue or mailbox.
class ChannelClosed : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// Chooses an unbounded channel or queue. Unbounded still has a limit (every
// growing buffer has one): a send that would hold more than `limit` values
// throws std::length_error.
struct Unbounded {
  static constexpr std::size_t kDefaultLimit = std::size_t{1} << 20;
  std::size_t limit = kDefaultLimit;
};
inline constexpr Unbounded unbounded{};

namespace detail {

// A FIFO ring of T that grows (doubling) up to a maximum. Not thread-safe.
template <class T>
class Ring {
 public:
  Ring() noexcept = default;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring() {
    clear();
    if (data_ != nullptr) std::allocator<T>().deallocate(data_, cap_);
  }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  // Room for one more, growing the storage if needed (up to `max` values).
  // Throws std::bad_alloc.
  void make_room(std::size_t max) {
    if (size_ < cap_) return;
    std::size_t want = cap_ == 0 ? 8 : cap_ * 2;
    if (want > max) want = max;
    T* fresh = std::allocator<T>().allocate(want);
    for (std::size_t i = 0; i < size_; ++i) {
      T& v = data_[(head_ + i) % cap_];
      ::new (static_cast<void*>(fresh + i)) T(std::move(v));
      v.~T();
    }
    if (data_ != nullptr) std::allocator<T>().deallocate(data_, cap_);
    data_ = fresh;
    cap_ = want;
    head_ = 0;
  }
  bool has_room() const noexcept { return size_ < cap_; }
  // Needs has_room().
  void push(T&& v) noexcept {
    ::new (static_cast<void*>(data_ + (head_ + size_) % cap_)) T(std::move(v));
    ++size_;
  }
  T& front() noexcept { return data_[head_]; }
  void pop_front() noexcept {
    data_[head_].~T();
    head_ = (head_ + 1) % cap_;
    --size_;
  }
  void clear() noexcept {
    while (size_ != 0) pop_front();
  }

 private:
  T* data_ = nullptr;
  std::size_t cap_ = 0;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

// What an operation did.
enum class Op : std::uint8_t { ok, closed, full, empty, timed_out };

// The core. `capacity` values are buffered (0: a rendezvous, each send waits
// for its receiver); `growable`: senders never wait, and a send beyond
// `capacity` values is a std::length_error (the unbounded channel's limit).
//
// Values move under the lock, after a waiter was claimed, so T must be
// nothrow move constructible.
//
// Senders wait with WaitNode::slot = the T they send (moved from only when
// taken); receivers with slot = their std::optional<T>. WaitNode::status
// tells a woken waiter what happened: kValue (the value was taken / given)
// or kClosed.
template <class T>
class ChannelCore {
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "spindle channels move values under a lock: T must be nothrow move "
                "constructible");

 public:
  enum : std::uint32_t { kValue = 1, kClosed = 2 };

  ChannelCore(std::size_t capacity, bool growable, const char* kind)
      : capacity_(capacity), growable_(growable), kind_(kind) {
    if (growable && capacity == 0) {
      throw std::invalid_argument(std::string("spindle::") + kind + ": a limit of 0 values");
    }
  }
  ChannelCore(const ChannelCore&) = delete;
  ChannelCore& operator=(const ChannelCore&) = delete;
  ~ChannelCore() = default;

  // --- under lock() (also what select uses) ---------------------------------

  SpinLock& lock() noexcept { return lock_; }

  // Sends `value` if that can be done without waiting: to a waiting
  // receiver (returned in *wake: complete it after unlocking) or into the
  // buffer. Op::ok, Op::closed, or Op::full (it would wait). A growable core
  // at its limit throws std::length_error; growing may throw
  // std::bad_alloc (the caller still holds the lock then). `self`: the
  // caller's context, if known (see Waiter::try_claim_from).
  Op poll_send(T& value, WaitNode** wake, const FiberControl* self = nullptr) {
    if (closed_) return Op::closed;
    if (WaitNode* r = claim_first(receivers_, self)) {
      static_cast<std::optional<T>*>(r->slot)->emplace(std::move(value));
      r->status = kValue;
      *wake = r;
      return Op::ok;
    }
    if (ring_.size() < capacity_) {
      ring_.make_room(capacity_);
      ring_.push(std::move(value));
      return Op::ok;
    }
    if (growable_) {
      throw std::length_error("spindle::" + std::string(kind_) +
                              ": unbounded, but at its limit of " + std::to_string(capacity_) +
                              " values");
    }
    return Op::full;
  }

  // Receives into `out` if that can be done without waiting: from the
  // buffer (then a waiting sender's value moves in) or from a waiting
  // sender. Op::ok, Op::closed (closed and drained) or Op::empty.
  Op poll_receive(std::optional<T>& out, WaitNode** wake,
                  const FiberControl* self = nullptr) noexcept {
    if (!ring_.empty()) {
      out.emplace(std::move(ring_.front()));
      ring_.pop_front();
      if (WaitNode* s = claim_first(senders_, self)) {
        ring_.push(std::move(*static_cast<T*>(s->slot)));  // room: we just took one
        s->status = kValue;
        *wake = s;
      }
      return Op::ok;
    }
    if (WaitNode* s = claim_first(senders_, self)) {  // a rendezvous
      out.emplace(std::move(*static_cast<T*>(s->slot)));
      s->status = kValue;
      *wake = s;
      return Op::ok;
    }
    return closed_ ? Op::closed : Op::empty;
  }

  void enqueue_send(WaitNode* n) noexcept { senders_.push_back(n); }
  void enqueue_receive(WaitNode* n) noexcept { receivers_.push_back(n); }
  void dequeue_send(WaitNode* n) noexcept { senders_.remove(n); }
  void dequeue_receive(WaitNode* n) noexcept { receivers_.remove(n); }

  // --- whole operations -------------------------------------------------------

  // Op::ok, Op::closed, Op::full (only when !block), Op::timed_out; throws
  // spindle::Cancelled (the value is then left alone), std::length_error.
  Op send(T& value, std::int64_t deadline_ns, bool block) {
    return transfer<Direction::send>(value, deadline_ns, block);
  }

  // Op::ok (out holds the value), Op::closed, Op::empty (only when !block),
  // Op::timed_out; throws spindle::Cancelled.
  Op receive(std::optional<T>& out, std::int64_t deadline_ns, bool block) {
    return transfer<Direction::receive>(out, deadline_ns, block);
  }
  // receive() for callers that need only the value: empty when closed and
  // drained, timed out, or (!block) nothing was ready.
  std::optional<T> receive_value(std::int64_t deadline_ns, bool block) {
    std::optional<T> out;
    receive(out, deadline_ns, block);
    return out;
  }

  // Closes: waiting receivers and senders wake (status kClosed); buffered
  // values stay for receivers. False if it was closed already.
  bool close() noexcept {
    WakeChain chain;
    lock_.lock();
    if (closed_) {
      lock_.unlock();
      return false;
    }
    closed_ = true;
    while (WaitNode* n = claim_first(receivers_)) {
      n->status = kClosed;
      chain.add(n);
    }
    while (WaitNode* n = claim_first(senders_)) {
      n->status = kClosed;
      chain.add(n);
    }
    lock_.unlock();
    chain.complete();
    return true;
  }

  // Drops the buffered values; blocked senders then fill the room. Returns
  // how many values were dropped.
  std::size_t clear() noexcept {
    WakeChain chain;
    lock_.lock();
    std::size_t n = ring_.size();
    ring_.clear();
    while (ring_.size() < capacity_ && ring_.has_room()) {
      WaitNode* s = claim_first(senders_);
      if (s == nullptr) break;
      ring_.push(std::move(*static_cast<T*>(s->slot)));
      s->status = kValue;
      chain.add(s);
    }
    lock_.unlock();
    chain.complete();
    return n;
  }

  bool closed() const noexcept {
    SpinGuard g(lock_);
    return closed_;
  }
  std::size_t size() const noexcept {
    SpinGuard g(lock_);
    return ring_.size();
  }
  std::size_t capacity() const noexcept { return capacity_; }
  bool growable() const noexcept { return growable_; }
  const char* kind() const noexcept { return kind_; }

 private:
  enum class Direction : std::uint8_t { send, receive };

  // send() and receive(), one body so the two directions cannot drift apart.
  // `slot` is the sender's value or the receiver's std::optional<T>: done at
  // once if poll_send() / poll_receive() can; otherwise, when `block`, the
  // caller waits on senders_ / receivers_ until a partner or close()
  // completes it, the deadline passes or the fiber is cancelled.
  template <Direction kDir, class Slot>
  Op transfer(Slot& slot, std::int64_t deadline_ns, bool block) {
    constexpr bool kSend = kDir == Direction::send;
    constexpr Op kWouldWait = kSend ? Op::full : Op::empty;
    WaitList& waiters = kSend ? senders_ : receivers_;
    WaitNode* wake = nullptr;
    FiberControl* f = peek_wait_context();
    bool prepared = false;
    lock_.lock();
    for (;;) {
      Op r;
      if constexpr (kSend) {
        try {
          r = poll_send(slot, &wake, f);
        } catch (...) {  // std::length_error, std::bad_alloc: under the lock
          lock_.unlock();
          throw;
        }
      } else {
        r = poll_receive(slot, &wake, f);
      }
      if (r != kWouldWait) {
        lock_.unlock();
        // Done without waiting and without handing over to a waiting
        // fiber (which a ping-pong does on every call): spend the budget.
        if (wake != nullptr)
          wake->waiter->complete();
        else if (r == Op::ok)
          consume_budget();
        return r;
      }
      if (!block) {
        lock_.unlock();
        return kWouldWait;
      }
      if (deadline_ns != kNoDeadline && monotonic_now_ns() >= deadline_ns) {
        lock_.unlock();
        return Op::timed_out;
      }
      if (prepared || may_wait_now(f)) break;
      lock_.unlock();
      prepare_wait(f, kind_);
      prepared = true;
      lock_.lock();
    }
    Waiter w(f);
    WaitNode node;
    node.waiter = &w;
    node.slot = &slot;
    waiters.push_back(&node);
    lock_.unlock();
    std::uint32_t how = w.wait(deadline_ns);
    if (how == Waiter::kDone) return node.status == kClosed ? Op::closed : Op::ok;
    lock_.lock();
    waiters.remove(&node);
    lock_.unlock();
    if (how == Waiter::kTimedOut) return Op::timed_out;
    throw_cancelled(f);
  }

  mutable SpinLock lock_;
  bool closed_ = false;
  const std::size_t capacity_;
  const bool growable_;
  const char* const kind_;
  Ring<T> ring_;
  WaitList senders_;    // only while the buffer is full (never when growable)
  WaitList receivers_;  // only while the buffer is empty
};

}  // namespace detail
}  // namespace spindle
