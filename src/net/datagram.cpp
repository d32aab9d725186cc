#include "spindle/net/datagram.hpp"

#include <cerrno>
#include <string>
#include <system_error>

namespace spindle {
namespace {

// Rethrows a failed setup call naming the address.
template <class F>
void naming(const char* what, const SocketAddress& address, F&& f) {
  try {
    f();
  } catch (const std::system_error& e) {
    throw std::system_error(e.code(), std::string(what) + " " + address.to_string());
  }
}

}  // namespace

std::size_t DatagramSocket::send_to(std::span<const std::byte> data, const SocketAddress& to,
                                    Deadline deadline) {
  iovec iov{const_cast<std::byte*>(data.data()), data.size()};
  msghdr m{};
  m.msg_name = const_cast<sockaddr*>(to.data());
  m.msg_namelen = to.size();
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  return spindle::sendmsg(fd(), m, 0, deadline);
}

Datagram DatagramSocket::recv_from(std::span<std::byte> buffer, Deadline deadline) {
  Datagram d;
  iovec iov{buffer.data(), buffer.size()};
  msghdr m{};
  m.msg_name = d.from.data();
  m.msg_namelen = SocketAddress::capacity();
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  d.size = spindle::recvmsg(fd(), m, 0, deadline);
  d.from.resize(m.msg_namelen);
  d.truncated = (m.msg_flags & MSG_TRUNC) != 0;
  return d;
}

void DatagramSocket::connect(const SocketAddress& peer) {
  naming("connect", peer, [&] { spindle::connect(fd(), peer.data(), peer.size()); });
}

UdpSocket UdpSocket::bind(const SocketAddress& address) {
  if (!address.is_ip()) {
    throw std::system_error(EAFNOSUPPORT, std::system_category(),
                            "UdpSocket::bind " + address.to_string() + ": not an IP address");
  }
  UdpSocket s(spindle::socket(address.family(), SOCK_DGRAM));
  naming("UdpSocket::bind", address,
         [&] { spindle::bind(s.fd(), address.data(), address.size()); });
  return s;
}

void UdpSocket::set_broadcast(bool on) {
  setsockopt(fd(), SOL_SOCKET, SO_BROADCAST, int{on});
}

UnixDatagram UnixDatagram::bind(const SocketAddress& address) {
  if (!address.is_unix()) {
    throw std::system_error(EAFNOSUPPORT, std::system_category(),
                            "UnixDatagram::bind " + address.to_string() + ": not a Unix address");
  }
  UnixDatagram s(spindle::socket(AF_UNIX, SOCK_DGRAM));
  naming("UnixDatagram::bind", address,
         [&] { spindle::bind(s.fd(), address.data(), address.size()); });
  return s;
}

UnixDatagram UnixDatagram::unbound() {
  return UnixDatagram(spindle::socket(AF_UNIX, SOCK_DGRAM));
}

std::pair<UnixDatagram, UnixDatagram> UnixDatagram::pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    throw std::system_error(errno, std::system_category(), "socketpair(AF_UNIX, SOCK_DGRAM)");
  }
  return {UnixDatagram(fds[0]), UnixDatagram(fds[1])};
}

}  // namespace spindle
