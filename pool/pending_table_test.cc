#include "pool/pending_table.h"

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "gtest/gtest.h"

namespace mp::internal {
namespace {

using Done = PendingTable::Done;

// A function that records which id's outcome reached it.
Done Recorder(std::atomic<int>* calls, uint64_t id, std::atomic<uint64_t>* last = nullptr) {
  return [calls, id, last](Outcome&& outcome) {
    EXPECT_EQ(outcome.id, id);
    calls->fetch_add(1);
    if (last != nullptr) last->store(id);
  };
}

void Deliver(Done& done, uint64_t id) {
  ASSERT_TRUE(done) << "id " << id;
  Outcome outcome;
  outcome.id = id;
  done(std::move(outcome));
}

TEST(PendingTable, TakeReturnsEachEntryOnce) {
  PendingTable table;
  std::atomic<int> calls{0};
  table.Add(1, Recorder(&calls, 1));
  table.Add(2, Recorder(&calls, 2));
  Done two = table.Take(2);
  Deliver(two, 2);
  EXPECT_FALSE(table.Take(2));
  EXPECT_FALSE(table.Take(3));
  Done one = table.Take(1);
  Deliver(one, 1);
  EXPECT_EQ(calls.load(), 2);
  EXPECT_TRUE(table.TakeAll().empty());
}

// Far more entries outstanding than the table has slots: ids that find their
// slot taken go to the overflow map, and every one comes back, in any order.
TEST(PendingTable, MoreOutstandingEntriesThanSlotsAllComeBack) {
  PendingTable table;
  std::atomic<int> calls{0};
  constexpr uint64_t kIds = 10000;
  for (uint64_t id = 1; id <= kIds; ++id) table.Add(id, Recorder(&calls, id));
  for (uint64_t id = kIds; id > kIds / 2; --id) {
    Done done = table.Take(id);
    Deliver(done, id);
  }
  auto rest = table.TakeAll();
  EXPECT_EQ(rest.size(), kIds / 2);
  std::set<uint64_t> ids;
  for (auto& [id, done] : rest) {
    ids.insert(id);
    Deliver(done, id);
  }
  EXPECT_EQ(ids.size(), kIds / 2);
  EXPECT_EQ(*ids.begin(), 1u);
  EXPECT_EQ(*ids.rbegin(), kIds / 2);
  EXPECT_EQ(calls.load(), static_cast<int>(kIds));
  EXPECT_FALSE(table.Take(1));
}

// A submitting thread adds while two finishing threads (the outcome thread
// and the monitor, in a pool) race to take the same ids: each entry runs
// exactly once, whether it sat in its slot or overflowed.
TEST(PendingTable, ConcurrentTakersGetEachEntryExactlyOnce) {
  PendingTable table;
  std::atomic<int> calls{0};
  constexpr uint64_t kIds = 200000;
  std::atomic<uint64_t> added{0};
  std::thread submitter([&] {
    for (uint64_t id = 1; id <= kIds; ++id) {
      table.Add(id, Recorder(&calls, id));
      added.store(id, std::memory_order_release);
    }
  });
  auto taker = [&](int* won) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (uint64_t id = 1; id <= kIds; ++id) {
      while (added.load(std::memory_order_acquire) < id) {
        ASSERT_LT(std::chrono::steady_clock::now(), give_up);
        std::this_thread::yield();
      }
      if (Done done = table.Take(id)) {
        Deliver(done, id);
        ++*won;
      }
    }
  };
  int won_a = 0, won_b = 0;
  std::thread a(taker, &won_a), b(taker, &won_b);
  submitter.join();
  a.join();
  b.join();
  EXPECT_EQ(won_a + won_b, static_cast<int>(kIds));
  EXPECT_EQ(calls.load(), static_cast<int>(kIds));
  EXPECT_TRUE(table.TakeAll().empty());
}

}  // namespace
}  // namespace mp::internal
