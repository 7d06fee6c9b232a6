// ByteQueue tests that need to see inside the queue: who is streaming an
// item. (The public behaviour is tested through mp::Queue in queue_test.cc.)
#include "ipc/byte_queue.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

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
};

namespace {

using namespace std::chrono_literals;
using mp::testing::ForkChild;
using mp::testing::WaitChild;

std::string Item(char index) {
  std::string item(1 << 20, index);
  for (size_t j = 1; j < item.size(); j += 4099) item[j] = static_cast<char>(j % 251);
  return item;
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
