// The objects a manager's server keeps, one class per kind, each with the
// handlers of its operations (objects.cc). The server (server.h) finds the
// object a request names, checks its class and calls the handler with the
// server's mutex held; a handler that blocks waits through Context::Wait,
// which releases it.
//
// Internal to //manager.
#ifndef MANAGER_INTERNAL_OBJECTS_H_
#define MANAGER_INTERNAL_OBJECTS_H_

#include <condition_variable>
#include <cstdint>
#include <list>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/mutex.h"
#include "ipc/byte_queue.h"
#include "manager/internal/custom_type.h"
#include "manager/internal/protocol.h"

namespace mp::internal {

class Server;

// An error to report to the client.
struct Failure {
  wire::ErrorCode code;
  std::string message;
};
[[noreturn]] void Fail(wire::ErrorCode code, std::string message);

// What a handler may use of the server, for the request it serves.
struct Context {
  Server& server;
  uint64_t connection;  // the client's connection, an owner of locks
  int client_fd;        // its socket, to see whether the client is gone
  MutexLock& lock;      // holds the server's mutex
  int* attach_fd;        // a descriptor to send after the reply (QueueAttach)
  // Hand: the reply holds values that reference `ids`; the server pins each
  // for the client (wire::Response::pins). HandOver: the same, for values
  // the container gives up (a pop): their references are dropped after the
  // pins are made, so the objects live on for the client.
  void Hand(const std::vector<uint64_t>& ids) { reply_ids.insert(reply_ids.end(), ids.begin(), ids.end()); }
  void HandOver(const std::vector<uint64_t>& ids) {
    Hand(ids);
    drop_after.insert(drop_after.end(), ids.begin(), ids.end());
  }
  std::vector<uint64_t> reply_ids;
  std::vector<uint64_t> drop_after;
};

// A kept value: its encoding and the objects it references (their
// references are the container's; see wire::Stored).
struct Kept {
  std::string bytes;
  std::vector<uint64_t> ids;
};

struct Object {
  virtual ~Object() = default;
  // The objects this one keeps alive (a value's lock, proxies in a dict).
  virtual std::vector<uint64_t> Held() const { return {}; }
  std::condition_variable cv;  // signalled whenever the object's state changes
};

// A queue lives in a memfd-backed ByteQueue: local clients map it and use it
// directly (no round trips); remote clients reach it through the server.
struct QueueObject : Object {
  QueueObject(long maxsize, bool joinable);
  std::shared_ptr<ByteQueue> queue;
  bool joinable;
  wire::None Handle(const wire::QueuePut& op, Context& cx);
  std::string Handle(const wire::QueueGet& op, Context& cx);
  int64_t Handle(const wire::QueueSize& op, Context& cx);
  int64_t Handle(const wire::QueueMaxsize& op, Context& cx);
  wire::None Handle(const wire::QueueTaskDone& op, Context& cx);
  bool Handle(const wire::QueueJoin& op, Context& cx);
  int64_t Handle(const wire::QueueAttach& op, Context& cx);
};

// Python's dict: insertion-ordered.
struct DictObject : Object {
  using Entries = std::list<std::pair<std::string, Kept>>;
  Entries entries;
  std::unordered_map<std::string, Entries::iterator> index;
  std::vector<uint64_t> Held() const override;
  // Set stores value under key; returns the ids of the value it replaced.
  std::vector<uint64_t> Set(std::string key, Kept value);
  wire::None Handle(const wire::DictSet& op, Context& cx);
  std::string Handle(const wire::DictGet& op, Context& cx);
  std::string Handle(const wire::DictPop& op, Context& cx);
  std::string Handle(const wire::DictSetDefault& op, Context& cx);
  std::pair<std::string, std::string> Handle(const wire::DictPopItem& op, Context& cx);
  wire::None Handle(const wire::DictErase& op, Context& cx);
  bool Handle(const wire::DictContains& op, Context& cx);
  int64_t Handle(const wire::DictSize& op, Context& cx);
  wire::Items Handle(const wire::DictItems& op, Context& cx);
  wire::None Handle(const wire::DictUpdate& op, Context& cx);
  wire::None Handle(const wire::DictClear& op, Context& cx);
};

// Python's list; an Array is one of fixed length.
struct ListObject : Object {
  explicit ListObject(bool fixed_length) : fixed_length(fixed_length) {}
  std::vector<Kept> items;
  uint64_t version = 0;  // bumped by every change
  bool fixed_length;
  std::vector<uint64_t> Held() const override;
  wire::None Handle(const wire::ListAppend& op, Context& cx);
  wire::None Handle(const wire::ListExtend& op, Context& cx);
  wire::None Handle(const wire::ListInsert& op, Context& cx);
  std::string Handle(const wire::ListGet& op, Context& cx);
  wire::None Handle(const wire::ListSet& op, Context& cx);
  std::string Handle(const wire::ListPop& op, Context& cx);
  wire::None Handle(const wire::ListRemove& op, Context& cx);
  int64_t Handle(const wire::ListIndex& op, Context& cx);
  int64_t Handle(const wire::ListCount& op, Context& cx);
  wire::None Handle(const wire::ListReverse& op, Context& cx);
  wire::None Handle(const wire::ListClear& op, Context& cx);
  int64_t Handle(const wire::ListSize& op, Context& cx);
  wire::ListSnapshot Handle(const wire::ListAll& op, Context& cx);
  std::vector<std::string> Handle(const wire::ListGetSlice& op, Context& cx);
  wire::None Handle(const wire::ListSetSlice& op, Context& cx);
  bool Handle(const wire::ListPermute& op, Context& cx);

 private:
  void Resizing() const;  // ValueError for an Array
  size_t At(int64_t index) const;  // IndexError when out of range
};

struct SetObject : Object {
  std::set<std::string> items;
  wire::None Handle(const wire::SetAdd& op, Context& cx);
  wire::None Handle(const wire::SetRemove& op, Context& cx);
  bool Handle(const wire::SetContains& op, Context& cx);
  std::string Handle(const wire::SetPop& op, Context& cx);
  int64_t Handle(const wire::SetSize& op, Context& cx);
  std::vector<std::string> Handle(const wire::SetItems& op, Context& cx);
  wire::None Handle(const wire::SetClear& op, Context& cx);
};

struct ValueObject : Object {
  ValueObject(Kept value, uint64_t lock) : value(std::move(value)), lock(lock) {}
  Kept value;
  uint64_t lock;  // its RLock
  std::vector<uint64_t> Held() const override;
  std::string Handle(const wire::ValueGet& op, Context& cx);
  wire::None Handle(const wire::ValueSet& op, Context& cx);
  wire::PinnedId Handle(const wire::ValueLock& op, Context& cx);
};

struct LockObject : Object {
  explicit LockObject(bool recursive) : recursive(recursive) {}
  bool recursive;
  uint64_t owner = 0;  // connection id
  long count = 0;
  bool Handle(const wire::LockAcquire& op, Context& cx);
  wire::None Handle(const wire::LockRelease& op, Context& cx);
  // Release gives up one level (all of them with `all`); returns the depth
  // it held.
  long Release(uint64_t connection, bool all);
};

struct SemaphoreObject : Object {
  SemaphoreObject(long value, bool bounded) : value(value), bound(bounded ? value : 0) {}
  long value;
  long bound;  // 0: unbounded
  bool Handle(const wire::SemAcquire& op, Context& cx);
  wire::None Handle(const wire::SemRelease& op, Context& cx);
  int64_t Handle(const wire::SemValue& op, Context& cx);
};

struct EventObject : Object {
  bool flag = false;
  wire::None Handle(const wire::EventSet& op, Context& cx);
  wire::None Handle(const wire::EventClear& op, Context& cx);
  bool Handle(const wire::EventIsSet& op, Context& cx);
  bool Handle(const wire::EventWait& op, Context& cx);
};

struct ConditionObject : Object {
  explicit ConditionObject(uint64_t lock) : lock(lock) {}
  uint64_t lock;
  long sleepers = 0;
  long notified = 0;  // wake-ups granted and not yet taken
  std::vector<uint64_t> Held() const override { return {lock}; }
  wire::PinnedId Handle(const wire::CondLock& op, Context& cx);
  bool Handle(const wire::CondWait& op, Context& cx);
  wire::None Handle(const wire::CondNotify& op, Context& cx);
};

struct BarrierObject : Object {
  explicit BarrierObject(long parties) : parties(parties) {}
  long parties;
  long count = 0;
  uint64_t generation = 0;
  uint64_t completed = UINT64_MAX;
  bool broken = false;
  // The connections of the parties counted in `count`: an arriving party
  // drops those whose client is gone before it counts itself, so a dead
  // party never completes the barrier.
  std::set<int> waiting;
  int64_t Handle(const wire::BarrierWait& op, Context& cx);
  wire::None Handle(const wire::BarrierAbort& op, Context& cx);
  wire::None Handle(const wire::BarrierReset& op, Context& cx);
  wire::BarrierState Handle(const wire::BarrierQuery& op, Context& cx);

 private:
  void NextGeneration(bool broken_now);
};

// Python's Namespace: attributes in the order they were first set.
struct NamespaceObject : Object {
  DictObject attributes;
  std::vector<uint64_t> Held() const override { return attributes.Held(); }
  wire::None Handle(const wire::NamespaceSet& op, Context& cx);
  std::string Handle(const wire::NamespaceGet& op, Context& cx);
  wire::None Handle(const wire::NamespaceErase& op, Context& cx);
  std::vector<std::string> Handle(const wire::NamespaceNames& op, Context& cx);
};

// An object of a type registered with MP_MANAGED_TYPE. Its methods run one
// at a time, without the server's mutex (a slow method holds up only calls
// on the same object).
struct CustomObject : Object {
  CustomObject(const ManagedTypeInfo& type, std::shared_ptr<void> instance)
      : type(type), instance(std::move(instance)) {}
  const ManagedTypeInfo& type;
  std::shared_ptr<void> instance;
  Mutex calls;
  std::string Handle(const wire::Invoke& op, Context& cx);
};

}  // namespace mp::internal

#endif  // MANAGER_INTERNAL_OBJECTS_H_
