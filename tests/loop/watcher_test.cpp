// The watcher contract, condition by condition, on the backend
// SPINDLE_BACKEND names: IN, OUT, HUP, RDHUP, ERR and their combinations,
// edge and oneshot modes, unwatch and modify inside callbacks, stale events.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <system_error>

#include "loop_test_util.hpp"
#include "spindle/loop/loop.hpp"

namespace {

using namespace spindle_test;
using spindle::Loop;
using spindle::Watcher;

// Callbacks that log a letter each, with the event they belong to: the
// loop's dispatch counter when they ran.
struct Log {
  Loop& loop;
  std::string text;
  std::uint64_t first_event = 0, last_event = 0;
  bool unwatch_after = true;  // one event is enough for most tests

  std::function<void(Watcher&)> cb(char letter) {
    return [this, letter](Watcher& w) {
      std::uint64_t ev = loop.stats().events_dispatched;
      if (text.empty()) first_event = ev;
      last_event = ev;
      text += letter;
      (void)w;
    };
  }
  // One event's worth: run turns until something was logged, then one more
  // turn's worth of the same event is impossible (we unwatch after a turn).
  void one_event(int fd, spindle::WatchOptions options) {
    loop.watch(fd, std::move(options));
    turn_until(loop, [&] { return !text.empty(); });
    loop.unwatch(fd);
  }
};

// A TCP listener on loopback, for connections that can fail or be reset.
struct Listener {
  int fd = -1;
  sockaddr_in addr{};
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    EXPECT_EQ(::listen(fd, 8), 0);
  }
  ~Listener() { ::close(fd); }
};

// A non-blocking socket whose connect to loopback was refused: ERR | HUP.
int refused_socket() {
  // A port that was just bound and closed is free, and nothing listens on it.
  int probe = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(probe);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  EXPECT_TRUE(rc == 0 || errno == EINPROGRESS || errno == ECONNREFUSED);
  return fd;
}

int socket_error(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  return err;
}

// --- one condition at a time -------------------------------------------------

TEST(WatcherConditions, InCallsReadOnly) {
  Loop loop;
  Log log{loop};
  Fds s = make_socketpair();
  put(s.b);
  log.one_event(s.a, {.read = log.cb('r'), .error = log.cb('e')});
  EXPECT_EQ(log.text, "r");
}

TEST(WatcherConditions, OutCallsWriteOnly) {
  Loop loop;
  Log log{loop};
  Fds s = make_socketpair();
  log.one_event(s.a, {.read = log.cb('r'), .write = log.cb('w'), .error = log.cb('e')});
  EXPECT_EQ(log.text, "w");  // writable, nothing to read
}

TEST(WatcherConditions, InAndOutInOneEventAreReadThenWrite) {
  Loop loop;
  Log log{loop};
  Fds s = make_socketpair();
  put(s.b);
  log.one_event(s.a, {.read = log.cb('r'), .write = log.cb('w'), .error = log.cb('e')});
  EXPECT_EQ(log.text, "rw");
  EXPECT_EQ(log.first_event, log.last_event);  // one event, both callbacks
}

TEST(WatcherConditions, HupAloneCallsRead) {
  Loop loop;
  Log log{loop};
  Fds p = make_pipe();
  p.close_b();  // the reader sees HUP, no data
  log.one_event(p.a, {.read = log.cb('r'), .write = log.cb('w'), .error = log.cb('e')});
  EXPECT_EQ(log.text, "r");
  char c;
  EXPECT_EQ(::read(p.a, &c, 1), 0);  // and read() finds EOF
}

TEST(WatcherConditions, HupNeverGoesToWrite) {
  Loop loop;
  Fds p = make_pipe();
  p.close_b();
  int writes = 0;
  loop.watch(p.a, {.write = [&](Watcher&) { ++writes; }});  // no read callback
  for (int i = 0; i < 5; ++i) loop.run_once(5ms);
  EXPECT_EQ(writes, 0);
}

TEST(WatcherConditions, InWithHupIsOneReadCall) {
  Loop loop;
  Log log{loop};
  Fds p = make_pipe();
  put(p.b, "abc");
  p.close_b();  // IN | HUP in the same event
  log.one_event(p.a, {.read = log.cb('r'), .error = log.cb('e')});
  EXPECT_EQ(log.text, "r");
  EXPECT_EQ(drain(p.a), 3);
}

TEST(WatcherConditions, PeerShutdownIsRead) {
  Loop loop;
  Log log{loop};
  Fds s = make_socketpair();
  ::shutdown(s.b, SHUT_WR);  // RDHUP (with IN: EOF is readable)
  log.one_event(s.a, {.read = log.cb('r'), .error = log.cb('e')});
  EXPECT_EQ(log.text, "r");
}

TEST(WatcherConditions, PeerCloseOfASocketIsRead) {
  Loop loop;
  Log log{loop};
  Fds s = make_socketpair();
  s.close_b();  // IN | RDHUP | HUP
  log.one_event(s.a, {.read = log.cb('r'), .error = log.cb('e')});
  EXPECT_EQ(log.text, "r");
}

TEST(WatcherConditions, ErrGoesToErrorOnlyWhenSet) {
  Loop loop;
  Log log{loop};
  Fds p = make_pipe();
  p.close_a();  // the writer sees ERR (| OUT)
  log.one_event(p.b, {.read = log.cb('r'), .write = log.cb('w'), .error = log.cb('e')});
  EXPECT_EQ(log.text, "e");
}

TEST(WatcherConditions, ErrWithoutErrorCallbackIsReadAndWrite) {
  Loop loop;
  Log log{loop};
  Fds p = make_pipe();
  p.close_a();
  log.one_event(p.b, {.read = log.cb('r'), .write = log.cb('w')});
  EXPECT_EQ(log.text, "rw");
  EXPECT_EQ(log.first_event, log.last_event);
}

TEST(WatcherConditions, ErrWithHupFromARefusedConnect) {
  Loop loop;
  for (bool with_error : {true, false}) {
    SCOPED_TRACE(with_error ? "with error callback" : "without");
    Log log{loop};
    int fd = refused_socket();
    spindle::WatchOptions o{.read = log.cb('r'), .write = log.cb('w')};
    if (with_error) {
      o.error = [&](Watcher& w) {
        EXPECT_EQ(socket_error(w.fd()), ECONNREFUSED);
        log.text += 'e';
      };
    }
    log.one_event(fd, std::move(o));
    // ERR | HUP: the error callback alone; without one, read once (not once
    // for ERR and again for HUP) and write.
    EXPECT_EQ(log.text, with_error ? "e" : "rw");
    ::close(fd);
  }
}

TEST(WatcherConditions, ErrorCallbackAloneSeesErrNotHup) {
  Loop loop;
  // HUP without ERR: an error-only watcher hears nothing.
  Fds p = make_pipe();
  p.close_b();
  int errors = 0;
  loop.watch(p.a, {.error = [&](Watcher&) { ++errors; }});
  for (int i = 0; i < 3; ++i) loop.run_once(5ms);
  EXPECT_EQ(errors, 0);
  loop.unwatch(p.a);
  // ERR: it does.
  Fds q = make_pipe();
  q.close_a();
  loop.watch(q.b, {.error = [&](Watcher& w) {
               ++errors;
               w.unwatch();
             }});
  turn_until(loop, [&] { return errors > 0; });
  EXPECT_EQ(errors, 1);
}

TEST(WatcherConditions, ConnectionResetIsAnError) {
  Loop loop;
  Listener listener;
  int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&listener.addr), sizeof(listener.addr)),
            0);
  int server = ::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(server, 0);
  linger lg{1, 0};  // close with RST
  ::setsockopt(server, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  ::close(server);
  int err = -1;
  std::string text;
  loop.watch(client, {.read = [&](Watcher&) { text += 'r'; },
                      .error =
                          [&](Watcher& w) {
                            err = socket_error(w.fd());
                            text += 'e';
                            w.unwatch();
                          }});
  turn_until(loop, [&] { return !text.empty(); });
  EXPECT_EQ(text, "e");
  EXPECT_EQ(err, ECONNRESET);
  ::close(client);
}

// --- modes ---------------------------------------------------------------------

TEST(WatcherModes, EdgeTriggeredNeedsADrain) {
  Loop loop;
  Fds p = make_pipe();
  int calls = 0;
  loop.watch(p.a, {.read =
                       [&](Watcher& w) {
                         ++calls;
                         char c;
                         ASSERT_EQ(::read(w.fd(), &c, 1), 1);  // one byte only: no drain
                       },
                   .edge_triggered = true});
  put(p.b, "abcd");
  turn_until(loop, [&] { return calls == 1; });
  for (int i = 0; i < 3; ++i) loop.run_once(5ms);
  EXPECT_EQ(calls, 1);  // three bytes left, but no new edge
  put(p.b, "e");        // a new edge
  turn_until(loop, [&] { return calls == 2; });
  for (int i = 0; i < 3; ++i) loop.run_once(5ms);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(drain(p.a), 3);
}

TEST(WatcherModes, EdgeTriggeredWriteReportsWhenRoomComesBack) {
  Loop loop;
  Fds p = make_pipe();
  while (::write(p.b, "xxxxxxxxxxxxxxxx", 16) > 0) {
  }  // full
  int writes = 0;
  loop.watch(p.b, {.write = [&](Watcher&) { ++writes; }, .edge_triggered = true});
  for (int i = 0; i < 3; ++i) loop.run_once(5ms);
  EXPECT_EQ(writes, 0);
  drain(p.a);
  turn_until(loop, [&] { return writes == 1; });
  for (int i = 0; i < 3; ++i) loop.run_once(5ms);
  EXPECT_EQ(writes, 1);
}

TEST(WatcherModes, OneshotDisarmsAndRearmsFromItsCallback) {
  Loop loop;
  Fds p = make_pipe();
  put(p.b);  // stays readable: level would fire every turn
  int calls = 0;
  loop.watch(p.a, {.read =
                       [&](Watcher& w) {
                         if (++calls < 3) w.rearm();
                       },
                   .oneshot = true});
  turn_until(loop, [&] { return calls == 3; });
  for (int i = 0; i < 5; ++i) loop.run_once(5ms);
  EXPECT_EQ(calls, 3);  // rearmed twice, then disarmed for good
}

TEST(WatcherModes, OneshotWriteAndRead) {
  Loop loop;
  Fds s = make_socketpair();
  put(s.b);
  std::string text;
  Watcher w = loop.watch(s.a, {.read = [&](Watcher&) { text += 'r'; },
                               .write = [&](Watcher&) { text += 'w'; },
                               .oneshot = true});
  turn_until(loop, [&] { return !text.empty(); });
  for (int i = 0; i < 3; ++i) loop.run_once(5ms);
  EXPECT_EQ(text, "rw");  // one event, both callbacks, then disarmed
  w.rearm();
  turn_until(loop, [&] { return text.size() == 4; });
  EXPECT_EQ(text, "rwrw");
}

// --- unwatch and modify inside callbacks -----------------------------------------

TEST(WatcherCallbacks, UnwatchInErrorSkipsTheRest) {
  Loop loop;
  Fds p = make_pipe();
  p.close_a();
  std::string text;
  loop.watch(p.b, {.write = [&](Watcher&) { text += 'w'; },
                   .error =
                       [&](Watcher& w) {
                         text += 'e';
                         w.unwatch();
                       }});
  for (int i = 0; i < 5; ++i) loop.run_once(5ms);
  EXPECT_EQ(text, "e");
}

TEST(WatcherCallbacks, UnwatchInReadOfAnErrSkipsWrite) {
  Loop loop;
  Fds p = make_pipe();
  p.close_a();  // ERR without an error callback: read + write
  std::string text;
  loop.watch(p.b, {.read =
                       [&](Watcher& w) {
                         text += 'r';
                         w.unwatch();
                       },
                   .write = [&](Watcher&) { text += 'w'; }});
  for (int i = 0; i < 5; ++i) loop.run_once(5ms);
  EXPECT_EQ(text, "r");
}

TEST(WatcherCallbacks, ModifyChangesCallbacksAndFlags) {
  Loop loop;
  Fds p = make_pipe();
  int a = 0, b = 0, data = 0;
  Watcher first = loop.watch(p.a, {.read = [&](Watcher&) { ++a; }});
  Watcher second =
      loop.modify(p.a, {.read = [&](Watcher&) { ++b; }, .oneshot = true, .data = &data});
  EXPECT_FALSE(first.active());  // a fresh generation
  EXPECT_TRUE(second.active());
  EXPECT_EQ(second.data(), &data);
  put(p.b);
  turn_until(loop, [&] { return b > 0; });
  for (int i = 0; i < 3; ++i) loop.run_once(5ms);
  EXPECT_EQ(a, 0);
  EXPECT_EQ(b, 1);                                                  // oneshot now
  Watcher third = second.modify({.read = [&](Watcher&) { ++a; }});  // level again
  turn_until(loop, [&] { return a >= 2; });
  EXPECT_GE(a, 2);
  EXPECT_THROW(second.modify({.read = [](Watcher&) {}}), std::system_error);  // stale handle
  third.unwatch();
}

TEST(WatcherCallbacks, ModifyOfAnUnwatchedFdIsAClearError) {
  Loop loop;
  Fds p = make_pipe();
  try {
    loop.modify(p.a, {.read = [](Watcher&) {}});
    FAIL() << "no error";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
    EXPECT_NE(std::string(e.what()).find("modify fd " + std::to_string(p.a)), std::string::npos)
        << e.what();
  }
}

TEST(WatcherCallbacks, ModifyInsideItsOwnReadSkipsTheOldWrite) {
  Loop loop;
  Fds s = make_socketpair();
  put(s.b);
  std::string text;
  loop.watch(s.a, {.read =
                       [&](Watcher& w) {
                         text += 'r';
                         w.modify({.read = [&](Watcher& w2) {
                           text += 'R';
                           w2.unwatch();
                         }});
                       },
                   .write = [&](Watcher&) { text += 'w'; }});
  turn_until(loop, [&] { return text.find('R') != std::string::npos; });
  EXPECT_EQ(text, "rR");
}

// The callbacks live inline in the loop's per-fd record: a callback that
// unwatches or replaces its own watcher keeps its captured state (here a
// heap-allocated string, which ASan watches) until it returns.
TEST(WatcherCallbacks, CapturedStateLastsUntilTheCallbackReturns) {
  Loop loop;
  Fds s = make_socketpair();
  put(s.b);
  std::string seen;
  int replaced_calls = 0;
  std::string name(100, 'n');
  loop.watch(s.a, {.read = [&, name](Watcher& w) {
                     w.modify({.read = [&, name](Watcher& w2) {
                       ++replaced_calls;
                       w2.unwatch();
                       seen += name.substr(0, 2);  // after its own unwatch
                     }});
                     seen += name.substr(0, 1);  // after its own replacement
                   }});
  turn_until(loop, [&] { return replaced_calls > 0; });
  for (int i = 0; i < 3; ++i) loop.run_once(5ms);
  EXPECT_EQ(seen, "nnn");
  EXPECT_EQ(replaced_calls, 1);
}

// An event fetched for the old watcher in the same round never reaches the
// callbacks that modify installed: they run from a later turn only.
TEST(WatcherStale, ModifyOfAnotherReadyFdDropsItsFetchedEvent) {
  Loop loop;
  Fds p1 = make_pipe();
  Fds p2 = make_pipe();
  put(p1.b);
  put(p2.b);
  std::uint64_t modified_in_turn = 0, new_called_in_turn = 0;
  int old_calls = 0;
  auto cb = [&](Watcher& w) {
    ++old_calls;
    if (modified_in_turn != 0) return;
    int other = w.fd() == p1.a ? p2.a : p1.a;
    modified_in_turn = loop.stats().turns;
    loop.modify(other, {.read = [&](Watcher& w2) {
                  if (new_called_in_turn == 0) new_called_in_turn = loop.stats().turns;
                  w2.unwatch();
                }});
    w.unwatch();
  };
  loop.watch(p1.a, {.read = cb});
  loop.watch(p2.a, {.read = cb});
  turn_until(loop, [&] { return new_called_in_turn != 0; });
  EXPECT_EQ(old_calls, 1);
  EXPECT_GT(new_called_in_turn, modified_in_turn);
}

TEST(WatcherStale, ReplacingAnotherReadyFdDropsItsFetchedEvent) {
  Loop loop;
  Fds p1 = make_pipe();
  Fds p2 = make_pipe();
  put(p1.b);
  put(p2.b);
  int old_calls = 0, new_calls = 0;
  auto cb = [&](Watcher& w) {
    ++old_calls;
    int other = w.fd() == p1.a ? p2.a : p1.a;
    // The replacement wants only OUT: a pipe's read end is never writable,
    // so any call it gets was the old event's.
    loop.watch(other, {.write = [&](Watcher&) { ++new_calls; }});
    w.unwatch();
  };
  loop.watch(p1.a, {.read = cb});
  loop.watch(p2.a, {.read = cb});
  turn_until(loop, [&] { return old_calls > 0; });
  for (int i = 0; i < 3; ++i) loop.run_once(5ms);
  EXPECT_EQ(old_calls, 1);
  EXPECT_EQ(new_calls, 0);
}

TEST(WatcherStale, StaleHandlesDoNothing) {
  Loop loop;
  Fds p = make_pipe();
  Watcher old = loop.watch(p.a, {.read = [](Watcher&) {}});
  loop.unwatch(p.a);
  int calls = 0;
  Watcher fresh = loop.watch(p.a, {.read = [&](Watcher&) { ++calls; }, .oneshot = true});
  old.unwatch();  // must not touch the new watcher
  old.rearm();
  EXPECT_TRUE(fresh.active());
  put(p.b);
  turn_until(loop, [&] { return calls > 0; });
  EXPECT_EQ(calls, 1);
}

// --- bad input -----------------------------------------------------------------

TEST(WatcherErrors, BadDescriptorsAreClearErrorsOnBothBackends) {
  Loop loop;
  for (int fd : {-1, 100000}) {
    try {
      loop.watch(fd, {.read = [](Watcher&) {}});
      FAIL() << "watch " << fd << " did not throw";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF) << e.what();
      EXPECT_NE(std::string(e.what()).find("watch fd " + std::to_string(fd)), std::string::npos)
          << e.what();
    }
  }
  Fds p = make_pipe();
  int closed = p.a;
  p.close_a();
  EXPECT_THROW(loop.watch(closed, {.read = [](Watcher&) {}}), std::system_error);
  EXPECT_FALSE(loop.has_work());  // nothing half-registered
}

}  // namespace
