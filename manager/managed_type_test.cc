// Custom manager types (MP_MANAGED_TYPE, create<T>, call<&T::m>) and
// BaseManager serving on an address.
#include "manager/managed_type.h"

#include <stdexcept>
#include <string>
#include <typeinfo>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "manager/manager.h"
#include "pool/pool.h"
#include "process/process.h"
#include "tests/test_util.h"

namespace app {

// Python's documentation example: BaseManager.register('Maths', MathsClass).
class Maths {
 public:
  int add(int x, int y) const { return x + y; }
  int mul(int x, int y) const { return x * y; }
};
MP_MANAGED_TYPE(Maths, add, mul);

class Counter {
 public:
  Counter() = default;
  Counter(std::string name, int start) : name_(std::move(name)), value_(start) {}
  void increment() noexcept { ++value_; }
  int value() const { return value_; }
  std::string name() const { return name_; }
  std::vector<int> history(int n) const {
    if (n < 0) throw std::invalid_argument("history: n < 0");
    return std::vector<int>(static_cast<size_t>(n), value_);
  }
  void fail() { throw std::runtime_error("Counter says no"); }

 private:
  std::string name_ = "anonymous";
  int value_ = 0;
};
MP_MANAGED_TYPE(Counter, increment, value, name, history, fail);

}  // namespace app

namespace mp {
namespace {

using namespace std::chrono_literals;
using app::Counter;
using app::Maths;

TEST(ManagedType, CreateAndCall) {
  Manager manager;
  auto maths = manager.create<Maths>();
  EXPECT_EQ(maths.call<&Maths::add>(4, 3), 7);
  EXPECT_EQ(maths.call<&Maths::mul>(7, 8), 56);
}

TEST(ManagedType, ConstructorArgumentsVoidMethodsAndResults) {
  Manager manager;
  auto counter = manager.create<Counter>("hits", 10);
  counter.call<&Counter::increment>();
  EXPECT_EQ(counter.call<&Counter::value>(), 11);
  EXPECT_EQ(counter.call<&Counter::name>(), "hits");
  EXPECT_EQ(counter.call<&Counter::history>(2), (std::vector<int>{11, 11}));
}

TEST(ManagedType, ExceptionsReachTheCaller) {
  Manager manager;
  auto counter = manager.create<Counter>();
  try {
    counter.call<&Counter::fail>();
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {  // its own type, registered
    EXPECT_EQ(typeid(e), typeid(std::runtime_error));
    EXPECT_NE(std::string(e.what()).find("Counter says no"), std::string::npos) << e.what();
  }
  EXPECT_THROW(counter.call<&Counter::history>(-1), std::invalid_argument);
  EXPECT_EQ(counter.call<&Counter::value>(), 0);  // the object lives on
}

int IncrementTimes(proxy::Managed<Counter> counter, int n) {
  for (int i = 0; i < n; ++i) counter.call<&Counter::increment>();
  return 0;
}

// The server runs one call of an object at a time: no increment is lost.
TEST(ManagedType, SharedByWorkersAndChildren) {
  Manager manager;
  auto counter = manager.create<Counter>();
  Pool pool(2);
  std::vector<AsyncResult<int>> results;
  for (int i = 0; i < 4; ++i) results.push_back(pool.apply_async(IncrementTimes, counter, 100));
  Process child(IncrementTimes, counter, 100);
  child.start();
  for (auto& r : results) r.get(30s);
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
  EXPECT_EQ(counter.call<&Counter::value>(), 500);
}

TEST(ManagedType, ObjectsAreFreedWithTheirLastProxy) {
  Manager manager;
  const long base = manager.number_of_objects();
  {
    auto counter = manager.create<Counter>();
    EXPECT_EQ(manager.number_of_objects(), base + 1);
  }
  EXPECT_EQ(manager.number_of_objects(), base);
}

// Python's "Using a remote manager": a server on an address with a named
// object, and clients that find it.
TEST(BaseManager, ServeForeverAndGetByName) {
  BaseManager server(ManagerOptions{.address = "127.0.0.1:0", .authkey = "abracadabra"});
  server.create<Counter>("visits", "site", 0);
  std::thread serving([&] { server.serve_forever(); });
  const std::string address = server.address();
  Process client([address] {
    BaseManager remote(address, "abracadabra");
    auto visits = remote.get<Counter>("visits");
    for (int i = 0; i < 5; ++i) visits.call<&Counter::increment>();
    return visits.call<&Counter::name>() == "site" ? 0 : 1;
  });
  client.start();
  client.join();
  EXPECT_EQ(client.exitcode(), 0);
  BaseManager local(address, "abracadabra");
  EXPECT_EQ(local.get<Counter>("visits").call<&Counter::value>(), 5);
  EXPECT_THROW(local.get<Counter>("nobody"), KeyError);
  EXPECT_THROW(local.get<Maths>("visits"), Error);  // another type
  EXPECT_THROW(BaseManager(address, "wrong"), AuthenticationError);
  local.shutdown();  // a client's shutdown() stops the server
  serving.join();
}

TEST(BaseManager, ShutdownFromAnotherThreadEndsServeForever) {
  BaseManager server(ManagerOptions{});
  auto counter = server.create<Counter>();
  counter.call<&Counter::increment>();
  std::thread serving([&] { server.serve_forever(); });
  server.shutdown();
  serving.join();
  EXPECT_THROW(counter.call<&Counter::value>(), Error);
}

TEST(BaseManager, AClientHasNoServerToServe) {
  Manager manager;
  BaseManager client(manager.address(), manager.authkey());
  EXPECT_THROW(client.serve_forever(), ValueError);
}

}  // namespace
}  // namespace mp
