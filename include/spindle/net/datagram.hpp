// Datagram sockets: UdpSocket (IPv4/IPv6) and UnixDatagram share
// DatagramSocket's calls.
#pragma once

#include <cstddef>
#include <span>
#include <utility>

#include "spindle/net/address.hpp"
#include "spindle/net/socket.hpp"

namespace spindle {

// What recv_from returns: the datagram's size (as much as fit in the
// buffer), who sent it, and whether it was cut to fit (MSG_TRUNC).
struct Datagram {
  std::size_t size = 0;
  SocketAddress from;
  bool truncated = false;
};

// The calls of a datagram socket. Each suspends the fiber until the kernel
// is done, takes a Deadline (spindle::TimedOut), is a cancellation point,
// and throws std::system_error naming the call and the fd.
class DatagramSocket : public Socket {
 public:
  using Socket::Socket;

  // Sends one datagram to `to`; returns the bytes sent (all of them, or
  // EMSGSIZE for one too large).
  std::size_t send_to(std::span<const std::byte> data, const SocketAddress& to,
                      Deadline deadline = {});
  // Receives one datagram.
  Datagram recv_from(std::span<std::byte> buffer, Deadline deadline = {});
  // Fixes the peer: send/recv then need no address, and datagrams from
  // others are dropped by the kernel. Never suspends for long (no handshake).
  void connect(const SocketAddress& peer);
  // On a connected socket. recv returns the datagram's size (cut to fit).
  std::size_t send(std::span<const std::byte> data, Deadline deadline = {}) {
    return spindle::send_some(fd(), data, 0, deadline);
  }
  std::size_t recv(std::span<std::byte> buffer, Deadline deadline = {}) {
    return spindle::recv(fd(), buffer, 0, deadline);
  }
};

// A UDP socket.
class UdpSocket : public DatagramSocket {
 public:
  using DatagramSocket::DatagramSocket;
  // Bound to `address` (port 0: the kernel picks; local_address() tells).
  // Throws std::system_error ("UdpSocket::bind 127.0.0.1:53: Permission
  // denied").
  static UdpSocket bind(const SocketAddress& address);
  // SO_BROADCAST: allow sends to broadcast addresses.
  void set_broadcast(bool on);
};

// A Unix datagram socket (AF_UNIX, SOCK_DGRAM): reliable and ordered on
// Linux, with message boundaries.
class UnixDatagram : public DatagramSocket {
 public:
  using DatagramSocket::DatagramSocket;
  // Bound to a path or abstract name. A path's socket file is not removed
  // on close (remove it, or use an abstract name).
  static UnixDatagram bind(const SocketAddress& address);
  // Not bound: can send to bound sockets, and receive on a connected pair.
  static UnixDatagram unbound();
  // A connected pair (socketpair(AF_UNIX, SOCK_DGRAM)).
  static std::pair<UnixDatagram, UnixDatagram> pair();
};

}  // namespace spindle
