// The resource tracker: a block whose creator is SIGKILLed is unlinked
// (Python's SharedMemory(track=True)), unless created with track = false.
// A binary of its own: this process must have no tracker, so that the
// children's trackers are theirs alone.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "ipc/pipe.h"
#include "ipc/shareable_list.h"
#include "ipc/shared_memory.h"
#include "tests/test_util.h"

namespace mp {
namespace {

using namespace std::chrono_literals;

bool InDevShm(const std::string& name) { return access(("/dev/shm/" + name).c_str(), F_OK) == 0; }

// Creates a block in a child (tracked or not), then SIGKILLs the child;
// returns the block's name.
std::string NameLeftByAKilledCreator(bool track) {
  auto ends = Pipe();
  auto& r = ends.first;
  auto& w = ends.second;
  const pid_t creator = testing::ForkChild([&] {
    SharedMemory block(SharedMemory::create, 4096, "", track);
    w.send(block.name());
    pause();
    return 0;
  });
  const std::string name = r.recv<std::string>();
  EXPECT_TRUE(InDevShm(name));
  kill(creator, SIGKILL);
  EXPECT_EQ(testing::WaitChild(creator), -SIGKILL);
  return name;
}

TEST(ResourceTracker, UnlinksTheBlocksOfACreatorKilledWithSigkill) {
  const std::string name = NameLeftByAKilledCreator(true);
  EXPECT_TRUE(testing::WaitUntil([&] { return !InDevShm(name); }, 10s)) << name << " outlived its creator";
}

TEST(ResourceTracker, TrackFalseOptsOut) {
  const std::string name = NameLeftByAKilledCreator(false);
  // The tracker of a tracked block made after it ends as soon as its
  // creator does: by then it would have unlinked the untracked one too.
  const std::string tracked = NameLeftByAKilledCreator(true);
  ASSERT_TRUE(testing::WaitUntil([&] { return !InDevShm(tracked); }, 10s));
  EXPECT_TRUE(InDevShm(name));
  SharedMemory(name).unlink();
}

TEST(ResourceTracker, ABlockUnlinkedByItsCreatorIsForgotten) {
  // Unlinked, then made again under the same name by someone else: the
  // dead creator's tracker must not unlink the new one.
  auto ends = Pipe();
  auto& r = ends.first;
  auto& w = ends.second;
  const std::string name = "mp_tracker_test_" + std::to_string(getpid());
  const pid_t creator = testing::ForkChild([&] {
    SharedMemory block(SharedMemory::create, 64, name);
    block.unlink();
    w.send(std::string("unlinked"));
    pause();
    return 0;
  });
  ASSERT_EQ(r.recv<std::string>(), "unlinked");
  SharedMemory again(SharedMemory::create, 64, name, /*track=*/false);
  kill(creator, SIGKILL);
  EXPECT_EQ(testing::WaitChild(creator), -SIGKILL);
  // A tracked block of another killed creator: once it is gone, that
  // tracker's work is done, and the first one's was done before.
  const std::string tracked = NameLeftByAKilledCreator(true);
  ASSERT_TRUE(testing::WaitUntil([&] { return !InDevShm(tracked); }, 10s));
  EXPECT_TRUE(InDevShm(name));
  again.unlink();
}

}  // namespace
}  // namespace mp
