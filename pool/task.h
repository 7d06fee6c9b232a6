// What travels between a Pool and its workers, and the functions that run a
// task in a worker.
//
// Internal to //pool. A task names its function by address (valid in the
// workers, which are forks of the pool's process) together with an "entry":
// a template instantiation that decodes the arguments, calls the function
// and encodes the result, so the worker needs no knowledge of types.
#ifndef POOL_TASK_H_
#define POOL_TASK_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include "ipc/codec.h"
#include "process/function_traits.h"

namespace mp::internal {

// The function that runs a task in a worker: returns the encoded result.
using TaskEntry = std::string (*)(void* function, std::string_view args);

// A task. The id must stay the first field: a worker claims a task by its
// first 8 bytes (ByteQueue::Get's claim), so the pool knows which task a dead
// worker held. Id 0 asks the worker to exit.
struct TaskMessage {
  uint64_t id = 0;
  uint64_t entry = 0;     // addresses, for a fork pool's workers
  uint64_t function = 0;
  std::string args;
  // For spawn and forkserver workers (another program image): the entry's
  // and function's names, an encoded pair of CodeRef (function_id.h).
  std::string code;
  // The task's arguments hold this many shared objects, whose descriptors
  // the worker asks the pool for (PoolCore's courier) before decoding.
  uint32_t descriptors = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, entry, function, args, code, descriptors);
  }
};

// kBroken: the pool can no longer run tasks (no worker could be started, or
// the initializer kept failing); the message says why.
enum class OutcomeKind : uint8_t { kOk, kError, kLost, kTerminated, kBroken };

// ThrowEncodeFailure rethrows the exception being handled, thrown while a
// task's result was being encoded, as an mp::Error that says so.
[[noreturn]] void ThrowEncodeFailure();

// EncodeResult encodes a task's result; a serialize() that throws becomes
// an mp::Error naming the cause (the worker goes on).
template <class T>
std::string EncodeResult(const T& value) {
  try {
    return encode(value);
  } catch (...) {
    ThrowEncodeFailure();
  }
}

// A task's outcome, as a worker reports it (or the pool, when a worker died).
struct Outcome {
  uint64_t id = 0;
  OutcomeKind kind = OutcomeKind::kOk;
  std::string payload;    // the encoded result (kOk)
  std::string type_name;  // the exception's type (kError)
  std::string message;    // the exception's message, or why the task was lost
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, kind, payload, type_name, message);
  }
};

// CallOne: apply(f, args) for apply/apply_async.
template <class Fn>
std::string CallOne(void* function, std::string_view bytes) {
  using Traits = FunctionTraits<Fn>;
  auto f = reinterpret_cast<Fn>(function);
  auto args = decode<typename Traits::ArgTuple>(bytes);
  if constexpr (std::is_void_v<typename Traits::Result>) {
    std::apply(f, args);
    return {};
  } else {
    return EncodeResult(std::apply(f, std::move(args)));
  }
}

// CallChunk: f(x) for each x of a chunk (map, imap) or f(*x) (starmap).
template <class Fn, bool kStar>
std::string CallChunk(void* function, std::string_view bytes) {
  using Traits = FunctionTraits<Fn>;
  using R = typename Traits::Result;
  using Item = std::conditional_t<kStar, typename Traits::ArgTuple,
                                  std::tuple_element_t<0, typename Traits::ArgTuple>>;
  auto f = reinterpret_cast<Fn>(function);
  auto items = decode<std::vector<Item>>(bytes);
  auto call = [&](Item& item) -> decltype(auto) {
    if constexpr (kStar) {
      return std::apply(f, std::move(item));
    } else {
      return f(std::move(item));
    }
  };
  if constexpr (std::is_void_v<R>) {
    for (Item& item : items) call(item);
    return {};
  } else {
    std::vector<R> out;
    out.reserve(items.size());
    for (Item& item : items) out.push_back(call(item));
    return EncodeResult(out);
  }
}

}  // namespace mp::internal

#endif  // POOL_TASK_H_
