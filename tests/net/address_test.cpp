// SocketAddress: parsing, formatting, and the errors bad text gets.
#include "spindle/net/address.hpp"

#include <gtest/gtest.h>

#include <string>
#include <system_error>

namespace {

using spindle::SocketAddress;

TEST(Address, ParsesAndFormatsIPv4) {
  SocketAddress a = SocketAddress::parse("1.2.3.4:80");
  EXPECT_TRUE(a.is_ipv4());
  EXPECT_EQ(a.port(), 80);
  EXPECT_EQ(a.size(), sizeof(sockaddr_in));
  EXPECT_EQ(a.to_string(), "1.2.3.4:80");
  EXPECT_EQ(a.ip_string(), "1.2.3.4");
  EXPECT_EQ(a, SocketAddress::ipv4({1, 2, 3, 4}, 80));
  a.set_port(8080);
  EXPECT_EQ(a.to_string(), "1.2.3.4:8080");
  EXPECT_EQ(SocketAddress::parse("0.0.0.0:0"), SocketAddress::any_v4());
  EXPECT_EQ(SocketAddress::parse("127.0.0.1:65535"), SocketAddress::loopback_v4(65535));
}

TEST(Address, ParsesAndFormatsIPv6) {
  SocketAddress a = SocketAddress::parse("[::1]:443");
  EXPECT_TRUE(a.is_ipv6());
  EXPECT_EQ(a.port(), 443);
  EXPECT_EQ(a.to_string(), "[::1]:443");
  EXPECT_EQ(a, SocketAddress::loopback_v6(443));
  EXPECT_EQ(SocketAddress::parse("[2001:db8:0:0::1]:1").to_string(), "[2001:db8::1]:1");
  SocketAddress scoped = SocketAddress::parse("[fe80::1%7]:9");
  EXPECT_EQ(reinterpret_cast<const sockaddr_in6*>(scoped.data())->sin6_scope_id, 7u);
  SocketAddress lo = SocketAddress::parse("[fe80::1%lo]:9");
  EXPECT_NE(reinterpret_cast<const sockaddr_in6*>(lo.data())->sin6_scope_id, 0u);
  EXPECT_EQ(lo.to_string(), "[fe80::1%lo]:9");
  EXPECT_NE(scoped, SocketAddress::parse("[fe80::1]:9"));
}

TEST(Address, ParsesAndFormatsUnix) {
  SocketAddress p = SocketAddress::parse("/run/app.sock");
  EXPECT_TRUE(p.is_unix());
  EXPECT_FALSE(p.is_abstract());
  EXPECT_EQ(p.unix_name(), "/run/app.sock");
  EXPECT_EQ(p.to_string(), "/run/app.sock");
  EXPECT_EQ(p.port(), 0);
  EXPECT_EQ(SocketAddress::parse("./rel.sock").unix_name(), "./rel.sock");
  SocketAddress a = SocketAddress::parse("@spindle-test");
  EXPECT_TRUE(a.is_abstract());
  EXPECT_EQ(a.unix_name(), "spindle-test");
  EXPECT_EQ(a.to_string(), "@spindle-test");
  EXPECT_EQ(a, SocketAddress::unix_abstract("spindle-test"));
  EXPECT_NE(a, SocketAddress::unix_path("spindle-test"));
  // Abstract names may hold any byte, NUL included.
  SocketAddress nul = SocketAddress::unix_abstract(std::string("a\0b", 3));
  EXPECT_EQ(nul.unix_name().size(), 3u);
  EXPECT_EQ(SocketAddress().to_string(), "(none)");
  EXPECT_TRUE(SocketAddress().empty());
}

// What the error says, or "" when parse did not throw.
std::string parse_error(std::string_view text) {
  try {
    SocketAddress::parse(text);
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EINVAL) << text;
    return e.what();
  }
  return "";
}

TEST(Address, BadTextGetsAClearError) {
  struct Case {
    std::string_view text;
    std::string_view why;
  } cases[] = {
      {"", "empty"},
      {"1.2.3.4", "missing :port"},
      {"1.2.3.4:", "missing port"},
      {"1.2.3.4:99999", "port out of range"},
      {"1.2.3.4:8x", "port is not a number"},
      {"1.2.3.4:-1", "port is not a number"},
      {"256.1.1.1:1", "not an IPv4 address"},
      {"1.2.3:1", "not an IPv4 address"},
      {"example.com:80", "not an IPv4 address"},
      {"::1:80", "needs brackets"},
      {"[::1:80", "missing ']'"},
      {"[::1]80", "missing :port"},
      {"[zz::1]:80", "not an IPv6 address"},
      {"[fe80::1%]:80", "empty IPv6 scope"},
      {"[fe80::1%nosuchif0]:80", "unknown network interface"},
  };
  for (const Case& c : cases) {
    std::string what = parse_error(c.text);
    EXPECT_NE(what.find(c.why), std::string::npos) << c.text << " -> " << what;
    EXPECT_NE(what.find("parse socket address"), std::string::npos) << what;
    EXPECT_FALSE(SocketAddress::try_parse(c.text).has_value()) << c.text;
  }
  EXPECT_NE(parse_error("1.2.3.4").find("\"1.2.3.4\""), std::string::npos);
}

TEST(Address, OverlongUnixNamesAreRefused) {
  std::string path = "/" + std::string(107, 'x');  // 108 bytes: no room for the NUL
  EXPECT_NE(parse_error(path).find("longer than 107"), std::string::npos);
  try {
    SocketAddress::unix_path(path);
    ADD_FAILURE() << "no error";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENAMETOOLONG);
  }
  EXPECT_NO_THROW(SocketAddress::unix_path(path.substr(1)));  // 107 bytes fit
  EXPECT_NE(parse_error("@" + std::string(108, 'a')).find("longer than 107"), std::string::npos);
  EXPECT_THROW(SocketAddress::unix_path(std::string("a/\0b", 4)), std::system_error);
  EXPECT_THROW(SocketAddress::unix_path(""), std::system_error);
  EXPECT_THROW(SocketAddress::from(nullptr, 4), std::system_error);
}

TEST(Address, CopiesKernelAddresses) {
  SocketAddress a = SocketAddress::parse("[::1]:7");
  SocketAddress b = SocketAddress::from(a.data(), a.size());
  EXPECT_EQ(a, b);
  EXPECT_EQ(b.to_string(), "[::1]:7");
}

}  // namespace
