// Fire-and-forget writes, shutdowns and closes: a queue per fd, drained in
// order by a detached fiber.
#include "spindle/io/async.hpp"

#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <unordered_map>

#include "io/io_internal.hpp"
#include "spindle/fiber/fiber.hpp"
#include "spindle/io/ops.hpp"

namespace spindle {

using namespace io_detail;

namespace io_detail {

struct AsyncItem {
  enum class Kind : std::uint8_t { write, shutdown, close } kind;
  int how = 0;
  Deadline deadline;
  std::string text;
  std::vector<std::byte> bytes;
  std::shared_ptr<const void> owner;
  std::span<const std::byte> data;
};

struct AsyncQueue {
  std::deque<AsyncItem> items;
  bool failed = false;  // a write or shutdown failed: drop the rest but closes
};

struct AsyncQueues {
  std::unordered_map<int, AsyncQueue*> by_fd;
  std::size_t bytes = 0;
};

}  // namespace io_detail

namespace {

std::mutex g_handler_mu;
AsyncErrorHandler g_handler;  // empty: print to stderr

void report(State& st, const AsyncError& e) noexcept {
  ++st.async_errors;
  AsyncErrorHandler handler;
  {
    std::lock_guard lock(g_handler_mu);
    handler = g_handler;
  }
  if (handler) {
    try {
      handler(e);
    } catch (...) {
      // A handler must not throw; there is nobody to give it to.
    }
    return;
  }
  std::fprintf(stderr, "spindle: %s fd %d: %s\n", e.op, e.fd, e.error.message().c_str());
}

AsyncQueues& queues_of(State& st) {
  if (st.async == nullptr) {
    st.async = new AsyncQueues;
    st.async_destroy = [](void* p) noexcept { delete static_cast<AsyncQueues*>(p); };
  }
  return *static_cast<AsyncQueues*>(st.async);
}

const char* op_name(AsyncItem::Kind k) noexcept {
  switch (k) {
    case AsyncItem::Kind::write:
      return "write_async";
    case AsyncItem::Kind::shutdown:
      return "shutdown_async";
    case AsyncItem::Kind::close:
      return "close_async";
  }
  return "?";
}

// Runs one item; returns 0 or the errno that failed it.
int execute(AsyncItem& item, int fd) noexcept {
  try {
    switch (item.kind) {
      case AsyncItem::Kind::write:
        spindle::write(fd, item.data, item.deadline);
        return 0;
      case AsyncItem::Kind::shutdown:
        spindle::shutdown(fd, item.how, item.deadline);
        return 0;
      case AsyncItem::Kind::close:
        spindle::close(fd);
        return 0;
    }
  } catch (const std::system_error& e) {
    return e.code().value();
  } catch (const TimedOut&) {
    return ETIMEDOUT;
  } catch (const Cancelled&) {
    // The runtime is tearing the fiber down: a close must still happen.
    if (item.kind == AsyncItem::Kind::close) ::close(fd);
    return ECANCELED;
  } catch (...) {
    return EIO;
  }
  return 0;
}

void drain(State* st, int fd) {
  AsyncQueues& qs = queues_of(*st);
  AsyncQueue* q = qs.by_fd.at(fd);
  while (!q->items.empty()) {
    AsyncItem& item = q->items.front();
    bool skip = q->failed && item.kind != AsyncItem::Kind::close;
    if (!skip) {
      int err = execute(item, fd);
      if (err != 0) {
        if (item.kind != AsyncItem::Kind::close) q->failed = true;
        report(*st, {op_name(item.kind), fd, std::error_code(err, std::system_category())});
      }
    }
    qs.bytes -= item.data.size();
    q->items.pop_front();
  }
  qs.by_fd.erase(fd);
  delete q;
}

void enqueue(int fd, AsyncItem item) {
  // No cancellation point: cleanup code of a cancelled fiber may queue a
  // close, and it must not be refused.
  Op op = begin(op_name(item.kind), false);
  AsyncQueues& qs = queues_of(*op.st);
  std::size_t size = item.data.size() + item.text.size() + item.bytes.size();  // one is set
  if (qs.bytes + size > kAsyncQueueLimit) {
    throw_errno(ENOBUFS, {"write_async (queue limit reached)", fd});
  }
  auto [it, fresh] = qs.by_fd.try_emplace(fd, nullptr);
  if (fresh) {
    try {
      it->second = new AsyncQueue;
    } catch (...) {
      qs.by_fd.erase(it);
      throw;
    }
  }
  it->second->items.push_back(std::move(item));
  // Point at the owned bytes where they now live (a moved short string
  // keeps its characters inside the object).
  AsyncItem& placed = it->second->items.back();
  if (!placed.text.empty()) {
    placed.data = std::as_bytes(std::span(placed.text.data(), placed.text.size()));
  } else if (!placed.bytes.empty()) {
    placed.data = placed.bytes;
  }
  qs.bytes += size;
  if (fresh) {
    State* st = op.st;
    try {
      spin_detached([st, fd] { drain(st, fd); }, SpinOptions{.name = "async io"});
    } catch (...) {
      qs.bytes -= size;
      delete it->second;
      qs.by_fd.erase(it);
      throw;
    }
  }
}

}  // namespace

void write_async(int fd, std::span<const std::byte> data, Deadline deadline) {
  AsyncItem item{AsyncItem::Kind::write};
  item.deadline = deadline;
  item.bytes.assign(data.begin(), data.end());
  enqueue(fd, std::move(item));
}

void write_async(int fd, std::string data, Deadline deadline) {
  AsyncItem item{AsyncItem::Kind::write};
  item.deadline = deadline;
  item.text = std::move(data);
  enqueue(fd, std::move(item));
}

void write_async(int fd, std::vector<std::byte> data, Deadline deadline) {
  AsyncItem item{AsyncItem::Kind::write};
  item.deadline = deadline;
  item.bytes = std::move(data);
  enqueue(fd, std::move(item));
}

void write_async(int fd, std::shared_ptr<const void> owner, std::span<const std::byte> data,
                 Deadline deadline) {
  AsyncItem item{AsyncItem::Kind::write};
  item.deadline = deadline;
  item.owner = std::move(owner);
  item.data = data;
  enqueue(fd, std::move(item));
}

void shutdown_async(int fd, int how, Deadline deadline) {
  AsyncItem item{AsyncItem::Kind::shutdown};
  item.how = how;
  item.deadline = deadline;
  enqueue(fd, std::move(item));
}

void close_async(int fd) {
  enqueue(fd, AsyncItem{AsyncItem::Kind::close});
}

void set_async_error_handler(AsyncErrorHandler handler) {
  std::lock_guard lock(g_handler_mu);
  g_handler = std::move(handler);
}

std::size_t async_queued_bytes() {
  Op op = begin("async_queued_bytes", false);
  return op.st->async == nullptr ? 0 : static_cast<AsyncQueues*>(op.st->async)->bytes;
}

}  // namespace spindle
