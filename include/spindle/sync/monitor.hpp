// monitor(f): a message in the caller's mailbox when f ends.
#pragma once

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "spindle/fiber/combinators.hpp"
#include "spindle/fiber/fiber.hpp"
#include "spindle/sync/mailbox.hpp"

namespace spindle {

// The message monitor() sends: which fiber ended, and how. `value` holds a
// copy of its result when it returned normally and T is copyable (join()
// still returns the original); `error` holds what escaped it.
template <class T>
struct FiberExit {
  FiberRef fiber;
  std::optional<detail::ValueOrMonostate<T>> value;
  std::exception_ptr error;
};

namespace detail {

template <class T>
struct MonitorHook final : ExitHook {
  FiberRef receiver;
  static void fire(ExitHook* h, FiberControl* f) noexcept {
    auto* self = static_cast<MonitorHook*>(h);
    try {
      FiberExit<T> exit;
      exit.fiber = FiberRef::share(f);
      exit.error = f->error;
      if (!f->error) {
        if constexpr (std::is_void_v<T>) {
          exit.value.emplace();
        } else if constexpr (std::is_copy_constructible_v<T>) {
          auto* slot = static_cast<ResultSlot<T>*>(f);
          if (slot->has_value) exit.value.emplace(slot->value);
        }
      }
      self->receiver.try_send(std::move(exit));  // a full mailbox drops it: never waits
    } catch (...) {
      // No memory for the message: the monitor stays silent rather than
      // take the finishing fiber down.
    }
    delete self;
  }
};

}  // namespace detail

// Polyphony's monitor: when `f` ends, the calling fiber's mailbox receives a
// FiberExit<T> (spindle::receive<FiberExit<T>>()). Several fibers may
// monitor one; a fiber that has already ended is reported at once. Call on
// f's runtime thread. The message is sent with try_send: a full mailbox
// drops it (see the mailbox policy).
template <class T>
void monitor(const Fiber<T>& f) {
  detail::FiberControl* target = detail::control_of(f);
  if (target == nullptr) throw std::logic_error("spindle::monitor: empty handle");
  auto* hook = new detail::MonitorHook<T>();
  hook->receiver = current();
  hook->on_exit = &detail::MonitorHook<T>::fire;
  detail::add_exit_hook(target, hook);
}

}  // namespace spindle
