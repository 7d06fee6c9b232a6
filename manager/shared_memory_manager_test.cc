// SharedMemoryManager: blocks and ShareableLists it makes are unlinked when
// it shuts down (Python 3.8+), or when its owner is SIGKILLed.
#include <signal.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "ipc/pipe.h"
#include "manager/manager.h"
#include "process/process.h"
#include "tests/test_util.h"

namespace mp {
namespace {

using namespace std::chrono_literals;

bool InDevShm(const std::string& name) { return access(("/dev/shm/" + name).c_str(), F_OK) == 0; }

TEST(SharedMemoryManager, UnlinksWhatItMadeAtShutdown) {
  std::vector<std::string> names;
  {
    SharedMemoryManager smm;
    auto block = smm.SharedMemory(128);
    auto numbers = smm.ShareableList<long>({1, 2, 3});
    names = {block.name(), numbers.name()};
    Process child([name = numbers.name()] {
      auto peer = ShareableList<long>::attach(name);
      peer.set(0, 99);
      return 0;
    });
    child.start();
    child.join();
    EXPECT_EQ(numbers.get(0), 99);
    {
      auto temporary = smm.SharedMemory(64);
      names.push_back(temporary.name());
    }  // the handle is gone, not the block: the manager owns it
    for (const auto& name : names) EXPECT_TRUE(InDevShm(name)) << name;
    smm.shutdown();
    for (const auto& name : names) EXPECT_FALSE(InDevShm(name)) << name;
  }
}

TEST(SharedMemoryManager, UnlinksWhenItsOwnerIsKilled) {
  auto ends = Pipe();
  auto& r = ends.first;
  auto& w = ends.second;
  const pid_t owner = testing::ForkChild([&] {
    SharedMemoryManager smm;
    auto block = smm.SharedMemory(128);
    w.send(block.name());
    pause();
    return 0;
  });
  const std::string name = r.recv<std::string>();
  kill(owner, SIGKILL);
  EXPECT_EQ(testing::WaitChild(owner), -SIGKILL);
  EXPECT_TRUE(testing::WaitUntil([&] { return !InDevShm(name); }, 10s)) << name;
}

}  // namespace
}  // namespace mp
