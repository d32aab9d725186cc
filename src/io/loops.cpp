// accept_loop, recv_loop / read_loop (multishot with buffer rings),
// splice_loop, two_way_proxy, send_bundle, chain and splice_chunks.
#include "spindle/io/loops.hpp"

#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <deque>
#include <optional>

#include "io/io_internal.hpp"
#include "spindle/fiber/combinators.hpp"
#include "spindle/io/ops.hpp"

namespace spindle {

using namespace io_detail;

namespace {

// The completions of one multishot SQE, queued until the fiber takes them.
// While it is armed the kernel may post more, so it must never be left
// armed: stop() cancels it and waits for its last CQE.
class Multishot final : public Completion {
 public:
  struct Entry {
    std::int32_t res;
    std::uint32_t flags;
  };

  explicit Multishot(Op& op) : op_(op) { callback = &on_cqe; }
  ~Multishot() = default;
  Multishot(const Multishot&) = delete;
  Multishot& operator=(const Multishot&) = delete;

  io_uring_sqe* arm() {
    io_uring_sqe* sqe = op_.uring->prepare(this);
    armed_ = true;
    cancel_sent_ = false;
    return sqe;
  }
  bool armed() const noexcept { return armed_; }
  bool empty() const noexcept { return entries_.empty(); }
  std::size_t size() const noexcept { return entries_.size(); }
  Entry pop() noexcept {
    Entry e = entries_.front();
    entries_.pop_front();
    return e;
  }

  // Asks the kernel to end the multishot; its last CQE still comes.
  void cancel() noexcept {
    if (armed_ && !cancel_sent_) {
      op_.uring->cancel(this);
      cancel_sent_ = true;
    }
  }

  // Parks until an entry is queued or the multishot has ended. A
  // cancellation of the fiber cancels the multishot, and the fiber keeps
  // waiting for the CQEs that brings.
  void wait() {
    if (!entries_.empty() || !armed_) return;
    struct Hook : detail::WaitHook {
      Multishot* ms;
    } hook;
    hook.ms = this;
    hook.interrupt = [](detail::WaitHook* h) noexcept { static_cast<Hook*>(h)->ms->cancel(); };
    waiting_ = true;
    op_.sched->park_interruptible(detail::WaitKind::io, &hook);
    waiting_ = false;
  }

  // Ends the multishot and waits for its last CQE (not interruptible).
  void stop() noexcept {
    cancel();
    while (armed_) {
      waiting_ = true;
      op_.sched->park(detail::WaitKind::io);
      waiting_ = false;
    }
  }

 private:
  static void on_cqe(Completion* c, std::int32_t res, std::uint32_t flags) noexcept {
    auto* self = static_cast<Multishot*>(c);
    self->entries_.push_back({res, flags});
    if ((flags & IORING_CQE_F_MORE) == 0) self->armed_ = false;
    if (self->waiting_ && self->op_.fiber->state == detail::FiberState::suspended) {
      self->waiting_ = false;
      self->op_.sched->schedule(self->op_.fiber);
    }
  }

  Op& op_;
  std::deque<Entry> entries_;
  bool armed_ = false;
  bool cancel_sent_ = false;
  bool waiting_ = false;
};

// However a loop over a multishot ends (its last entry, the callback
// stopping it, an error or an exception), stops the multishot and then
// calls `drop_queued` (which must not throw) for the entries it left.
template <class DropQueued>
class StopOnExit {
 public:
  StopOnExit(Multishot& ms, DropQueued& drop_queued) : ms_(ms), drop_queued_(drop_queued) {}
  ~StopOnExit() {
    ms_.stop();
    drop_queued_();
  }
  StopOnExit(const StopOnExit&) = delete;
  StopOnExit& operator=(const StopOnExit&) = delete;

 private:
  Multishot& ms_;
  DropQueued& drop_queued_;
};

std::uint16_t buffer_id(std::uint32_t cqe_flags) noexcept {
  return static_cast<std::uint16_t>(cqe_flags >> IORING_CQE_BUFFER_SHIFT);
}

// --- accept_loop -------------------------------------------------------------

constexpr std::size_t kMaxQueuedAccepts = 64;

bool transient_accept_error(ssize_t rc) noexcept {
  return rc == -ECONNABORTED || rc == -EINTR || rc == -EPROTO;
}

ssize_t accept_impl(Op& op, int fd, detail::LoopFn<int> fn) {
  std::size_t delivered = 0;
  if (op.uring == nullptr || !native(Feature::multishot_accept, *op.uring)) {
    try {
      for (;;) {
        ssize_t c = accept_core(op, fd, nullptr, nullptr);
        if (transient_accept_error(c)) continue;
        if (c < 0) return c;
        ++delivered;
        if (!fn.call(fn.object, static_cast<int>(c))) break;
      }
    } catch (const BreakLoop&) {
    }
    return static_cast<ssize_t>(delivered);
  }
  Multishot ms(op);
  bool paused = false;  // we cancelled it: too many connections queued
  auto arm = [&] {
    io_uring_sqe* sqe = ms.arm();
    io_uring_prep_multishot_accept(sqe, fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    use_fixed(op, sqe, fd);
  };
  auto close_queued = [&] {
    while (!ms.empty()) {
      Multishot::Entry e = ms.pop();
      if (e.res >= 0) ::close(e.res);
    }
  };
  ssize_t result = 0;
  arm();
  StopOnExit on_exit(ms, close_queued);
  try {
    for (;;) {
      if (ms.empty()) {
        if (!ms.armed()) {
          Scheduler::checkpoint(op.fiber);
          paused = false;
          arm();
        }
        ms.wait();
        continue;
      }
      Multishot::Entry e = ms.pop();
      if (e.res < 0) {
        if (e.res == -ECANCELED && paused) continue;
        if (transient_accept_error(e.res)) continue;
        result = settle(op.fiber, e.res);
        break;
      }
      ++delivered;
      if (!fn.call(fn.object, e.res)) break;
      if (ms.size() >= kMaxQueuedAccepts && ms.armed()) {
        ms.cancel();  // the listen backlog holds the rest meanwhile
        paused = true;
      }
    }
  } catch (const BreakLoop&) {
  }
  return result < 0 ? result : static_cast<ssize_t>(delivered);
}

// --- recv_loop / read_loop ---------------------------------------------------

struct Receiver {
  Op& op;
  int fd;
  BufferRing& ring;
  detail::LoopFn<std::span<const std::byte>> fn;
  bool socket;
  std::size_t total = 0;

  // Hands buffer `id` with `n` bytes to the callback, then gives it back.
  bool deliver(std::uint16_t id, std::size_t n) {
    struct GiveBack {
      BufferRing& ring;
      std::uint16_t id;
      ~GiveBack() { ring.recycle(id); }
    } give{ring, id};
    total += n;
    return fn.call(fn.object, {ring.buffer(id).data(), n});
  }

  void prep_select(io_uring_sqe* sqe) {
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = ring.group();
    use_fixed(op, sqe, fd);
  }

  static constexpr ssize_t kNotPollable = 1;

  // One multishot recv / read feeding the loop. Returns 0 at end of input
  // or when stopped, -errno, or kNotPollable (read of a regular file).
  ssize_t multishot() {
    Multishot ms(op);
    auto arm = [&] {
      io_uring_sqe* sqe = ms.arm();
      if (socket) {
        io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
      } else {
        io_uring_prep_rw(kOpReadMultishot, sqe, fd, nullptr, 0, 0);
      }
      prep_select(sqe);
    };
    auto drop_queued = [&] {
      while (!ms.empty()) {
        Multishot::Entry e = ms.pop();
        if ((e.flags & IORING_CQE_F_BUFFER) != 0) {
          ring.handed_out();
          ring.recycle(buffer_id(e.flags));
        }
      }
    };
    ssize_t result = 0;
    bool delivered_any = false;
    arm();
    StopOnExit on_exit(ms, drop_queued);
    try {
      for (;;) {
        if (ms.empty()) {
          if (!ms.armed()) {
            Scheduler::checkpoint(op.fiber);
            if (ring.available() == 0) ring.wait_for_recycle();  // every buffer is out
            arm();
          }
          ms.wait();
          continue;
        }
        Multishot::Entry e = ms.pop();
        if ((e.flags & IORING_CQE_F_BUFFER) != 0) {
          ring.handed_out();
          std::uint16_t id = buffer_id(e.flags);
          if (e.res <= 0) {
            ring.recycle(id);
          } else {
            delivered_any = true;
            if (!deliver(id, static_cast<std::size_t>(e.res))) break;
            continue;
          }
        }
        if (e.res > 0) continue;
        if (e.res == 0) break;            // end of input
        if (e.res == -ENOBUFS) continue;  // re-armed above once a buffer is back
        if (e.res == -EBADFD && !socket && !delivered_any && !ms.armed()) {
          result = kNotPollable;  // READ_MULTISHOT needs a pollable file
          break;
        }
        result = settle(op.fiber, e.res);
        break;
      }
    } catch (const BreakLoop&) {
    }
    return result;
  }

  // One recv / read per buffer, the kernel picking it from the ring.
  ssize_t single_shot_selected() {
    try {
      for (;;) {
        std::uint32_t flags = 0;
        ssize_t n = submit(
            op, fd,
            [&](io_uring_sqe* sqe) {
              if (socket) {
                io_uring_prep_recv(sqe, fd, nullptr, ring.size(), 0);
              } else {
                io_uring_prep_read(sqe, fd, nullptr, len32(ring.size()), kNoOffset);
              }
              prep_select(sqe);
            },
            &flags);
        if ((flags & IORING_CQE_F_BUFFER) != 0) {
          ring.handed_out();
          if (n <= 0) {
            ring.recycle(buffer_id(flags));
          } else if (!deliver(buffer_id(flags), static_cast<std::size_t>(n))) {
            return 0;
          } else {
            continue;
          }
        }
        if (n == -ENOBUFS) {
          ring.wait_for_recycle();
          continue;
        }
        if (n == -EAGAIN) {
          if (ssize_t r = wait_ready(op, fd, EPOLLIN | EPOLLRDHUP); r < 0 && r != kUnpollable) {
            return r;
          }
          continue;
        }
        return n;  // 0: end of input, or -errno
      }
    } catch (const BreakLoop&) {
    }
    return 0;
  }

  // Buffers picked in user space (epoll, or a ring the kernel does not manage).
  ssize_t user_space() {
    try {
      for (;;) {
        int id = ring.take();
        if (id < 0) {
          ring.wait_for_recycle();
          continue;
        }
        ssize_t n;
        try {
          n = socket ? recv_core(op, fd, ring.buffer(static_cast<std::uint16_t>(id)), 0)
                     : read_core(op, fd, ring.buffer(static_cast<std::uint16_t>(id)), kNoOffset);
        } catch (...) {
          ring.recycle(static_cast<std::uint16_t>(id));
          throw;
        }
        if (n <= 0) {
          ring.recycle(static_cast<std::uint16_t>(id));
          return n;
        }
        if (!deliver(static_cast<std::uint16_t>(id), static_cast<std::size_t>(n))) return 0;
      }
    } catch (const BreakLoop&) {
    }
    return 0;
  }

  ssize_t run() {
    if (op.uring != nullptr && ring.kernel_managed()) {
      bool can_multishot =
          native(socket ? Feature::multishot_recv : Feature::read_multishot, *op.uring);
      if (can_multishot) {
        ssize_t r = multishot();
        if (r != kNotPollable) return r;
      }
      return single_shot_selected();
    }
    return user_space();
  }
};

// --- splice_loop -------------------------------------------------------------

bool is_pipe(int fd) noexcept {
  struct stat st;
  return ::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

ssize_t splice_loop_impl(Op& op, int from, int to) {
  std::size_t total = 0;
  if (is_pipe(from) || is_pipe(to)) {
    for (;;) {
      ssize_t n = splice_core(op, from, -1, to, -1, 1 << 20, SPLICE_F_MOVE);
      if (n <= 0) return n < 0 ? n : static_cast<ssize_t>(total);
      total += static_cast<std::size_t>(n);
    }
  }
  PipeLease lease(*op.st);
  std::size_t cap = pipe_capacity(lease.write_end());
  for (;;) {
    ssize_t n = splice_core(op, from, -1, lease.write_end(), -1, cap, SPLICE_F_MOVE);
    if (n < 0) return n;
    if (n == 0) return static_cast<ssize_t>(total);
    lease.dirty = true;
    ssize_t m = splice_exactly(op, lease.read_end(), to, static_cast<std::size_t>(n), -1);
    if (m < 0) return m;
    if (m < n) return -EIO;
    lease.dirty = false;
    total += static_cast<std::size_t>(n);
  }
}

// --- send_bundle ---------------------------------------------------------------

ssize_t send_bundle_impl(Op& op, int fd, BufferRing& ring) {
  if (ring.use() != BufferRing::Use::send) return -EINVAL;
  auto& queue = ring.queued();
  std::size_t sent = 0;
  auto release_front = [&](std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      ring.sent_bytes(queue[i].length);
      sent += queue[i].length;
      ring.release_sent(queue[i].id);
    }
    queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(n));
  };
  if (op.uring != nullptr && ring.kernel_managed() && native(Feature::send_bundle, *op.uring)) {
    while (!queue.empty()) {
      ssize_t n = submit(op, fd, [&](io_uring_sqe* sqe) {
        io_uring_prep_send(sqe, fd, nullptr, 0, MSG_NOSIGNAL);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = ring.group();
        sqe->ioprio |= kRecvSendBundle;
      });
      if (n < 0) return n;
      // The kernel took the buffers that the bytes sent cover, the last
      // one even if it went out only in part: send its rest by hand.
      auto left = static_cast<std::size_t>(n);
      std::size_t consumed = 0;
      while (left > 0 && consumed < queue.size()) {
        BufferRing::Queued& b = queue[consumed++];
        std::size_t take = std::min<std::size_t>(left, b.length - b.sent);
        b.sent += static_cast<std::uint32_t>(take);
        left -= take;
      }
      if (consumed == 0) return -EIO;
      BufferRing::Queued& last = queue[consumed - 1];
      if (last.sent < last.length) {
        ssize_t m =
            send_all(op, fd, ring.buffer(last.id).subspan(last.sent, last.length - last.sent), 0);
        if (m < 0) return m;
        last.sent = last.length;
      }
      release_front(consumed);
    }
    return static_cast<ssize_t>(sent);
  }
  if (queue.empty()) return 0;
  std::vector<iovec> iov;
  iov.reserve(queue.size());
  for (const BufferRing::Queued& b : queue) {
    iov.push_back({ring.buffer(b.id).data() + b.sent, b.length - b.sent});
  }
  ssize_t n = sendv_core(op, fd, iov);
  if (n < 0) return n;
  release_front(queue.size());
  return static_cast<ssize_t>(sent);
}

// --- chain -------------------------------------------------------------------------

constexpr std::size_t kMaxLinked = 32;

void prep_step(io_uring_sqe* sqe, const ChainOp& s) {
  switch (s.kind) {
    case ChainOp::Kind::write:
      io_uring_prep_write(sqe, s.fd, s.data.data(), len32(s.data.size()), kNoOffset);
      break;
    case ChainOp::Kind::send:
      // MSG_WAITALL: the kernel completes a partial send itself.
      io_uring_prep_send(sqe, s.fd, s.data.data(), s.data.size(),
                         s.flags | MSG_NOSIGNAL | MSG_WAITALL);
      break;
    case ChainOp::Kind::splice:
      io_uring_prep_splice(sqe, s.fd, s.offset_in, s.fd_out, -1, len32(s.length), SPLICE_F_MOVE);
      break;
  }
}

std::size_t step_length(const ChainOp& s) noexcept {
  return s.kind == ChainOp::Kind::splice ? s.length : s.data.size();
}

// Carries out step `s` from byte `done` on, one operation at a time.
ssize_t run_step(Op& op, const ChainOp& s, std::size_t done) {
  switch (s.kind) {
    case ChainOp::Kind::write:
      return write_all(op, s.fd, s.data.subspan(done), kNoOffset);
    case ChainOp::Kind::send:
      return send_all(op, s.fd, s.data.subspan(done), s.flags);
    case ChainOp::Kind::splice: {
      std::size_t want = s.length - done;
      std::int64_t off = s.offset_in < 0 ? -1 : s.offset_in + static_cast<std::int64_t>(done);
      ssize_t n = splice_exactly(op, s.fd, s.fd_out, want, off);
      if (n >= 0 && static_cast<std::size_t>(n) < want) return -ENODATA;
      return n;
    }
  }
  return -EINVAL;
}

ssize_t chain_impl(Op& op, std::span<const ChainOp> steps, std::size_t* failed) {
  std::size_t total = 0;
  std::size_t i = 0;
  while (i < steps.size()) {
    std::size_t batch = std::min(steps.size() - i, kMaxLinked);
    if (op.uring == nullptr || !op.uring->reserve(static_cast<unsigned>(batch))) batch = 1;
    if (op.uring == nullptr) {
      ssize_t n = run_step(op, steps[i], 0);
      if (n < 0) {
        *failed = i;
        return n;
      }
      total += static_cast<std::size_t>(n);
      ++i;
      continue;
    }
    std::array<std::optional<detail::FiberCompletion>, kMaxLinked> done;
    for (std::size_t k = 0; k < batch; ++k) {
      done[k].emplace();
      io_uring_sqe* sqe = op.uring->prepare(&*done[k]);
      prep_step(sqe, steps[i + k]);
      if (k + 1 < batch) sqe->flags |= IOSQE_IO_LINK;
    }
    std::array<std::int32_t, kMaxLinked> res{};
    for (std::size_t k = 0; k < batch; ++k) res[k] = done[k]->wait();  // every CQE, no throw
    std::size_t k = 0;
    while (k < batch && res[k] >= 0 &&
           static_cast<std::size_t>(res[k]) == step_length(steps[i + k])) {
      total += static_cast<std::size_t>(res[k]);
      ++k;
    }
    if (k == batch) {
      i += batch;
      continue;
    }
    // Step i + k failed or fell short; the kernel cancelled the rest of the
    // batch. An error ends the chain; a short step is finished by hand.
    // EAGAIN (a splice on an O_NONBLOCK pipe): the step moved nothing and
    // goes on by hand, waiting for readiness.
    if (res[k] == -EAGAIN) res[k] = 0;
    if (res[k] < 0) {
      *failed = i + k;
      return settle(op.fiber, res[k]);
    }
    ssize_t rest = run_step(op, steps[i + k], static_cast<std::size_t>(res[k]));
    if (rest < 0) {
      *failed = i + k;
      return rest;
    }
    total += static_cast<std::size_t>(res[k]) + static_cast<std::size_t>(rest);
    i += k + 1;
  }
  return static_cast<ssize_t>(total);
}

const char* step_name(const ChainOp& s) noexcept {
  switch (s.kind) {
    case ChainOp::Kind::write:
      return "write";
    case ChainOp::Kind::send:
      return "send";
    case ChainOp::Kind::splice:
      return "splice";
  }
  return "?";
}

std::size_t chain_checked(std::span<const ChainOp> steps, Deadline d) {
  std::size_t failed = 0;
  ssize_t n = timed(d, [&] {
    Op op = begin("chain");
    return chain_impl(op, steps, &failed);
  });
  if (n < 0) {
    std::string what = "chain step " + std::to_string(failed) + ": " + step_name(steps[failed]);
    throw_errno(static_cast<int>(-n), {what.c_str(), steps[failed].fd});
  }
  return static_cast<std::size_t>(n);
}

// --- splice_chunks ---------------------------------------------------------------

ssize_t splice_chunks_impl(Op& op, int src, int dest, const SpliceChunks& f, std::size_t* failed) {
  *failed = 0;
  auto text = [](const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); };
  if (!f.prefix.empty()) {
    if (ssize_t r = write_all(op, dest, text(f.prefix), kNoOffset); r < 0) return r;
  }
  PipeLease lease(*op.st);
  std::size_t chunk =
      std::min(std::max<std::size_t>(f.chunk_size, 1), pipe_capacity(lease.write_end()));
  std::size_t total = 0;
  for (;;) {
    ssize_t n = splice_core(op, src, -1, lease.write_end(), -1, chunk, SPLICE_F_MOVE);
    if (n < 0) return n;
    if (n == 0) break;
    lease.dirty = true;
    auto len = static_cast<std::size_t>(n);
    std::string pre = f.chunk_prefix ? f.chunk_prefix(len) : std::string();
    std::string post = f.chunk_postfix ? f.chunk_postfix(len) : std::string();
    std::array<ChainOp, 3> steps;
    std::size_t count = 0;
    if (!pre.empty()) steps[count++] = ChainOp::write(dest, text(pre));
    steps[count++] = ChainOp::splice(lease.read_end(), dest, len);
    if (!post.empty()) steps[count++] = ChainOp::write(dest, text(post));
    ssize_t r = chain_impl(op, std::span(steps.data(), count), failed);
    if (r < 0) return r;
    lease.dirty = false;
    total += len;
  }
  if (!f.postfix.empty()) {
    if (ssize_t r = write_all(op, dest, text(f.postfix), kNoOffset); r < 0) return r;
  }
  return static_cast<ssize_t>(total);
}

}  // namespace

namespace detail {

std::size_t accept_loop(int fd, LoopFn<int> fn, Deadline d) {
  return checked({"accept", fd}, d, [&] {
    Op op = begin("accept_loop");
    return accept_impl(op, fd, fn);
  });
}

std::size_t receive_loop(int fd, BufferRing* ring, LoopFn<std::span<const std::byte>> fn,
                         bool socket, Deadline d) {
  std::optional<BufferRing> own;
  if (ring == nullptr) ring = &own.emplace(8, 16 * 1024);
  std::size_t total = 0;
  checked({socket ? "recv" : "read", fd}, d, [&] {
    Op op = begin(socket ? "recv_loop" : "read_loop");
    Receiver r{op, fd, *ring, fn, socket};
    ssize_t rc;
    try {
      rc = r.run();
    } catch (...) {
      total = r.total;
      throw;
    }
    total = r.total;
    return rc;
  });
  return total;
}

}  // namespace detail

std::size_t splice_loop(int from, int to, Deadline d) {
  return checked({"splice", from}, d, [&] {
    Op op = begin("splice_loop");
    return splice_loop_impl(op, from, to);
  });
}

std::pair<std::size_t, std::size_t> two_way_proxy(int a, int b, Deadline d) {
  return timed(d, [&] {
    auto one_way = [](int from, int to) {
      std::size_t n = splice_loop(from, to);
      (void)nothrow::shutdown(to, SHUT_WR);  // ENOTSOCK for a pipe: nothing to do
      return n;
    };
    auto ab = spin([&] { return one_way(a, b); });
    auto ba = spin([&] { return one_way(b, a); });
    auto [x, y] = await_all(ab, ba);
    return std::pair<std::size_t, std::size_t>(x, y);
  });
}

std::size_t send_bundle(int fd, BufferRing& ring, Deadline d) {
  return checked({"send_bundle", fd}, d, [&] {
    Op op = begin("send_bundle");
    return send_bundle_impl(op, fd, ring);
  });
}

std::size_t chain(std::span<const ChainOp> steps, Deadline d) {
  return chain_checked(steps, d);
}

std::size_t chain(std::initializer_list<ChainOp> steps, Deadline d) {
  return chain_checked(std::span(steps.begin(), steps.size()), d);
}

std::size_t splice_chunks(int src, int dest, const SpliceChunks& framing, Deadline d) {
  std::size_t failed = 0;
  return checked({"splice_chunks", src}, d, [&] {
    Op op = begin("splice_chunks");
    return splice_chunks_impl(op, src, dest, framing, &failed);
  });
}

}  // namespace spindle
