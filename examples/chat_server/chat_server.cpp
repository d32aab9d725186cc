// chat_server [ADDRESS]: a line-based chat room. A client's first line is
// its name; every later line goes to everyone else as "name: line", and
// arrivals and departures are announced ("* name joined", "* name left").
//
// One hub fiber owns the room: connection fibers tell it what happens
// through a channel, and it hands each member's lines to that member's
// outbox channel, which a writer fiber drains into the socket. Outboxes are
// bounded: a member too slow to take its lines is disconnected instead of
// letting the server's memory grow.
#include <cstdio>
#include <exception>
#include <map>
#include <string>

#include "../common/endpoint.hpp"
#include "spindle/spindle.hpp"

namespace {

constexpr std::size_t kOutboxLines = 256;
constexpr std::size_t kMaxLine = 4096;

using Outbox = spindle::Channel<std::string>;

struct Event {
  enum class Kind { join, say, leave } kind;
  int id = 0;
  std::string text;          // join: the name; say: the line
  Outbox* outbox = nullptr;  // join: where the member's lines go
};

// Runs the room until the event channel closes.
void hub(spindle::Channel<Event>& events) {
  struct Member {
    std::string name;
    Outbox* outbox;
  };
  std::map<int, Member> members;
  auto drop = [&](int id) {
    auto it = members.find(id);
    if (it == members.end()) return std::string();
    std::string name = it->second.name;
    it->second.outbox->close();  // its writer finishes and hangs up
    members.erase(it);
    return name;
  };
  auto broadcast = [&](int from, const std::string& line) {
    std::vector<int> slow;
    for (auto& [id, m] : members) {
      if (id != from && !m.outbox->try_send(std::string(line))) slow.push_back(id);
    }
    for (int id : slow) {
      std::fprintf(stderr, "chat_server: %s is too slow, disconnecting\n",
                   members.at(id).name.c_str());
      drop(id);
    }
  };
  for (Event e : events) {
    switch (e.kind) {
      case Event::Kind::join:
        members[e.id] = Member{e.text, e.outbox};
        e.outbox->try_send("* welcome " + e.text + ", " + std::to_string(members.size()) +
                           " here\n");
        broadcast(e.id, "* " + e.text + " joined\n");
        break;
      case Event::Kind::say:
        if (auto it = members.find(e.id); it != members.end()) {
          broadcast(e.id, it->second.name + ": " + e.text + "\n");
        }
        break;
      case Event::Kind::leave:
        if (std::string name = drop(e.id); !name.empty()) broadcast(e.id, "* " + name + " left\n");
        break;
    }
  }
}

// One connection: reads the name and the lines, and writes the outbox.
void member(spindle::TcpStream conn, int id, spindle::Channel<Event>& events) {
  spindle::BufferedReader in(conn, {.buffer_size = kMaxLine, .max_line = kMaxLine});
  std::optional<std::string_view> name = in.read_line();
  if (!name || name->empty()) return;
  Outbox outbox(kOutboxLines);
  events.send(Event{Event::Kind::join, id, std::string(*name), &outbox});
  auto writer = spindle::spin([&] {
    try {
      for (std::string line : outbox) conn.write_all(examples::bytes(line));
    } catch (const std::system_error&) {
      // the client went away; the reader sees it too
    }
    // Also ends the reader if the hub dropped us. A peer already gone makes
    // this fail (ENOTCONN), which changes nothing.
    (void)spindle::nothrow::shutdown(conn.fd(), SHUT_RDWR);
  });
  try {
    while (std::optional<std::string_view> line = in.read_line()) {
      events.send(Event{Event::Kind::say, id, std::string(*line), nullptr});
    }
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "chat_server: %s\n", e.what());
  }
  // The hub closes the outbox when it handles this (or has already, when
  // it dropped a slow member): the writer then ends, and the outbox is not
  // used after this frame goes away.
  events.send(Event{Event::Kind::leave, id, {}, nullptr});
  writer.join();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string where = argc > 1 ? argv[1] : "127.0.0.1:7008";
  try {
    return spindle::run([&] {
      spindle::Channel<Event> events(1024);
      auto room = spindle::spin([&] { hub(events); });
      auto listener = spindle::TcpListener::bind(spindle::SocketAddress::parse(where));
      examples::announce(listener);
      int next_id = 0;
      listener.accept_loop([&](spindle::TcpStream conn) {
        spindle::spin([&events, conn = std::move(conn), id = ++next_id]() mutable {
          member(std::move(conn), id, events);
        });
      });
      events.close();
      room.join();
      return 0;
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chat_server: %s\n", e.what());
    return 1;
  }
}
