// Managers: Python's multiprocessing.Manager, BaseManager and
// SharedMemoryManager: a server that owns shared objects, and typed proxies
// (manager/proxy.h) that reach them from any process.
//
//   mp::Manager manager;                              // starts the server
//   auto q = manager.Queue<std::string>();            // proxy
//   pool.apply_async(writer, q);                      // proxies are serializable
//   auto d = manager.dict<std::string, int>({{"a", 1}});
//   d.set("k", 1); d.get("k"); d.get("k", 0);         // missing key: mp::KeyError
//   auto maths = manager.create<Maths>();             // MP_MANAGED_TYPE (managed_type.h)
//
// Unlike mp::Queue, a proxy can be handed to processes that already exist
// (pool workers) and to other machines: it is the server's address and an
// object id, and it connects on first use (one connection per process and
// thread). Every call is one round trip at most.
//
// The server serves each client on a thread of its own, so a blocking call
// (get on an empty queue, acquire of a held lock) holds no other client up;
// a client that dies mid-call has that call cancelled (it takes nothing
// meant for the living) and the locks it held released. If the server dies,
// calls throw mp::Error; they never hang on a dead server.
//
// Addresses and keys. Manager() listens on a Unix socket in a private 0700
// directory, removed at shutdown, or by the server when its owner dies
// without one (SIGKILL included); its key is current_process().authkey(),
// which every child inherits, whatever the start method, so proxies (which
// carry no key) work in them. A manager on "host:port" serves other
// machines, whose clients supply the key: BaseManager(address, authkey). A
// wrong key is refused before any object is touched.
//
// Objects are reference counted, as in Python: an object is freed when its
// last proxy (in any process) is gone, unless it has a name: named objects
// (manager.Queue<int>("tasks"), create<T>("name")) live until shutdown, for
// clients that find them by name.
//
// Thread safety: managers and proxies may be used from any thread.
// Fork safety: a forked child opens its own connections on first use.
// Sharing: proxies are copyable and serializable; managers are not.
#ifndef MANAGER_MANAGER_H_
#define MANAGER_MANAGER_H_

#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "ipc/codec.h"
#include "ipc/shareable_list.h"
#include "ipc/shared_memory.h"
#include "manager/internal/client.h"
#include "manager/internal/protocol.h"
#include "manager/managed_type.h"
#include "manager/proxy.h"

namespace mp {

class Listener;
class Process;

// Keyword arguments of Manager and of a serving BaseManager.
struct ManagerOptions {
  // Empty: a Unix socket in a private 0700 directory (under $TMPDIR or
  // /tmp). A path: a Unix socket there. "host:port" serves TCP (port 0 picks
  // one; address() tells which) for clients on other machines.
  std::string address;
  // Empty: current_process().authkey().
  std::string authkey;
  // How a Manager starts its server: "fork", "spawn" or "forkserver"
  // (empty: the default start method; ctx.Manager() gives its context's).
  // Under spawn and forkserver the server never inherits a lock another
  // thread of this process held; its listener travels to it. (A serving
  // BaseManager runs in this process and ignores it.)
  std::string start_method;
};

// BaseManager: a client of a manager server, or (constructed with
// ManagerOptions) a server in this process. Python's BaseManager:
//
//   mp::BaseManager server(mp::ManagerOptions{.address = "0.0.0.0:50000", .authkey = "abc"});
//   server.create<Maths>("maths");                 // a named object for clients
//   server.serve_forever();                        // until a client's shutdown()
//
//   mp::BaseManager client("host:50000", "abc");   // in another program
//   auto maths = client.get<Maths>("maths");
class BaseManager {
 public:
  // Connects to the server at `address` (a Unix socket path or host:port),
  // proving `authkey`. Throws mp::AuthenticationError for a wrong key and
  // mp::Error if nothing serves there.
  BaseManager(std::string address, std::string authkey);
  // Serves on options.address from this process (on threads of its own,
  // from now on) until shutdown(). Python: BaseManager(address,
  // authkey).get_server().
  explicit BaseManager(ManagerOptions options);
  virtual ~BaseManager();
  BaseManager(const BaseManager&) = delete;
  BaseManager& operator=(const BaseManager&) = delete;

  const std::string& address() const { return address_; }
  const std::string& authkey() const { return authkey_; }

  // serve_forever blocks until the server stops: a client's shutdown(), or
  // shutdown() on another thread. A client's own BaseManager has no server:
  // mp::ValueError.
  void serve_forever();
  // shutdown: a server stops serving (its socket file is removed); a client
  // asks its server to stop. Proxies of it then throw mp::Error. Idempotent.
  virtual void shutdown();

  // The factories. An empty name creates a new object; a name returns the
  // object of that name, creating it the first time (it lives until
  // shutdown).
  template <class T>
  proxy::Queue<T> Queue(long maxsize = 0, const std::string& name = "") {
    auto [ref, pin] = create(internal::wire::Kind::kQueue, name, {}, maxsize);
    return proxy::Queue<T>(std::move(ref), pin, std::max(0L, maxsize));
  }
  template <class T>
  proxy::Queue<T> Queue(const std::string& name) {
    return Queue<T>(0, name);
  }
  template <class T>
  proxy::JoinableQueue<T> JoinableQueue(long maxsize = 0, const std::string& name = "") {
    auto [ref, pin] = create(internal::wire::Kind::kJoinableQueue, name, {}, maxsize);
    return proxy::JoinableQueue<T>(std::move(ref), pin, std::max(0L, maxsize));
  }
  // dict(), dict(initial), dict(initial, name). `initial`: a map or a range
  // of (key, value) pairs.
  template <class K, class V>
  proxy::Dict<K, V> dict(const std::string& name = "") {
    return make<proxy::Dict<K, V>>(internal::wire::Kind::kDict, name);
  }
  template <class K, class V, std::ranges::range Range>
  proxy::Dict<K, V> dict(const Range& initial, const std::string& name = "") {
    internal::wire::StoredItems items;
    for (const auto& [k, v] : initial) items.emplace_back(encode(K(k)), internal::Store(V(v)));
    return make<proxy::Dict<K, V>>(internal::wire::Kind::kDict, name, encode(items));
  }
  template <class K, class V>
  proxy::Dict<K, V> dict(std::initializer_list<std::pair<K, V>> initial, const std::string& name = "") {
    return dict<K, V, std::initializer_list<std::pair<K, V>>>(initial, name);
  }
  template <class T>
  proxy::List<T> list(const std::string& name = "") {
    return make<proxy::List<T>>(internal::wire::Kind::kList, name);
  }
  template <class T, std::ranges::range Range>
  proxy::List<T> list(const Range& initial, const std::string& name = "") {
    return make<proxy::List<T>>(internal::wire::Kind::kList, name, StoreAll<T>(initial));
  }
  template <class T>
  proxy::List<T> list(std::initializer_list<T> initial, const std::string& name = "") {
    return list<T, std::initializer_list<T>>(initial, name);
  }
  // Array(n): n default values; Array(values). Python: Manager().Array(typecode, sequence).
  template <class T>
  proxy::Array<T> Array(size_t n, const std::string& name = "") {
    return Array<T>(std::vector<T>(n), name);
  }
  template <class T, std::ranges::range Range>
  proxy::Array<T> Array(const Range& values, const std::string& name = "") {
    return make<proxy::Array<T>>(internal::wire::Kind::kArray, name, StoreAll<T>(values));
  }
  template <class T>
  proxy::Array<T> Array(std::initializer_list<T> values, const std::string& name = "") {
    return Array<T, std::initializer_list<T>>(values, name);
  }
  template <class T>
  proxy::Set<T> set(const std::string& name = "") {
    return make<proxy::Set<T>>(internal::wire::Kind::kSet, name);
  }
  template <class T, std::ranges::range Range>
  proxy::Set<T> set(const Range& initial, const std::string& name = "") {
    std::vector<std::string> items;
    for (const auto& item : initial) items.push_back(encode(T(item)));
    return make<proxy::Set<T>>(internal::wire::Kind::kSet, name, encode(items));
  }
  template <class T>
  proxy::Set<T> set(std::initializer_list<T> initial, const std::string& name = "") {
    return set<T, std::initializer_list<T>>(initial, name);
  }
  template <class T>
  proxy::Value<T> Value(const T& init = T{}, const std::string& name = "") {
    return make<proxy::Value<T>>(internal::wire::Kind::kValue, name, encode(internal::Store(init)));
  }
  proxy::Lock Lock(const std::string& name = "") { return make<proxy::Lock>(internal::wire::Kind::kLock, name); }
  proxy::RLock RLock(const std::string& name = "") { return make<proxy::RLock>(internal::wire::Kind::kRLock, name); }
  proxy::Semaphore Semaphore(int value = 1, const std::string& name = "") {
    return make<proxy::Semaphore>(internal::wire::Kind::kSemaphore, name, {}, value);
  }
  proxy::BoundedSemaphore BoundedSemaphore(int value = 1, const std::string& name = "") {
    return make<proxy::BoundedSemaphore>(internal::wire::Kind::kBoundedSemaphore, name, {}, value);
  }
  proxy::Event Event(const std::string& name = "") { return make<proxy::Event>(internal::wire::Kind::kEvent, name); }
  // Condition on a new RLock, or on `lock` (a Lock or RLock of this manager).
  proxy::Condition Condition(std::optional<proxy::Lock> lock = std::nullopt, const std::string& name = "") {
    return make<proxy::Condition>(internal::wire::Kind::kCondition, name, {},
                                  lock ? static_cast<int64_t>(lock->ref().id) : 0);
  }
  proxy::Barrier Barrier(int parties, const std::string& name = "") {
    return make<proxy::Barrier>(internal::wire::Kind::kBarrier, name, {}, parties);
  }
  proxy::Namespace Namespace(const std::string& name = "") {
    return make<proxy::Namespace>(internal::wire::Kind::kNamespace, name);
  }

  // create<T>(args...): a T made in the server by T(args...), for a type
  // with an MP_MANAGED_TYPE line. create<T>(name, args...): the object of
  // that name (made the first time), when T is not constructible from
  // (name, args...) itself; create_named<T> says so explicitly.
  template <class T, class... Args>
  proxy::Managed<T> create(Args&&... args) {
    if constexpr (std::is_constructible_v<T, Args...>) {
      return create_named<T>("", std::forward<Args>(args)...);
    } else {
      return create_with_name<T>(std::forward<Args>(args)...);
    }
  }
  template <class T, class... Args>
  proxy::Managed<T> create_named(const std::string& name, Args&&... args) {
    static_assert(internal::IsManagedType<T>, "create<T>: T needs an MP_MANAGED_TYPE(T, methods...) line");
    using Key = internal::ConstructorRegistrar<T, internal::Argument<Args>...>;
    (void)Key::registered;
    const std::tuple<internal::Argument<Args>...> arguments(std::forward<Args>(args)...);
    auto [ref, pin] = create_custom(internal::ManagedTypeRegistrar<T>::Info().name,
                                    internal::ConstructorKey<T, internal::Argument<Args>...>(), encode(arguments), name);
    return proxy::Managed<T>(std::move(ref), pin);
  }
  // get<T>(name): the object of type T called `name`; mp::KeyError if there
  // is none, mp::Error if it is of another type.
  template <class T>
  proxy::Managed<T> get(const std::string& name) {
    static_assert(internal::IsManagedType<T>, "get<T>: T needs an MP_MANAGED_TYPE(T, methods...) line");
    auto [ref, pin] = lookup(name, internal::ManagedTypeRegistrar<T>::Info().name);
    return proxy::Managed<T>(std::move(ref), pin);
  }

  // number_of_objects: how many objects the server holds (those still
  // referenced). Python: the server's number_of_objects (debug info).
  long number_of_objects();

 protected:
  BaseManager() = default;
  struct LocalServer;  // the server of BaseManager(ManagerOptions)
  std::pair<internal::ObjectRef, uint64_t> create(internal::wire::Kind kind, const std::string& name,
                                                  std::string initial = {}, int64_t parameter = 0);
  std::pair<internal::ObjectRef, uint64_t> create_custom(const std::string& type, std::string constructor,
                                                         std::string arguments, const std::string& name);
  std::pair<internal::ObjectRef, uint64_t> lookup(const std::string& name, const std::string& type);
  void send_shutdown();

  std::string address_;
  std::string authkey_;
  std::unique_ptr<LocalServer> local_;

 private:
  template <class P>
  P make(internal::wire::Kind kind, const std::string& name, std::string initial = {}, int64_t parameter = 0) {
    auto [ref, pin] = create(kind, name, std::move(initial), parameter);
    return P(std::move(ref), pin);
  }
  template <class T, std::ranges::range Range>
  static std::string StoreAll(const Range& items) {
    std::vector<internal::wire::Stored> stored;
    for (const auto& item : items) stored.push_back(internal::Store(T(item)));
    return encode(stored);
  }
  template <class T, class Name, class... Args>
  proxy::Managed<T> create_with_name(Name&& name, Args&&... args) {
    static_assert(std::is_convertible_v<Name, std::string> && std::is_constructible_v<T, Args...>,
                  "create<T>(args...): T is not constructible from these arguments");
    return create_named<T>(std::string(std::forward<Name>(name)), std::forward<Args>(args)...);
  }
};

// Manager: starts a server process and is a client of it.
// Python: multiprocessing.Manager() / SyncManager. The server is forked
// whatever the default start method (it runs library code only, from a
// thread of the library's), so Manager() works under spawn and forkserver.
class Manager : public BaseManager {
 public:
  using Options = ManagerOptions;
  Manager();
  explicit Manager(ManagerOptions options);
  // Shuts the server down.
  ~Manager() override;

  // shutdown stops the server and removes its socket file; proxies then
  // throw mp::Error. Idempotent.
  void shutdown() override;
  // pid of the server process.
  pid_t pid() const;

 private:
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<Process> server_;
};

// SharedMemoryManager: a Manager that also makes shared memory blocks and
// ShareableLists, and unlinks every one of them when it shuts down (or its
// server ends). Python 3.8+: multiprocessing.managers.SharedMemoryManager.
class SharedMemoryManager : public Manager {
 public:
  using Manager::Manager;
  // SharedMemory(size): a new block (a random name) the manager owns.
  mp::SharedMemory SharedMemory(size_t size);
  // ShareableList(values): a new list the manager owns.
  template <class T, std::ranges::range Range>
  mp::ShareableList<T> ShareableList(const Range& values) {
    mp::ShareableList<T> list(values, /*track=*/false);
    try {
      track(list.name());
    } catch (...) {
      list.shm().unlink();
      throw;
    }
    return list;
  }
  template <class T>
  mp::ShareableList<T> ShareableList(std::initializer_list<T> values) {
    return ShareableList<T, std::initializer_list<T>>(values);
  }

 private:
  void track(const std::string& name);
};

}  // namespace mp

#endif  // MANAGER_MANAGER_H_
