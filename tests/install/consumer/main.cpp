// Uses an installed spindle: the main fiber spawns a fiber, which spawns
// another; each joins its child. It also makes a TLS client context, so
// that linking needs OpenSSL as the package says. Prints the result the
// driver checks.
#include <cstdio>

#include <spindle/fiber/fiber.hpp>
#include <spindle/fiber/runtime.hpp>
#include <spindle/net/tls.hpp>

int main() {
  const int result = spindle::run([] {
    auto child = spindle::spin([] {
      auto grandchild = spindle::spin([] {
        spindle::yield();
        return 40;
      });
      spindle::yield();
      return grandchild.join() + 2;
    });
    spindle::TlsContext tls = spindle::TlsContext::client();
    return tls.is_server() ? 0 : child.join();
  });
  std::printf("spindle consumer: result %d\n", result);
  return result == 42 ? 0 : 1;
}
