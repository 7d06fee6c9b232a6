#include "base/errors.h"

#include <cxxabi.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace mp {

void throw_errno(const char* call) { throw_errno(call, errno); }

void throw_errno(const char* call, int err) {
  throw Error(std::string(call) + ": " + std::strerror(err));
}

namespace internal {

std::string TypeName(const std::type_info& type) {
  int status = 0;
  char* demangled = abi::__cxa_demangle(type.name(), nullptr, nullptr, &status);
  std::string name = status == 0 && demangled != nullptr ? demangled : type.name();
  std::free(demangled);
  return name;
}

std::string CurrentExceptionTypeName() {
  std::type_info* type = abi::__cxa_current_exception_type();
  return type == nullptr ? "unknown exception" : TypeName(*type);
}

}  // namespace internal
}  // namespace mp
