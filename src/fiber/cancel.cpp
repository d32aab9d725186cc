// Cancel scopes, checkpoints and FiberRef::cancel.
#include "spindle/fiber/cancel.hpp"

#include "fiber/scheduler.hpp"

namespace spindle {

namespace detail {

CancelScope::CancelScope(bool shield_contents, std::int64_t deadline_ns) : shield(shield_contents) {
  Scheduler& s = Scheduler::require("cancel scope");
  fiber = s.running();
  if (fiber == nullptr) throw std::logic_error("spindle: cancel scopes need a fiber");
  deadline.scope = this;
  deadline.fire = [](TimerNode* node) noexcept { static_cast<Deadline*>(node)->scope->cancel(); };
  if (deadline_ns != 0) {
    deadline.due_ns = deadline_ns;
    s.arm_deadline(deadline);  // may throw (allocation): nothing to undo yet
  }
  outer = fiber->scopes;
  fiber->scopes = this;
}

CancelScope::~CancelScope() {
  owner(fiber)->disarm_deadline(deadline);
  fiber->scopes = outer;
  if (cancelled) fiber->pending_cancels.fetch_sub(1, std::memory_order_relaxed);
}

void CancelScope::set_deadline(std::int64_t deadline_ns) noexcept {
  if (cancelled) return;
  auto* s = owner(fiber);
  s->disarm_deadline(deadline);
  deadline.due_ns = deadline_ns;
  if (deadline_ns == 0) return;
  try {
    s->arm_deadline(deadline);
  } catch (...) {
    cancel();  // no memory for a coarse slot: expire now rather than never
  }
}

void mark_wakes_on_shutdown(CancelScope& scope) noexcept {
  scope.wakes_on_shutdown = true;
  if (scope.fiber->shutting_down.load(std::memory_order_relaxed)) scope.cancel();
}

void CancelScope::cancel() noexcept {
  if (cancelled) return;
  cancelled = true;
  fiber->pending_cancels.fetch_add(1, std::memory_order_relaxed);
  owner(fiber)->interrupt(fiber);
}

std::int64_t deadline_after(std::chrono::nanoseconds d) noexcept {
  if (d.count() < 0) d = std::chrono::nanoseconds(0);
  return Loop::now_ns() + d.count();
}

}  // namespace detail

void checkpoint() {
  detail::Scheduler* s = detail::Scheduler::current();
  if (s == nullptr || s->running() == nullptr) return;
  detail::Scheduler::checkpoint(s->running());
}

bool cancellation_pending() noexcept {
  detail::Scheduler* s = detail::Scheduler::current();
  if (s == nullptr || s->running() == nullptr) return false;
  const void* scope;
  return s->running()->pending_cancels.load(std::memory_order_relaxed) != 0 &&
         detail::Scheduler::effective_cancel(s->running(), &scope);
}

void FiberRef::cancel_control(detail::FiberControl* fiber) noexcept {
  if (fiber != nullptr) detail::Scheduler::post(fiber, detail::Scheduler::kRemoteCancel);
}

void FiberRef::cancel() const noexcept {
  // Whether the fiber is done is only known on its own thread: post() and
  // the scheduler's drain look there.
  cancel_control(ctrl_);
}

}  // namespace spindle
