// Python's proxy surface (dict, list, Array, set, JoinableQueue, Namespace),
// nested proxies and reference counts.
#include "manager/proxy.h"

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "manager/manager.h"
#include "pool/pool.h"
#include "process/process.h"
#include "tests/test_util.h"

namespace mp {
namespace {

using namespace std::chrono_literals;

TEST(DictProxy, PythonsMethods) {
  Manager manager;
  auto d = manager.dict<std::string, int>({{"a", 1}, {"b", 2}});
  EXPECT_EQ(d.size(), 2u);
  EXPECT_EQ(d.setdefault("a", 9), 1);  // present: unchanged
  EXPECT_EQ(d.setdefault("c", 3), 3);  // absent: set
  EXPECT_EQ(d.get("c"), 3);
  d.set("d", 4);
  EXPECT_EQ(d.popitem(), (std::pair<std::string, int>("d", 4)));  // the last inserted
  EXPECT_EQ(d.keys(), (std::vector<std::string>{"a", "b", "c"}));  // insertion order
  EXPECT_EQ(d.values(), (std::vector<int>{1, 2, 3}));
  d.erase("b");
  EXPECT_THROW(d.erase("b"), KeyError);
  EXPECT_FALSE(d.contains("b"));
  EXPECT_EQ(d.pop("zz", -1), -1);
  EXPECT_THROW(d.pop("zz"), KeyError);
  EXPECT_EQ(d.copy(), (std::map<std::string, int>{{"a", 1}, {"c", 3}}));
  std::vector<std::pair<std::string, int>> seen;
  for (const auto& [key, value] : d) seen.emplace_back(key, value);
  EXPECT_EQ(seen, (std::vector<std::pair<std::string, int>>{{"a", 1}, {"c", 3}}));
  d.update({{"a", 10}, {"e", 5}});
  EXPECT_EQ(d.get("a"), 10);
  EXPECT_EQ(d.keys(), (std::vector<std::string>{"a", "c", "e"}));  // an update keeps a key's place
  d.clear();
  EXPECT_TRUE(d.empty());
  EXPECT_THROW(d.popitem(), KeyError);
}

TEST(ListProxy, PythonsMethods) {
  Manager manager;
  auto l = manager.list<int>({3, 1, 2});
  l.insert(0, 9);      // [9, 3, 1, 2]
  l.insert(100, 7);    // clamped: [9, 3, 1, 2, 7]
  l.insert(-1, 5);     // before the last: [9, 3, 1, 2, 5, 7]
  EXPECT_EQ(l.to_vector(), (std::vector<int>{9, 3, 1, 2, 5, 7}));
  EXPECT_EQ(l.index(1), 2u);
  EXPECT_THROW(l.index(1, 3), ValueError);
  EXPECT_THROW(l.index(42), ValueError);
  l.append(3);
  EXPECT_EQ(l.count(3), 2u);
  l.remove(3);  // the first
  EXPECT_EQ(l.to_vector(), (std::vector<int>{9, 1, 2, 5, 7, 3}));
  EXPECT_THROW(l.remove(42), ValueError);
  l.sort();
  EXPECT_EQ(l.to_vector(), (std::vector<int>{1, 2, 3, 5, 7, 9}));
  l.sort(std::greater<>());
  EXPECT_EQ(l.to_vector(), (std::vector<int>{9, 7, 5, 3, 2, 1}));
  l.reverse();
  EXPECT_EQ(l.to_vector(), (std::vector<int>{1, 2, 3, 5, 7, 9}));
  EXPECT_EQ(l.get(-1), 9);
  EXPECT_THROW(l.get(6), IndexError);
  EXPECT_THROW(l.get(-7), IndexError);
  EXPECT_THROW(l.set(6, 0), IndexError);
  EXPECT_THROW(l.pop(6), IndexError);
  // Slices, as Python's.
  EXPECT_EQ(l.get(Slice{1, 4}), (std::vector<int>{2, 3, 5}));
  EXPECT_EQ(l.get(Slice{std::nullopt, std::nullopt, 2}), (std::vector<int>{1, 3, 7}));
  EXPECT_EQ(l.get(Slice{std::nullopt, std::nullopt, -1}), (std::vector<int>{9, 7, 5, 3, 2, 1}));
  EXPECT_EQ(l.get(Slice{-2}), (std::vector<int>{7, 9}));
  EXPECT_EQ(l.get(Slice{10, 20}), (std::vector<int>{}));
  EXPECT_THROW(l.get(Slice{0, 1, 0}), ValueError);
  l.set(Slice{0, 2}, std::vector<int>{10, 20, 30});  // grows: [10, 20, 30, 3, 5, 7, 9]
  EXPECT_EQ(l.to_vector(), (std::vector<int>{10, 20, 30, 3, 5, 7, 9}));
  l.set(Slice{std::nullopt, std::nullopt, 2}, std::vector<int>{0, 0, 0, 0});
  EXPECT_EQ(l.to_vector(), (std::vector<int>{0, 20, 0, 3, 0, 7, 0}));
  EXPECT_THROW(l.set(Slice{std::nullopt, std::nullopt, 2}, std::vector<int>{1}), ValueError);
  l.erase(Slice{1, std::nullopt, 2});  // del l[1::2]
  EXPECT_EQ(l.to_vector(), (std::vector<int>{0, 0, 0, 0}));
  l.erase(0);
  EXPECT_EQ(l.size(), 3u);
  EXPECT_THROW(l.erase(3), IndexError);
  int sum = 0;
  for (int x : l) sum += x + 1;
  EXPECT_EQ(sum, 3);
  l.clear();
  EXPECT_TRUE(l.empty());
}

void AppendMany(proxy::List<int> l, int from) {
  for (int i = 0; i < 200; ++i) l.append(from + i);
}

// A sort never loses a concurrent append: it applies its order only to the
// list it sorted.
TEST(ListProxy, SortRacesAppendsLosingNothing) {
  Manager manager;
  auto l = manager.list<int>();
  Process appender(AppendMany, l, 1000);
  appender.start();
  for (int i = 0; i < 20; ++i) l.sort();
  appender.join();
  l.sort();
  auto items = l.to_vector();
  ASSERT_EQ(items.size(), 200u);
  EXPECT_TRUE(std::is_sorted(items.begin(), items.end()));
}

TEST(ArrayProxy, FixedLength) {
  Manager manager;
  auto a = manager.Array<double>({1.5, 2.5, 3.5});
  EXPECT_EQ(a.size(), 3u);
  a.set(0, 9.0);
  EXPECT_EQ(a.get(0), 9.0);
  EXPECT_EQ(a.get(-1), 3.5);
  EXPECT_THROW(a.get(3), IndexError);
  a.set(Slice{1, 3}, std::vector<double>{0, 0});
  EXPECT_EQ(a.to_vector(), (std::vector<double>{9, 0, 0}));
  EXPECT_THROW(a.set(Slice{1, 3}, std::vector<double>{1}), ValueError);  // the length is fixed
  auto zeros = manager.Array<int>(4);
  EXPECT_EQ(zeros.to_vector(), (std::vector<int>{0, 0, 0, 0}));
}

TEST(SetProxy, Methods) {
  Manager manager;
  auto s = manager.set<std::string>({"a", "b"});
  s.add("c");
  s.add("a");
  EXPECT_EQ(s.size(), 3u);
  EXPECT_TRUE(s.contains("b"));
  s.remove("b");
  EXPECT_THROW(s.remove("b"), KeyError);
  s.discard("b");
  auto items = s.items();
  EXPECT_EQ(std::set<std::string>(items.begin(), items.end()), (std::set<std::string>{"a", "c"}));
  const std::string popped = s.pop();
  EXPECT_TRUE(popped == "a" || popped == "c");
  s.clear();
  EXPECT_THROW(s.pop(), KeyError);
}

int Consume(proxy::JoinableQueue<int> q) {
  int sum = 0;
  for (;;) {
    const int item = q.get(10s);
    q.task_done();
    if (item < 0) return sum;
    sum += item;
  }
}

TEST(JoinableQueueProxy, JoinWaitsForEveryTaskDone) {
  for (const char* address : {"", "127.0.0.1:0"}) {  // local (shared memory) and remote
    Manager manager(ManagerOptions{.address = address});
    auto q = manager.JoinableQueue<int>();
    Pool pool(1);
    auto consumer = pool.apply_async(Consume, q);
    for (int i = 1; i <= 10; ++i) q.put(i);
    q.put(-1);
    EXPECT_TRUE(q.join(20s)) << address;
    EXPECT_EQ(consumer.get(20s), 55);
    EXPECT_THROW(q.task_done(), ValueError);
  }
}

TEST(NamespaceProxy, AttributesAreListable) {
  Manager manager;
  auto ns = manager.Namespace();
  ns.set("x", 1);
  ns.set("y", std::string("two"));
  ns.set("x", 3);
  EXPECT_EQ(ns.names(), (std::vector<std::string>{"x", "y"}));
  EXPECT_TRUE(ns.contains("y"));
  ns.erase("y");
  EXPECT_THROW(ns.erase("y"), KeyError);
  EXPECT_EQ(ns.names(), (std::vector<std::string>{"x"}));
  EXPECT_EQ(ns.get<int>("x"), 3);
}

// ---- Nested proxies and reference counts ----

TEST(ReferenceCounts, AReferentIsFreedWithItsLastProxy) {
  Manager manager;
  const long base = manager.number_of_objects();
  {
    auto d = manager.dict<std::string, int>();
    EXPECT_EQ(manager.number_of_objects(), base + 1);
    {
      auto copy = d;
      proxy::Dict<std::string, int> decoded = decode<proxy::Dict<std::string, int>>(encode(d));
      decoded.set("k", 1);
      EXPECT_EQ(manager.number_of_objects(), base + 1);
    }
    EXPECT_EQ(d.get("k"), 1);  // the copies' ends freed nothing
    auto v = manager.Value<int>(3);  // and its lock
    EXPECT_EQ(manager.number_of_objects(), base + 3);
  }
  EXPECT_EQ(manager.number_of_objects(), base);
}

int UseAndDrop(proxy::Dict<std::string, int> d) {
  d.set("from-worker", 1);
  return 0;
}

TEST(ReferenceCounts, ProxiesPassedToWorkersAndChildrenAreDroppedThere) {
  Manager manager;
  Pool pool(2);
  const long base = manager.number_of_objects();
  {
    auto d = manager.dict<std::string, int>();
    for (int i = 0; i < 10; ++i) pool.apply_async(UseAndDrop, d).get(20s);
    Process child(UseAndDrop, d);
    child.start();
    child.join();
    EXPECT_EQ(child.exitcode(), 0);
    EXPECT_EQ(d.get("from-worker"), 1);
  }
  // The workers' references went with their tasks' arguments.
  EXPECT_TRUE(testing::WaitUntil([&] { return manager.number_of_objects() == base; }, 10s))
      << manager.number_of_objects() << " objects, " << base << " expected";
}

TEST(NestedProxies, AProxyInADictKeepsItsReferentAlive) {
  Manager manager;
  const long base = manager.number_of_objects();
  auto outer = manager.dict<std::string, proxy::List<int>>();
  {
    auto inner = manager.list<int>({1, 2});
    outer.set("l", inner);
  }  // the only proxy of the list is gone; the dict still holds it
  EXPECT_EQ(manager.number_of_objects(), base + 2);
  auto again = outer.get("l");
  again.append(3);
  EXPECT_EQ(outer.get("l").to_vector(), (std::vector<int>{1, 2, 3}));
  outer.erase("l");  // the dict lets go; `again` still holds it
  EXPECT_EQ(again.to_vector(), (std::vector<int>{1, 2, 3}));
  again = {};
  EXPECT_EQ(manager.number_of_objects(), base + 1);
}

TEST(NestedProxies, ListOfQueuesAcrossProcesses) {
  Manager manager;
  auto queues = manager.list<proxy::Queue<int>>();
  for (int i = 0; i < 3; ++i) queues.append(manager.Queue<int>());
  Process child([queues] {
    int i = 0;
    for (auto q : queues) q.put(100 + i++);
    return 0;
  });
  child.start();
  child.join();
  ASSERT_EQ(child.exitcode(), 0);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(queues.get(i).get(10s), 100 + i);
  // A popped proxy lives on for the one who popped it.
  auto q = queues.pop();
  q.put(5);
  EXPECT_EQ(q.get(5s), 5);
}

// A serialized proxy carries the address and the id, never the key: a
// process that was not given the key cannot use what it intercepts.
TEST(Proxies, EncodingsCarryNoAuthkey) {
  const std::string key = "a-very-secret-manager-key-0123456789";
  Manager manager(ManagerOptions{.authkey = key});
  auto q = manager.Queue<int>();
  auto d = manager.dict<int, int>();
  for (const std::string& bytes : {encode(q), encode(d)}) {
    EXPECT_EQ(bytes.find(key), std::string::npos);
    EXPECT_NE(bytes.find(manager.address()), std::string::npos);
  }
}

TEST(Proxies, ADefaultConstructedProxyRefusesCalls) {
  proxy::Dict<int, int> d;
  EXPECT_THROW(d.size(), ValueError);
  EXPECT_THROW(encode(d), ValueError);
}

}  // namespace
}  // namespace mp
