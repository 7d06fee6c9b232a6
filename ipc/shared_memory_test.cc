#include "ipc/shared_memory.h"

#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "base/errors.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace mp {
namespace {

TEST(SharedMemory, AttachByNameFromAnotherProcess) {
  SharedMemory shm(SharedMemory::create, 4096);
  EXPECT_EQ(shm.size(), 4096u);
  const std::string name = shm.name();
  pid_t pid = testing::ForkChild([&] {
    SharedMemory peer(name);
    std::memcpy(peer.buf().data(), "hello", 6);
    return 0;
  });
  EXPECT_EQ(testing::WaitChild(pid), 0);
  EXPECT_STREQ(reinterpret_cast<const char*>(shm.buf().data()), "hello");
}

TEST(SharedMemory, PythonFormAndErrors) {
  const std::string name = "mp_test_named_block_" + std::to_string(getpid());
  SharedMemory a(name, true, 100);
  EXPECT_EQ(a.name(), name);
  EXPECT_THROW(SharedMemory(name, true, 100), Error);
  SharedMemory b(name);
  EXPECT_GE(b.size(), 100u);
  a.unlink();
  EXPECT_THROW(SharedMemory(name.c_str()), Error);
  EXPECT_THROW(SharedMemory(SharedMemory::create, 0), ValueError);
}

TEST(SharedMemory, CreatorUnlinksSoNothingIsLeftInDevShm) {
  // /dev/shm is shared with tests running in parallel: check our own names.
  // (The first tracked block starts the resource tracker, whose socket this
  // process keeps: made before counting.)
  SharedMemory(SharedMemory::create, 64);
  const auto fds = testing::OpenFds();
  std::vector<std::string> names;
  for (int i = 0; i < 1000; ++i) {
    SharedMemory block(SharedMemory::create, 64);
    block.buf()[0] = std::byte{1};
    names.push_back(block.name());
  }
  const auto shm = testing::ShmEntries();
  for (const auto& name : names) EXPECT_EQ(shm.count(name), 0u) << name;
  EXPECT_EQ(testing::OpenFds(), fds);
}

}  // namespace
}  // namespace mp
