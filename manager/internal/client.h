// The client side of the manager protocol: one connection per process,
// thread and manager; calls that map error codes to mp:: exceptions; the
// reference a proxy holds; the queues of a local manager mapped into this
// process.
//
// Internal to //manager (used by the proxies' templates).
#ifndef MANAGER_INTERNAL_CLIENT_H_
#define MANAGER_INTERNAL_CLIENT_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/deadline.h"
#include "ipc/codec.h"
#include "manager/internal/protocol.h"

namespace mp::internal {

// Where an object lives.
struct ObjectRef {
  std::string address;
  std::string authkey;
  uint64_t id = 0;
};

// CallRaw sends `request` on this thread's connection to the manager and
// returns the reply (nothing for a one-way request); an error reply becomes
// its mp:: exception (ThrowFor).
wire::Response CallRaw(const std::string& address, const std::string& authkey, wire::Request request);
[[noreturn]] void ThrowFor(wire::ErrorCode code, const std::string& message);

// ReplyPins: while it lives (on this thread), the pins a reply brought for
// the proxies in its payload, which the proxies decoded from it adopt
// (Rebuild). Its end releases those no proxy took (the values of a dict
// whose keys() were asked for), so that no reference leaks. Scopes nest: a
// call made while a payload is decoded has its own.
class ReplyPins {
 public:
  ReplyPins(const std::string& address, const std::string& authkey, std::vector<wire::PinnedId> pins);
  ~ReplyPins();
  ReplyPins(const ReplyPins&) = delete;
  ReplyPins& operator=(const ReplyPins&) = delete;
  // Take: the pin of object `id` of the manager at `address`, if any left.
  static std::optional<uint64_t> Take(const std::string& address, uint64_t id);

 private:
  const std::string& address_;
  const std::string& authkey_;
  std::vector<wire::PinnedId> pins_;
  ReplyPins* outer_;
};

template <class Op>
typename Op::Result Call(const std::string& address, const std::string& authkey, Op op) {
  wire::Response r = CallRaw(address, authkey, wire::Request{std::move(op), false});
  if (r.pins.empty()) return decode<typename Op::Result>(r.payload);
  ReplyPins pins(address, authkey, std::move(r.pins));
  return decode<typename Op::Result>(r.payload);
}
template <class Op>
void CallOneWay(const std::string& address, const std::string& authkey, Op op) {
  CallRaw(address, authkey, wire::Request{std::move(op), true});
}

// RegisterManagerKey: the authkey of the manager at `address`, for the
// proxies of it this process rebuilds (a serialized proxy carries no key).
// KeyFor returns it, or this process's authkey (current_process().authkey(),
// every Manager's default) for a manager never registered here.
void RegisterManagerKey(const std::string& address, const std::string& authkey);
std::string KeyFor(const std::string& address);
// ForgetManager: the manager at `address` is shut down; this process drops
// its connections and attached queues, and proxies of it stop sending
// reference drops.
void ForgetManager(const std::string& address);

// ObjectHandle is one reference to a manager object, shared by the copies
// of a proxy in this process; the last copy's end drops it (one-way). A
// forked child's inherited copies drop nothing: the reference is the
// parent's.
struct LocalQueue;

class ObjectHandle {
 public:
  // Adopts `pin`: the reference the server made for this proxy.
  ObjectHandle(ObjectRef ref, uint64_t pin);
  ~ObjectHandle();
  ObjectHandle(const ObjectHandle&) = delete;
  ObjectHandle& operator=(const ObjectHandle&) = delete;
  const ObjectRef& ref() const { return ref_; }
  // local_queue: the queue this handle refers to, mapped into this process
  // (LocalQueueFor, looked up once per handle: no lookup per put or get).
  LocalQueue* local_queue() const;

 private:
  ObjectRef ref_;
  pid_t owner_;
  mutable std::once_flag local_once_;
  mutable std::shared_ptr<LocalQueue> local_;
};

// The two halves of a proxy's serialization. PinForTransit makes the
// reference the serialized proxy carries (and, while a Collecting scope is
// open on this thread, records its pin there). Rebuild makes the handle of
// a decoded proxy: it adopts the pin of its id that the last reply brought
// (a value kept with proxies in it), else the one it carries.
uint64_t PinForTransit(const ObjectRef& ref);
std::shared_ptr<const ObjectHandle> Rebuild(std::string address, uint64_t id, uint64_t pin);

// Collecting: the pins of the proxies encoded while it is open (on this
// thread) — the proxies inside a value the manager will keep.
class Collecting {
 public:
  Collecting();
  ~Collecting();
  Collecting(const Collecting&) = delete;
  Collecting& operator=(const Collecting&) = delete;
  std::vector<uint64_t> Take();

 private:
  std::vector<uint64_t> pins_;
  std::vector<uint64_t>* outer_;
};

template <class T>
wire::Stored Store(const T& value) {
  Collecting collect;
  std::string bytes = encode(value);
  return wire::Stored{std::move(bytes), collect.Take()};
}

// A local manager's queue, mapped into this process: puts and gets never
// leave shared memory. Every call first checks that the server still runs,
// so a dead manager gives errors here as it does over the socket.
struct LocalQueue;
// LocalQueueFor attaches to the queue `ref` (once per process); nullptr when
// the manager is remote (TCP) or cannot hand the queue over.
std::shared_ptr<LocalQueue> LocalQueueFor(const ObjectRef& ref);
void LocalPut(LocalQueue& q, std::string_view bytes, const Deadline& deadline);  // mp::Full
std::string LocalGet(LocalQueue& q, const Deadline& deadline);                   // mp::Empty
long LocalSize(LocalQueue& q);
long LocalMaxsize(LocalQueue& q);
void LocalTaskDone(LocalQueue& q);
bool LocalJoin(LocalQueue& q, const Deadline& deadline);

// WaitFor is a blocking call's wire::Wait: `deadline` absent blocks, one
// already past does not block (Python's block=False).
wire::Wait WaitFor(const Deadline& deadline);
template <class Rep, class Period>
wire::Wait WaitFor(std::chrono::duration<Rep, Period> timeout) {
  return wire::Wait{true, std::max(0.0, std::chrono::duration<double>(timeout).count())};
}

}  // namespace mp::internal

#endif  // MANAGER_INTERNAL_CLIENT_H_
