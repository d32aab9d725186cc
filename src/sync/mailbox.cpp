// The per-fiber mailbox: a Mailbox<std::any> hung on the fiber's control
// block (FiberControl::mailbox), created by whoever needs it first.
#include "spindle/sync/mailbox.hpp"

#include <stdexcept>

#include "fiber/scheduler.hpp"

namespace spindle::detail {

namespace {

struct FiberMailbox final : MailboxSlot::Box {
  Mailbox<std::any> mailbox{Mailbox<std::any>::kDefaultCapacity, MailboxPolicy::fail};
};

}  // namespace

Mailbox<std::any>& fiber_mailbox(FiberControl* fiber) {
  MailboxSlot::Box* box = fiber->mailbox.box.load(std::memory_order_acquire);
  if (box == nullptr) {
    auto* fresh = new FiberMailbox();
    if (fiber->mailbox.box.compare_exchange_strong(box, fresh, std::memory_order_acq_rel,
                                                   std::memory_order_acquire)) {
      box = fresh;
    } else {
      delete fresh;  // another sender was first; `box` is theirs
    }
  }
  return static_cast<FiberMailbox*>(box)->mailbox;
}

Mailbox<std::any>& own_mailbox() {
  Scheduler* s = Scheduler::current();
  FiberControl* f = s != nullptr ? s->running() : nullptr;
  if (f == nullptr) throw std::logic_error("spindle::receive called outside a fiber");
  return fiber_mailbox(f);
}

}  // namespace spindle::detail
