// The io layer's machinery: per-runtime state, feature probes, readiness
// waits, errors, cached pipes, registered files, metrics.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string_view>

#include "io/io_internal.hpp"
#include "loop/epoll_backend.hpp"
#include "spindle/fiber/wait.hpp"
#include "spindle/io/metrics.hpp"
#include "spindle/io/ops.hpp"

namespace spindle {

std::int64_t Deadline::from_timeout(std::chrono::nanoseconds timeout) noexcept {
  std::int64_t now = Loop::now_ns();
  std::int64_t t = timeout.count();
  if (t > std::numeric_limits<std::int64_t>::max() - now)
    return std::numeric_limits<std::int64_t>::max();
  return clamp(now + t);
}

namespace io_detail {

// --- features ------------------------------------------------------------------

namespace {

constexpr unsigned bit(Feature f) noexcept {
  return 1u << static_cast<unsigned>(f);
}
constexpr unsigned kAllFeatures = (1u << static_cast<unsigned>(Feature::count)) - 1;

const char* const kFeatureNames[] = {
    "socket",           "bind",           "listen",         "waitid",      "futex",
    "multishot_accept", "multishot_recv", "read_multishot", "buffer_ring", "send_bundle",
};
static_assert(std::size(kFeatureNames) == static_cast<std::size_t>(Feature::count));

std::once_flag g_probe_once;
std::atomic<unsigned> g_supported{0};  // kernel opcodes (process-wide)
std::atomic<unsigned> g_forced{0};     // fallbacks forced by SPINDLE_IO_FALLBACK

unsigned parse_names(std::string_view names) {
  unsigned mask = 0;
  while (!names.empty()) {
    std::size_t comma = names.find(',');
    std::string_view name = names.substr(0, comma);
    names = comma == std::string_view::npos ? std::string_view() : names.substr(comma + 1);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    if (name.empty()) continue;
    if (name == "all") return kAllFeatures;
    bool known = false;
    for (unsigned i = 0; i < static_cast<unsigned>(Feature::count); ++i) {
      if (name == kFeatureNames[i]) {
        mask |= 1u << i;
        known = true;
      }
    }
    if (!known) {
      throw std::invalid_argument("SPINDLE_IO_FALLBACK: unknown feature '" + std::string(name) +
                                  "'");
    }
  }
  return mask;
}

void probe(UringBackend& u) {
  std::call_once(g_probe_once, [&u] {
    unsigned mask = 0;
    if (io_uring_probe* p = io_uring_get_probe_ring(&u.ring())) {
      auto has = [p](int op) { return io_uring_opcode_supported(p, op) != 0; };
      if (has(IORING_OP_SOCKET)) {
        // 5.19 brought IORING_OP_SOCKET with multishot accept and buffer rings.
        mask |= bit(Feature::socket) | bit(Feature::multishot_accept) | bit(Feature::buffer_ring);
      }
      if (has(IORING_OP_SEND_ZC)) mask |= bit(Feature::multishot_recv);  // 6.0
      if (has(kOpBind)) mask |= bit(Feature::bind);
      if (has(kOpListen)) mask |= bit(Feature::listen);
      if (has(kOpWaitid)) mask |= bit(Feature::waitid);
      if (has(kOpFutexWait) && has(kOpFutexWake)) mask |= bit(Feature::futex);
      if (has(kOpReadMultishot)) mask |= bit(Feature::read_multishot);
      io_uring_free_probe(p);
    }
    if ((u.features() & kFeatRecvSendBundle) != 0) mask |= bit(Feature::send_bundle);
    g_supported.store(mask);
    if (const char* env = std::getenv("SPINDLE_IO_FALLBACK"); env != nullptr) {
      g_forced.store(parse_names(env));
    }
  });
}

}  // namespace

const char* feature_name(Feature f) noexcept {
  return kFeatureNames[static_cast<unsigned>(f)];
}

bool native(Feature f, UringBackend& u) noexcept {
  try {
    probe(u);
  } catch (...) {
    return false;  // a bad SPINDLE_IO_FALLBACK: everything falls back
  }
  return ((g_supported.load(std::memory_order_relaxed) &
           ~g_forced.load(std::memory_order_relaxed)) &
          bit(f)) != 0;
}

std::string fallbacks_in_use(UringBackend* u) {
  if (u == nullptr) return {};
  std::string out;
  for (unsigned i = 0; i < static_cast<unsigned>(Feature::count); ++i) {
    if (!native(static_cast<Feature>(i), *u)) {
      if (!out.empty()) out += ' ';
      out += kFeatureNames[i];
    }
  }
  return out;
}

void force_fallbacks(const std::string& names) {
  g_forced.store(parse_names(names));
}

// --- state -----------------------------------------------------------------------

State::~State() {
  if (async_destroy != nullptr) async_destroy(async);
  for (auto [r, w] : pipes) {
    ::close(r);
    ::close(w);
  }
}

void State::update_hints(int fd, std::uint8_t clear, std::uint8_t set) noexcept {
  if (fd < 0) return;
  auto i = static_cast<std::size_t>(fd);
  if (i >= hints.size()) {
    if (set == 0) return;
    try {
      hints.resize(std::max<std::size_t>(i + 1, 64) * 2, 0);
    } catch (const std::bad_alloc&) {
      return;  // no hint: the SQE path
    }
  }
  hints[i] = static_cast<std::uint8_t>((hints[i] & ~clear) | set);
}

State& state_of(Scheduler& s) {
  if (s.io_extension.state == nullptr) {
    auto* st = new State;
    st->sched = &s;
    Backend& b = s.loop().backend();
    st->uring = b.kind() == BackendKind::io_uring ? static_cast<UringBackend*>(&b) : nullptr;
    s.io_extension.state = st;
    s.io_extension.destroy = [](void* p) noexcept { delete static_cast<State*>(p); };
  }
  return *static_cast<State*>(s.io_extension.state);
}

Op begin(const char* what, bool checkpoint) {
  Scheduler* s = Scheduler::current();
  FiberControl* f = s != nullptr ? s->running() : nullptr;
  if (f == nullptr) {
    throw std::logic_error(std::string("spindle::") + what + " called outside a fiber");
  }
  if (checkpoint) Scheduler::checkpoint(f);
  State& st = state_of(*s);
  return Op(f, s, &st, st.uring);
}

// --- readiness ----------------------------------------------------------------------

ssize_t wait_ready(Op& op, int fd, std::uint32_t events) {
  detail::FiberPollWait w(events);
  Backend& backend = op.sched->loop().backend();
  try {
    backend.poll_once(fd, &w);
  } catch (const std::system_error& e) {
    return -e.code().value();
  }
  // Only epoll completes a wait inside poll_once: for descriptors it cannot
  // poll (regular files, directories), which are "always ready".
  if (w.completed) return kUnpollable;
  struct Hook : detail::WaitHook {
    detail::FiberPollWait* poll;
    Backend* backend;
    int fd;
  } hook;
  hook.poll = &w;
  hook.backend = &backend;
  hook.fd = fd;
  hook.interrupt = [](detail::WaitHook* h) noexcept {
    auto* self = static_cast<Hook*>(h);
    self->backend->cancel_poll(self->fd, self->poll);
  };
  op.sched->park_interruptible(detail::WaitKind::io, &hook);
  return settle(op.fiber, w.result);
}

// --- errors -------------------------------------------------------------------------

void throw_errno(int err, const Subject& what) {
  std::string text = what.op;
  if (what.fd != kNoFd) text += " fd " + std::to_string(what.fd);
  if (what.path != nullptr) {
    text += ' ';
    text += what.path;
  }
  throw std::system_error(err, std::system_category(), text);
}

// --- pipes --------------------------------------------------------------------------

std::pair<int, int> take_pipe(State& st) {
  if (!st.pipes.empty()) {
    auto p = st.pipes.back();
    st.pipes.pop_back();
    return p;
  }
  // Blocking ends: io_uring runs splices on its workers (an O_NONBLOCK pipe
  // would make them fail with EAGAIN); the epoll paths pass
  // SPLICE_F_NONBLOCK instead.
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::system_category(), "pipe2");
  ::fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);  // as large as allowed; the default 64 KiB otherwise
  return {fds[0], fds[1]};
}

void put_pipe(State& st, std::pair<int, int> p) noexcept {
  if (st.pipes.size() < 8) {
    try {
      st.pipes.push_back(p);
      return;
    } catch (...) {
    }
  }
  ::close(p.first);
  ::close(p.second);
}

std::size_t pipe_capacity(int write_end) noexcept {
  int size = ::fcntl(write_end, F_GETPIPE_SZ);
  return size > 0 ? static_cast<std::size_t>(size) : 65536;
}

}  // namespace io_detail

// --- registered files ------------------------------------------------------------------

bool register_fd(int fd) {
  io_detail::Op op = io_detail::begin("register_fd");
  io_detail::State& st = *op.st;
  if (op.uring == nullptr || fd < 0 || op.uring->registered_files() == 0) return false;
  if (st.fixed(fd) >= 0) return true;
  if (!st.slots_ready) {
    st.slots_ready = true;
    for (unsigned i = op.uring->registered_files(); i-- > 0;)
      st.free_slots.push_back(static_cast<int>(i));
  }
  if (st.free_slots.empty()) return false;
  int slot = st.free_slots.back();
  int rc = io_uring_register_files_update(&op.uring->ring(), static_cast<unsigned>(slot), &fd, 1);
  if (rc < 0) return false;
  st.free_slots.pop_back();
  if (static_cast<std::size_t>(fd) >= st.fixed_slot.size()) {
    st.fixed_slot.resize(static_cast<std::size_t>(fd) + 1, -1);
  }
  st.fixed_slot[static_cast<std::size_t>(fd)] = slot;
  ++st.fixed_used;
  return true;
}

void unregister_fd(int fd) noexcept {
  detail::Scheduler* s = detail::Scheduler::current();
  if (s == nullptr || s->io_extension.state == nullptr) return;
  io_detail::State& st = io_detail::state_of(*s);
  int slot = st.fixed(fd);
  if (slot < 0) return;
  int none = -1;
  io_uring_register_files_update(&st.uring->ring(), static_cast<unsigned>(slot), &none, 1);
  st.fixed_slot[static_cast<std::size_t>(fd)] = -1;
  --st.fixed_used;
  try {
    st.free_slots.push_back(slot);
  } catch (...) {
    // The slot is lost for this runtime; nothing else breaks.
  }
}

// --- metrics ----------------------------------------------------------------------------

IoMetrics io_metrics() {
  detail::Scheduler& s = detail::Scheduler::require("io_metrics");
  io_detail::State& st = io_detail::state_of(s);
  IoMetrics m;
  m.backend = s.loop().backend_kind();
  m.ops_started = st.ops_started;
  m.ops_completed = st.ops_completed;
  m.ops_in_flight = st.in_flight;
  m.ops_offloaded = st.offloaded;
  m.async_errors = st.async_errors;
  m.time_waiting = s.loop().stats().time_in_wait;
  m.sidecar = s.loop().backend().has_sidecar();
  m.sidecar_calls = s.loop().backend().sidecar_calls();
  if (UringBackend* u = st.uring) {
    const UringBackend::Counters& c = u->counters();
    m.sqes_submitted = c.sqes;
    m.cqes_reaped = c.cqes;
    m.kernel_enters = c.enters;
    m.cqe_waits = c.cqe_waits;
    m.kernel_in_flight = u->in_flight();
    m.sqpoll = u->sqpoll();
    m.sqpoll_refused = u->sqpoll_refused();
    m.registered_files = u->registered_files();
    m.registered_files_used = st.fixed_used;
    m.fallbacks = io_detail::fallbacks_in_use(u);
  } else {
    m.cqe_waits = static_cast<EpollBackend&>(s.loop().backend()).blocking_waits();
  }
  m.pool = blocking_pool_stats();
  return m;
}

}  // namespace spindle
