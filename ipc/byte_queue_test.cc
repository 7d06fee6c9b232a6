// ByteQueue tests that need to see inside the queue: who is streaming an
// item. (The public behaviour is tested through mp::Queue in queue_test.cc.)
#include "ipc/byte_queue.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "sync/process_token.h"
#include "tests/test_util.h"

namespace mp::internal {

class ByteQueueTestPeer {
 public:
  // The pid of the process streaming an item out, or 0.
  static uint32_t StreamingReader(ByteQueue& q) {
    return static_cast<uint32_t>(TokenPid(q.state_->reader_streaming.load(std::memory_order_relaxed)));
  }
  static void SetStreamingWriter(ByteQueue& q, uint64_t token) {
    q.state_->writer_streaming.store(token, std::memory_order_relaxed);
  }
  // DieWhileTaking, in a child: takes the consumers' lock and starts to
  // take the head item with a claim (storing the claim or not), then exits
  // holding the lock, as a consumer killed at that moment would.
  [[noreturn]] static void DieWhileTaking(ByteQueue& q, uint64_t* claim, bool store_claim) {
    ByteQueue::State& s = *q.state_;
    Acquire(&s.get_mutex, std::nullopt);
    const uint64_t head = s.head.load();
    s.claim_head = head + 1;
    if (store_claim) q.CopyOut(head + ByteQueue::kHeader, reinterpret_cast<char*>(claim), 8);
    _exit(0);
  }
};

namespace {

using namespace std::chrono_literals;

// A claim slot in memory that a forked child shares.
struct SharedSlot {
  SharedSlot()
      : word(static_cast<uint64_t*>(
            mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0))) {
    *word = 0;
  }
  ~SharedSlot() { munmap(word, 4096); }
  uint64_t* word;
};
using mp::testing::ForkChild;
using mp::testing::WaitChild;

std::string Item(char index) {
  std::string item(1 << 20, index);
  for (size_t j = 1; j < item.size(); j += 4099) item[j] = static_cast<char>(j % 251);
  return item;
}

std::string IdItem(uint64_t id) {
  std::string item(sizeof id, '\0');
  std::memcpy(item.data(), &id, sizeof id);
  return item + "payload";
}

// A consumer that dies while taking an item with a claim (before or after
// storing it): the next claiming consumer reports that item as orphaned and
// takes the next one; the item is never handed out twice.
void DeadClaimerCase(bool claim_stored) {
  ByteQueue q;
  ASSERT_TRUE(q.Put(IdItem(1), std::nullopt));
  ASSERT_TRUE(q.Put(IdItem(2), std::nullopt));
  SharedSlot dead;
  const pid_t dying = ForkChild([&]() -> int {
    ByteQueueTestPeer::DieWhileTaking(q, dead.word, claim_stored);
  });
  EXPECT_EQ(WaitChild(dying), 0);
  EXPECT_EQ(*dead.word, claim_stored ? 1u : 0u);
  std::vector<uint64_t> orphans;
  auto orphaned = [&](uint64_t id) { orphans.push_back(id); };
  uint64_t mine = 0;
  const ByteQueue::Claim claim{&mine, orphaned};
  std::string out;
  ASSERT_TRUE(q.Get(&out, Clock::now() + 10s, &claim));
  EXPECT_EQ(out, IdItem(2));
  EXPECT_EQ(mine, 2u);
  EXPECT_EQ(orphans, std::vector<uint64_t>{1});
  EXPECT_EQ(q.qsize(), 0);
}

TEST(ByteQueue, ConsumerDeadBeforeStoringItsClaimLeavesTheItemTakenAndReported) {
  DeadClaimerCase(false);
}

TEST(ByteQueue, ConsumerDeadAfterStoringItsClaimLeavesTheItemTakenAndReported) {
  DeadClaimerCase(true);
}

// A producer waiting behind a streaming writer whose pid now belongs to
// another process (the writer died, its pid was reused) goes on; behind a
// live writer it waits.
TEST(ByteQueue, ProducerBehindAStreamerWhosePidWasReusedGoesOn) {
  const pid_t live = ForkChild([] {
    pause();
    return 0;
  });
  const uint64_t live_token = TokenOf(live);
  ASSERT_NE(live_token, 0u);
  {
    ByteQueue q;
    ByteQueueTestPeer::SetStreamingWriter(q, live_token + 1);  // same pid, other start time
    EXPECT_TRUE(q.Put("x", Clock::now() + 5s));
  }
  {
    ByteQueue q;
    ByteQueueTestPeer::SetStreamingWriter(q, live_token);
    EXPECT_FALSE(q.Put("x", Clock::now() + 300ms));
  }
  ::kill(live, SIGKILL);
  EXPECT_EQ(WaitChild(live), -SIGKILL);
}

// Without /proc, a dead streamer is still noticed (through a pidfd).
TEST(ByteQueue, DeadStreamerIsNoticedWithoutProc) {
  const pid_t dead = ForkChild([] { return 0; });
  EXPECT_EQ(WaitChild(dead), 0);
  SetProcFallbackForTesting(true);
  ByteQueue q;
  ByteQueueTestPeer::SetStreamingWriter(q, MakeToken(dead, 12345));
  EXPECT_TRUE(q.Put("x", Clock::now() + 5s));
  EXPECT_FALSE(TokenGone(SelfToken()));
  SetProcFallbackForTesting(false);
}

TEST(ProcessToken, TellsAReusedPidFromTheProcessItNamed) {
  const uint64_t self = SelfToken();
  EXPECT_EQ(TokenPid(self), getpid());
  EXPECT_EQ(TokenOf(getpid()), self);
  EXPECT_FALSE(TokenGone(self));
  const pid_t child = ForkChild([] {
    pause();
    return 0;
  });
  const uint64_t token = TokenOf(child);
  EXPECT_FALSE(TokenGone(token));
  EXPECT_TRUE(TokenGone(token ^ 1));  // the same pid, started at another time
  ::kill(child, SIGKILL);
  EXPECT_EQ(WaitChild(child), -SIGKILL);
  EXPECT_TRUE(TokenGone(token));
}

// A consumer killed in the middle of streaming out an item larger than the
// ring: the next consumer skips the rest of that item (the dead one had
// taken it) and gets the following items whole, and the producer, which was
// waiting for room, finishes.
TEST(ByteQueue, ConsumerKilledMidStreamLosesOnlyItsItem) {
  ByteQueue q(0, 64 << 10);
  pid_t producer = ForkChild([&] {
    for (char i = 'a'; i <= 'd'; ++i) q.Put(Item(i), std::nullopt);
    return 0;
  });
  // Item 'a' is under way (its header counted) and fills the ring: freeze
  // its producer there, so that whoever takes it must wait in mid-stream.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (q.qsize() < 1 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  ASSERT_EQ(q.qsize(), 1);
  ::kill(producer, SIGSTOP);
  pid_t consumer = ForkChild([&] {
    std::string out;
    q.Get(&out, std::nullopt);
    return 0;
  });
  while (ByteQueueTestPeer::StreamingReader(q) != static_cast<uint32_t>(consumer) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  ASSERT_EQ(ByteQueueTestPeer::StreamingReader(q), static_cast<uint32_t>(consumer));
  ::kill(consumer, SIGKILL);
  EXPECT_EQ(WaitChild(consumer), -SIGKILL);
  ::kill(producer, SIGCONT);
  // In a child, so that a wedged queue fails the test in bounded time.
  pid_t checker = ForkChild([&] {
    std::string out;
    for (char i = 'b'; i <= 'd'; ++i) {
      if (!q.Get(&out, Clock::now() + 10s)) return 1;
      if (out != Item(i)) return 2;
    }
    return q.qsize() == 0 ? 0 : 3;
  });
  EXPECT_EQ(WaitChild(checker, 30s), 0);
  EXPECT_EQ(WaitChild(producer, 30s), 0);
}

}  // namespace
}  // namespace mp::internal
