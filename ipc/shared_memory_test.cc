#include "ipc/shared_memory.h"

#include <cstring>

#include "gtest/gtest.h"
#include "sync/errors.h"
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
  SharedMemory a("mp_test_named_block", true, 100);
  EXPECT_EQ(a.name(), "mp_test_named_block");
  EXPECT_THROW(SharedMemory("mp_test_named_block", true, 100), Error);
  SharedMemory b("mp_test_named_block");
  EXPECT_GE(b.size(), 100u);
  a.unlink();
  EXPECT_THROW(SharedMemory("mp_test_named_block"), Error);
  EXPECT_THROW(SharedMemory(SharedMemory::create, 0), ValueError);
}

TEST(SharedMemory, CreatorUnlinksSoNothingIsLeftInDevShm) {
  const auto shm = testing::ShmEntries();
  const auto fds = testing::OpenFds();
  for (int i = 0; i < 1000; ++i) {
    SharedMemory block(SharedMemory::create, 64);
    block.buf()[0] = std::byte{1};
  }
  EXPECT_EQ(testing::ShmEntries(), shm);
  EXPECT_EQ(testing::OpenFds(), fds);
}

}  // namespace
}  // namespace mp
