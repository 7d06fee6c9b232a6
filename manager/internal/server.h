// The manager's server state: the objects, their names and reference
// counts, the pins of proxies in transit, and the dispatch of one request to
// the handler of its object's class (objects.h). The accept loop
// (accept_loop.cc) serves each client connection on a thread of its own and
// hands every request to Dispatch.
//
// Reference counts, as Python's: an object lives while something refers to
// it: a proxy (one reference per proxy copy held in a process, dropped when
// the last copy in that process goes), a pin (a serialized proxy on its way
// to another process), a name, or another object (a proxy stored in a dict,
// a value's lock). At zero it is freed, and what it held is dropped in turn.
//
// Internal to //manager.
#ifndef MANAGER_INTERNAL_SERVER_H_
#define MANAGER_INTERNAL_SERVER_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "base/mutex.h"
#include "manager/internal/objects.h"
#include "manager/internal/protocol.h"

namespace mp::internal {

class Server {
 public:
  Server() = default;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Dispatch serves one request of connection `connection` (socket
  // `client_fd`). `attach_fd` receives the descriptor to send after the
  // reply (a queue's memfd), or stays -1.
  wire::Response Dispatch(uint64_t connection, int client_fd, wire::Request& request, int* attach_fd)
      ABSL_LOCKS_EXCLUDED(mu_);
  // ReleaseLocksOf frees the locks a closed connection held.
  void ReleaseLocksOf(uint64_t connection) ABSL_LOCKS_EXCLUDED(mu_);
  // Segments (SharedMemoryManager) to unlink when the server ends.
  std::vector<std::string> TrackedSegments() ABSL_LOCKS_EXCLUDED(mu_);

  // For handlers (Context::server), with mu_ held by Dispatch (through
  // Context::lock, which the thread-safety analysis cannot follow: each
  // asserts it instead).
  // Kept is a stored value whose pins the container takes over.
  Kept Keep(wire::Stored stored);
  // Drop gives up one reference to each of `ids` (a replaced value's).
  void Drop(const std::vector<uint64_t>& ids);
  // Get is object `id` if it is an O: any other id or class is an error
  // for the client, never a cast to the wrong type.
  template <class O>
  O& Get(uint64_t id) {
    mu_.AssertHeld();
    auto* o = dynamic_cast<O*>(Find(id).get());
    if (o == nullptr) Fail(wire::ErrorCode::kError, "manager: object " + std::to_string(id) + " is not of the proxy's type");
    return *o;
  }
  // Wait waits on o.cv until ready() or the wait's timeout; false on
  // timeout. It wakes every kClientCheck, and whenever ready() turns true,
  // to see whether the client is still there: a client that died while it
  // waited has its call cancelled (Fail), so it takes nothing (a lock, a
  // semaphore unit, a notification) meant for the living.
  template <class Pred>
  bool Wait(Object& o, const wire::Wait& wait, Context& cx, Pred ready);
  wire::PinnedId MintPin(uint64_t id);
  // NewLock makes a lock held (one reference) by the object being made.
  uint64_t NewLock(bool recursive);

  static constexpr auto kClientCheck = std::chrono::milliseconds(100);
  Mutex mu_;

 private:
  struct Entry {
    std::shared_ptr<Object> object;
    long references = 0;
    std::string type;  // a Kind's number, or a custom type's name (Lookup)
  };
  std::shared_ptr<Object> Find(uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Add keeps `o` with one reference, held by the caller.
  uint64_t Add(std::shared_ptr<Object> o, std::string type) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Reference(uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The server's own operations (wire::ServerTag).
  wire::PinnedId Serve(const wire::Create& op, Context& cx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  wire::PinnedId Serve(const wire::CreateCustom& op, Context& cx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  wire::PinnedId Serve(const wire::Lookup& op, Context& cx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  wire::None Serve(const wire::Shutdown& op, Context& cx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t Serve(const wire::Pin& op, Context& cx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  wire::None Serve(const wire::AdoptPin& op, Context& cx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  wire::None Serve(const wire::DropReference& op, Context& cx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t Serve(const wire::NumberOfObjects& op, Context& cx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  wire::None Serve(const wire::TrackSegment& op, Context& cx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Named returns the object called `name`, if any (checking its type), or
  // registers `id` under it.
  std::optional<uint64_t> Named(const std::string& name, const std::string& type) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Name(const std::string& name, uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  template <class Op>
  typename Op::Result Route(Op& op, Context& cx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::unordered_map<uint64_t, Entry> objects_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> names_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<uint64_t, uint64_t> pins_ ABSL_GUARDED_BY(mu_);  // pin -> object id
  std::vector<std::string> segments_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_pin_ ABSL_GUARDED_BY(mu_) = 1;
};

// ClientGone: whether the client on socket `fd` has hung up (or its socket
// failed).
bool ClientGone(int fd);

template <class Pred>
bool Server::Wait(Object& o, const wire::Wait& wait, Context& cx, Pred ready) {
  mu_.AssertHeld();
  if (ready()) return true;  // no wait: the client was there to ask
  if (!wait.block) return false;
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (wait.timeout >= 0) {
    deadline = std::chrono::steady_clock::now() +
               std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                   std::chrono::duration<double>(wait.timeout));
  }
  for (;;) {
    const auto slice = std::chrono::steady_clock::now() + kClientCheck;
    const bool is_ready = cx.lock.WaitUntil(o.cv, deadline ? std::min(*deadline, slice) : slice, ready);
    if (ClientGone(cx.client_fd)) Fail(wire::ErrorCode::kError, "manager: the client is gone; its call is cancelled");
    if (is_ready) return true;
    if (deadline && std::chrono::steady_clock::now() >= *deadline) return false;
  }
}

}  // namespace mp::internal

#endif  // MANAGER_INTERNAL_SERVER_H_
