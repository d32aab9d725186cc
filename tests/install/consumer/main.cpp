// Uses an installed spindle: the main fiber spawns a fiber, which spawns
// another; each joins its child. Prints the result the driver checks.
#include <cstdio>

#include <spindle/fiber/fiber.hpp>
#include <spindle/fiber/runtime.hpp>

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
    return child.join();
  });
  std::printf("spindle consumer: result %d\n", result);
  return result == 42 ? 0 : 1;
}
