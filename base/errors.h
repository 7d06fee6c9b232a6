// The library's exception hierarchy, shared by every package.
//
// Python raises; so does this library. Every exception the library throws
// derives from mp::Error (itself a std::runtime_error), so `catch (const
// mp::Error&)` catches all of them. The names mirror Python's.
//
// Thread safety: the classes are immutable values.
// Fork safety: plain values; exceptions never cross fork() or a process boundary.
// Sharing: an exception raised in another process reaches the caller as
//   mp::RemoteError, carrying the original type name and message.
#ifndef BASE_ERRORS_H_
#define BASE_ERRORS_H_

#include <stdexcept>
#include <string>
#include <typeinfo>
#include <utility>

namespace mp {

// Error is the base of every exception the library throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Python: queue.Empty. A get() found no item (after its timeout).
class Empty : public Error {
 public:
  Empty() : Error("queue is empty") {}
  using Error::Error;
};

// Python: queue.Full. A put() found no room (after its timeout).
class Full : public Error {
 public:
  Full() : Error("queue is full") {}
  using Error::Error;
};

// Python: EOFError. The peer closed its end and everything it sent was read.
class EOFError : public Error {
 public:
  EOFError() : Error("connection closed by the peer") {}
  using Error::Error;
};

// Python: multiprocessing.TimeoutError. AsyncResult::get(timeout) ran out.
class TimeoutError : public Error {
 public:
  using Error::Error;
};

// Python: multiprocessing.ProcessError. Misuse of a Process or Pool
// (start twice, join before start, daemon set after start, ...).
class ProcessError : public Error {
 public:
  using Error::Error;
};

// Python: ValueError. A bad argument or state (Pool(0), too many task_done(),
// releasing a lock this thread does not hold, successful() before ready()).
class ValueError : public Error {
 public:
  using Error::Error;
};

// Python: multiprocessing.AuthenticationError. The authkey handshake failed.
class AuthenticationError : public Error {
 public:
  using Error::Error;
};

// BufferTooShort: Connection::recv_bytes_into was given too little room; the
// whole message is in bytes() (Python: e.args[0]). The connection goes on.
class BufferTooShort : public Error {
 public:
  explicit BufferTooShort(std::string message)
      : Error("recv_bytes_into: the buffer is too short for a message of " +
              std::to_string(message.size()) + " bytes"),
        bytes_(std::move(message)) {}
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

// Python: threading.BrokenBarrierError. The barrier was aborted, reset while
// waiting, or a wait timed out.
class BrokenBarrierError : public Error {
 public:
  BrokenBarrierError() : Error("barrier is broken") {}
  using Error::Error;
};

// Python: KeyError. A manager dict has no such key.
class KeyError : public Error {
 public:
  using Error::Error;
};

// Python: IndexError. A manager list or Array has no such index, or an
// empty list was popped.
class IndexError : public Error {
 public:
  using Error::Error;
};

// The process running a task died (segfault, abort, SIGKILL, OOM) before it
// returned a result. Python's Pool hangs in this case; ours fails the task.
class WorkerLostError : public Error {
 public:
  using Error::Error;
};

// Python: concurrent.futures.CancelledError. The future was cancelled
// before its task started.
class CancelledError : public Error {
 public:
  CancelledError() : Error("the future was cancelled") {}
  using Error::Error;
};

// An exception thrown in another process (a pool task, a manager call).
// what() is the original message; type_name() the original exception type.
class RemoteError : public Error {
 public:
  RemoteError(std::string type_name, const std::string& message)
      : Error(message), type_name_(std::move(type_name)) {}
  const std::string& type_name() const { return type_name_; }

 private:
  std::string type_name_;
};

namespace internal {
// TypeName is the readable (demangled) name of a type, e.g. "mp::ValueError".
std::string TypeName(const std::type_info& type);
// CurrentExceptionTypeName: TypeName of the exception being handled (call it
// inside a catch block).
std::string CurrentExceptionTypeName();
}  // namespace internal

// Throws mp::Error("<call>: <strerror(errno)>"), the form every failed system
// call takes in this library.
[[noreturn]] void throw_errno(const char* call);
[[noreturn]] void throw_errno(const char* call, int err);

}  // namespace mp

#endif  // BASE_ERRORS_H_
