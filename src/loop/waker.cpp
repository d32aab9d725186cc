// Loop::waker: an eventfd watched by the loop, written by anyone.
#include "spindle/loop/waker.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

#include "loop/unique_fd.hpp"

namespace spindle {

namespace detail {

struct WakerState {
  UniqueFd fd;
  Watcher watcher;  // loop thread only
  std::function<void(std::uint64_t)> fn;
};

}  // namespace detail

Waker Loop::waker(std::function<void(std::uint64_t)> fn) {
  if (!fn) throw std::system_error(EINVAL, std::system_category(), "waker: the callback is empty");
  int raw = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (raw < 0) throw std::system_error(errno, std::system_category(), "eventfd");
  auto state = std::make_shared<detail::WakerState>();
  state->fd.reset(raw);
  state->fn = std::move(fn);
  // The watch holds a reference too: the eventfd stays open while the loop
  // watches it, even if every handle is gone.
  state->watcher = watch(raw, {.read = [keep = state](Watcher&) {
                           std::uint64_t wakes = 0;
                           if (::read(keep->fd.get(), &wakes, sizeof(wakes)) != sizeof(wakes)) {
                             return;  // EAGAIN: another turn consumed it
                           }
                           keep->fn(wakes);
                         }});
  return Waker(std::move(state));
}

void Waker::wake() const noexcept {
  if (!state_) return;
  std::uint64_t one = 1;
  // EAGAIN only if the counter is at its maximum: a wake is pending anyway.
  [[maybe_unused]] ssize_t n = ::write(state_->fd.get(), &one, sizeof(one));
}

void Waker::close() noexcept {
  if (state_) state_->watcher.unwatch();
}

bool Waker::active() const noexcept {
  return state_ && state_->watcher.active();
}

int Waker::fd() const noexcept {
  return state_ ? state_->fd.get() : -1;
}

}  // namespace spindle
