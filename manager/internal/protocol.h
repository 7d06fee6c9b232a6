// The manager's wire protocol, typed: a Request is one struct per operation
// (a std::variant the codec carries), a Response is a payload or an error
// code with a message. Every operation names the class of object it acts on
// (`using On = ...Tag`) and the type of its reply (`using Result = ...`), so
// that the client decodes replies and the server dispatches requests without
// a hand-kept table of numbers.
//
// The server never knows the C++ types of the values it keeps: items, keys
// and values travel and are stored as their encodings (so a dict's keys, a
// list's `index` and `count`, compare by encoding: value equality for the
// built-in types), and the typed proxies decode them.
//
// Internal to //manager.
#ifndef MANAGER_INTERNAL_PROTOCOL_H_
#define MANAGER_INTERNAL_PROTOCOL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace mp::internal::wire {

// What went wrong, mapped to the mp:: exception types in one place
// (client.cc, ThrowFor).
enum class ErrorCode : uint8_t {
  kNone,
  kError,          // mp::Error
  kKeyError,       // mp::KeyError
  kIndexError,     // mp::IndexError
  kValueError,     // mp::ValueError
  kEmpty,          // mp::Empty
  kFull,           // mp::Full
  kBrokenBarrier,  // mp::BrokenBarrierError
  kRemote,         // mp::RemoteError: a custom type's method threw
  kMaxValue = kRemote,
};

// The kinds of built-in objects a Create makes.
enum class Kind : uint8_t {
  kQueue,
  kJoinableQueue,
  kDict,
  kList,
  kArray,
  kSet,
  kValue,
  kLock,
  kRLock,
  kSemaphore,
  kBoundedSemaphore,
  kEvent,
  kCondition,
  kBarrier,
  kNamespace,
  kMaxValue = kNamespace,
};

// A value to keep (a dict value, a list item...): its encoding, and the
// transit pins of the proxies inside it (Pin), which the container takes
// over: a proxy stored in a dict keeps its referent alive while it is there.
struct Stored {
  std::string bytes;
  std::vector<uint64_t> pins;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(bytes, pins);
  }
};

// How a blocking call waits: block = false is Python's block=False; a
// negative timeout waits without limit.
struct Wait {
  bool block = true;
  double timeout = -1;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(block, timeout);
  }
};

// A reply that hands out object references: each id comes with a pin the
// client's new proxy adopts (AdoptPin), so that the referent cannot be freed
// between the reply and the adoption.
struct PinnedId {
  uint64_t id = 0;
  uint64_t pin = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, pin);
  }
};

// The classes of objects operations act on. The server maps each tag to its
// object class.
struct ServerTag {};
struct QueueTag {};
struct DictTag {};
struct ListTag {};
struct SetTag {};
struct ValueTag {};
struct LockTag {};
struct SemaphoreTag {};
struct EventTag {};
struct ConditionTag {};
struct BarrierTag {};
struct NamespaceTag {};
struct CustomTag {};

struct None {
  template <class Archive>
  void serialize(Archive&) {}
};

// Operations on an object carry its id.
struct OnObject {
  uint64_t id = 0;
};

#define MP_WIRE_NO_FIELDS      \
  template <class Archive>     \
  void serialize(Archive&) {}
#define MP_WIRE_FIELDS(...)          \
  template <class Archive>           \
  void serialize(Archive& ar) {      \
    ar(__VA_ARGS__);                 \
  }

// --- The server ---------------------------------------------------------
// Create a built-in object. `name` non-empty: the object of that name,
// created the first time (names keep their objects until shutdown).
// `initial` is the kind's initial contents (Value: a Stored; dict: a
// vector<pair<string, Stored>>; list, array: a vector<Stored>; set: a
// vector<string>), `parameter` its number (a queue's maxsize, a semaphore's
// value, a barrier's parties, a condition's lock id or 0).
struct Create {
  using On = ServerTag;
  using Result = PinnedId;
  Kind kind = Kind::kQueue;
  std::string name;
  std::string initial;
  int64_t parameter = 0;
  MP_WIRE_FIELDS(kind, name, initial, parameter)
};
// Construct a custom type (MP_MANAGED_TYPE) with the constructor registered
// under `constructor` (the type's name and its argument types).
struct CreateCustom {
  using On = ServerTag;
  using Result = PinnedId;
  std::string type;
  std::string constructor;
  std::string arguments;
  std::string name;
  MP_WIRE_FIELDS(type, constructor, arguments, name)
};
// The object called `name`, if it is of type `type` (a Kind's number, or a
// custom type's name).
struct Lookup {
  using On = ServerTag;
  using Result = PinnedId;
  std::string name;
  std::string type;
  MP_WIRE_FIELDS(name, type)
};
struct Shutdown {
  using On = ServerTag;
  using Result = None;
  MP_WIRE_NO_FIELDS
};
// Reference counts. A proxy being serialized pins its referent (one
// reference, held by the pin); the proxy rebuilt from it adopts the pin (a
// pin already adopted, or 0, takes a new reference). A proxy's last copy in
// a process drops its reference (one-way).
struct Pin : OnObject {
  using On = ServerTag;
  using Result = uint64_t;
  MP_WIRE_FIELDS(id)
};
struct AdoptPin : OnObject {
  using On = ServerTag;
  using Result = None;
  uint64_t pin = 0;
  MP_WIRE_FIELDS(id, pin)
};
struct DropReference : OnObject {
  using On = ServerTag;
  using Result = None;
  MP_WIRE_FIELDS(id)
};
struct NumberOfObjects {
  using On = ServerTag;
  using Result = int64_t;
  MP_WIRE_NO_FIELDS
};
// SharedMemoryManager: segments the server unlinks when it ends.
struct TrackSegment {
  using On = ServerTag;
  using Result = None;
  std::string name;
  MP_WIRE_FIELDS(name)
};

// --- Queue, JoinableQueue ---------------------------------------------------
struct QueuePut : OnObject {
  using On = QueueTag;
  using Result = None;
  std::string item;
  Wait wait;
  MP_WIRE_FIELDS(id, item, wait)
};
struct QueueGet : OnObject {
  using On = QueueTag;
  using Result = std::string;
  Wait wait;
  MP_WIRE_FIELDS(id, wait)
};
struct QueueSize : OnObject {
  using On = QueueTag;
  using Result = int64_t;
  MP_WIRE_FIELDS(id)
};
struct QueueMaxsize : OnObject {
  using On = QueueTag;
  using Result = int64_t;
  MP_WIRE_FIELDS(id)
};
struct QueueTaskDone : OnObject {
  using On = QueueTag;
  using Result = None;
  MP_WIRE_FIELDS(id)
};
struct QueueJoin : OnObject {
  using On = QueueTag;
  using Result = bool;
  Wait wait;
  MP_WIRE_FIELDS(id, wait)
};
// Unix socket only: the reply is the server's pid, followed by the queue's
// memfd (SCM_RIGHTS), which the client maps.
struct QueueAttach : OnObject {
  using On = QueueTag;
  using Result = int64_t;
  MP_WIRE_FIELDS(id)
};

// --- dict ---------------------------------------------------------------
using StoredItems = std::vector<std::pair<std::string, Stored>>;
using Items = std::vector<std::pair<std::string, std::string>>;
struct DictSet : OnObject {
  using On = DictTag;
  using Result = None;
  std::string key;
  Stored value;
  MP_WIRE_FIELDS(id, key, value)
};
// get (no fallback: KeyError), pop, setdefault.
struct DictGet : OnObject {
  using On = DictTag;
  using Result = std::string;
  std::string key;
  std::optional<std::string> fallback;
  MP_WIRE_FIELDS(id, key, fallback)
};
struct DictPop : OnObject {
  using On = DictTag;
  using Result = std::string;
  std::string key;
  std::optional<std::string> fallback;
  MP_WIRE_FIELDS(id, key, fallback)
};
struct DictSetDefault : OnObject {
  using On = DictTag;
  using Result = std::string;
  std::string key;
  Stored value;
  MP_WIRE_FIELDS(id, key, value)
};
struct DictPopItem : OnObject {  // the last inserted item; KeyError when empty
  using On = DictTag;
  using Result = std::pair<std::string, std::string>;
  MP_WIRE_FIELDS(id)
};
struct DictErase : OnObject {  // del d[key]: KeyError when missing
  using On = DictTag;
  using Result = None;
  std::string key;
  MP_WIRE_FIELDS(id, key)
};
struct DictContains : OnObject {
  using On = DictTag;
  using Result = bool;
  std::string key;
  MP_WIRE_FIELDS(id, key)
};
struct DictSize : OnObject {
  using On = DictTag;
  using Result = int64_t;
  MP_WIRE_FIELDS(id)
};
struct DictItems : OnObject {  // a snapshot, in insertion order
  using On = DictTag;
  using Result = Items;
  MP_WIRE_FIELDS(id)
};
struct DictUpdate : OnObject {
  using On = DictTag;
  using Result = None;
  StoredItems items;
  MP_WIRE_FIELDS(id, items)
};
struct DictClear : OnObject {
  using On = DictTag;
  using Result = None;
  MP_WIRE_FIELDS(id)
};

// --- list, Array (a list of fixed length) ---------------------------------
// Indices are Python's: negative ones count from the end.
struct ListAppend : OnObject {
  using On = ListTag;
  using Result = None;
  Stored item;
  MP_WIRE_FIELDS(id, item)
};
struct ListExtend : OnObject {
  using On = ListTag;
  using Result = None;
  std::vector<Stored> items;
  MP_WIRE_FIELDS(id, items)
};
struct ListInsert : OnObject {
  using On = ListTag;
  using Result = None;
  int64_t index = 0;
  Stored item;
  MP_WIRE_FIELDS(id, index, item)
};
struct ListGet : OnObject {
  using On = ListTag;
  using Result = std::string;
  int64_t index = 0;
  MP_WIRE_FIELDS(id, index)
};
struct ListSet : OnObject {
  using On = ListTag;
  using Result = None;
  int64_t index = 0;
  Stored item;
  MP_WIRE_FIELDS(id, index, item)
};
struct ListPop : OnObject {
  using On = ListTag;
  using Result = std::string;
  int64_t index = -1;
  MP_WIRE_FIELDS(id, index)
};
struct ListRemove : OnObject {  // the first equal item; ValueError if none
  using On = ListTag;
  using Result = None;
  std::string item;
  MP_WIRE_FIELDS(id, item)
};
struct ListIndex : OnObject {  // ValueError if none in [start, stop)
  using On = ListTag;
  using Result = int64_t;
  std::string item;
  int64_t start = 0;
  std::optional<int64_t> stop;
  MP_WIRE_FIELDS(id, item, start, stop)
};
struct ListCount : OnObject {
  using On = ListTag;
  using Result = int64_t;
  std::string item;
  MP_WIRE_FIELDS(id, item)
};
struct ListReverse : OnObject {
  using On = ListTag;
  using Result = None;
  MP_WIRE_FIELDS(id)
};
struct ListClear : OnObject {
  using On = ListTag;
  using Result = None;
  MP_WIRE_FIELDS(id)
};
struct ListSize : OnObject {
  using On = ListTag;
  using Result = int64_t;
  MP_WIRE_FIELDS(id)
};
// A snapshot of the items and the list's version (bumped by every change).
struct ListSnapshot {
  std::vector<std::string> items;
  uint64_t version = 0;
  MP_WIRE_FIELDS(items, version)
};
struct ListAll : OnObject {
  using On = ListTag;
  using Result = ListSnapshot;
  MP_WIRE_FIELDS(id)
};
// Python's slice l[start:stop:step] (absent bounds: the ends).
struct Slice {
  std::optional<int64_t> start;
  std::optional<int64_t> stop;
  int64_t step = 1;
  MP_WIRE_FIELDS(start, stop, step)
};
struct ListGetSlice : OnObject {
  using On = ListTag;
  using Result = std::vector<std::string>;
  Slice slice;
  MP_WIRE_FIELDS(id, slice)
};
// l[start:stop:step] = items (step 1: any length; otherwise as many items
// as the slice has), del l[start:stop:step] when `erase`.
struct ListSetSlice : OnObject {
  using On = ListTag;
  using Result = None;
  Slice slice;
  std::vector<Stored> items;
  bool erase = false;
  MP_WIRE_FIELDS(id, slice, items, erase)
};
// Replaces the items with a permutation of them (sort, done by the typed
// client), if the list is still at `version`; false if it changed.
struct ListPermute : OnObject {
  using On = ListTag;
  using Result = bool;
  uint64_t version = 0;
  std::vector<uint32_t> order;
  MP_WIRE_FIELDS(id, version, order)
};

// --- set ----------------------------------------------------------------
struct SetAdd : OnObject {
  using On = SetTag;
  using Result = None;
  std::string item;
  MP_WIRE_FIELDS(id, item)
};
struct SetRemove : OnObject {  // KeyError when missing, unless `discard`
  using On = SetTag;
  using Result = None;
  std::string item;
  bool discard = false;
  MP_WIRE_FIELDS(id, item, discard)
};
struct SetContains : OnObject {
  using On = SetTag;
  using Result = bool;
  std::string item;
  MP_WIRE_FIELDS(id, item)
};
struct SetPop : OnObject {  // KeyError when empty
  using On = SetTag;
  using Result = std::string;
  MP_WIRE_FIELDS(id)
};
struct SetSize : OnObject {
  using On = SetTag;
  using Result = int64_t;
  MP_WIRE_FIELDS(id)
};
struct SetItems : OnObject {
  using On = SetTag;
  using Result = std::vector<std::string>;
  MP_WIRE_FIELDS(id)
};
struct SetClear : OnObject {
  using On = SetTag;
  using Result = None;
  MP_WIRE_FIELDS(id)
};

// --- Value ----------------------------------------------------------------
struct ValueGet : OnObject {
  using On = ValueTag;
  using Result = std::string;
  MP_WIRE_FIELDS(id)
};
struct ValueSet : OnObject {
  using On = ValueTag;
  using Result = None;
  Stored value;
  MP_WIRE_FIELDS(id, value)
};
struct ValueLock : OnObject {  // the value's RLock
  using On = ValueTag;
  using Result = PinnedId;
  MP_WIRE_FIELDS(id)
};

// --- Lock, RLock, Semaphore, Event ---------------------------------------
struct LockAcquire : OnObject {
  using On = LockTag;
  using Result = bool;
  Wait wait;
  MP_WIRE_FIELDS(id, wait)
};
struct LockRelease : OnObject {
  using On = LockTag;
  using Result = None;
  MP_WIRE_FIELDS(id)
};
struct SemAcquire : OnObject {
  using On = SemaphoreTag;
  using Result = bool;
  Wait wait;
  MP_WIRE_FIELDS(id, wait)
};
struct SemRelease : OnObject {
  using On = SemaphoreTag;
  using Result = None;
  MP_WIRE_FIELDS(id)
};
struct SemValue : OnObject {
  using On = SemaphoreTag;
  using Result = int64_t;
  MP_WIRE_FIELDS(id)
};
struct EventSet : OnObject {
  using On = EventTag;
  using Result = None;
  MP_WIRE_FIELDS(id)
};
struct EventClear : OnObject {
  using On = EventTag;
  using Result = None;
  MP_WIRE_FIELDS(id)
};
struct EventIsSet : OnObject {
  using On = EventTag;
  using Result = bool;
  MP_WIRE_FIELDS(id)
};
struct EventWait : OnObject {
  using On = EventTag;
  using Result = bool;
  Wait wait;
  MP_WIRE_FIELDS(id, wait)
};

// --- Condition, Barrier ----------------------------------------------------
struct CondLock : OnObject {
  using On = ConditionTag;
  using Result = PinnedId;
  MP_WIRE_FIELDS(id)
};
struct CondWait : OnObject {
  using On = ConditionTag;
  using Result = bool;
  Wait wait;
  MP_WIRE_FIELDS(id, wait)
};
struct CondNotify : OnObject {
  using On = ConditionTag;
  using Result = None;
  int64_t n = 1;  // negative: all
  MP_WIRE_FIELDS(id, n)
};
struct BarrierWait : OnObject {
  using On = BarrierTag;
  using Result = int64_t;
  Wait wait;
  MP_WIRE_FIELDS(id, wait)
};
struct BarrierAbort : OnObject {
  using On = BarrierTag;
  using Result = None;
  MP_WIRE_FIELDS(id)
};
struct BarrierReset : OnObject {
  using On = BarrierTag;
  using Result = None;
  MP_WIRE_FIELDS(id)
};
struct BarrierState {
  int64_t parties = 0;
  int64_t waiting = 0;
  bool broken = false;
  MP_WIRE_FIELDS(parties, waiting, broken)
};
struct BarrierQuery : OnObject {
  using On = BarrierTag;
  using Result = BarrierState;
  MP_WIRE_FIELDS(id)
};

// --- Namespace ---------------------------------------------------------------
struct NamespaceSet : OnObject {
  using On = NamespaceTag;
  using Result = None;
  std::string name;
  Stored value;
  MP_WIRE_FIELDS(id, name, value)
};
struct NamespaceGet : OnObject {  // KeyError for a name never set
  using On = NamespaceTag;
  using Result = std::string;
  std::string name;
  MP_WIRE_FIELDS(id, name)
};
struct NamespaceErase : OnObject {
  using On = NamespaceTag;
  using Result = None;
  std::string name;
  MP_WIRE_FIELDS(id, name)
};
struct NamespaceNames : OnObject {  // in the order they were first set
  using On = NamespaceTag;
  using Result = std::vector<std::string>;
  MP_WIRE_FIELDS(id)
};

// --- Custom types -------------------------------------------------------------
// Calls method number `method` of the type's MP_MANAGED_TYPE list with
// `arguments` (an encoded tuple); the reply is the encoded result.
struct Invoke : OnObject {
  using On = CustomTag;
  using Result = std::string;
  uint32_t method = 0;
  std::string arguments;
  MP_WIRE_FIELDS(id, method, arguments)
};

#undef MP_WIRE_FIELDS
#undef MP_WIRE_NO_FIELDS

using Operation =
    std::variant<Create, CreateCustom, Lookup, Shutdown, Pin, AdoptPin, DropReference, NumberOfObjects,
                 TrackSegment, QueuePut, QueueGet, QueueSize, QueueMaxsize, QueueTaskDone, QueueJoin,
                 QueueAttach, DictSet, DictGet, DictPop, DictSetDefault, DictPopItem, DictErase,
                 DictContains, DictSize, DictItems, DictUpdate, DictClear, ListAppend, ListExtend,
                 ListInsert, ListGet, ListSet, ListPop, ListRemove, ListIndex, ListCount, ListReverse,
                 ListClear, ListSize, ListAll, ListGetSlice, ListSetSlice, ListPermute, SetAdd,
                 SetRemove, SetContains, SetPop, SetSize, SetItems, SetClear, ValueGet, ValueSet,
                 ValueLock, LockAcquire, LockRelease, SemAcquire, SemRelease, SemValue, EventSet,
                 EventClear, EventIsSet, EventWait, CondLock, CondWait, CondNotify, BarrierWait,
                 BarrierAbort, BarrierReset, BarrierQuery, NamespaceSet, NamespaceGet,
                 NamespaceErase, NamespaceNames, Invoke>;

struct Request {
  Operation operation;
  bool oneway = false;  // no Response is sent
  template <class Archive>
  void serialize(Archive& ar) {
    ar(operation, oneway);
  }
};

struct Response {
  ErrorCode error = ErrorCode::kNone;
  std::string payload;  // the operation's Result, encoded
  std::string message;  // the error's
  // Pins for the proxies inside the payload (values kept with proxies in
  // them): a proxy decoded from the payload adopts the pin of its id.
  std::vector<PinnedId> pins;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(error, payload, message, pins);
  }
};

}  // namespace mp::internal::wire

#endif  // MANAGER_INTERNAL_PROTOCOL_H_
