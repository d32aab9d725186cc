// spindle::run: the runtime that runs fibers on the calling thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>

#include "spindle/fiber/fiber.hpp"
#include "spindle/loop/backend_kind.hpp"

namespace spindle {

class Loop;

// How a runtime is set up.
struct Options {
  // Worker threads, each with its own scheduler, event loop (ring or epoll
  // instance) and timers. 1 (the default): everything runs on the thread
  // that called run(), with no locks or atomic read-modify-writes on the
  // scheduling paths. 0: one per CPU the process may run on. At most 64.
  // The thread that calls run() is worker 0 and runs the main fiber; see
  // docs/fibers.md, "Workers", for what moves between workers.
  unsigned workers = 1;
  // Overridden by the SPINDLE_BACKEND environment variable.
  BackendKind backend = BackendKind::automatic;
  // Usable bytes of each fiber stack (virtual; committed only when touched).
  std::size_t stack_size = 128 * 1024;
  // A PROT_NONE guard page below each stack, so an overflow is reported by
  // name instead of corrupting memory. Each guarded stack is a second kernel
  // mapping, counted against vm.max_map_count.
  bool stack_guard = true;
  // Released stacks kept for reuse.
  std::size_t stack_cache = 1024;
  // Submission queue entries of the io_uring backend.
  unsigned uring_entries = 256;
  // io_uring: a kernel thread polls the submission queue (no system call to
  // submit while it is awake); it sleeps after uring_sqpoll_idle_ms idle.
  // Ignored (with the reason in spindle::io_metrics()) where refused.
  bool uring_sqpoll = false;
  unsigned uring_sqpoll_idle_ms = 1000;
  // io_uring: slots in the registered-file table (0: none); see
  // spindle::register_fd.
  unsigned uring_registered_files = 0;
  // Each worker gets a sidecar thread that makes its blocking kernel calls
  // (io_uring: every io_uring_enter; epoll: the blocking wait), while the
  // worker sleeps on a futex when it has nothing to run. Costs a thread and
  // two futex hand-offs per blocking wait; see docs/loop.md, "Sidecar", for
  // when it pays. SPINDLE_SIDECAR=1 / 0 overrides it. Excludes uring_sqpoll
  // (std::invalid_argument from run).
  bool sidecar = false;
  // 0: every cancel_after / move_on_after deadline is a precise timer. A
  // positive granularity rounds deadlines up to its multiples (never early,
  // at most that late) and lets all deadlines of one slot share one timer:
  // for servers with very many idle timeouts.
  std::chrono::nanoseconds coarse_timeouts{0};
  // The first SIGINT or SIGTERM starts a graceful shutdown of the main
  // fiber's tree (FiberRef::shutdown with shutdown_grace); the second
  // cancels it. The signals are taken through the loop (signalfd) on the
  // runtime's thread: block them in other threads you start (see
  // spindle::block_signals).
  bool graceful_signals = false;
  std::chrono::nanoseconds shutdown_grace = std::chrono::seconds(10);
  // Set SIGPIPE to SIG_IGN (when it is at its default) so that a write to a
  // closed pipe or socket fails with EPIPE instead of killing the process.
  bool ignore_sigpipe = true;
};

// What a runtime has done, for logs and debugging.
struct Metrics {
  BackendKind backend = BackendKind::automatic;  // the one in use: io_uring or epoll
  std::string backend_reason;                    // why it was chosen
  std::uint64_t fibers_spawned = 0;
  std::uint64_t fibers_alive = 0;  // in the whole runtime
  std::uint64_t context_switches = 0;
  std::uint64_t loop_polls = 0;  // times the event loop was asked for events
  std::size_t stacks_cached = 0;
  unsigned worker = 0;              // the calling fiber's worker
  unsigned workers = 1;             // how many the runtime has
  std::uint64_t fibers_stolen = 0;  // by this worker from others
  std::uint64_t worker_parks = 0;   // times this worker blocked with nothing to do
  std::uint64_t budget_yields = 0;  // fibers made to yield by the cooperative budget
};

namespace detail {

// The runtime of one run() call: worker 0 on the thread that called it,
// and the threads of the other workers.
class Runtime {
 public:
  explicit Runtime(const Options& options);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  // Runs fibers until every one of them is done.
  void run_until_done();
  // Rethrows the first exception that escaped a fiber nobody joined.
  void rethrow_unhandled();
  // Options::graceful_signals for the main fiber.
  void handle_shutdown_signals(const FiberRef& main, std::chrono::nanoseconds grace);

 private:
  struct Threads;
  void* scheduler_;                // worker 0
  Threads* threads_ = nullptr;     // the other workers (Options::workers > 1)
  unsigned shutdown_signals_ = 0;  // SIGINT/SIGTERM received (graceful_signals)
};

}  // namespace detail

// Starts a runtime on the calling thread, runs `fn` as its main fiber, and
// returns once `fn` and every fiber spawned in the runtime have finished.
// Returns what `fn` returned or rethrows what escaped it; an exception that
// escaped a fiber nobody joined is rethrown after that. Throws
// std::logic_error when called from inside a fiber, std::system_error when
// the chosen backend cannot be set up.
template <class F>
auto run(F&& fn, Options options = {}) -> std::invoke_result_t<std::decay_t<F>&> {
  detail::Runtime runtime(options);
  auto main = spin(std::forward<F>(fn), SpinOptions{.name = "main", .worker = 0});
  if (options.graceful_signals) runtime.handle_shutdown_signals(main, options.shutdown_grace);
  runtime.run_until_done();
  if constexpr (std::is_void_v<std::invoke_result_t<std::decay_t<F>&>>) {
    main.join();
    runtime.rethrow_unhandled();
  } else {
    auto result = main.join();
    runtime.rethrow_unhandled();
    return result;
  }
}

// Figures of the runtime the calling fiber runs in (per worker: the calling
// fiber's, except fibers_alive). Throws std::logic_error outside a fiber.
Metrics metrics();

// The worker the calling fiber runs on (0 .. workers-1). Throws
// std::logic_error outside a runtime.
unsigned current_worker();

// How many workers the calling fiber's runtime has. Throws
// std::logic_error outside a runtime.
unsigned worker_count();

// Starts `fn` as a child fiber on worker `worker` (spin() with
// SpinOptions::worker): it runs there and is never stolen. Throws
// std::out_of_range for a worker the runtime does not have, and what spin()
// throws.
template <class F>
auto spin_on(unsigned worker, F&& fn, SpinOptions options = {})
    -> Fiber<std::invoke_result_t<std::decay_t<F>&>> {
  options.worker = static_cast<int>(worker);
  return spin(std::forward<F>(fn), options);
}

// Moves the calling fiber to worker `worker`: it suspends here and
// continues there (a no-op for its own worker). Only for fibers spawned
// with SpinOptions::migratable; std::logic_error otherwise, and while a
// deadline (cancel_after, move_on_after, an I/O deadline) or a graceful
// shutdown's grace timer is armed for it on this worker. Throws
// std::out_of_range for a worker the runtime does not have.
void migrate_to(unsigned worker);

// The event loop of the calling fiber's runtime, for watchers and timers
// beside the fibers. Throws std::logic_error outside a fiber.
Loop& current_loop();

}  // namespace spindle
