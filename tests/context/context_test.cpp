// Tests of the context layer alone: register switch, stacks, overflow report.
// No loop, no fibers: contexts are made and switched by hand.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>
#include <unwind.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "spindle/context/context.hpp"
#include "spindle/context/execution.hpp"
#include "spindle/context/overflow.hpp"
#include "spindle/context/stack.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define SPINDLE_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SPINDLE_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define SPINDLE_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SPINDLE_TEST_TSAN 1
#endif
#endif

extern "C" void spindle_test_switch_with_patterns(void** save, void* load, const std::uint64_t* in,
                                                  std::uint64_t* out);

namespace {

namespace ctx = spindle::context;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

std::size_t page_size() {
  return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

std::uintptr_t addr(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p);
}

// Under qemu-user the death test child cannot exec the (foreign) test binary
// again unless binfmt_misc knows QEMU, so there the child is a plain fork.
#ifdef SPINDLE_TEST_UNDER_EMULATOR
constexpr const char* kDeathTestStyle = "fast";
#else
constexpr const char* kDeathTestStyle = "threadsafe";
#endif

// A context on a pooled stack, run from the calling thread's own context.
// resume() and yield() go through jump(), so the sanitizers follow every
// switch; the body runs on the context's stack.
class TestFiber {
 public:
  TestFiber(ctx::StackPool& pool, std::function<void(TestFiber&)> body)
      : pool_(pool), stack_(pool.allocate()), body_(std::move(body)) {
    caller_ = ctx::Execution::for_current_thread();
    self_ = ctx::Execution::for_stack(stack_.low(), stack_.usable_size());
    self_.ctx = ctx::make_context(stack_.top(), &TestFiber::entry, this);
  }
  ~TestFiber() {
    self_.release();
    pool_.release(stack_);
  }
  TestFiber(const TestFiber&) = delete;
  TestFiber& operator=(const TestFiber&) = delete;

  // From the caller: runs the body until it yields or ends.
  void resume() { ctx::jump(caller_, self_); }
  // From the body: back to the caller.
  void yield() { ctx::jump(self_, caller_); }
  bool finished() const { return finished_; }
  const ctx::Stack& stack() const { return stack_; }

 private:
  static void entry(void* arg) {
    ctx::on_context_entry();
    auto* self = static_cast<TestFiber*>(arg);
    self->body_(*self);
    self->finished_ = true;
    ctx::jump(self->self_, self->caller_, /*from_is_finished=*/true);
    std::abort();  // a finished context is never resumed
  }

  ctx::StackPool& pool_;
  ctx::Stack stack_;
  std::function<void(TestFiber&)> body_;
  ctx::Execution caller_;
  ctx::Execution self_;
  bool finished_ = false;
};

// ---------------------------------------------------------------------------
// make_context and the switch

struct EntryProbe {
  ctx::Execution main;
  ctx::Execution fiber;
  void* received = nullptr;
  int runs = 0;
  std::uintptr_t frame = 0;
};

void probe_entry(void* arg) {
  ctx::on_context_entry();
  auto* probe = static_cast<EntryProbe*>(arg);
  probe->received = arg;
  probe->runs++;
  probe->frame = addr(__builtin_frame_address(0));
  ctx::jump(probe->fiber, probe->main, /*from_is_finished=*/true);
  std::abort();
}

TEST(ContextSwitch, EntryRunsOnFirstSwitchAndGetsItsArgument) {
  ctx::StackPool pool({.size = 64 * 1024});
  ctx::Stack stack = pool.allocate();
  EntryProbe probe;
  probe.main = ctx::Execution::for_current_thread();
  probe.fiber = ctx::Execution::for_stack(stack.low(), stack.usable_size());
  probe.fiber.ctx = ctx::make_context(stack.top(), &probe_entry, &probe);
  EXPECT_EQ(probe.runs, 0) << "make_context must not run the entry";
  EXPECT_GT(addr(probe.fiber.ctx.sp), addr(stack.low()));
  EXPECT_LT(addr(probe.fiber.ctx.sp), addr(stack.top()));

  ctx::jump(probe.main, probe.fiber);

  EXPECT_EQ(probe.runs, 1);
  EXPECT_EQ(probe.received, &probe);
  EXPECT_GT(probe.frame, addr(stack.low()));
  EXPECT_LT(probe.frame, addr(stack.top())) << "the entry must run on the context's stack";
  probe.fiber.release();
  pool.release(stack);
}

// A stack top that is not 16-byte aligned is rounded down: the entry still
// gets the stack alignment the ABI promises.
TEST(ContextSwitch, EntryStackIsAbiAlignedForAnyTop) {
  ctx::StackPool pool({.size = 64 * 1024});
  ctx::Stack stack = pool.allocate();
  for (std::size_t offset : {0, 1, 7, 8, 9, 15, 16, 24, 33}) {
    EntryProbe probe;
    probe.main = ctx::Execution::for_current_thread();
    probe.fiber = ctx::Execution::for_stack(stack.low(), stack.usable_size());
    std::byte* top = stack.top() - offset;
    probe.fiber.ctx = ctx::make_context(top, &probe_entry, &probe);
    ctx::jump(probe.main, probe.fiber);
    ASSERT_EQ(probe.runs, 1);
    // x86-64: the frame pointer is the entry's stack pointer minus the pushed
    // return address and rbp; AArch64: sp after the prologue. Both are
    // 16-byte aligned exactly when the entry was called with an aligned stack.
    EXPECT_EQ(probe.frame % 16, 0u) << "offset " << offset;
    EXPECT_LT(probe.frame, addr(top)) << "offset " << offset;
    probe.fiber.release();
  }
  pool.release(stack);
}

TEST(ContextSwitch, MakeContextWritesOnlyOneSmallFrameBelowTop) {
  ctx::StackPool pool({.size = 64 * 1024});
  ctx::Stack stack = pool.allocate();
  // Use a top inside the stack so that the bytes above it can be checked too.
  constexpr std::size_t kAbove = 512;
  constexpr std::size_t kWindow = 4096;
  std::byte* top = stack.top() - kAbove;
  std::byte* window = top - kWindow;
  std::memset(window, 0xA5, kWindow + kAbove);
  ctx::Context c = ctx::make_context(top, &probe_entry, nullptr);
  EXPECT_GE(addr(c.sp), addr(top) - 256);
  std::size_t lowest_changed = kWindow + kAbove;
  for (std::size_t i = 0; i < kWindow + kAbove; ++i) {
    if (window[i] != std::byte{0xA5}) {
      lowest_changed = i;
      break;
    }
  }
  EXPECT_GE(lowest_changed, kWindow - 256) << "make_context wrote far below the top";
  EXPECT_GE(addr(window + lowest_changed), addr(c.sp));
  for (std::size_t i = kWindow; i < kWindow + kAbove; ++i) {
    ASSERT_EQ(window[i], std::byte{0xA5}) << "make_context wrote above the top, byte " << i;
  }
  pool.release(stack);
}

struct PingPong {
  ctx::Execution main;
  ctx::Execution fiber;
  long rounds = 0;
  long counter = 0;  // main makes it odd, the fiber even
  long fiber_errors = 0;
};

void ping_pong_entry(void* arg) {
  ctx::on_context_entry();
  auto* p = static_cast<PingPong*>(arg);
  for (long i = 0; i < p->rounds; ++i) {
    if (p->counter != 2 * i + 1) p->fiber_errors++;
    p->counter++;
    ctx::jump(p->fiber, p->main);
  }
  ctx::jump(p->fiber, p->main, /*from_is_finished=*/true);
  std::abort();
}

TEST(ContextSwitch, PingPongManyRoundTrips) {
  ctx::StackPool pool({.size = 64 * 1024});
  ctx::Stack stack = pool.allocate();
  PingPong p;
  p.rounds = 100000;
  p.main = ctx::Execution::for_current_thread();
  p.fiber = ctx::Execution::for_stack(stack.low(), stack.usable_size());
  p.fiber.ctx = ctx::make_context(stack.top(), &ping_pong_entry, &p);
  long main_errors = 0;
  for (long i = 0; i < p.rounds; ++i) {
    if (p.counter != 2 * i) main_errors++;
    p.counter++;
    ctx::jump(p.main, p.fiber);
  }
  ctx::jump(p.main, p.fiber);  // lets the fiber finish
  EXPECT_EQ(main_errors, 0);
  EXPECT_EQ(p.fiber_errors, 0);
  EXPECT_EQ(p.counter, 2 * p.rounds);
  p.fiber.release();
  pool.release(stack);
}

// Three contexts pass a token around a ring main -> A -> B -> main, so that
// contexts also switch directly to one another, not only to the main one.
struct Ring {
  ctx::Execution main;
  std::array<ctx::Execution, 2> fibers;
  std::vector<int> trace;
  int laps = 0;
};

struct RingMember {
  Ring* ring;
  int index;
};

void ring_entry(void* arg) {
  ctx::on_context_entry();
  auto* member = static_cast<RingMember*>(arg);
  Ring& ring = *member->ring;
  ctx::Execution& self = ring.fibers[static_cast<std::size_t>(member->index)];
  ctx::Execution& next = member->index == 0 ? ring.fibers[1] : ring.main;
  for (int lap = 0; lap < ring.laps; ++lap) {
    ring.trace.push_back(member->index + 1);
    ctx::jump(self, next);
  }
  ctx::jump(self, ring.main, /*from_is_finished=*/true);
  std::abort();
}

TEST(ContextSwitch, ContextsSwitchDirectlyToEachOther) {
  ctx::StackPool pool({.size = 64 * 1024});
  Ring ring;
  ring.laps = 1000;
  ring.main = ctx::Execution::for_current_thread();
  std::array<ctx::Stack, 2> stacks{pool.allocate(), pool.allocate()};
  std::array<RingMember, 2> members{RingMember{&ring, 0}, RingMember{&ring, 1}};
  for (std::size_t i = 0; i < 2; ++i) {
    ring.fibers[i] = ctx::Execution::for_stack(stacks[i].low(), stacks[i].usable_size());
    ring.fibers[i].ctx = ctx::make_context(stacks[i].top(), &ring_entry, &members[i]);
  }
  for (int lap = 0; lap < ring.laps; ++lap) {
    ring.trace.push_back(0);
    ctx::jump(ring.main, ring.fibers[0]);
  }
  ctx::jump(ring.main, ring.fibers[0]);  // A finishes
  ctx::jump(ring.main, ring.fibers[1]);  // B finishes
  ASSERT_EQ(ring.trace.size(), 3u * static_cast<std::size_t>(ring.laps));
  for (std::size_t i = 0; i < ring.trace.size(); ++i) {
    ASSERT_EQ(ring.trace[i], static_cast<int>(i % 3)) << "at " << i;
  }
  for (std::size_t i = 0; i < 2; ++i) {
    ring.fibers[i].release();
    pool.release(stacks[i]);
  }
}

// ---------------------------------------------------------------------------
// Callee-saved registers. The switch itself is raw here (no sanitizer
// annotations), so the test is left to the uninstrumented builds.

#if !defined(SPINDLE_TEST_ASAN) && !defined(SPINDLE_TEST_TSAN)

#if defined(__x86_64__)
constexpr std::size_t kCalleeSaved = 6;  // rbx rbp r12 r13 r14 r15
constexpr const char* kCalleeSavedNames[kCalleeSaved] = {"rbx", "rbp", "r12", "r13", "r14", "r15"};
#elif defined(__aarch64__)
constexpr std::size_t kCalleeSaved = 19;  // x19-x28 x29 d8-d15
constexpr const char* kCalleeSavedNames[kCalleeSaved] = {
    "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28",
    "x29", "d8",  "d9",  "d10", "d11", "d12", "d13", "d14", "d15"};
#endif

using Registers = std::array<std::uint64_t, kCalleeSaved>;

Registers register_patterns(std::uint64_t side, std::uint64_t round) {
  Registers r;
  for (std::size_t i = 0; i < kCalleeSaved; ++i) {
    // Distinct per side, round and register, with high and low bits set.
    r[i] =
        0xC3A5'0000'0000'005AULL ^ (side << 56) ^ (round << 24) ^ ((i + 1) * 0x0101'0101'0100ULL);
  }
  return r;
}

struct RegisterRun {
  ctx::Context main;
  ctx::Context other;
  std::uint64_t rounds = 0;
  std::vector<std::string> other_errors;
};

void check_registers(const Registers& expected, const Registers& actual, const char* who,
                     std::uint64_t round, std::vector<std::string>& errors) {
  for (std::size_t i = 0; i < kCalleeSaved; ++i) {
    if (expected[i] != actual[i] && errors.size() < 12) {
      char line[160];
      std::snprintf(line, sizeof line,
                    "%s round %" PRIu64 ": %s is 0x%016" PRIx64 ", expected 0x%016" PRIx64, who,
                    round, kCalleeSavedNames[i], actual[i], expected[i]);
      errors.emplace_back(line);
    }
  }
}

void register_clobber_entry(void* arg) {
  auto* run = static_cast<RegisterRun*>(arg);
  for (std::uint64_t round = 0; round < run->rounds; ++round) {
    Registers in = register_patterns(2, round);
    Registers out{};
    spindle_test_switch_with_patterns(&run->other.sp, run->main.sp, in.data(), out.data());
    check_registers(in, out, "other context", round, run->other_errors);
  }
  ctx::switch_context(run->other, run->main);
  std::abort();
}

TEST(ContextRegisters, CalleeSavedRegistersSurviveSwitch) {
  ctx::StackPool pool({.size = 64 * 1024});
  ctx::Stack stack = pool.allocate();
  RegisterRun run;
  run.rounds = 1000;
  run.other = ctx::make_context(stack.top(), &register_clobber_entry, &run);
  std::vector<std::string> main_errors;
  for (std::uint64_t round = 0; round < run.rounds; ++round) {
    Registers in = register_patterns(1, round);
    Registers out{};
    // Loads `in` into the callee-saved registers, switches to the other
    // context (which loads its own patterns and switches back), stores them.
    spindle_test_switch_with_patterns(&run.main.sp, run.other.sp, in.data(), out.data());
    check_registers(in, out, "main context", round, main_errors);
  }
  ctx::switch_context(run.main, run.other);  // the other checks its last round
  EXPECT_THAT(main_errors, ::testing::IsEmpty());
  EXPECT_THAT(run.other_errors, ::testing::IsEmpty());
  pool.release(stack);
}

#else

TEST(ContextRegisters, CalleeSavedRegistersSurviveSwitch) {
  GTEST_SKIP() << "raw register-level switch without sanitizer annotations; the uninstrumented "
                  "builds run this test";
}

#endif

// ---------------------------------------------------------------------------
// Floating-point control state

#if defined(__x86_64__)

struct FpControl {
  std::uint32_t mxcsr;
  std::uint16_t x87;
  bool operator==(const FpControl&) const = default;
};

constexpr std::uint32_t kMxcsrStatusFlags = 0x3F;  // sticky exception flags, not control

FpControl read_fp_control(bool with_status_flags = false) {
  FpControl c{};
  asm volatile("stmxcsr %0" : "=m"(c.mxcsr)::"memory");
  asm volatile("fnstcw %0" : "=m"(c.x87)::"memory");
  if (!with_status_flags) c.mxcsr &= ~kMxcsrStatusFlags;
  return c;
}

void write_fp_control(const FpControl& c) {
  asm volatile("ldmxcsr %0" ::"m"(c.mxcsr) : "memory");
  asm volatile("fldcw %0" ::"m"(c.x87) : "memory");
}

constexpr FpControl kAbiDefault{0x1F80, 0x037F};  // all masked, round to nearest
constexpr FpControl kTowardZero{0x1F80 | 0x6000, 0x037F | 0x0C00};
constexpr FpControl kUpward{0x1F80 | 0x4000, 0x037F | 0x0800};

std::string describe(const FpControl& c) {
  char text[64];
  std::snprintf(text, sizeof text, "MXCSR 0x%04x, x87 control 0x%04x", c.mxcsr, c.x87);
  return text;
}

#elif defined(__aarch64__)

struct FpControl {
  std::uint64_t fpcr;
  bool operator==(const FpControl&) const = default;
};

FpControl read_fp_control(bool = false) {
  FpControl c{};
  asm volatile("mrs %0, fpcr" : "=r"(c.fpcr)::"memory");
  return c;
}

void write_fp_control(const FpControl& c) {
  asm volatile("msr fpcr, %0" ::"r"(c.fpcr) : "memory");
}

constexpr std::uint64_t kRMode = 3ULL << 22;
constexpr FpControl kAbiDefault{0};                        // round to nearest, no traps, IEEE
constexpr FpControl kTowardZero{3ULL << 22};               // RZ
constexpr FpControl kUpward{(1ULL << 22) | (1ULL << 24)};  // RP, flush-to-zero

std::string describe(const FpControl& c) {
  char text[48];
  std::snprintf(text, sizeof text, "FPCR 0x%08" PRIx64, c.fpcr);
  return text;
}

#endif

// Restores the test thread's FP control state however the test ends.
struct FpControlGuard {
  FpControl saved = read_fp_control(/*with_status_flags=*/true);
  ~FpControlGuard() { write_fp_control(saved); }
};

volatile float g_one = 1.0f;
volatile float g_three = 3.0f;

// 1/3 is inexact, so its last bit shows the rounding mode in force.
float one_third() {
  return g_one / g_three;
}

TEST(ContextFpu, FreshContextStartsWithAbiDefaults) {
  FpControlGuard guard;
  write_fp_control(kTowardZero);  // the creator's state must not leak in
  ctx::StackPool pool({.size = 64 * 1024});
  FpControl seen{};
  TestFiber fiber(pool, [&](TestFiber&) { seen = read_fp_control(/*with_status_flags=*/true); });
  fiber.resume();
  ASSERT_TRUE(fiber.finished());
#if defined(__x86_64__)
  EXPECT_EQ(seen, kAbiDefault) << describe(seen);
#else
  EXPECT_EQ(seen.fpcr & kRMode, 0u) << describe(seen);
  EXPECT_EQ(seen, kAbiDefault) << describe(seen);
#endif
  EXPECT_EQ(read_fp_control(), kTowardZero) << describe(read_fp_control());
}

TEST(ContextFpu, ControlStateBelongsToEachContext) {
  FpControlGuard guard;
  write_fp_control(kTowardZero);
  const float main_third = one_third();

  ctx::StackPool pool({.size = 64 * 1024});
  FpControl fiber_initial{}, fiber_after_main{};
  float fiber_third = 0, fiber_third_after_main = 0;
  TestFiber fiber(pool, [&](TestFiber& self) {
    fiber_initial = read_fp_control();
    write_fp_control(kUpward);
    fiber_third = one_third();
    self.yield();
    fiber_after_main = read_fp_control();
    fiber_third_after_main = one_third();
    self.yield();
  });

  fiber.resume();
  EXPECT_EQ(fiber_initial, kAbiDefault) << describe(fiber_initial);
  FpControl main_now = read_fp_control();
  EXPECT_EQ(main_now, kTowardZero) << describe(main_now);
  EXPECT_EQ(one_third(), main_third);
  EXPECT_GT(fiber_third, main_third) << "upward and toward-zero rounding give the same 1/3";

  // Main changes its own mode between the fiber's runs; the fiber keeps its own.
  write_fp_control(kAbiDefault);
  fiber.resume();
  EXPECT_EQ(fiber_after_main, kUpward) << describe(fiber_after_main);
  EXPECT_EQ(fiber_third_after_main, fiber_third);
  main_now = read_fp_control();
  EXPECT_EQ(main_now, kAbiDefault) << describe(main_now);

  fiber.resume();
  ASSERT_TRUE(fiber.finished());
  main_now = read_fp_control();
  EXPECT_EQ(main_now, kAbiDefault) << describe(main_now);
}

// ---------------------------------------------------------------------------
// Exceptions and unwinding on a context's stack

struct CountsDestruction {
  int& destroyed;
  ~CountsDestruction() { ++destroyed; }
};

volatile int g_sink = 0;

[[gnu::noinline]] int throw_from_depth(int depth, int& destroyed) {
  CountsDestruction guard{destroyed};
  if (depth == 0) throw std::runtime_error("thrown at the bottom");
  int below = throw_from_depth(depth - 1, destroyed);
  g_sink = below;
  return below + 1;
}

TEST(ContextExceptions, ThrowAndCatchInsideAContextThroughSeveralFrames) {
  ctx::StackPool pool({.size = 128 * 1024});
  int caught = 0, destroyed = 0, expected_destroyed = 0, wrong_message = 0;
  constexpr int kThrows = 20;
  TestFiber fiber(pool, [&](TestFiber& self) {
    for (int i = 0; i < kThrows; ++i) {
      const int depth = 3 + i % 5;
      try {
        if (i % 2 == 0) self.yield();  // a switch while the try block is open
        throw_from_depth(depth, destroyed);
      } catch (const std::runtime_error& e) {
        ++caught;
        if (std::string(e.what()) != "thrown at the bottom") ++wrong_message;
      }
      expected_destroyed += depth + 1;
      self.yield();
    }
  });
  int main_caught = 0;
  while (!fiber.finished()) {
    fiber.resume();
    // The main context throws and catches in between, on its own stack.
    try {
      throw std::logic_error("main");
    } catch (const std::logic_error&) {
      ++main_caught;
    }
  }
  EXPECT_EQ(caught, kThrows);
  EXPECT_EQ(wrong_message, 0);
  EXPECT_EQ(destroyed, expected_destroyed) << "destructors of unwound frames did not all run";
  EXPECT_GT(main_caught, kThrows);
}

// The main context is inside a catch block while a context throws and
// catches to completion: the thread's exception state stays consistent as
// long as the handlers nest.
TEST(ContextExceptions, NestedInsideAnActiveHandlerOfAnotherContext) {
  ctx::StackPool pool({.size = 128 * 1024});
  int fiber_caught = 0, destroyed = 0;
  TestFiber fiber(pool, [&](TestFiber&) {
    try {
      throw_from_depth(4, destroyed);
    } catch (const std::runtime_error&) {
      ++fiber_caught;
    }
  });
  std::string rethrown;
  try {
    try {
      throw std::out_of_range("outer");
    } catch (const std::out_of_range&) {
      fiber.resume();
      throw;  // the exception being handled is still main's own
    }
  } catch (const std::out_of_range& e) {
    rethrown = e.what();
  }
  EXPECT_TRUE(fiber.finished());
  EXPECT_EQ(fiber_caught, 1);
  EXPECT_EQ(destroyed, 5);
  EXPECT_EQ(rethrown, "outer");
}

// How a joined fiber hands its exception to the one that waits for it.
TEST(ContextExceptions, ExceptionPtrCrossesContexts) {
  ctx::StackPool pool({.size = 128 * 1024});
  std::exception_ptr error;
  int destroyed = 0;
  TestFiber fiber(pool, [&](TestFiber&) {
    try {
      throw_from_depth(6, destroyed);
    } catch (...) {
      error = std::current_exception();
    }
  });
  fiber.resume();
  ASSERT_TRUE(fiber.finished());
  ASSERT_TRUE(error);
  EXPECT_EQ(destroyed, 7);
  EXPECT_THROW(std::rethrow_exception(error), std::runtime_error);
}

// The code address of each frame an unwinder walks through.
struct Walk {
  std::vector<std::uintptr_t> ips;
};

_Unwind_Reason_Code record_frame(_Unwind_Context* context, void* walk) {
  auto& ips = static_cast<Walk*>(walk)->ips;
  ips.push_back(_Unwind_GetIP(context));
  return ips.size() < 200 ? _URC_NO_REASON : _URC_NORMAL_STOP;  // a runaway walk
}

[[gnu::noinline]] _Unwind_Reason_Code backtrace_from_depth(int depth, Walk& walk) {
  if (depth == 0) return _Unwind_Backtrace(&record_frame, &walk);
  _Unwind_Reason_Code result = backtrace_from_depth(depth - 1, walk);
  g_sink = depth;
  return result;
}

struct WalkRun {
  ctx::Execution main;
  ctx::Execution fiber;
  Walk walk;
  _Unwind_Reason_Code result = _URC_NO_REASON;
};

void walk_entry(void* arg) {
  ctx::on_context_entry();
  auto* run = static_cast<WalkRun*>(arg);
  run->result = backtrace_from_depth(5, run->walk);
  ctx::jump(run->fiber, run->main, /*from_is_finished=*/true);
  std::abort();
}

}  // namespace

// Hidden, but part of this program (the context layer is linked statically).
extern "C" void spindle_context_trampoline();

namespace {

// The trampoline's CFI ends the walk: an unwinder (exceptions, backtraces,
// profilers) that starts on a context's stack stops at the context's first
// frame instead of reading whatever lies above the stack top.
TEST(ContextExceptions, UnwinderStopsAtTheTrampoline) {
  ctx::StackPool pool({.size = 128 * 1024});
  ctx::Stack stack = pool.allocate();
  // Above the context's top lie words that look like return addresses into
  // code with unwind info: only the CFI can tell the unwinder to stop.
  std::byte* top = stack.top() - 64;
  const std::uintptr_t decoy = reinterpret_cast<std::uintptr_t>(&backtrace_from_depth) + 16;
  for (std::byte* p = top; p < stack.top(); p += sizeof decoy) std::memcpy(p, &decoy, sizeof decoy);

  WalkRun run;
  run.main = ctx::Execution::for_current_thread();
  run.fiber = ctx::Execution::for_stack(stack.low(), stack.usable_size());
  run.fiber.ctx = ctx::make_context(top, &walk_entry, &run);
  ctx::jump(run.main, run.fiber);
  run.fiber.release();
  pool.release(stack);

  EXPECT_EQ(run.result, _URC_END_OF_STACK);
  const std::uintptr_t trampoline = reinterpret_cast<std::uintptr_t>(&spindle_context_trampoline);
  const std::vector<std::uintptr_t>& ips = run.walk.ips;
  auto in_trampoline = [&](std::uintptr_t ip) { return ip > trampoline && ip <= trampoline + 16; };
  auto last = std::find_if(ips.rbegin(), ips.rend(), in_trampoline);
  ASSERT_NE(last, ips.rend()) << "the walk never reached the trampoline (" << ips.size()
                              << " frames)";
  const auto index = static_cast<std::size_t>(ips.rend() - last) - 1;
  EXPECT_GE(index, 6u) << "the frames of the entry function are missing";
  for (std::size_t i = index + 1; i < ips.size(); ++i) {
    EXPECT_EQ(ips[i], 0u) << "frame " << i << " beyond the trampoline (" << ips.size()
                          << " frames)";
  }
}

class ContextExceptionsDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, kDeathTestStyle); }
};

// An exception that escapes the entry function finds no handler (the walk
// ends at the trampoline) and terminates the program, as it would on a thread.
TEST_F(ContextExceptionsDeathTest, EscapingTheEntryFunctionTerminates) {
  EXPECT_EXIT(
      {
        ctx::StackPool pool({.size = 128 * 1024});
        TestFiber fiber(pool,
                        [](TestFiber&) { throw std::runtime_error("escaped the entry function"); });
        fiber.resume();
      },
      ::testing::KilledBySignal(SIGABRT), "escaped the entry function");
}

// ---------------------------------------------------------------------------
// Deep recursion on a pooled stack

struct DeepRun {
  std::uintptr_t top = 0;
  std::size_t limit = 0;  // stop recursing once this many bytes are in use
  std::size_t max_used = 0;
  int max_depth = 0;
  bool intact = true;
};

[[gnu::noinline]] void recurse_deep(DeepRun& run, int depth) {
  volatile unsigned char frame[1024];
  for (std::size_t i = 0; i < sizeof frame; ++i) frame[i] = static_cast<unsigned char>(depth + i);
  const std::size_t used = run.top - addr(__builtin_frame_address(0));
  run.max_used = std::max(run.max_used, used);
  run.max_depth = std::max(run.max_depth, depth);
  // Leave room for one more frame and what it calls.
  if (used + 4096 < run.limit) recurse_deep(run, depth + 1);
  for (std::size_t i = 0; i < sizeof frame; ++i) {
    if (frame[i] != static_cast<unsigned char>(depth + i)) run.intact = false;
  }
}

TEST(ContextStack, DeepRecursionUsesNearlyAllOfTheStack) {
  constexpr std::size_t kSize = 256 * 1024;
  ctx::StackPool pool({.size = kSize});
  DeepRun run;
  run.limit = kSize * 9 / 10;
  TestFiber fiber(pool, [&](TestFiber&) { recurse_deep(run, 0); });
  run.top = addr(fiber.stack().top());
  ASSERT_EQ(fiber.stack().usable_size(), kSize);
  fiber.resume();
  ASSERT_TRUE(fiber.finished());
  EXPECT_TRUE(run.intact) << "a frame's bytes changed while deeper frames ran";
  EXPECT_GE(run.max_used, kSize * 85 / 100);
  EXPECT_LE(run.max_used, kSize * 9 / 10);
  EXPECT_GE(run.max_used, static_cast<std::size_t>(run.max_depth) * 1024)
      << "frames smaller than their 1 KiB arrays: the recursion was optimised away";
}

// ---------------------------------------------------------------------------
// StackPool

// The mapping that holds `p` in /proc/self/maps: its permissions ("rw-p",
// "---p"), or "" when nothing is mapped there.
std::string permissions_at(const void* p) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long long lo = 0, hi = 0;
    char perms[5] = {};
    if (std::sscanf(line.c_str(), "%llx-%llx %4s", &lo, &hi, perms) != 3) continue;
    if (addr(p) >= lo && addr(p) < hi) return perms;
  }
  return "";
}

// Whether any mapping covers `p`. (Not mincore(): qemu-user fails it with
// ENOMEM for PROT_NONE pages.)
bool is_mapped(const void* p) {
  return !permissions_at(p).empty();
}

// Whether the kernel can read the byte at `p` (EFAULT otherwise): probes a
// guard page without faulting.
bool kernel_can_read(const void* p) {
  int fds[2];
  if (::pipe(fds) != 0) return false;
  const bool ok = ::write(fds[1], p, 1) == 1;
  ::close(fds[0]);
  ::close(fds[1]);
  return ok;
}

TEST(StackPool, SizeIsRoundedToWholePages) {
  const std::size_t page = page_size();
  ctx::StackPool pool({.size = 10000});
  const std::size_t rounded = (10000 + page - 1) / page * page;
  EXPECT_EQ(pool.options().size, rounded);
  ctx::Stack s = pool.allocate();
  EXPECT_EQ(s.usable_size(), rounded);
  EXPECT_EQ(s.guard_size, page);
  EXPECT_EQ(s.mapping_size, rounded + page);
  EXPECT_EQ(addr(s.base) % page, 0u);
  EXPECT_EQ(addr(s.low()) % page, 0u);
  EXPECT_EQ(addr(s.top()) % page, 0u);
  EXPECT_EQ(s.top(), s.low() + s.usable_size());
  pool.release(s);

  ctx::StackPool exact({.size = 8 * page});
  EXPECT_EQ(exact.options().size, 8 * page);
}

TEST(StackPool, ReleasedStackIsReused) {
  ctx::StackPool pool({.size = 64 * 1024, .max_cached = 4});
  EXPECT_EQ(pool.cached(), 0u);
  ctx::Stack first = pool.allocate();
  std::memset(first.low(), 0x5A, first.usable_size());  // all of it is writable
  std::byte* base = first.base;
  pool.release(first);
  EXPECT_EQ(pool.cached(), 1u);
  EXPECT_TRUE(is_mapped(base));

  ctx::Stack again = pool.allocate();
  EXPECT_EQ(pool.cached(), 0u);
  EXPECT_EQ(again.base, base);
  EXPECT_EQ(again.mapping_size, first.mapping_size);
  EXPECT_EQ(again.guard_size, first.guard_size);
  std::memset(again.low(), 0x3C, again.usable_size());

  // Several at once come back in some order, all distinct, all reused.
  std::vector<ctx::Stack> stacks{again, pool.allocate(), pool.allocate()};
  std::vector<std::byte*> bases;
  for (const ctx::Stack& s : stacks) bases.push_back(s.base);
  for (const ctx::Stack& s : stacks) pool.release(s);
  EXPECT_EQ(pool.cached(), 3u);
  std::vector<std::byte*> reused;
  for (int i = 0; i < 3; ++i) reused.push_back(pool.allocate().base);
  EXPECT_EQ(pool.cached(), 0u);
  std::sort(bases.begin(), bases.end());
  std::sort(reused.begin(), reused.end());
  EXPECT_EQ(reused, bases);
  EXPECT_EQ(std::adjacent_find(reused.begin(), reused.end()), reused.end());
  for (std::byte* b : reused) pool.release(ctx::Stack{b, first.mapping_size, first.guard_size});
}

TEST(StackPool, KeepsAtMostMaxCachedAndUnmapsTheRest) {
  ctx::StackPool pool({.size = 64 * 1024, .max_cached = 2});
  std::vector<ctx::Stack> stacks;
  for (int i = 0; i < 5; ++i) stacks.push_back(pool.allocate());
  for (const ctx::Stack& s : stacks) EXPECT_TRUE(is_mapped(s.low()));
  for (const ctx::Stack& s : stacks) pool.release(s);
  EXPECT_EQ(pool.cached(), 2u);
  // The first two released are cached, the other three unmapped.
  for (std::size_t i = 0; i < stacks.size(); ++i) {
    const bool kept = i < 2;
    EXPECT_EQ(is_mapped(stacks[i].base), kept) << "stack " << i;
    EXPECT_EQ(is_mapped(stacks[i].low()), kept) << "stack " << i;
    EXPECT_EQ(is_mapped(stacks[i].top() - 1), kept) << "stack " << i;
  }
}

TEST(StackPool, DestructorUnmapsCachedStacks) {
  std::vector<ctx::Stack> stacks;
  {
    ctx::StackPool pool({.size = 64 * 1024});
    for (int i = 0; i < 3; ++i) stacks.push_back(pool.allocate());
    for (const ctx::Stack& s : stacks) pool.release(s);
    EXPECT_EQ(pool.cached(), 3u);
  }
  for (const ctx::Stack& s : stacks) {
    EXPECT_FALSE(is_mapped(s.low()));
    EXPECT_FALSE(is_mapped(s.base));
  }
}

TEST(StackPool, OtherSizesBypassTheCache) {
  const std::size_t page = page_size();
  ctx::StackPool pool({.size = 64 * 1024, .max_cached = 4});
  ctx::Stack cached = pool.allocate();
  pool.release(cached);
  ASSERT_EQ(pool.cached(), 1u);

  ctx::Stack big = pool.allocate(128 * 1024);
  EXPECT_EQ(pool.cached(), 1u) << "a stack of another size must not come from the cache";
  EXPECT_NE(big.base, cached.base);
  EXPECT_EQ(big.usable_size(), 128u * 1024);
  EXPECT_EQ(big.guard_size, page);
  pool.release(big);
  EXPECT_EQ(pool.cached(), 1u) << "a stack of another size must not enter the cache";
  EXPECT_FALSE(is_mapped(big.low()));

  // A size that rounds to the pool's is the pool's size.
  ctx::Stack same = pool.allocate(64 * 1024 - page + 1);
  EXPECT_EQ(same.base, cached.base);
  EXPECT_EQ(pool.cached(), 0u);
  pool.release(same);

  // A stack without a guard page does not fit a guarded pool either.
  ctx::Stack unguarded = ctx::StackPool::map(64 * 1024, false);
  pool.release(unguarded);
  EXPECT_EQ(pool.cached(), 1u);
  EXPECT_FALSE(is_mapped(unguarded.low()));
}

TEST(StackPool, GuardPageIsInaccessible) {
  const std::size_t page = page_size();
  ctx::StackPool pool({.size = 64 * 1024});
  ctx::Stack s = pool.allocate();
  ASSERT_EQ(s.guard_size, page);
  EXPECT_EQ(s.low(), s.base + page);

  EXPECT_TRUE(s.guard_contains(s.base));
  EXPECT_TRUE(s.guard_contains(s.low() - 1));
  EXPECT_FALSE(s.guard_contains(s.low()));
  EXPECT_FALSE(s.guard_contains(s.base - 1));
  EXPECT_FALSE(s.guard_contains(s.top() - 1));

  EXPECT_EQ(permissions_at(s.base), "---p");
  EXPECT_EQ(permissions_at(s.low() - 1), "---p");
  EXPECT_EQ(permissions_at(s.low()), "rw-p");
  EXPECT_EQ(permissions_at(s.top() - 1), "rw-p");
  EXPECT_FALSE(kernel_can_read(s.base));
  EXPECT_FALSE(kernel_can_read(s.low() - 1));
  EXPECT_TRUE(kernel_can_read(s.low()));

  // A reused stack keeps its guard.
  std::byte* base = s.base;
  pool.release(s);
  s = pool.allocate();
  ASSERT_EQ(s.base, base);
  EXPECT_EQ(permissions_at(s.base), "---p");
  EXPECT_FALSE(kernel_can_read(s.base));
  pool.release(s);
}

TEST(StackPool, NoGuardPageWhenDisabled) {
  ctx::StackPool pool({.size = 64 * 1024, .guard = false});
  ctx::Stack s = pool.allocate();
  EXPECT_EQ(s.guard_size, 0u);
  EXPECT_EQ(s.low(), s.base);
  EXPECT_EQ(s.mapping_size, 64u * 1024);
  EXPECT_FALSE(s.guard_contains(s.base));
  EXPECT_FALSE(s.guard_contains(s.base - 1));
  EXPECT_EQ(permissions_at(s.base), "rw-p");
  EXPECT_TRUE(kernel_can_read(s.base));
  pool.release(s);
  EXPECT_EQ(pool.cached(), 1u);
  ctx::Stack again = pool.allocate();
  EXPECT_EQ(again.base, s.base);
  pool.release(again);
}

TEST(StackPool, MapFailureThrowsSystemErrorNamingMmap) {
  ctx::StackPool pool({.size = 64 * 1024});
  try {
    ctx::Stack s = pool.allocate(std::size_t{1} << 62);  // more than any address space
    pool.release(s);
    ADD_FAILURE() << "mapping 4 EiB succeeded";
  } catch (const std::system_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("mmap"));
    EXPECT_EQ(e.code().value(), ENOMEM);
  }
}

// A stack that ran a context which never returned (it finished with a final
// switch) is clean for the next context that gets it from the pool.
[[gnu::noinline]] void finish_with_locals(TestFiber& self, int& sum) {
  volatile int locals[64];
  for (int i = 0; i < 64; ++i) locals[i] = i;
  for (int i = 0; i < 64; ++i) sum += locals[i];
  self.yield();  // the caller stops resuming: these frames never return
}

TEST(StackPool, StackOfAnAbandonedContextCanBeReused) {
  ctx::StackPool pool({.size = 64 * 1024});
  int sum = 0;
  std::byte* base = nullptr;
  {
    TestFiber abandoned(pool, [&](TestFiber& self) { finish_with_locals(self, sum); });
    abandoned.resume();
    EXPECT_FALSE(abandoned.finished());
    base = abandoned.stack().base;
  }
  EXPECT_EQ(sum, 64 * 63 / 2);
  ASSERT_EQ(pool.cached(), 1u);
  DeepRun run;
  run.limit = pool.options().size / 2;
  TestFiber next(pool, [&](TestFiber&) { recurse_deep(run, 0); });
  EXPECT_EQ(next.stack().base, base);
  run.top = addr(next.stack().top());
  next.resume();
  EXPECT_TRUE(next.finished());
  EXPECT_TRUE(run.intact);
}

// ---------------------------------------------------------------------------
// Overflow report

ctx::Stack g_overflow_stack;

bool lookup_overflow(const void* fault_address, ctx::OverflowReport& report) {
  if (!g_overflow_stack.guard_contains(fault_address)) return false;
  report.fiber_id = 7;
  report.fiber_name = "overflower";
  report.stack_size = g_overflow_stack.usable_size();
  return true;
}

volatile bool g_keep_recursing = true;

[[gnu::noinline]] std::uint64_t recurse_forever(std::uint64_t depth) {
  volatile unsigned char frame[256];
  frame[0] = static_cast<unsigned char>(depth);
  frame[sizeof frame - 1] = static_cast<unsigned char>(depth);
  std::uint64_t below = g_keep_recursing ? recurse_forever(depth + 1) : 0;
  return below + frame[0] + frame[sizeof frame - 1];
}

// Runs `body` on a 64 KiB guarded stack with the overflow handler installed
// and the lookup recognising that stack's guard page. Does not return.
[[noreturn]] void run_on_watched_stack(void (*body)()) {
  g_overflow_stack = ctx::StackPool::map(64 * 1024, true);
  ctx::install_overflow_handler(&lookup_overflow);
  ctx::ensure_alternate_signal_stack();
  static ctx::Execution main;
  static ctx::Execution fiber;
  static void (*run)() = nullptr;
  run = body;
  main = ctx::Execution::for_current_thread();
  fiber = ctx::Execution::for_stack(g_overflow_stack.low(), g_overflow_stack.usable_size());
  fiber.ctx = ctx::make_context(
      g_overflow_stack.top(),
      [](void*) {
        ctx::on_context_entry();
        run();
        ctx::jump(fiber, main, true);
      },
      nullptr);
  ctx::jump(main, fiber);
  std::fprintf(stderr, "the context returned\n");
  std::exit(3);
}

void overflow_the_stack() {
  g_sink = static_cast<int>(recurse_forever(0));
}

// A store into the unmapped page at address 0 (not to nullptr itself, which
// UBSan would catch before the fault).
void store_to_page_zero() {
  volatile std::uintptr_t near_null = 64;
  *reinterpret_cast<volatile int*>(near_null) = 42;
}

void touch_unrelated_inaccessible_page() {
  void* page = ::mmap(nullptr, page_size(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) std::exit(4);
  *static_cast<volatile int*>(page) = 42;
}

class OverflowDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, kDeathTestStyle); }
};

TEST_F(OverflowDeathTest, GuardPageFaultNamesTheFiber) {
  EXPECT_EXIT(run_on_watched_stack(&overflow_the_stack), ::testing::KilledBySignal(SIGABRT),
              "spindle: fiber 7 \"overflower\" overflowed its stack of 64 KiB \\(fault at 0x");
}

// How a fault that is not an overflow ends: the plain crash, or under a
// sanitizer that sanitizer's report (its handler was there first).
#if defined(SPINDLE_TEST_ASAN)
#define EXPECT_PLAIN_SEGV(statement)                   \
  EXPECT_EXIT(statement, ::testing::ExitedWithCode(1), \
              AllOf(HasSubstr("AddressSanitizer: SEGV"), Not(HasSubstr("spindle:"))))
#elif defined(SPINDLE_TEST_TSAN)
#define EXPECT_PLAIN_SEGV(statement)                    \
  EXPECT_EXIT(statement, ::testing::ExitedWithCode(66), \
              AllOf(HasSubstr("ThreadSanitizer: SEGV"), Not(HasSubstr("spindle:"))))
#else
#define EXPECT_PLAIN_SEGV(statement) \
  EXPECT_EXIT(statement, ::testing::KilledBySignal(SIGSEGV), Not(HasSubstr("spindle:")))
#endif

TEST_F(OverflowDeathTest, FaultOnPageZeroIsNotAnOverflow) {
  EXPECT_PLAIN_SEGV(run_on_watched_stack(&store_to_page_zero));
}

TEST_F(OverflowDeathTest, FaultOnAnotherInaccessiblePageIsNotAnOverflow) {
  EXPECT_PLAIN_SEGV(run_on_watched_stack(&touch_unrelated_inaccessible_page));
}

bool has_alternate_signal_stack(stack_t* out = nullptr) {
  stack_t current;
  if (::sigaltstack(nullptr, &current) != 0) return false;
  if (out != nullptr) *out = current;
  return (current.ss_flags & SS_DISABLE) == 0;
}

TEST(Overflow, AlternateSignalStackPerThreadAndOnlyOnce) {
  std::thread([] {
    ctx::ensure_alternate_signal_stack();
    stack_t first;
    ASSERT_TRUE(has_alternate_signal_stack(&first));
    EXPECT_GE(first.ss_size, 16u * 1024);
    ctx::ensure_alternate_signal_stack();
    stack_t second;
    ASSERT_TRUE(has_alternate_signal_stack(&second));
    EXPECT_EQ(second.ss_sp, first.ss_sp);
    EXPECT_EQ(second.ss_size, first.ss_size);
  }).join();
}

}  // namespace
