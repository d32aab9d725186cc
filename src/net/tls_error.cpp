#include "spindle/net/tls_error.hpp"

namespace spindle {

namespace {

class TlsCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "tls"; }
  std::string message(int value) const override {
    switch (static_cast<TlsErrc>(value)) {
      case TlsErrc::config:
        return "TLS configuration refused";
      case TlsErrc::certificate:
        return "certificate verify failed";
      case TlsErrc::protocol:
        return "TLS protocol error";
      case TlsErrc::closed_in_handshake:
        return "connection closed during the TLS handshake";
      case TlsErrc::truncated:
        return "TLS stream truncated (no close_notify)";
      case TlsErrc::unusable:
        return "TLS stream unusable";
    }
    return "unknown TLS error";
  }
};

}  // namespace

const std::error_category& tls_category() noexcept {
  static const TlsCategory category;
  return category;
}

std::error_code make_error_code(TlsErrc e) noexcept {
  return {static_cast<int>(e), tls_category()};
}

TlsError::TlsError(TlsErrc code, const std::string& message, long verify_result)
    : std::system_error(make_error_code(code), message),
      message_(message),
      verify_result_(verify_result) {}

}  // namespace spindle
