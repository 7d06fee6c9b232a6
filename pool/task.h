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
  // A future's task: the worker starts it only if it moves its gate from
  // queued to running (pool/task_control.h).
  bool gated = false;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, entry, function, args, code, descriptors, gated);
  }
};

// kBroken: the pool can no longer run tasks (no worker could be started, or
// the initializer kept failing); the message says why. kCancelled: a
// future's task cancelled before it started. kTimeout: the task ran past
// the pool's task_timeout, and its worker was killed.
enum class OutcomeKind : uint8_t { kOk, kError, kLost, kTerminated, kBroken, kCancelled, kTimeout };

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

// RunOne: f(args...) for apply/apply_async, its result encoded.
template <class F, class Args>
std::string RunOne(F& f, Args& args) {
  using R = decltype(std::apply(f, std::move(args)));
  if constexpr (std::is_void_v<R>) {
    std::apply(f, std::move(args));
    return {};
  } else {
    return EncodeResult(std::apply(f, std::move(args)));
  }
}

// RunChunk: f(x) for each x of a chunk (map, imap) or f(*x) (starmap).
template <bool kStar, class R, class F, class Item>
std::string RunChunk(F& f, std::vector<Item>& items) {
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

template <class F, bool kStar>
using ChunkItem = std::conditional_t<kStar, typename Signature<F>::ArgTuple,
                                     std::tuple_element_t<0, typename Signature<F>::ArgTuple>>;

// TaskFunction<F>: how a task's callable travels and is called. A plain
// function goes by address (named for spawn and forkserver workers); a
// function object whose type is serializable goes in the task's bytes,
// ahead of the arguments (its address is null).
template <class F>
struct TaskFunction {
  static_assert(SerializableFunctor<F>,
                "a Pool task is a plain function (or captureless lambda) or a function object "
                "with a serialize() and a default constructor");
  static void* Address(const F&) { return nullptr; }
  // Encode: the callable's state (if any) followed by `tail`'s bytes.
  template <class Tail>
  static std::string Encode(const F& f, Tail&& tail) {
    std::string bytes = encode(f);
    bytes += tail();
    return bytes;
  }
  static std::string One(void*, std::string_view bytes) {
    auto [f, args] = decode<std::pair<F, typename Signature<F>::ArgTuple>>(bytes);
    return RunOne(f, args);
  }
  template <bool kStar>
  static std::string Chunk(void*, std::string_view bytes) {
    auto [f, items] = decode<std::pair<F, std::vector<ChunkItem<F, kStar>>>>(bytes);
    return RunChunk<kStar, typename Signature<F>::Result>(f, items);
  }
};
template <PlainFunction F>
struct TaskFunction<F> {
  using Fn = FunctionPointer<F>;
  static void* Address(const F& f) { return reinterpret_cast<void*>(+f); }
  template <class Tail>
  static std::string Encode(const F&, Tail&& tail) {
    return tail();
  }
  static std::string One(void* function, std::string_view bytes) {
    auto f = reinterpret_cast<Fn>(function);
    auto args = decode<typename Signature<F>::ArgTuple>(bytes);
    return RunOne(f, args);
  }
  template <bool kStar>
  static std::string Chunk(void* function, std::string_view bytes) {
    auto f = reinterpret_cast<Fn>(function);
    auto items = decode<std::vector<ChunkItem<F, kStar>>>(bytes);
    return RunChunk<kStar, typename Signature<F>::Result>(f, items);
  }
};

}  // namespace mp::internal

#endif  // POOL_TASK_H_
