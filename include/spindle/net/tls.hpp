// TLS over any byte stream, with OpenSSL (docs/tls.md).
#pragma once

#include "spindle/net/tls_context.hpp"
#include "spindle/net/tls_error.hpp"
#include "spindle/net/tls_stream.hpp"
