#include "sync/errors.h"

#include <cerrno>
#include <cstring>

namespace mp {

void throw_errno(const char* call) { throw_errno(call, errno); }

void throw_errno(const char* call, int err) {
  throw Error(std::string(call) + ": " + std::strerror(err));
}

}  // namespace mp
