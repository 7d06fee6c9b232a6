// The manager's wire protocol: one Request, one Response (none for one-way
// requests), both through the codec.
//
// Internal to //ipc:manager. The server never knows the C++ types of the
// values it keeps: items, keys and values travel and are stored as their
// encodings, and the typed proxies decode them. (So a dict's keys compare by
// their encoding, which is value equality for the built-in types.)
#ifndef MANAGER_MANAGER_PROTOCOL_H_
#define MANAGER_MANAGER_PROTOCOL_H_

#include <cstdint>
#include <string>

namespace mp::internal {

enum class Op : uint8_t {
  kCreate,    // kind; a = name (empty: anonymous); b = initial value; n = parameter
  kShutdown,
  kQueuePut,  // a = item
  kQueueGet,
  kQueueSize,
  kQueueEmpty,
  kQueueFull,
  kQueueTaskDone,
  kQueueJoin,
  kQueueAttach,  // Unix socket only: reply = server pid, then the queue's memfd (SCM_RIGHTS)
  kDictSet,  // a = key, b = value
  kDictGet,  // a = key; n = 1: b is the default
  kDictContains,
  kDictPop,  // a = key; n = 1: b is the default
  kDictSize,
  kDictKeys,
  kDictValues,
  kDictItems,
  kDictUpdate,  // a = encoded vector<pair<key, value>>
  kDictClear,
  kListAppend,
  kListExtend,  // a = encoded vector<item>
  kListGet,     // n = index
  kListSet,     // n = index, a = item
  kListPop,     // n = index (-1: last)
  kListSize,
  kListAll,
  kValueGet,
  kValueSet,
  kValueLock,  // returns the id of the value's lock
  kLockAcquire,  // timeout; n = 0: non-blocking
  kLockRelease,
  kSemAcquire,
  kSemRelease,
  kSemValue,
  kEventSet,
  kEventClear,
  kEventIsSet,
  kEventWait,
  kCondWait,
  kCondNotify,  // n = how many (-1: all)
  kCondLock,    // returns the id of the condition's lock
  kBarrierWait,
  kBarrierAbort,
  kBarrierReset,
  kBarrierBroken,
  kBarrierParties,
  kBarrierWaiting,
};

enum class Kind : uint8_t {
  kQueue,
  kJoinableQueue,
  kDict,
  kList,
  kValue,
  kLock,
  kRLock,
  kSemaphore,
  kBoundedSemaphore,
  kEvent,
  kCondition,  // n = id of an existing lock, or 0 for a new RLock
  kBarrier,
  kNamespace,
};

struct Request {
  uint64_t object = 0;
  Op op = Op::kCreate;
  Kind kind = Kind::kQueue;  // kCreate only
  std::string a;
  std::string b;
  int64_t n = 0;
  double timeout = -1;  // seconds; negative: block without limit
  bool oneway = false;  // no Response is sent
  template <class Archive>
  void serialize(Archive& ar) {
    ar(object, op, kind, a, b, n, timeout, oneway);
  }
};

struct Response {
  bool ok = true;
  std::string payload;
  std::string error_type;  // "KeyError", "Empty", "Full", "ValueError", ...
  std::string message;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(ok, payload, error_type, message);
  }
};

}  // namespace mp::internal

#endif  // MANAGER_MANAGER_PROTOCOL_H_
