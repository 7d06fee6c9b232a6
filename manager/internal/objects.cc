// The handlers of the manager's objects. Each runs with the server's mutex
// held (Context::lock) unless it says otherwise.
#include "manager/internal/objects.h"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <utility>

#include "base/errors.h"
#include "ipc/codec.h"
#include "manager/internal/server.h"

namespace mp::internal {

using wire::ErrorCode;

void Fail(ErrorCode code, std::string message) { throw Failure{code, std::move(message)}; }

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void ClientIsGone() { Fail(ErrorCode::kError, "manager: the client is gone; its call is cancelled"); }

// Python's slice.indices(): the slice's start, stop and step over `size`
// items, clamped as Python clamps them.
struct Range {
  int64_t start, stop, step;
  int64_t Count() const {
    if (step > 0) return start < stop ? (stop - start + step - 1) / step : 0;
    return stop < start ? (start - stop - step - 1) / -step : 0;
  }
};
Range Indices(const wire::Slice& s, int64_t size) {
  if (s.step == 0) Fail(ErrorCode::kValueError, "slice step cannot be zero");
  const int64_t step = s.step;
  auto clamp = [&](std::optional<int64_t> v, int64_t fallback) {
    if (!v) return fallback;
    int64_t i = *v < 0 ? *v + size : *v;
    if (step > 0) return std::clamp<int64_t>(i, 0, size);
    return std::clamp<int64_t>(i, -1, size - 1);
  };
  return step > 0 ? Range{clamp(s.start, 0), clamp(s.stop, size), step}
                  : Range{clamp(s.start, size - 1), clamp(s.stop, -1), step};
}

std::vector<uint64_t> IdsOf(const std::vector<Kept>& values) {
  std::vector<uint64_t> ids;
  for (const Kept& v : values) ids.insert(ids.end(), v.ids.begin(), v.ids.end());
  return ids;
}

}  // namespace

// ---- Queue -------------------------------------------------------------------

QueueObject::QueueObject(long maxsize, bool joinable)
    : queue(ByteQueue::Shareable(maxsize, ByteQueue::kDefaultCapacity, joinable)), joinable(joinable) {}

namespace {

// Blocking queue calls wait on the shared queue itself with the server's
// mutex released, so no other client waits for this one; in slices
// (kClientCheck), so that a remote client that dies while it waits has its
// call cancelled, not completed for nobody.
// (cx.lock is held on entry, by Dispatch, and let go here around the wait;
// the thread-safety analysis cannot follow a lock passed by reference.)
template <class Attempt>
bool InSlices(const wire::Wait& wait, Context& cx, Attempt attempt) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  const Deadline deadline = !wait.block        ? Deadline(Clock::now())
                            : wait.timeout < 0 ? Deadline()
                                               : Deadline(Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                                             std::chrono::duration<double>(wait.timeout)));
  cx.lock.Unlock();
  bool ok = false;
  try {
    for (;;) {
      if (ClientGone(cx.client_fd)) ClientIsGone();
      Deadline slice = Clock::now() + Server::kClientCheck;
      if (deadline && *deadline < *slice) slice = deadline;
      ok = attempt(slice);
      if (ok || Expired(deadline)) break;
    }
  } catch (...) {
    cx.lock.Lock();
    throw;
  }
  cx.lock.Lock();
  return ok;
}

}  // namespace

wire::None QueueObject::Handle(const wire::QueuePut& op, Context& cx) {
  std::shared_ptr<ByteQueue> q = queue;
  if (!InSlices(op.wait, cx, [&](const Deadline& d) { return q->Put(op.item, d); })) Fail(ErrorCode::kFull, "queue is full");
  return {};
}

std::string QueueObject::Handle(const wire::QueueGet& op, Context& cx) {
  std::shared_ptr<ByteQueue> q = queue;
  std::string item;
  if (!InSlices(op.wait, cx, [&](const Deadline& d) { return q->Get(&item, d); })) Fail(ErrorCode::kEmpty, "queue is empty");
  if (ClientGone(cx.client_fd)) {
    // Taken for a client that died within its last slice: put back (at the
    // end of the queue: it cannot go back in its place).
    q->Put(item, Clock::now() + std::chrono::seconds(1));
    ClientIsGone();
  }
  return item;
}

int64_t QueueObject::Handle(const wire::QueueSize&, Context&) { return queue->qsize(); }
int64_t QueueObject::Handle(const wire::QueueMaxsize&, Context&) { return queue->maxsize(); }

wire::None QueueObject::Handle(const wire::QueueTaskDone&, Context&) {
  if (!joinable) Fail(ErrorCode::kError, "task_done: not a JoinableQueue");
  if (!queue->TaskDone()) Fail(ErrorCode::kValueError, "task_done() called too many times");
  return {};
}

bool QueueObject::Handle(const wire::QueueJoin& op, Context& cx) {
  std::shared_ptr<ByteQueue> q = queue;
  return InSlices(op.wait, cx, [&](const Deadline& d) { return q->Join(d); });
}

int64_t QueueObject::Handle(const wire::QueueAttach&, Context& cx) {
  *cx.attach_fd = queue->fd();
  return getpid();
}

// ---- dict ------------------------------------------------------------------

std::vector<uint64_t> DictObject::Held() const {
  std::vector<uint64_t> ids;
  for (const auto& [key, value] : entries) ids.insert(ids.end(), value.ids.begin(), value.ids.end());
  return ids;
}

std::vector<uint64_t> DictObject::Set(std::string key, Kept value) {
  auto it = index.find(key);
  if (it != index.end()) return std::exchange(it->second->second, std::move(value)).ids;
  entries.emplace_back(key, std::move(value));
  index.emplace(std::move(key), std::prev(entries.end()));
  return {};
}

wire::None DictObject::Handle(const wire::DictSet& op, Context& cx) {
  cx.server.Drop(Set(op.key, cx.server.Keep(op.value)));
  return {};
}

std::string DictObject::Handle(const wire::DictGet& op, Context& cx) {
  auto it = index.find(op.key);
  if (it == index.end()) {
    if (!op.fallback) Fail(ErrorCode::kKeyError, "key not found");
    return *op.fallback;
  }
  cx.Hand(it->second->second.ids);
  return it->second->second.bytes;
}

std::string DictObject::Handle(const wire::DictPop& op, Context& cx) {
  auto it = index.find(op.key);
  if (it == index.end()) {
    if (!op.fallback) Fail(ErrorCode::kKeyError, "key not found");
    return *op.fallback;
  }
  Kept value = std::move(it->second->second);
  entries.erase(it->second);
  index.erase(it);
  cx.HandOver(value.ids);
  return std::move(value.bytes);
}

std::string DictObject::Handle(const wire::DictSetDefault& op, Context& cx) {
  auto it = index.find(op.key);
  if (it == index.end()) {
    Set(op.key, cx.server.Keep(op.value));
    it = index.find(op.key);
  }
  cx.Hand(it->second->second.ids);
  return it->second->second.bytes;
}

std::pair<std::string, std::string> DictObject::Handle(const wire::DictPopItem&, Context& cx) {
  if (entries.empty()) Fail(ErrorCode::kKeyError, "popitem(): dictionary is empty");
  auto [key, value] = std::move(entries.back());
  index.erase(key);
  entries.pop_back();
  cx.HandOver(value.ids);
  return {std::move(key), std::move(value.bytes)};
}

wire::None DictObject::Handle(const wire::DictErase& op, Context& cx) {
  auto it = index.find(op.key);
  if (it == index.end()) Fail(ErrorCode::kKeyError, "key not found");
  std::vector<uint64_t> ids = std::move(it->second->second.ids);
  entries.erase(it->second);
  index.erase(it);
  cx.server.Drop(ids);
  return {};
}

bool DictObject::Handle(const wire::DictContains& op, Context&) { return index.count(op.key) > 0; }
int64_t DictObject::Handle(const wire::DictSize&, Context&) { return static_cast<int64_t>(entries.size()); }

wire::Items DictObject::Handle(const wire::DictItems&, Context& cx) {
  wire::Items out;
  out.reserve(entries.size());
  for (const auto& [key, value] : entries) {
    out.emplace_back(key, value.bytes);
    cx.Hand(value.ids);
  }
  return out;
}

wire::None DictObject::Handle(const wire::DictUpdate& op, Context& cx) {
  for (const auto& [key, value] : op.items) cx.server.Drop(Set(key, cx.server.Keep(value)));
  return {};
}

wire::None DictObject::Handle(const wire::DictClear&, Context& cx) {
  std::vector<uint64_t> ids = Held();
  entries.clear();
  index.clear();
  cx.server.Drop(ids);
  return {};
}

// ---- list, Array ---------------------------------------------------------------

std::vector<uint64_t> ListObject::Held() const { return IdsOf(items); }

void ListObject::Resizing() const {
  if (fixed_length) Fail(ErrorCode::kValueError, "an Array's length cannot change");
}

size_t ListObject::At(int64_t index) const {
  const int64_t size = static_cast<int64_t>(items.size());
  const int64_t i = index < 0 ? index + size : index;
  if (i < 0 || i >= size) Fail(ErrorCode::kIndexError, "list index out of range");
  return static_cast<size_t>(i);
}

wire::None ListObject::Handle(const wire::ListAppend& op, Context& cx) {
  Resizing();
  items.push_back(cx.server.Keep(op.item));
  ++version;
  return {};
}

wire::None ListObject::Handle(const wire::ListExtend& op, Context& cx) {
  Resizing();
  for (const wire::Stored& item : op.items) items.push_back(cx.server.Keep(item));
  ++version;
  return {};
}

wire::None ListObject::Handle(const wire::ListInsert& op, Context& cx) {
  Resizing();
  const int64_t size = static_cast<int64_t>(items.size());
  const int64_t i = std::clamp<int64_t>(op.index < 0 ? op.index + size : op.index, 0, size);
  items.insert(items.begin() + i, cx.server.Keep(op.item));
  ++version;
  return {};
}

std::string ListObject::Handle(const wire::ListGet& op, Context& cx) {
  const Kept& item = items[At(op.index)];
  cx.Hand(item.ids);
  return item.bytes;
}

wire::None ListObject::Handle(const wire::ListSet& op, Context& cx) {
  const size_t i = At(op.index);
  cx.server.Drop(std::exchange(items[i], cx.server.Keep(op.item)).ids);
  ++version;
  return {};
}

std::string ListObject::Handle(const wire::ListPop& op, Context& cx) {
  Resizing();
  if (items.empty()) Fail(ErrorCode::kIndexError, "pop from empty list");
  const size_t i = At(op.index);
  Kept item = std::move(items[i]);
  items.erase(items.begin() + static_cast<ptrdiff_t>(i));
  ++version;
  cx.HandOver(item.ids);
  return std::move(item.bytes);
}

wire::None ListObject::Handle(const wire::ListRemove& op, Context& cx) {
  Resizing();
  auto it = std::find_if(items.begin(), items.end(), [&](const Kept& k) { return k.bytes == op.item; });
  if (it == items.end()) Fail(ErrorCode::kValueError, "list.remove(x): x not in list");
  std::vector<uint64_t> ids = std::move(it->ids);
  items.erase(it);
  ++version;
  cx.server.Drop(ids);
  return {};
}

int64_t ListObject::Handle(const wire::ListIndex& op, Context&) {
  const Range r = Indices(wire::Slice{op.start, op.stop, 1}, static_cast<int64_t>(items.size()));
  for (int64_t i = r.start; i < r.stop; ++i) {
    if (items[static_cast<size_t>(i)].bytes == op.item) return i;
  }
  Fail(ErrorCode::kValueError, "list.index(x): x not in list");
}

int64_t ListObject::Handle(const wire::ListCount& op, Context&) {
  return std::count_if(items.begin(), items.end(), [&](const Kept& k) { return k.bytes == op.item; });
}

wire::None ListObject::Handle(const wire::ListReverse&, Context&) {
  std::reverse(items.begin(), items.end());
  ++version;
  return {};
}

wire::None ListObject::Handle(const wire::ListClear&, Context& cx) {
  Resizing();
  std::vector<uint64_t> ids = Held();
  items.clear();
  ++version;
  cx.server.Drop(ids);
  return {};
}

int64_t ListObject::Handle(const wire::ListSize&, Context&) { return static_cast<int64_t>(items.size()); }

wire::ListSnapshot ListObject::Handle(const wire::ListAll&, Context& cx) {
  wire::ListSnapshot out{{}, version};
  out.items.reserve(items.size());
  for (const Kept& item : items) out.items.push_back(item.bytes);
  cx.Hand(Held());
  return out;
}

std::vector<std::string> ListObject::Handle(const wire::ListGetSlice& op, Context& cx) {
  const Range r = Indices(op.slice, static_cast<int64_t>(items.size()));
  std::vector<std::string> out;
  for (int64_t k = 0, i = r.start; k < r.Count(); ++k, i += r.step) {
    const Kept& item = items[static_cast<size_t>(i)];
    out.push_back(item.bytes);
    cx.Hand(item.ids);
  }
  return out;
}

wire::None ListObject::Handle(const wire::ListSetSlice& op, Context& cx) {
  const Range r = Indices(op.slice, static_cast<int64_t>(items.size()));
  const int64_t count = r.Count();
  std::vector<uint64_t> dropped;
  if (r.step == 1) {
    const int64_t stop = std::max(r.start, r.stop);
    const int64_t incoming = op.erase ? 0 : static_cast<int64_t>(op.items.size());
    if (incoming != stop - r.start) Resizing();
    auto first = items.begin() + r.start;
    for (auto it = first; it != items.begin() + stop; ++it) dropped.insert(dropped.end(), it->ids.begin(), it->ids.end());
    items.erase(first, items.begin() + stop);
    if (!op.erase) {
      std::vector<Kept> kept;
      for (const wire::Stored& item : op.items) kept.push_back(cx.server.Keep(item));
      items.insert(items.begin() + r.start, std::make_move_iterator(kept.begin()), std::make_move_iterator(kept.end()));
    }
  } else if (op.erase) {
    Resizing();
    std::vector<bool> gone(items.size(), false);
    for (int64_t k = 0, i = r.start; k < count; ++k, i += r.step) gone[static_cast<size_t>(i)] = true;
    std::vector<Kept> rest;
    for (size_t i = 0; i < items.size(); ++i) {
      if (gone[i]) {
        dropped.insert(dropped.end(), items[i].ids.begin(), items[i].ids.end());
      } else {
        rest.push_back(std::move(items[i]));
      }
    }
    items = std::move(rest);
  } else {
    if (static_cast<int64_t>(op.items.size()) != count) {
      Fail(ErrorCode::kValueError, "attempt to assign sequence of size " + std::to_string(op.items.size()) +
                                       " to extended slice of size " + std::to_string(count));
    }
    for (int64_t k = 0, i = r.start; k < count; ++k, i += r.step) {
      Kept old = std::exchange(items[static_cast<size_t>(i)], cx.server.Keep(op.items[static_cast<size_t>(k)]));
      dropped.insert(dropped.end(), old.ids.begin(), old.ids.end());
    }
  }
  ++version;
  cx.server.Drop(dropped);
  return {};
}

bool ListObject::Handle(const wire::ListPermute& op, Context&) {
  if (op.version != version) return false;
  // The order comes from a client: it must be a permutation of the items.
  std::vector<bool> seen(items.size(), false);
  if (op.order.size() != items.size()) Fail(ErrorCode::kValueError, "sort: not a permutation of the list");
  for (uint32_t i : op.order) {
    if (i >= items.size() || seen[i]) Fail(ErrorCode::kValueError, "sort: not a permutation of the list");
    seen[i] = true;
  }
  std::vector<Kept> sorted;
  sorted.reserve(items.size());
  for (uint32_t i : op.order) sorted.push_back(std::move(items[i]));
  items = std::move(sorted);
  ++version;
  return true;
}

// ---- set --------------------------------------------------------------------

wire::None SetObject::Handle(const wire::SetAdd& op, Context&) {
  items.insert(op.item);
  return {};
}

wire::None SetObject::Handle(const wire::SetRemove& op, Context&) {
  if (items.erase(op.item) == 0 && !op.discard) Fail(ErrorCode::kKeyError, "set.remove(x): x not in set");
  return {};
}

bool SetObject::Handle(const wire::SetContains& op, Context&) { return items.count(op.item) > 0; }

std::string SetObject::Handle(const wire::SetPop&, Context&) {
  if (items.empty()) Fail(ErrorCode::kKeyError, "pop from an empty set");
  return std::move(items.extract(items.begin()).value());
}

int64_t SetObject::Handle(const wire::SetSize&, Context&) { return static_cast<int64_t>(items.size()); }

std::vector<std::string> SetObject::Handle(const wire::SetItems&, Context&) { return {items.begin(), items.end()}; }

wire::None SetObject::Handle(const wire::SetClear&, Context&) {
  items.clear();
  return {};
}

// ---- Value --------------------------------------------------------------------

std::vector<uint64_t> ValueObject::Held() const {
  std::vector<uint64_t> ids = value.ids;
  ids.push_back(lock);
  return ids;
}

std::string ValueObject::Handle(const wire::ValueGet&, Context& cx) {
  cx.Hand(value.ids);
  return value.bytes;
}

wire::None ValueObject::Handle(const wire::ValueSet& op, Context& cx) {
  cx.server.Drop(std::exchange(value, cx.server.Keep(op.value)).ids);
  return {};
}

wire::PinnedId ValueObject::Handle(const wire::ValueLock&, Context& cx) { return cx.server.MintPin(lock); }

// ---- Lock, RLock ------------------------------------------------------------------

bool LockObject::Handle(const wire::LockAcquire& op, Context& cx) {
  if (recursive && owner == cx.connection) {
    ++count;
    return true;
  }
  if (owner == cx.connection && op.wait.block && op.wait.timeout < 0) {
    Fail(ErrorCode::kError, "Lock.acquire: this client already holds the lock (it would deadlock)");
  }
  if (!cx.server.Wait(*this, op.wait, cx, [&] { return owner == 0; })) return false;
  owner = cx.connection;
  count = 1;
  return true;
}

long LockObject::Release(uint64_t connection, bool all) {
  if (owner == 0) Fail(ErrorCode::kValueError, "release: the lock is not held");
  if (recursive && owner != connection) Fail(ErrorCode::kValueError, "RLock.release: cannot release un-acquired lock");
  const long depth = count;
  count = all ? 0 : count - 1;
  if (count == 0) {
    owner = 0;
    cv.notify_all();
  }
  return depth;
}

wire::None LockObject::Handle(const wire::LockRelease&, Context& cx) {
  Release(cx.connection, false);
  return {};
}

// ---- Semaphore, Event -------------------------------------------------------------

bool SemaphoreObject::Handle(const wire::SemAcquire& op, Context& cx) {
  if (!cx.server.Wait(*this, op.wait, cx, [&] { return value > 0; })) return false;
  --value;
  return true;
}

wire::None SemaphoreObject::Handle(const wire::SemRelease&, Context&) {
  if (bound > 0 && value >= bound) Fail(ErrorCode::kValueError, "BoundedSemaphore.release: released too many times");
  ++value;
  cv.notify_all();
  return {};
}

int64_t SemaphoreObject::Handle(const wire::SemValue&, Context&) { return value; }

wire::None EventObject::Handle(const wire::EventSet&, Context&) {
  flag = true;
  cv.notify_all();
  return {};
}

wire::None EventObject::Handle(const wire::EventClear&, Context&) {
  flag = false;
  return {};
}

bool EventObject::Handle(const wire::EventIsSet&, Context&) { return flag; }

bool EventObject::Handle(const wire::EventWait& op, Context& cx) {
  cx.server.Wait(*this, op.wait, cx, [&] { return flag; });
  return flag;
}

// ---- Condition -----------------------------------------------------------------------

wire::PinnedId ConditionObject::Handle(const wire::CondLock&, Context& cx) { return cx.server.MintPin(lock); }

bool ConditionObject::Handle(const wire::CondWait& op, Context& cx) {
  auto& l = cx.server.Get<LockObject>(lock);
  if (l.owner != cx.connection) Fail(ErrorCode::kValueError, "Condition.wait: the lock is not held by this client");
  const long depth = l.Release(cx.connection, true);
  ++sleepers;
  bool woken;
  try {
    woken = cx.server.Wait(*this, op.wait, cx, [&] { return notified > 0; });
  } catch (const Failure&) {
    --sleepers;  // cancelled (the client is gone): it takes no notification
    notified = std::min(notified, sleepers);
    throw;
  }
  if (woken) --notified;
  --sleepers;
  cx.lock.Wait(l.cv, [&] { return l.owner == 0; });
  l.owner = cx.connection;
  l.count = depth;
  return woken;
}

wire::None ConditionObject::Handle(const wire::CondNotify& op, Context& cx) {
  auto& l = cx.server.Get<LockObject>(lock);
  if (l.owner != cx.connection) Fail(ErrorCode::kValueError, "Condition.notify: the lock is not held by this client");
  const long waiting = sleepers - notified;
  const long wake = op.n < 0 ? waiting : std::min<long>(op.n, waiting);
  if (wake > 0) {
    notified += wake;
    cv.notify_all();
  }
  return {};
}

// ---- Barrier -----------------------------------------------------------------------------

void BarrierObject::NextGeneration(bool broken_now) {
  broken = broken_now;
  count = 0;
  waiting.clear();
  ++generation;
  cv.notify_all();
}

int64_t BarrierObject::Handle(const wire::BarrierWait& op, Context& cx) {
  if (broken) Fail(ErrorCode::kBrokenBarrier, "barrier is broken");
  const uint64_t my_generation = generation;
  for (auto it = waiting.begin(); it != waiting.end();) {
    if (ClientGone(*it)) {
      it = waiting.erase(it);
      --count;
    } else {
      ++it;
    }
  }
  const long index = count++;
  waiting.insert(cx.client_fd);
  if (count == parties) {
    completed = my_generation;
    NextGeneration(false);
    return index;
  }
  bool passed;
  try {
    passed = cx.server.Wait(*this, op.wait, cx, [&] { return generation != my_generation; });
  } catch (const Failure&) {
    // Gone: out of the count, unless an arriving party has taken it out.
    if (generation == my_generation && waiting.erase(cx.client_fd) > 0) --count;
    throw;
  }
  if (!passed) {
    NextGeneration(true);
    Fail(ErrorCode::kBrokenBarrier, "Barrier.wait timed out; the barrier is now broken");
  }
  if (completed != my_generation) Fail(ErrorCode::kBrokenBarrier, "barrier is broken");
  return index;
}

wire::None BarrierObject::Handle(const wire::BarrierAbort&, Context&) {
  NextGeneration(true);
  return {};
}

wire::None BarrierObject::Handle(const wire::BarrierReset&, Context&) {
  NextGeneration(false);
  return {};
}

wire::BarrierState BarrierObject::Handle(const wire::BarrierQuery&, Context&) { return {parties, count, broken}; }

// ---- Namespace --------------------------------------------------------------------------------

wire::None NamespaceObject::Handle(const wire::NamespaceSet& op, Context& cx) {
  cx.server.Drop(attributes.Set(op.name, cx.server.Keep(op.value)));
  return {};
}

std::string NamespaceObject::Handle(const wire::NamespaceGet& op, Context& cx) {
  auto it = attributes.index.find(op.name);
  if (it == attributes.index.end()) Fail(ErrorCode::kKeyError, "Namespace has no attribute '" + op.name + "'");
  cx.Hand(it->second->second.ids);
  return it->second->second.bytes;
}

wire::None NamespaceObject::Handle(const wire::NamespaceErase& op, Context& cx) {
  return attributes.Handle(wire::DictErase{{op.id}, op.name}, cx);
}

std::vector<std::string> NamespaceObject::Handle(const wire::NamespaceNames&, Context&) {
  std::vector<std::string> names;
  for (const auto& [name, value] : attributes.entries) names.push_back(name);
  return names;
}

// ---- Custom types ----------------------------------------------------------------------------

// (cx.lock is held on entry, by Dispatch, and let go here around the user's method;
// the thread-safety analysis cannot follow a lock passed by reference.)
std::string CustomObject::Handle(const wire::Invoke& op, Context& cx) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (op.method >= type.methods.size()) {
    Fail(ErrorCode::kError, "manager: " + type.name + " has no method number " + std::to_string(op.method));
  }
  // The method runs without the server's mutex: it may take long, and the
  // user's code may do anything (even call this manager).
  std::shared_ptr<void> self = instance;
  cx.lock.Unlock();
  std::string result;
  wire::ErrorCode code = ErrorCode::kNone;
  std::string message;
  try {
    MutexLock one_at_a_time(calls);
    result = type.methods[op.method](self.get(), op.arguments);
  } catch (const std::exception& e) {  // the method's, or its arguments did not decode
    code = ErrorCode::kRemote;
    message = CurrentExceptionTypeName() + '\n' + e.what();
  } catch (...) {
    code = ErrorCode::kRemote;
    message = "unknown exception\n" + type.name + "." + type.method_names[op.method] + " threw";
  }
  cx.lock.Lock();
  if (code != ErrorCode::kNone) Fail(code, std::move(message));
  return result;
}

}  // namespace mp::internal
