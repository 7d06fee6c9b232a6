// Exception types that survive a trip between processes.
//
//   struct QuotaExceeded : std::runtime_error { using std::runtime_error::runtime_error; };
//   mp::register_exception<QuotaExceeded>();   // once, in every process (before the pool)
//   try { future.result(); } catch (const QuotaExceeded& e) { ... }
//
// A task or manager call that throws sends its exception's type name and
// message back; the receiving process rebuilds it as that type when the type
// is registered, else as mp::RemoteError(type name, message). Registered
// from the start: every mp:: error (mp::RemoteError keeps the type it
// carries) and the standard library's exception types: std::exception,
// logic_error, invalid_argument, domain_error, length_error, out_of_range,
// runtime_error, range_error, overflow_error, underflow_error, bad_alloc,
// bad_array_new_length, bad_cast, bad_typeid, bad_function_call,
// bad_optional_access, bad_variant_access, bad_any_cast, bad_weak_ptr,
// bad_exception (those whose constructor takes no message come back with
// their own what()), system_error and ios_base::failure (with their
// error_code: value and category, generic, iostream or system).
//
// The type is found by its demangled name, which is the same in every
// process running the same program (fork, spawn and forkserver children
// all do). No stack trace travels: GCC 12's libstdc++ has no
// std::stacktrace under C++20.
//
// Thread safety: register_exception may be called from any thread.
#ifndef BASE_EXCEPTION_TYPES_H_
#define BASE_EXCEPTION_TYPES_H_

#include <exception>
#include <string>
#include <type_traits>
#include <typeinfo>

#include "base/errors.h"

namespace mp {
namespace internal {

using ExceptionFactory = std::exception_ptr (*)(const std::string& message);

// RegisterExceptionFactory makes exceptions named `type_name` come back
// through `factory`. A later registration of the same name replaces it.
void RegisterExceptionFactory(const std::string& type_name, ExceptionFactory factory);

// RebuildException: the exception that `type_name` and `message`, sent by
// another process, stand for.
std::exception_ptr RebuildException(const std::string& type_name, const std::string& message);

// DescribeCurrentException, inside a catch block: the type name and message
// to send, so that RebuildException can rebuild it (a RemoteError sends the
// type it carries, not its own).
void DescribeCurrentException(std::string* type_name, std::string* message);

}  // namespace internal

// register_exception<E>() makes an E thrown in another process (a pool task,
// a managed object's method) come back as an E. E must be constructible from
// its what() string.
template <class E>
void register_exception() {
  static_assert(std::is_base_of_v<std::exception, E>, "register_exception: E must derive from std::exception");
  static_assert(std::is_constructible_v<E, std::string>,
                "register_exception: E must be constructible from its what() string");
  internal::RegisterExceptionFactory(internal::TypeName(typeid(E)), [](const std::string& message) {
    return std::make_exception_ptr(E(message));
  });
}

}  // namespace mp

#endif  // BASE_EXCEPTION_TYPES_H_
