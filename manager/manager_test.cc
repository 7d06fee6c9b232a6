#include "manager/manager.h"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "ipc/connection.h"
#include "process/process.h"
#include "pool/pool.h"
#include "tests/test_util.h"

namespace mp {
namespace {

using namespace std::chrono_literals;

// The documents' writer/reader pair, as pool tasks.
void Write(proxy::Queue<std::string> q) {
  for (const char* value : {"A", "B", "C"}) q.put(value);
}
std::vector<std::string> Read(proxy::Queue<std::string> q) {
  std::vector<std::string> got;
  for (int i = 0; i < 3; ++i) got.push_back(q.get(10s));
  return got;
}

int CountUnderLock(proxy::Lock lock, proxy::Value<int> counter, int times) {
  for (int i = 0; i < times; ++i) {
    std::lock_guard<proxy::Lock> with(lock);
    counter.set_value(counter.value() + 1);
  }
  return 0;
}

void FillDict(proxy::Dict<std::string, int> d, proxy::List<int> l, int who) {
  d.set("worker" + std::to_string(who), who);
  l.append(who);
}

void QueueFromPoolWorkersCreatedBeforeIt(const std::string& server_method) {
  Pool pool(2);  // Workers exist before the queue does.
  Manager manager(ManagerOptions{.start_method = server_method});
  auto q = manager.Queue<std::string>();
  auto writer = pool.apply_async(Write, q);
  auto reader = pool.apply_async(Read, q);
  writer.get(20s);
  EXPECT_EQ(reader.get(20s), (std::vector<std::string>{"A", "B", "C"}));
}

TEST(Manager, QueueFromPoolWorkersCreatedBeforeIt) {
#if defined(__SANITIZE_THREAD__)
  // ThreadSanitizer's runtime breaks in a child forked from a multithreaded
  // process that then starts threads ("dup thread with used id"): a fork
  // server forked after the Pool's threads exist. The forkserver variant
  // below is what a threaded program should use, and runs under tsan.
  GTEST_SKIP() << "tsan: a forked child of a threaded process cannot start threads";
#endif
  QueueFromPoolWorkersCreatedBeforeIt("fork");
}

TEST(Manager, QueueFromPoolWorkersCreatedBeforeItForkserverServer) {
  QueueFromPoolWorkersCreatedBeforeIt("forkserver");
}

TEST(Manager, QueueFromPoolWorkersCreatedBeforeItSpawnServer) {
  QueueFromPoolWorkersCreatedBeforeIt("spawn");
}

TEST(Manager, MadeOnAShortLivedThreadOutlivesTheThread) {
  // Its server is a daemon, which dies with the thread that forked it were
  // it forked there (PR_SET_PDEATHSIG): issue 19.
  std::unique_ptr<Manager> manager;
  std::thread([&] { manager = std::make_unique<Manager>(); }).join();
  auto q = manager->Queue<int>();
  q.put(5);
  EXPECT_EQ(q.get(10s), 5);
}

TEST(Manager, QueueApiWithTimeouts) {
  Manager manager;
  auto q = manager.Queue<int>(2);
  q.put(1);
  q.put_nowait(2);
  EXPECT_TRUE(q.full());
  EXPECT_THROW(q.put_nowait(3), Full);
  EXPECT_THROW(q.put(3, 20ms), Full);
  EXPECT_EQ(q.qsize(), 2);
  EXPECT_EQ(q.get(), 1);
  EXPECT_EQ(q.get_nowait(), 2);
  EXPECT_TRUE(q.empty());
  EXPECT_THROW(q.get_nowait(), Empty);
  auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(q.get(30ms), Empty);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 25ms);
}

TEST(Manager, BlockingGetDoesNotHoldOtherClientsUp) {
  Manager manager;
  auto q = manager.Queue<int>();
  auto other = manager.Queue<int>();
  std::thread blocked([&] { EXPECT_EQ(q.get(10s), 7); });
  other.put(1);  // Served while the first client blocks in get.
  EXPECT_EQ(other.get(5s), 1);
  q.put(7);
  blocked.join();
}

TEST(Manager, LockAndValueFromChildrenAndWorkers) {
  Manager manager;
  auto lock = manager.Lock();
  auto counter = manager.Value<int>(0);
  Pool pool(2);
  std::vector<AsyncResult<int>> rs;
  for (int i = 0; i < 4; ++i) rs.push_back(pool.apply_async(CountUnderLock, lock, counter, 50));
  Process p(CountUnderLock, lock, counter, 50);
  p.start();
  for (auto& r : rs) r.get(30s);
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(counter.value(), 250);
}

TEST(Manager, DictAndListContents) {
  Manager manager;
  auto d = manager.dict<std::string, int>();
  auto l = manager.list<int>();
  std::vector<Process> ps;
  for (int i = 0; i < 3; ++i) ps.emplace_back(FillDict, d, l, i);
  for (auto& p : ps) p.start();
  for (auto& p : ps) p.join();
  EXPECT_EQ(d.size(), 3u);
  EXPECT_EQ(d.get("worker2"), 2);
  EXPECT_EQ(d.get("nobody", -1), -1);
  EXPECT_THROW(d.get("nobody"), KeyError);
  EXPECT_TRUE(d.contains("worker0"));
  EXPECT_EQ(d.pop("worker0"), 0);
  d.update(std::map<std::string, int>{{"x", 10}});
  EXPECT_EQ(d.keys().size(), 3u);
  auto values = l.to_vector();
  EXPECT_EQ(std::multiset<int>(values.begin(), values.end()), (std::multiset<int>{0, 1, 2}));
  l.extend({7, 8});
  l.set(0, 100);
  EXPECT_EQ(l.get(0), 100);
  EXPECT_EQ(l.pop(), 8);
  EXPECT_EQ(l.size(), 4u);
  EXPECT_THROW(l.get(99), IndexError);
  d.clear();
  EXPECT_EQ(d.size(), 0u);
}

TEST(Manager, EventSemaphoreConditionBarrierNamespace) {
  Manager manager;
  auto e = manager.Event();
  Process waiter([e]() mutable { return e.wait(10s) ? 0 : 1; });
  waiter.start();
  e.set();
  waiter.join();
  EXPECT_EQ(waiter.exitcode(), 0);

  auto s = manager.BoundedSemaphore(1);
  EXPECT_TRUE(s.acquire(false));
  EXPECT_FALSE(s.acquire(10ms));
  s.release();
  EXPECT_THROW(s.release(), ValueError);

  auto c = manager.Condition();
  Process notified([c]() mutable {
    std::unique_lock<proxy::Condition> with(c);
    return c.wait(10s) ? 0 : 1;
  });
  notified.start();
  // The child holds the condition's lock until it sleeps in wait().
  for (int i = 0; i < 1000; ++i) {
    std::this_thread::sleep_for(5ms);  // No event tells us the child sleeps.
    std::lock_guard<proxy::Condition> with(c);
    c.notify();
    if (!notified.is_alive() || notified.join(1ms)) break;
  }
  notified.join();
  EXPECT_EQ(notified.exitcode(), 0);

  auto b = manager.Barrier(2);
  Process party([b]() mutable { return b.wait(10s) >= 0 ? 0 : 1; });
  party.start();
  b.wait(10s);
  party.join();
  EXPECT_EQ(party.exitcode(), 0);
  b.abort();
  EXPECT_THROW(b.wait(), BrokenBarrierError);

  auto ns = manager.Namespace();
  ns.set("x", std::string("hello"));
  EXPECT_EQ(ns.get<std::string>("x"), "hello");
  EXPECT_THROW(ns.get<int>("y"), KeyError);
}

TEST(Manager, LockHeldByDeadClientIsReleased) {
  Manager manager;
  auto lock = manager.Lock();
  Process holder([lock]() mutable {
    lock.acquire();
    _exit(0);  // Dies holding it.
  });
  holder.start();
  holder.join();
  EXPECT_TRUE(lock.acquire(5s));
  lock.release();
}

TEST(Manager, RemoteOverTcpWithRightAndWrongKey) {
  Manager server(ManagerOptions{.address = "127.0.0.1:0", .authkey = "secret"});
  auto jobs = server.Queue<int>("jobs");
  jobs.put(42);
  BaseManager remote(server.address(), "secret");
  EXPECT_EQ(remote.Queue<int>("jobs").get(5s), 42);
  EXPECT_THROW(BaseManager(server.address(), "wrong"), AuthenticationError);
  jobs.put(1);
  EXPECT_EQ(jobs.qsize(), 1);  // The refused client touched nothing.
}

TEST(Manager, ServerKilledGivesErrorsNotHangs) {
  Manager manager;
  auto q = manager.Queue<int>();
  EXPECT_EQ(q.qsize(), 0);  // attached: its calls stay in shared memory
  const int server = static_cast<int>(syscall(SYS_pidfd_open, manager.pid(), 0));
  kill(manager.pid(), SIGKILL);
  pollfd p{server, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1);  // Dead (the kill is asynchronous).
  close(server);
  EXPECT_THROW(q.get(5s), Error);
  EXPECT_THROW(q.qsize(), Error);
}

TEST(Manager, ShutdownRemovesSocketAndProcess) {
  active_children();
  const std::set<pid_t> children_before = testing::ChildPids();
  std::string path;
  pid_t pid;
  {
    Manager manager;
    path = manager.address();
    pid = manager.pid();
    EXPECT_EQ(access(path.c_str(), F_OK), 0);
    auto q = manager.Queue<int>();
    manager.shutdown();
    EXPECT_THROW(q.put(1, 1s), Error);
  }
  EXPECT_NE(access(path.c_str(), F_OK), 0);
  EXPECT_NE(kill(pid, 0), 0);
  active_children();
  // Only what was there before (a forkserver an earlier test started).
  EXPECT_EQ(testing::ChildPids(), children_before);
}

// Its owner SIGKILLed, the server ends too, and removes its socket's
// private 0700 directory (which the owner could not).
TEST(Manager, ServerExitsAndRemovesItsSocketWhenTheOwnerIsKilled) {
  auto r_w = Pipe();  // clang 14 cannot capture structured bindings
  auto& r = r_w.first;
  auto& w = r_w.second;
  pid_t owner = testing::ForkChild([&] {
    Manager manager;
    w.send(std::make_pair(static_cast<int>(manager.pid()), manager.address()));
    pause();
    return 0;
  });
  const auto got = r.recv<std::pair<int, std::string>>();
  const pid_t server = got.first;
  const std::string& address = got.second;
  const std::string dir = address.substr(0, address.rfind('/'));
  struct stat st {};
  ASSERT_EQ(stat(dir.c_str(), &st), 0) << dir;
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  kill(owner, SIGKILL);
  EXPECT_EQ(testing::WaitChild(owner), -SIGKILL);
  EXPECT_TRUE(testing::WaitUntil([&] { return kill(server, 0) != 0; }, 10s)) << "the server outlived its owner";
  EXPECT_TRUE(testing::WaitUntil([&] { return access(dir.c_str(), F_OK) != 0; }, 10s))
      << dir << " outlived its manager";
}

TEST(Manager, CyclesLeaveNoDescriptorBehind) {
  // The first cycle may make what lives for the process (the starter
  // thread's, the connection cache's); the next five must add nothing.
  auto cycle = [] {
    Manager manager;
    auto q = manager.Queue<int>();
    q.put(1);
    EXPECT_EQ(q.get(), 1);
    auto v = manager.Value<int>(7);
    EXPECT_EQ(v.value(), 7);
    manager.shutdown();
  };
  cycle();
  const auto before = testing::OpenFds();
  for (int i = 0; i < 5; ++i) cycle();
  EXPECT_EQ(testing::OpenFds(), before);
}


// A request naming an object of another kind (a namespace's id sent with a
// list operation, any id with any operation) is an error for that client,
// never a cast of the object to the wrong type; the server goes on.
TEST(Manager, RequestsForTheWrongKindOfObjectAreRefused) {
  Manager manager;
  auto ns = manager.Namespace();
  auto value = manager.Value<int>(5);
  namespace wire = internal::wire;
  for (const internal::ObjectRef& ref : {ns.ref(), value.ref()}) {
    auto refused = [&](auto op) {
      op.id = ref.id;
      EXPECT_THROW(internal::Call(ref.address, ref.authkey, op), Error) << typeid(op).name();
    };
    refused(wire::ListAppend{{}, wire::Stored{encode(1), {}}});
    refused(wire::ListGet{{}, 0});
    refused(wire::ListSet{{}, 0, wire::Stored{encode(1), {}}});
    refused(wire::ListPop{{}, -1});
    refused(wire::DictGet{{}, encode(1), std::nullopt});
    refused(wire::QueueGet{{}, wire::Wait{false, -1}});
    refused(wire::LockRelease{});
    refused(wire::BarrierQuery{});
    refused(wire::Invoke{{}, 0, encode(std::tuple<>())});
  }
  // Ids that name nothing, and pins nobody made.
  for (uint64_t id : {uint64_t{0}, uint64_t{999999}}) {
    EXPECT_THROW(internal::Call(value.ref().address, value.ref().authkey, wire::ValueGet{{id}}), Error);
  }
  EXPECT_EQ(value.value(), 5);  // the server lives, its objects intact
}

// Out of descriptors, the server's accept loop pauses instead of spinning,
// and takes clients again once it has descriptors.
TEST(Manager, OutOfDescriptorsTheServerBacksOffAndRecovers) {
  Manager manager;
  auto value = manager.Value<int>(1);  // this thread's connection stays open
  const pid_t server = manager.pid();
  size_t open_now = 0;
  for ([[maybe_unused]] const auto& fd : std::filesystem::directory_iterator(
           "/proc/" + std::to_string(server) + "/fd")) {
    ++open_now;
  }
  rlimit before{};
  ASSERT_EQ(prlimit(server, RLIMIT_NOFILE, nullptr, &before), 0);
  const rlimit tight{open_now + 2, before.rlim_max};
  ASSERT_EQ(prlimit(server, RLIMIT_NOFILE, &tight, nullptr), 0);
  // Silent clients (no handshake): the first ones take the last
  // descriptors, the rest wait in the backlog while accept() fails.
  std::vector<int> silent;
  for (int i = 0; i < 8; ++i) {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, manager.address().c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    silent.push_back(fd);
  }
  std::this_thread::sleep_for(300ms);  // reach the steady state: no event marks it
  const auto cpu = testing::CpuTime(server);
  std::this_thread::sleep_for(1s);
  EXPECT_LT(testing::CpuTime(server) - cpu, 300ms) << "the manager's accept loop spins out of descriptors";
  ASSERT_EQ(prlimit(server, RLIMIT_NOFILE, &before, nullptr), 0);
  for (int fd : silent) close(fd);
  // A new connection (a new thread's) is taken once the pause is over.
  int got = 0;
  std::thread other([&] { got = value.value(); });
  other.join();
  EXPECT_EQ(got, 1);
}

// ---- A client that dies while blocked takes nothing meant for the living ----

// Runs `blocked` in a child, lets it block in the server, and SIGKILLs it.
// (The server shows no sign that the child's call is waiting: a short pause
// stands for it.)
void KillWhileBlocked(const std::function<void()>& blocked) {
  const pid_t child = testing::ForkChild([&] {
    blocked();
    return 0;
  });
  std::this_thread::sleep_for(300ms);
  kill(child, SIGKILL);
  EXPECT_EQ(testing::WaitChild(child), -SIGKILL);
}

TEST(DeadBlockedClient, TakesNoSemaphoreUnit) {
  Manager manager;
  auto sem = manager.Semaphore(0);
  KillWhileBlocked([&] { sem.acquire(true); });
  sem.release();
  EXPECT_TRUE(sem.acquire(5s)) << "the dead client's call took the unit";
}

TEST(DeadBlockedClient, TakesNoLock) {
  Manager manager;
  auto lock = manager.Lock();
  lock.acquire(true);
  KillWhileBlocked([&] { lock.acquire(true); });
  lock.release();
  EXPECT_TRUE(lock.acquire(5s)) << "the dead client's call took the lock";
  lock.release();
}

TEST(DeadBlockedClient, TakesNoQueueItem) {
  // Over TCP, so that the child's get() waits in the server (a local
  // client waits in shared memory, and takes nothing once dead).
  Manager manager(ManagerOptions{.address = "127.0.0.1:0"});
  auto q = manager.Queue<int>();
  KillWhileBlocked([&] { q.get(); });
  q.put(7);
  EXPECT_EQ(q.get(5s), 7) << "the dead client's get took the item";
}

TEST(DeadBlockedClient, TakesNoNotification) {
  Manager manager;
  auto cond = manager.Condition();
  KillWhileBlocked([&] {
    cond.acquire();
    cond.wait();
  });
  bool notified = false;
  std::thread waiter([&] {
    cond.acquire();
    notified = cond.wait(10s);
    cond.release();
  });
  std::this_thread::sleep_for(300ms);  // the waiter waits (no sign of it either)
  cond.acquire();
  cond.notify(1);
  cond.release();
  waiter.join();
  EXPECT_TRUE(notified) << "the dead client's wait took the notification";
}

TEST(DeadBlockedClient, LeavesTheBarrierItJoined) {
  Manager manager;
  auto barrier = manager.Barrier(2);
  KillWhileBlocked([&] { barrier.wait(); });
  int index = -1;
  std::thread other([&] { index = barrier.wait(10s); });
  EXPECT_GE(barrier.wait(10s), 0);  // two living parties pass together
  other.join();
  EXPECT_GE(index, 0);
}

// A hostile (authenticated) client's garbage closes its own connection
// only: the server and the other clients go on.
TEST(Manager, GarbageFromAClientClosesThatConnectionOnly) {
  Manager manager;
  auto value = manager.Value<int>(3);
  const auto& ref = value.ref();
  for (const std::string& garbage :
       {std::string("not a request"), std::string(1, '\xff'), std::string(4096, '\x7f')}) {
    Connection hostile = Client(ref.address, ref.authkey);
    hostile.send_bytes(garbage);
    EXPECT_THROW(hostile.recv_bytes(), Error);  // dropped, not answered
  }
  EXPECT_EQ(value.value(), 3);
}

void PutFortyTwo(proxy::Queue<int> q) { q.put(42); }

// Python's Manager() works whatever the start method; so does this one (its
// server is forked whatever the default), and its proxies reach spawned
// children. In a child, so that the default changes for it only.
TEST(Manager, WorksWhenTheDefaultStartMethodIsSpawn) {
  const pid_t child = testing::ForkChild([] {
    set_start_method("spawn", /*force=*/true);
    Manager manager;
    auto q = manager.Queue<int>();
    Process p(mp::spawn, PutFortyTwo, q);
    p.start();
    p.join();
    if (p.exitcode() != 0) return 10;
    return q.get(10s) == 42 ? 0 : 11;
  });
  EXPECT_EQ(testing::WaitChild(child, 60s), 0);
}

}  // namespace
}  // namespace mp
