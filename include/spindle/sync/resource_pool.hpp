// spindle::ResourcePool<T>: a bounded pool of lazily created resources
// (database connections and the like), shared by fibers and threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "spindle/sync/detail/waiter.hpp"

namespace spindle {

// At most `max` resources, created on demand by `factory` (outside any
// lock: it may suspend, e.g. to connect). acquire() returns a Lease (RAII):
// an idle resource, a new one while fewer than `max` exist, or it waits
// (FIFO) for one to be released.
//
// - Re-entrant: a fiber (or thread) that holds a lease and acquires again
//   gets the same resource (a nested lease); it goes back to the pool when
//   the outermost lease is released.
// - lease.discard(): the resource is broken; it is destroyed (when the
//   outermost lease ends) instead of going back, which makes room for a new
//   one.
// - A factory that throws makes acquire() throw; the slot is freed for the
//   next waiter.
// - Cancellation and deadlines: only when acquire() would wait; a waiter
//   that was handed a resource before its cancellation took effect gets it
//   (acquire returns). try_acquire / acquire_for return an empty optional
//   instead of waiting / at the deadline.
//
// The pool must outlive its leases. Not movable.
template <class T>
class ResourcePool {
  struct Slot {
    std::optional<T> value;
    const void* owner = nullptr;
    std::uint32_t depth = 0;
    bool broken = false;
  };

 public:
  using Factory = std::function<T()>;

  class Lease {
   public:
    Lease() noexcept = default;
    Lease(Lease&& o) noexcept : pool_(std::exchange(o.pool_, nullptr)), slot_(o.slot_) {}
    Lease& operator=(Lease&& o) noexcept {
      if (this != &o) {
        reset();
        pool_ = std::exchange(o.pool_, nullptr);
        slot_ = o.slot_;
      }
      return *this;
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { reset(); }

    T& operator*() const noexcept { return *slot_->value; }
    T* operator->() const noexcept { return &*slot_->value; }
    T& get() const noexcept { return *slot_->value; }
    explicit operator bool() const noexcept { return pool_ != nullptr; }

    // The resource is broken: destroy it instead of reusing it (once the
    // outermost lease of a nested acquire ends).
    void discard() noexcept {
      if (pool_ != nullptr) pool_->mark_broken(slot_);
    }
    // Gives the resource back now.
    void reset() noexcept {
      if (pool_ != nullptr) std::exchange(pool_, nullptr)->release(slot_);
    }

   private:
    friend class ResourcePool;
    Lease(ResourcePool* p, Slot* s) noexcept : pool_(p), slot_(s) {}
    ResourcePool* pool_ = nullptr;
    Slot* slot_ = nullptr;
  };

  ResourcePool(std::size_t max, Factory factory) : max_(max), factory_(std::move(factory)) {
    if (max == 0) throw std::invalid_argument("spindle::ResourcePool: max 0");
    if (!factory_) throw std::invalid_argument("spindle::ResourcePool: no factory");
    idle_.reserve(max);
    busy_.reserve(max);
  }
  ResourcePool(const ResourcePool&) = delete;
  ResourcePool& operator=(const ResourcePool&) = delete;
  ~ResourcePool() {
    for (Slot* s : idle_) delete s;
    for (Slot* s : busy_) delete s;  // leases outliving the pool are a bug
  }

  Lease acquire() { return std::move(*acquire_ns(detail::kNoDeadline, true)); }
  std::optional<Lease> try_acquire() { return acquire_ns(detail::kNoDeadline, false); }
  template <class Rep, class Period>
  std::optional<Lease> acquire_for(const std::chrono::duration<Rep, Period>& timeout) {
    return acquire_ns(detail::sync_deadline(timeout), true);
  }
  // acquire(), fn(resource), release (Polyphony's acquire { |r| ... }).
  template <class F>
  decltype(auto) with(F&& fn) {
    Lease lease = acquire();
    return fn(*lease);
  }

  // Resources that exist (idle, in use, or being created) / idle ones.
  std::size_t size() const noexcept {
    detail::SpinGuard g(lock_);
    return created_;
  }
  std::size_t available() const noexcept {
    detail::SpinGuard g(lock_);
    return idle_.size();
  }
  std::size_t max() const noexcept { return max_; }

 private:
  // WaitNode::slot: the Slot handed over, or nullptr: "create one" (a
  // creation slot was reserved for the waiter). WaitNode::amount: the
  // waiter's owner identity.
  std::optional<Lease> acquire_ns(std::int64_t deadline_ns, bool block) {
    const void* me = detail::current_owner();
    Slot* got = nullptr;
    bool create = false;
    auto take = [&] {
      for (Slot* s : busy_) {
        if (s->owner == me) {  // re-entrant
          ++s->depth;
          got = s;
          return true;
        }
      }
      if (!idle_.empty()) {
        got = idle_.back();
        idle_.pop_back();
        got->owner = me;
        got->depth = 1;
        busy_.push_back(got);
        return true;
      }
      if (created_ < max_) {
        ++created_;
        create = true;
        return true;
      }
      return false;
    };
    if (!block) {
      detail::SpinGuard g(lock_);
      if (!take()) return std::nullopt;
    } else {
      detail::WaitNode node;
      node.amount = reinterpret_cast<std::uintptr_t>(me);
      if (!detail::wait_in_list(lock_, waiters_, node, "ResourcePool::acquire", deadline_ns, take,
                                detail::NoLeave{})) {
        return std::nullopt;
      }
      if (got == nullptr && !create) {
        // Handed over by a release: a resource, or (nullptr) a creation slot.
        got = static_cast<Slot*>(node.slot);
        create = got == nullptr;
      }
    }
    if (create) got = make(me);
    return Lease(this, got);
  }

  Slot* make(const void* me) {
    auto* s = new Slot();
    try {
      s->value.emplace(factory_());
    } catch (...) {
      delete s;
      give_back_creation();
      throw;
    }
    s->owner = me;
    s->depth = 1;
    detail::SpinGuard g(lock_);
    busy_.push_back(s);
    return s;
  }

  // A creation slot is free again: hand it to a waiter, or count it out.
  void give_back_creation() noexcept {
    lock_.lock();
    detail::WaitNode* n = detail::claim_first(waiters_);
    if (n != nullptr)
      n->slot = nullptr;  // the waiter creates one
    else
      --created_;
    lock_.unlock();
    if (n != nullptr) n->waiter->complete();
  }

  void mark_broken(Slot* s) noexcept {
    detail::SpinGuard g(lock_);
    s->broken = true;
  }

  void release(Slot* s) noexcept {
    lock_.lock();
    if (--s->depth != 0) {
      lock_.unlock();
      return;
    }
    for (std::size_t i = 0; i < busy_.size(); ++i) {
      if (busy_[i] == s) {
        busy_[i] = busy_.back();
        busy_.pop_back();
        break;
      }
    }
    if (s->broken) {
      lock_.unlock();
      delete s;
      give_back_creation();
      return;
    }
    detail::WaitNode* n = detail::claim_first(waiters_);
    if (n != nullptr) {
      s->owner = reinterpret_cast<const void*>(static_cast<std::uintptr_t>(n->amount));
      s->depth = 1;
      busy_.push_back(s);
      n->slot = s;
    } else {
      s->owner = nullptr;
      idle_.push_back(s);
    }
    lock_.unlock();
    if (n != nullptr) n->waiter->complete();
  }

  const std::size_t max_;
  Factory factory_;
  mutable detail::SpinLock lock_;
  std::size_t created_ = 0;  // slots that exist or are being created
  std::vector<Slot*> idle_;  // reserved to max_: never allocates under the lock
  std::vector<Slot*> busy_;
  detail::WaitList waiters_;
};

}  // namespace spindle
