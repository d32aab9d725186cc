// capture(): a Process with piped stdio, read by two fibers, fed by a third.
#include "spindle/process/capture.hpp"

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

#include "spindle/fiber/cancel.hpp"
#include "spindle/fiber/fiber.hpp"
#include "spindle/io/ops.hpp"
#include "spindle/process/process.hpp"

namespace spindle {

namespace {

// Cancels and joins the helper fibers still running when capture() leaves,
// so none outlives the frame whose locals it uses.
struct Helpers {
  Fiber<void> feeder, out_reader, err_reader;
  ~Helpers() { stop(); }
  void stop() noexcept {
    for (Fiber<void>* f : {&feeder, &out_reader, &err_reader}) {
      if (!*f) continue;
      f->cancel();
      shield([&] {
        try {
          f->join();
        } catch (...) {
          // Already reported by the first failure, or a cancellation we asked for.
        }
      });
    }
  }
};

void read_all(FdStream& pipe, std::string& into, std::size_t limit, const std::string& program,
              const char* which) {
  try {
    spindle::read_into(pipe.fd(), into, {.limit = limit, .until_eof = true});
  } catch (const std::system_error& e) {
    if (e.code().value() != EMSGSIZE) throw;
    throw std::system_error(
        EMSGSIZE, std::system_category(),
        "capture " + program + ": " + which + " longer than " + std::to_string(limit) + " bytes");
  }
}

}  // namespace

CaptureResult capture(std::vector<std::string> argv, CaptureOptions options) {
  std::string program = argv.empty() ? std::string() : argv[0];
  ProcessOptions po;
  po.cwd = std::move(options.cwd);
  po.env = std::move(options.env);
  po.in = options.input.empty() ? Stdio::null() : Stdio::pipe();
  po.out = Stdio::pipe();
  po.err = options.merge_stderr ? Stdio::merge() : Stdio::pipe();
  po.kill_grace = options.kill_grace;
  Process process = spawn(std::move(argv), std::move(po));

  CaptureResult result;
  Helpers helpers;
  if (!options.input.empty()) {
    helpers.feeder = spin([&] {
      try {
        process.in().write_all(std::as_bytes(std::span(options.input)));
      } catch (const std::system_error& e) {
        // A child that does not read all its input is not an error here.
        if (e.code().value() != EPIPE) throw;
      }
      process.in().close();
    });
  }
  helpers.out_reader =
      spin([&] { read_all(process.out(), result.out, options.limit, program, "stdout"); });
  if (!options.merge_stderr) {
    helpers.err_reader =
        spin([&] { read_all(process.err(), result.err, options.limit, program, "stderr"); });
  }

  if (options.timeout.count() > 0) {
    result.status = process.wait_or_terminate(options.timeout);
    if (result.status.timed_out) {
      helpers.stop();  // the output read so far is the result
      return result;
    }
  } else {
    result.status = process.wait();
  }
  // The child has exited: its pipes end once its descendants close them too.
  for (Fiber<void>* f : {&helpers.feeder, &helpers.out_reader, &helpers.err_reader}) {
    if (*f) f->join();
  }
  return result;
}

}  // namespace spindle
