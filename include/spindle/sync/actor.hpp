// Actors: a fiber that owns some state and handles messages one at a time
// (spin_actor), with cast (no reply) and call (reply, optional deadline).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include "spindle/fiber/fiber.hpp"
#include "spindle/sync/detail/waiter.hpp"
#include "spindle/sync/event.hpp"
#include "spindle/sync/mailbox.hpp"

namespace spindle {

// A cast or call to an actor that has stopped (or stops before answering).
class ActorStopped : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ActorOptions {
  // The actor's mailbox: messages waiting to be handled.
  std::size_t mailbox_capacity = 1024;
  // When it is full: block (cast/call wait for room; the default, which
  // gives back-pressure) or fail (spindle::MailboxFull).
  MailboxPolicy policy = MailboxPolicy::block;
  std::string_view name = "actor";
};

namespace detail {

// One call's answer, shared by the caller (who waits) and the actor; freed
// by whichever lets go last, so a caller that gave up (deadline,
// cancellation) leaves nothing dangling.
template <class R>
class ReplyBox {
 public:
  using Value = std::conditional_t<std::is_void_v<R>, std::monostate, R>;

  void fulfil(Value&& v) noexcept {
    finish([&] { value_.emplace(std::move(v)); });
  }
  void fail(std::exception_ptr e) noexcept {
    finish([&] { error_ = std::move(e); });
  }

  // Caller: waits for the answer; false when the deadline passed first.
  // Throws spindle::Cancelled.
  bool wait(std::int64_t deadline_ns) {
    WaitNode node;
    return wait_in_list(
        lock_, waiter_, node, "Actor::call", deadline_ns, [this] { return ready_; }, NoLeave{});
  }
  // After wait() returned true.
  Value take() {
    if (error_) std::rethrow_exception(error_);
    return std::move(*value_);
  }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

 private:
  template <class Set>
  void finish(Set&& set) noexcept {
    lock_.lock();
    set();
    ready_ = true;
    WaitNode* n = claim_first(waiter_);
    lock_.unlock();
    if (n != nullptr) n->waiter->complete();
  }

  std::atomic<int> refs_{2};  // the caller and the actor
  SpinLock lock_;
  bool ready_ = false;
  std::optional<Value> value_;
  std::exception_ptr error_;
  WaitList waiter_;
};

template <class Msg, class Reply>
struct Envelope {
  Msg msg;
  ReplyBox<Reply>* reply;  // nullptr: a cast
};

// What the actor fiber and its handles share.
template <class Msg, class Reply>
struct ActorLink {
  ActorLink(std::size_t capacity, MailboxPolicy policy) : mailbox(capacity, policy) {}
  Mailbox<Envelope<Msg, Reply>> mailbox;
  SpinLock lock;
  // The actor fiber, while it runs. The actor drops this reference itself,
  // on its own thread, as it ends: a handle may be released on any thread,
  // and must never hold the fiber's last reference.
  FiberRef fiber;
  std::exception_ptr error;  // what ended the actor, if anything
  Event ended{Event::Mode::manual_reset};

  // The actor ended: answer what is left with ActorStopped, let go of the
  // fiber, tell join().
  void finish(std::exception_ptr why) noexcept {
    mailbox.close();
    while (auto e = mailbox.try_receive()) {
      if (e->reply != nullptr) {
        e->reply->fail(std::make_exception_ptr(ActorStopped("spindle::Actor: stopped")));
        e->reply->release();
      }
    }
    FiberRef self;
    {
      SpinGuard g(lock);
      self = std::move(fiber);
      error = std::move(why);
    }
    ended.set();
  }
};

// The handles' shared part: closing the mailbox when the last handle goes
// lets the actor finish.
template <class Msg, class Reply>
struct ActorHandle {
  std::shared_ptr<ActorLink<Msg, Reply>> link;
  ~ActorHandle() {
    if (link) link->mailbox.close();
  }
};

// The message and reply types of handler(State&, Msg) -> Reply.
template <class F>
struct HandlerTraits : HandlerTraits<decltype(&F::operator())> {};
template <class C, class R, class S, class M>
struct HandlerTraits<R (C::*)(S&, M)> {
  using msg = std::remove_cvref_t<M>;
};
template <class C, class R, class S, class M>
struct HandlerTraits<R (C::*)(S&, M) const> : HandlerTraits<R (C::*)(S&, M)> {};
template <class C, class R, class S, class M>
struct HandlerTraits<R (C::*)(S&, M) noexcept> : HandlerTraits<R (C::*)(S&, M)> {};
template <class C, class R, class S, class M>
struct HandlerTraits<R (C::*)(S&, M) const noexcept> : HandlerTraits<R (C::*)(S&, M)> {};
template <class R, class S, class M>
struct HandlerTraits<R (*)(S&, M)> {
  using msg = std::remove_cvref_t<M>;
};

struct DeduceMsg {};
template <class Msg, class Handler>
struct ActorMsg {
  using type = Msg;
};
template <class Handler>
struct ActorMsg<DeduceMsg, Handler> {
  using type = typename HandlerTraits<Handler>::msg;
};

}  // namespace detail

// A handle to an actor started by spin_actor(). Copyable; usable from any
// fiber or thread. When the last handle is gone the actor's mailbox closes,
// and the actor ends once it has handled what was sent.
template <class Msg, class Reply>
class Actor {
 public:
  using message_type = Msg;
  using reply_type = Reply;

  // (spin_actor makes them.)
  explicit Actor(std::shared_ptr<detail::ActorHandle<Msg, Reply>> h) : h_(std::move(h)) {}

  // Sends without waiting for an answer (waits for room in the mailbox under
  // MailboxPolicy::block). Throws ActorStopped if the actor has stopped.
  void cast(Msg msg) { post(std::move(msg), nullptr, detail::kNoDeadline); }
  // Never waits: false when the mailbox is full.
  bool try_cast(Msg msg) {
    try {
      return h_->link->mailbox.try_send(Envelope{std::move(msg), nullptr});
    } catch (const ChannelClosed&) {
      throw ActorStopped("spindle::Actor::try_cast: the actor has stopped");
    }
  }

  // Sends and waits for the handler's return value; rethrows what the
  // handler threw (a std::exception) for this message. Throws ActorStopped
  // if the actor stopped before answering.
  Reply call(Msg msg) {
    auto r = call_ns(std::move(msg), detail::kNoDeadline);
    if constexpr (!std::is_void_v<Reply>) return std::move(*r);
  }
  // call() with a deadline (for the room in the mailbox and the answer):
  // an empty optional (void: false) if it passed first. The actor may still
  // handle the message; its answer is then dropped.
  template <class Rep, class Period>
  auto call_for(Msg msg, const std::chrono::duration<Rep, Period>& timeout) {
    auto r = call_ns(std::move(msg), detail::sync_deadline(timeout));
    if constexpr (std::is_void_v<Reply>) {
      return r.has_value();
    } else {
      return r;
    }
  }

  // Closes the mailbox: the actor handles what was sent, then ends. Later
  // casts and calls throw ActorStopped.
  void stop() noexcept { h_->link->mailbox.close(); }
  // Cancels the actor fiber (FiberRef::cancel): it ends at once; calls
  // still queued get ActorStopped. Does nothing once it has ended.
  void cancel() noexcept {
    detail::SpinGuard g(h_->link->lock);
    h_->link->fiber.cancel();
  }
  // Waits (from any fiber or thread) until the actor has ended. What ended
  // it is error(); a handler's exception also escapes the actor fiber like
  // any fiber's, to the fiber that spun it (structured concurrency), so
  // join() does not rethrow it a second time.
  void join() { h_->link->ended.wait(); }
  // What ended the actor: a handler's exception from a cast,
  // spindle::Cancelled, or nothing (stopped, or still running).
  std::exception_ptr error() const {
    detail::SpinGuard g(h_->link->lock);
    return h_->link->error;
  }
  bool ended() const noexcept { return h_->link->ended.is_set(); }
  // The actor's fiber, while it runs (empty once it has ended). Drop the
  // copy on the actor's runtime, or before the actor ends.
  FiberRef fiber() const {
    detail::SpinGuard g(h_->link->lock);
    return h_->link->fiber;
  }
  // Messages waiting to be handled (a snapshot).
  std::size_t pending() const noexcept { return h_->link->mailbox.size(); }

 private:
  using Envelope = detail::Envelope<Msg, Reply>;
  using Box = detail::ReplyBox<Reply>;

  // False: the deadline passed.
  bool post(Msg&& msg, Box* reply, std::int64_t deadline_ns) {
    auto& mb = h_->link->mailbox;
    Envelope e{std::move(msg), reply};
    try {
      if (deadline_ns == detail::kNoDeadline) {
        mb.send(std::move(e));
        return true;
      }
      if (mb.policy() == MailboxPolicy::fail) {
        if (mb.try_send(std::move(e))) return true;
        throw MailboxFull("spindle::Actor: mailbox full");
      }
      return mb.send_for(std::move(e), std::chrono::nanoseconds(std::max<std::int64_t>(
                                           0, deadline_ns - detail::monotonic_now_ns())));
    } catch (const ChannelClosed&) {
      throw ActorStopped("spindle::Actor: the actor has stopped");
    }
  }

  std::optional<typename Box::Value> call_ns(Msg&& msg, std::int64_t deadline_ns) {
    Box* box = new Box();
    struct Release {
      Box* box;
      bool actor_ref;  // the actor's reference, while the message is not in the mailbox
      ~Release() {
        if (actor_ref) box->release();
        box->release();
      }
    } guard{box, true};
    if (!post(std::move(msg), box, deadline_ns)) return std::nullopt;
    guard.actor_ref = false;  // the envelope carries it now
    if (!box->wait(deadline_ns)) return std::nullopt;
    return box->take();
  }

  std::shared_ptr<detail::ActorHandle<Msg, Reply>> h_;
};

// Starts an actor: a fiber (of the calling fiber's runtime) that owns
// `state` and calls handler(state, msg) for each message, one at a time, in
// the order they arrived. The message type is the handler's second
// parameter (or spin_actor<Msg>(...) for a generic handler); the reply type
// is what it returns (void: call() returns nothing, but still waits).
//
// Errors: a std::exception thrown by the handler for a call() goes to the
// caller, and the actor goes on; thrown for a cast(), it ends the actor: it
// escapes the actor fiber like any fiber's error, to the fiber that spun it,
// and error() keeps it. Cancelling the actor ends it too. Calls left in the
// mailbox when the actor ends get ActorStopped.
template <class Msg = detail::DeduceMsg, class State, class Handler>
auto spin_actor(State state, Handler handler, ActorOptions options = {}) {
  using M = typename detail::ActorMsg<Msg, Handler>::type;
  using R = std::invoke_result_t<Handler&, State&, M&&>;
  using Link = detail::ActorLink<M, R>;
  auto link = std::make_shared<Link>(options.mailbox_capacity, options.policy);
  auto body = [link, state = std::move(state), handler = std::move(handler)]() mutable {
    try {
      link->mailbox.receive_loop([&](detail::Envelope<M, R>&& e) {
        if (e.reply == nullptr) {
          handler(state, std::move(e.msg));  // a cast: an exception ends the actor
          return;
        }
        struct Release {
          detail::ReplyBox<R>* box;
          ~Release() { box->release(); }
        } release{e.reply};
        try {
          if constexpr (std::is_void_v<R>) {
            handler(state, std::move(e.msg));
            e.reply->fulfil(std::monostate{});
          } else {
            e.reply->fulfil(handler(state, std::move(e.msg)));
          }
        } catch (const std::exception&) {
          e.reply->fail(std::current_exception());  // the caller's problem; go on
        } catch (...) {
          // Cancellation (or another control-flow exception): the actor ends.
          e.reply->fail(std::make_exception_ptr(ActorStopped("spindle::Actor: stopped")));
          throw;
        }
      });
    } catch (...) {
      link->finish(std::current_exception());
      throw;
    }
    link->finish(nullptr);
  };
  auto handle = std::make_shared<detail::ActorHandle<M, R>>();
  handle->link = link;
  // Queued, not started: the actor runs on this thread, after we return.
  link->fiber = spin(std::move(body), SpinOptions{.name = options.name});
  return Actor<M, R>(std::move(handle));
}

}  // namespace spindle
