// The fs layer's error messages name the call and the path ("open /x"),
// whatever io operation failed underneath.
#pragma once

#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

namespace spindle::fs_detail {

[[noreturn]] inline void throw_for(std::error_code code, const char* op,
                                   const std::filesystem::path& path) {
  throw std::system_error(code, std::string(op) + " " + path.string());
}
[[noreturn]] inline void throw_for(int error, const char* op, const std::filesystem::path& path) {
  throw_for(std::error_code(error, std::system_category()), op, path);
}

// Runs fn, renaming a std::system_error it throws to "op path". Control
// flow (Cancelled, TimedOut) is not a std::system_error and passes as is.
template <class F>
decltype(auto) naming(const char* op, const std::filesystem::path& path, F&& fn) {
  try {
    return std::forward<F>(fn)();
  } catch (const std::system_error& e) {
    throw_for(e.code(), op, path);
  }
}

}  // namespace spindle::fs_detail
