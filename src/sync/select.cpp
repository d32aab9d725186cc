// select(): poll every channel case under all their locks (in a random
// order), or enqueue one node per case and wait for the first to complete.
#include "spindle/sync/select.hpp"

#include <algorithm>
#include <stdexcept>

namespace spindle::detail {

namespace {

constexpr std::size_t kNone = ~std::size_t{0};

bool is_channel_case(const SelectCase* c) noexcept {
  return c->kind == SelectCase::Kind::receive || c->kind == SelectCase::Kind::send;
}

}  // namespace

std::uint32_t select_random() noexcept {
  // xorshift32 per thread, seeded from the thread's stack address and the clock.
  thread_local std::uint32_t state = 0;
  if (state == 0) {
    auto seed = static_cast<std::uint64_t>(monotonic_now_ns()) ^
                reinterpret_cast<std::uintptr_t>(&state) * 0x9E3779B97F4A7C15ull;
    state = static_cast<std::uint32_t>(seed ^ (seed >> 32)) | 1u;
  }
  std::uint32_t x = state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  state = x;
  return x;
}

std::size_t select_cases(SelectCase** cases, WaitNode* nodes, SpinLock** locks,
                         std::uint32_t* order, std::size_t n) {
  std::size_t deadline_case = kNone;
  std::size_t default_case = kNone;
  std::int64_t deadline = kNoDeadline;
  std::size_t nlocks = 0;
  for (std::size_t i = 0; i < n; ++i) {
    SelectCase* c = cases[i];
    if (is_channel_case(c)) {
      locks[nlocks++] = c->lock();
    } else if (c->kind == SelectCase::Kind::deadline) {
      if (deadline_case == kNone || c->deadline_ns < deadline) {
        deadline_case = i;
        deadline = c->deadline_ns;
      }
    } else {
      if (default_case != kNone) throw std::logic_error("spindle::select: two on_default cases");
      default_case = i;
    }
  }
  // Every channel's lock once, in address order (no deadlock with another
  // select locking an overlapping set).
  std::sort(locks, locks + nlocks);
  nlocks = static_cast<std::size_t>(std::unique(locks, locks + nlocks) - locks);
  auto lock_all = [&] {
    for (std::size_t k = 0; k < nlocks; ++k) locks[k]->lock();
  };
  auto unlock_all = [&] {
    for (std::size_t k = nlocks; k > 0; --k) locks[k - 1]->unlock();
  };
  // A random order for the polls: when several cases are ready, each is
  // equally likely to win.
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t j = select_random() % (i + 1);
    order[i] = order[j];
    order[j] = static_cast<std::uint32_t>(i);
  }

  FiberControl* f = peek_wait_context();
  bool prepared = false;
  lock_all();
  for (;;) {
    for (std::size_t k = 0; k < n; ++k) {
      std::size_t i = order[k];
      SelectCase* c = cases[i];
      if (!is_channel_case(c)) continue;
      WaitNode* wake = nullptr;
      SelectCase::Poll p;
      try {
        p = c->poll(&wake);
      } catch (...) {
        unlock_all();
        throw;
      }
      if (p == SelectCase::Poll::ready) {
        unlock_all();
        if (wake != nullptr) wake->waiter->complete();
        c->finish(nullptr);
        return i;
      }
    }
    if (default_case != kNone) {
      unlock_all();
      return default_case;
    }
    if (deadline != kNoDeadline && monotonic_now_ns() >= deadline) {
      unlock_all();
      return deadline_case;
    }
    if (prepared || may_wait_now(f)) break;
    unlock_all();
    prepare_wait(f, "select");
    prepared = true;
    lock_all();  // poll again: things may have changed meanwhile
  }
  // Wait on every channel at once. Holding all the locks while enqueueing,
  // no notifier sees one of our nodes before all are linked.
  Waiter w(f);
  w.select = true;  // claimed through several channels: always by CAS
  for (std::size_t i = 0; i < n; ++i) {
    if (!is_channel_case(cases[i])) continue;
    nodes[i].waiter = &w;
    nodes[i].index = static_cast<std::uint32_t>(i);
    cases[i]->enqueue(&nodes[i]);
  }
  unlock_all();
  std::uint32_t how = w.wait(deadline);
  // Unlink what is still linked: the losers (the winner's notifier unlinked
  // its node; notifiers that could not claim us unlinked theirs).
  for (std::size_t i = 0; i < n; ++i) {
    SelectCase* c = cases[i];
    if (!is_channel_case(c)) continue;
    SpinGuard g(*c->lock());
    c->dequeue(&nodes[i]);
  }
  if (how == Waiter::kDone) {
    std::size_t i = w.winner;
    cases[i]->finish(&nodes[i]);
    return i;
  }
  if (how == Waiter::kTimedOut) return deadline_case;
  throw_cancelled(f);
}

}  // namespace spindle::detail
