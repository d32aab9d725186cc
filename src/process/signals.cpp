// SignalWatch: Loop::signal subscriptions feeding a bounded queue that a
// fiber waits on through an Event.
#include "spindle/process/signals.hpp"

#include <utility>

#include "spindle/fiber/runtime.hpp"
#include "spindle/loop/loop.hpp"
#include "spindle/sync/event.hpp"

namespace spindle {

namespace {
constexpr std::size_t kQueueLimit = 64;
}  // namespace

struct SignalWatch::State {
  std::vector<SignalSubscription> subscriptions;
  std::deque<SignalEvent> queue;
  Event ready;  // auto reset: set with each delivery

  ~State() {
    for (SignalSubscription& s : subscriptions) s.remove();
  }
  void subscribe(const std::vector<int>& signals) {
    Loop& loop = current_loop();
    for (int signo : signals) {
      subscriptions.push_back(loop.signal(signo, [this](const SignalEvent& e) { deliver(e); }));
    }
  }
  void deliver(SignalEvent e) {
    if (queue.size() == kQueueLimit) {
      // Drop the oldest; its deliveries are counted in the newest.
      e.count += queue.front().count;
      queue.pop_front();
    }
    queue.push_back(e);
    ready.set();
  }
};

SignalWatch::SignalWatch(std::initializer_list<int> signals)
    : SignalWatch(std::vector<int>(signals)) {}

SignalWatch::SignalWatch(const std::vector<int>& signals) : state_(std::make_unique<State>()) {
  state_->subscribe(signals);
}

SignalWatch::SignalWatch(SignalWatch&&) noexcept = default;
SignalWatch& SignalWatch::operator=(SignalWatch&&) noexcept = default;
SignalWatch::~SignalWatch() = default;

std::optional<SignalEvent> SignalWatch::next(Deadline deadline) {
  while (state_->queue.empty()) {
    if (deadline) {
      if (!state_->ready.wait_until(deadline.time_point()) && state_->queue.empty())
        return std::nullopt;
    } else {
      state_->ready.wait();
    }
  }
  SignalEvent e = state_->queue.front();
  state_->queue.pop_front();
  return e;
}

std::optional<SignalEvent> wait_signal(std::initializer_list<int> signals, Deadline deadline) {
  return SignalWatch(signals).next(deadline);
}

Fiber<void> on_signal(std::initializer_list<int> signals,
                      std::function<void(const SignalEvent&)> fn) {
  SignalWatch watch(signals);
  return spin([watch = std::move(watch), fn = std::move(fn)]() mutable {
    // Moved out of the closure, so the subscription ends with the fiber,
    // not with its control block.
    SignalWatch mine = std::move(watch);
    for (;;) {
      if (std::optional<SignalEvent> e = mine.next()) fn(*e);
    }
  });
}

}  // namespace spindle
