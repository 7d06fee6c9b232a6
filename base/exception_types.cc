#include "base/exception_types.h"

#include <any>
#include <functional>
#include <ios>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <system_error>
#include <variant>

#include <pthread.h>

#include <map>
#include "base/mutex.h"

namespace mp::internal {
namespace {

template <class E>
std::exception_ptr WithMessage(const std::string& message) {
  return std::make_exception_ptr(E(message));
}

template <class E>
std::exception_ptr WithoutMessage(const std::string&) {
  return std::make_exception_ptr(E());
}

// A std::system_error travels with its code: "<value> <category>\n<what>"
// (DescribeCurrentException), and comes back with the same code (generic,
// iostream or else system category) and what().
constexpr const char* kSystemErrorTypes[] = {"std::system_error", "std::ios_base::failure[abi:cxx11]"};

std::string DescribeSystemError(const std::system_error& e) {
  return std::to_string(e.code().value()) + " " + e.code().category().name() + "\n" + e.what();
}

// system_error takes (code, what), ios_base::failure (what, code).
template <class E>
std::exception_ptr MakeWithCode(const std::string& what, std::error_code code) {
  if constexpr (std::is_constructible_v<E, std::error_code, std::string>) {
    return std::make_exception_ptr(E(code, what));
  } else {
    return std::make_exception_ptr(E(what, code));
  }
}

template <class E>
std::exception_ptr WithErrorCode(const std::string& message) {
  const size_t space = message.find(' ');
  const size_t newline = message.find('\n');
  if (space == std::string::npos || newline == std::string::npos || space > newline) {
    return MakeWithCode<E>(message, std::error_code());
  }
  int value = 0;
  try {
    value = std::stoi(message.substr(0, space));
  } catch (...) {
  }
  const std::string category = message.substr(space + 1, newline - space - 1);
  const std::error_category& which = category == "generic"    ? std::generic_category()
                                     : category == "iostream" ? std::iostream_category()
                                                              : std::system_category();
  const std::error_code code(value, which);
  // what() is "<what_arg>: <the code's message>": the what_arg is rebuilt so
  // that the new exception says exactly what the old one did.
  std::string what = message.substr(newline + 1);
  const std::string suffix = ": " + code.message();
  if (what.size() >= suffix.size() && what.compare(what.size() - suffix.size(), suffix.size(), suffix) == 0) {
    what.resize(what.size() - suffix.size());
  }
  return MakeWithCode<E>(what, code);
}

struct Registry {
  Registry() {
    // The standard library's own types.
    Add<std::exception>(&WithoutMessage<std::exception>);
    Add<std::logic_error>(&WithMessage<std::logic_error>);
    Add<std::invalid_argument>(&WithMessage<std::invalid_argument>);
    Add<std::domain_error>(&WithMessage<std::domain_error>);
    Add<std::length_error>(&WithMessage<std::length_error>);
    Add<std::out_of_range>(&WithMessage<std::out_of_range>);
    Add<std::runtime_error>(&WithMessage<std::runtime_error>);
    Add<std::range_error>(&WithMessage<std::range_error>);
    Add<std::overflow_error>(&WithMessage<std::overflow_error>);
    Add<std::underflow_error>(&WithMessage<std::underflow_error>);
    Add<std::bad_alloc>(&WithoutMessage<std::bad_alloc>);
    Add<std::bad_array_new_length>(&WithoutMessage<std::bad_array_new_length>);
    Add<std::bad_cast>(&WithoutMessage<std::bad_cast>);
    Add<std::bad_typeid>(&WithoutMessage<std::bad_typeid>);
    Add<std::bad_function_call>(&WithoutMessage<std::bad_function_call>);
    Add<std::bad_optional_access>(&WithoutMessage<std::bad_optional_access>);
    Add<std::bad_variant_access>(&WithoutMessage<std::bad_variant_access>);
    Add<std::bad_any_cast>(&WithoutMessage<std::bad_any_cast>);
    Add<std::bad_weak_ptr>(&WithoutMessage<std::bad_weak_ptr>);
    Add<std::bad_exception>(&WithoutMessage<std::bad_exception>);
    Add<std::system_error>(&WithErrorCode<std::system_error>);
    Add<std::ios_base::failure>(&WithErrorCode<std::ios_base::failure>);
    // The library's.
    Add<Error>(&WithMessage<Error>);
    Add<Empty>(&WithMessage<Empty>);
    Add<Full>(&WithMessage<Full>);
    Add<EOFError>(&WithMessage<EOFError>);
    Add<TimeoutError>(&WithMessage<TimeoutError>);
    Add<ProcessError>(&WithMessage<ProcessError>);
    Add<ValueError>(&WithMessage<ValueError>);
    Add<AuthenticationError>(&WithMessage<AuthenticationError>);
    Add<BrokenBarrierError>(&WithMessage<BrokenBarrierError>);
    Add<KeyError>(&WithMessage<KeyError>);
    Add<IndexError>(&WithMessage<IndexError>);
    Add<WorkerLostError>(&WithMessage<WorkerLostError>);
    Add<CancelledError>(&WithMessage<CancelledError>);
    // BufferTooShort holds the message it could not deliver, which does
    // not travel: it comes back as the mp::Error it derives from.
    Add<BufferTooShort>(&WithMessage<Error>);
  }
  template <class E>
  void Add(ExceptionFactory factory) {
    MutexLock lock(mu);
    factories[TypeName(typeid(E))] = factory;
  }

  Mutex mu;
  std::map<std::string, ExceptionFactory> factories ABSL_GUARDED_BY(mu);
};

Registry& TheRegistry();
void LockForFork() ABSL_NO_THREAD_SAFETY_ANALYSIS { TheRegistry().mu.lock(); }
void UnlockAfterFork() ABSL_NO_THREAD_SAFETY_ANALYSIS { TheRegistry().mu.unlock(); }

Registry& TheRegistry() {
  static auto* registry = [] {
    auto* made = new Registry;  // never destroyed: used by threads at exit
    // A child forked while another thread looks a type up must not find
    // the lock taken for ever (base cannot use sync's ForkSafeMutex).
    pthread_atfork(&LockForFork, &UnlockAfterFork, &UnlockAfterFork);
    return made;
  }();
  return *registry;
}

}  // namespace

void RegisterExceptionFactory(const std::string& type_name, ExceptionFactory factory) {
  Registry& registry = TheRegistry();
  MutexLock lock(registry.mu);
  registry.factories[type_name] = factory;
}

std::exception_ptr RebuildException(const std::string& type_name, const std::string& message) {
  ExceptionFactory factory = nullptr;
  {
    Registry& registry = TheRegistry();
    MutexLock lock(registry.mu);
    auto it = registry.factories.find(type_name);
    if (it != registry.factories.end()) factory = it->second;
  }
  if (factory != nullptr) {
    try {
      return factory(message);
    } catch (...) {
      // A user type whose constructor throws: fall back to RemoteError.
    }
  }
  return std::make_exception_ptr(RemoteError(type_name, message));
}

void DescribeCurrentException(std::string* type_name, std::string* message) {
  try {
    throw;
  } catch (const RemoteError& e) {
    *type_name = e.type_name();
    *message = e.what();
  } catch (const std::system_error& e) {
    *type_name = CurrentExceptionTypeName();
    bool with_code = false;
    for (const char* name : kSystemErrorTypes) with_code |= *type_name == name;
    *message = with_code ? DescribeSystemError(e) : std::string(e.what());
  } catch (const std::exception& e) {
    *type_name = CurrentExceptionTypeName();
    *message = e.what();
  } catch (...) {
    *type_name = CurrentExceptionTypeName();
    *message = "unknown exception";
  }
}

}  // namespace mp::internal
