#include "manager/internal/server.h"

#include <poll.h>

#include <type_traits>
#include <utility>
#include <variant>

#include "base/errors.h"
#include "ipc/codec.h"

namespace mp::internal {

using wire::ErrorCode;

bool ClientGone(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

namespace {

// The class of object each tag's operations act on.
template <class Tag>
struct ObjectClass;
template <> struct ObjectClass<wire::QueueTag> { using type = QueueObject; };
template <> struct ObjectClass<wire::DictTag> { using type = DictObject; };
template <> struct ObjectClass<wire::ListTag> { using type = ListObject; };
template <> struct ObjectClass<wire::SetTag> { using type = SetObject; };
template <> struct ObjectClass<wire::ValueTag> { using type = ValueObject; };
template <> struct ObjectClass<wire::LockTag> { using type = LockObject; };
template <> struct ObjectClass<wire::SemaphoreTag> { using type = SemaphoreObject; };
template <> struct ObjectClass<wire::EventTag> { using type = EventObject; };
template <> struct ObjectClass<wire::ConditionTag> { using type = ConditionObject; };
template <> struct ObjectClass<wire::BarrierTag> { using type = BarrierObject; };
template <> struct ObjectClass<wire::NamespaceTag> { using type = NamespaceObject; };
template <> struct ObjectClass<wire::CustomTag> { using type = CustomObject; };

std::string KindType(wire::Kind kind) { return "kind:" + std::to_string(static_cast<int>(kind)); }

// A POSIX shared memory name: "/" and up to 254 more characters, no other
// "/" (a client's name is unlinked by the server at its end).
bool IsSegmentName(const std::string& name) {
  return name.size() >= 2 && name.size() <= 255 && name[0] == '/' && name.find('/', 1) == std::string::npos;
}

}  // namespace

std::shared_ptr<Object> Server::Find(uint64_t id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) Fail(ErrorCode::kError, "manager: no object with id " + std::to_string(id) + " (freed?)");
  return it->second.object;
}

uint64_t Server::Add(std::shared_ptr<Object> o, std::string type) {
  const uint64_t id = next_id_++;
  objects_.emplace(id, Entry{std::move(o), 0, std::move(type)});
  return id;
}

void Server::Reference(uint64_t id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) Fail(ErrorCode::kError, "manager: no object with id " + std::to_string(id) + " (freed?)");
  ++it->second.references;
}

void Server::Drop(const std::vector<uint64_t>& ids) {
  mu_.AssertHeld();
  std::vector<uint64_t> work = ids;
  while (!work.empty()) {
    const uint64_t id = work.back();
    work.pop_back();
    auto it = objects_.find(id);
    if (it == objects_.end() || --it->second.references > 0) continue;
    // Freed. A handler still running on it (a blocked call) keeps its own
    // shared_ptr; what the object held is dropped in turn.
    std::vector<uint64_t> held = it->second.object->Held();
    objects_.erase(it);
    work.insert(work.end(), held.begin(), held.end());
  }
}

wire::PinnedId Server::MintPin(uint64_t id) {
  mu_.AssertHeld();
  Reference(id);
  const uint64_t pin = next_pin_++;
  pins_.emplace(pin, id);
  return {id, pin};
}

Kept Server::Keep(wire::Stored stored) {
  mu_.AssertHeld();
  Kept kept{std::move(stored.bytes), {}};
  for (uint64_t pin : stored.pins) {
    auto it = pins_.find(pin);
    if (it == pins_.end()) continue;  // already adopted: that proxy keeps nothing alive here
    kept.ids.push_back(it->second);   // the pin's reference is the container's now
    pins_.erase(it);
  }
  return kept;
}

uint64_t Server::NewLock(bool recursive) {
  mu_.AssertHeld();
  const uint64_t id = Add(std::make_shared<LockObject>(recursive), KindType(recursive ? wire::Kind::kRLock : wire::Kind::kLock));
  Reference(id);
  return id;
}

std::optional<uint64_t> Server::Named(const std::string& name, const std::string& type) {
  if (name.empty()) return std::nullopt;
  auto it = names_.find(name);
  if (it == names_.end()) return std::nullopt;
  if (objects_.at(it->second).type != type) {
    Fail(ErrorCode::kError, "manager: the object named '" + name + "' is of another type");
  }
  return it->second;
}

void Server::Name(const std::string& name, uint64_t id) {
  if (name.empty()) return;
  names_[name] = id;
  Reference(id);  // a name keeps its object until shutdown
}

wire::PinnedId Server::Serve(const wire::Create& op, Context& cx) {
  const std::string type = KindType(op.kind);
  if (auto id = Named(op.name, type)) return MintPin(*id);
  std::shared_ptr<Object> o;
  using wire::Kind;
  switch (op.kind) {
    case Kind::kQueue:
    case Kind::kJoinableQueue:
      o = std::make_shared<QueueObject>(std::max<int64_t>(op.parameter, 0), op.kind == Kind::kJoinableQueue);
      break;
    case Kind::kDict: {
      auto d = std::make_shared<DictObject>();
      if (!op.initial.empty()) {
        for (auto& [key, value] : decode<wire::StoredItems>(op.initial)) d->Set(key, Keep(std::move(value)));
      }
      o = d;
      break;
    }
    case Kind::kList:
    case Kind::kArray: {
      auto l = std::make_shared<ListObject>(op.kind == Kind::kArray);
      if (!op.initial.empty()) {
        for (auto& item : decode<std::vector<wire::Stored>>(op.initial)) l->items.push_back(Keep(std::move(item)));
      }
      o = l;
      break;
    }
    case Kind::kSet: {
      auto s = std::make_shared<SetObject>();
      if (!op.initial.empty()) {
        for (auto& item : decode<std::vector<std::string>>(op.initial)) s->items.insert(std::move(item));
      }
      o = s;
      break;
    }
    case Kind::kValue:
      o = std::make_shared<ValueObject>(Keep(op.initial.empty() ? wire::Stored{} : decode<wire::Stored>(op.initial)),
                                        NewLock(true));
      break;
    case Kind::kLock:
    case Kind::kRLock:
      o = std::make_shared<LockObject>(op.kind == Kind::kRLock);
      break;
    case Kind::kSemaphore:
    case Kind::kBoundedSemaphore:
      if (op.parameter < 0) Fail(ErrorCode::kValueError, "Semaphore: initial value must be >= 0");
      o = std::make_shared<SemaphoreObject>(op.parameter, op.kind == Kind::kBoundedSemaphore);
      break;
    case Kind::kEvent:
      o = std::make_shared<EventObject>();
      break;
    case Kind::kCondition: {
      uint64_t lock = 0;
      if (op.parameter != 0) {
        lock = static_cast<uint64_t>(op.parameter);
        Get<LockObject>(lock);
        Reference(lock);
      } else {
        lock = NewLock(true);
      }
      o = std::make_shared<ConditionObject>(lock);
      break;
    }
    case Kind::kBarrier:
      if (op.parameter <= 0) Fail(ErrorCode::kValueError, "Barrier: parties must be > 0");
      o = std::make_shared<BarrierObject>(op.parameter);
      break;
    case Kind::kNamespace:
      o = std::make_shared<NamespaceObject>();
      break;
  }
  const uint64_t id = Add(std::move(o), type);
  Name(op.name, id);
  (void)cx;
  return MintPin(id);
}

// (cx.lock is let go around the user's constructor; see objects.cc.)
wire::PinnedId Server::Serve(const wire::CreateCustom& op, Context& cx) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  const ManagedTypeInfo* type = FindManagedType(op.type);
  if (type == nullptr) {
    Fail(ErrorCode::kError, "manager: the server knows no type " + op.type + " (no MP_MANAGED_TYPE for it in its program)");
  }
  if (auto id = Named(op.name, op.type)) return MintPin(*id);
  const ManagedConstructor* make = FindManagedConstructor(op.constructor);
  if (make == nullptr) {
    Fail(ErrorCode::kError, "manager: the server's program never constructs " + op.type +
                                " with these arguments (it has no such create<" + op.type + ">)");
  }
  // The constructor is the user's code: it runs without the server's mutex.
  std::shared_ptr<void> instance;
  cx.lock.Unlock();
  try {
    instance = (*make)(op.arguments);
  } catch (const std::exception& e) {
    cx.lock.Lock();
    Fail(ErrorCode::kRemote, CurrentExceptionTypeName() + '\n' + e.what());
  } catch (...) {
    cx.lock.Lock();
    Fail(ErrorCode::kRemote, "unknown exception\n" + op.type + "'s constructor threw");
  }
  cx.lock.Lock();
  if (auto id = Named(op.name, op.type)) return MintPin(*id);  // made meanwhile by another client
  const uint64_t id = Add(std::make_shared<CustomObject>(*type, std::move(instance)), op.type);
  Name(op.name, id);
  return MintPin(id);
}

wire::PinnedId Server::Serve(const wire::Lookup& op, Context&) {
  auto it = names_.find(op.name);
  if (it == names_.end()) Fail(ErrorCode::kKeyError, "manager: no object named '" + op.name + "'");
  if (objects_.at(it->second).type != op.type) {
    Fail(ErrorCode::kError, "manager: the object named '" + op.name + "' is of another type");
  }
  return MintPin(it->second);
}

wire::None Server::Serve(const wire::Shutdown&, Context&) { return {}; }  // (the accept loop's)

uint64_t Server::Serve(const wire::Pin& op, Context&) { return MintPin(op.id).pin; }

wire::None Server::Serve(const wire::AdoptPin& op, Context&) {
  auto it = pins_.find(op.pin);
  if (it != pins_.end() && it->second == op.id) {
    pins_.erase(it);  // the pin's reference is the new proxy's
  } else {
    Reference(op.id);  // a pin already adopted (bytes decoded twice): a new reference
  }
  return {};
}

wire::None Server::Serve(const wire::DropReference& op, Context&) {
  Drop({op.id});
  return {};
}

int64_t Server::Serve(const wire::NumberOfObjects&, Context&) { return static_cast<int64_t>(objects_.size()); }

wire::None Server::Serve(const wire::TrackSegment& op, Context&) {
  if (!IsSegmentName(op.name)) Fail(ErrorCode::kValueError, "SharedMemoryManager: bad segment name '" + op.name + "'");
  segments_.push_back(op.name);
  return {};
}

std::vector<std::string> Server::TrackedSegments() {
  MutexLock lock(mu_);
  return segments_;
}

template <class Op>
typename Op::Result Server::Route(Op& op, Context& cx) {
  if constexpr (std::is_same_v<typename Op::On, wire::ServerTag>) {
    return Serve(op, cx);
  } else {
    using O = typename ObjectClass<typename Op::On>::type;
    // Held through the call: a blocked call's object may be freed meanwhile.
    std::shared_ptr<Object> keep = Find(op.id);
    O* o = dynamic_cast<O*>(keep.get());
    if (o == nullptr) {
      Fail(ErrorCode::kError, "manager: object " + std::to_string(op.id) + " is not of the proxy's type");
    }
    return o->Handle(op, cx);
  }
}

wire::Response Server::Dispatch(uint64_t connection, int client_fd, wire::Request& request, int* attach_fd) {
  wire::Response r;
  MutexLock lock(mu_);
  Context cx{*this, connection, client_fd, lock, attach_fd, {}, {}};
  try {
    std::visit(
        [&](auto& op) {
          mu_.AssertHeld();  // (the analysis does not look into lambdas)
          r.payload = encode(Route(op, cx));
        },
        request.operation);
    // Pins for what the reply hands out; none for a one-way request, whose
    // reply nobody reads.
    if (!request.oneway) {
      for (uint64_t id : cx.reply_ids) r.pins.push_back(MintPin(id));
    }
    Drop(cx.drop_after);
  } catch (const Failure& f) {
    r = wire::Response{f.code, {}, f.message, {}};
  } catch (const std::exception& e) {  // bytes in a request that do not decode
    r = wire::Response{ErrorCode::kError, {}, e.what(), {}};
  }
  return r;
}

void Server::ReleaseLocksOf(uint64_t connection) {
  MutexLock guard(mu_);
  for (auto& [id, entry] : objects_) {
    auto* l = dynamic_cast<LockObject*>(entry.object.get());
    if (l != nullptr && l->owner == connection) {
      l->owner = 0;
      l->count = 0;
      l->cv.notify_all();
    }
  }
}

}  // namespace mp::internal
