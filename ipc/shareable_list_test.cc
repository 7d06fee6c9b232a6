#include "ipc/shareable_list.h"

#include <string>
#include <vector>

#include "base/errors.h"
#include "gtest/gtest.h"
#include "ipc/codec.h"
#include "tests/test_util.h"

namespace mp {
namespace {

TEST(ShareableList, NumbersSharedWithAnotherProcess) {
  ShareableList<int> numbers({1, 2, 3});
  EXPECT_EQ(numbers.size(), 3u);
  const pid_t child = testing::ForkChild([name = numbers.name()] {
    auto peer = ShareableList<int>::attach(name);
    peer.set(0, 42);
    peer.set(-1, peer.get(1) * 10);
    return 0;
  });
  EXPECT_EQ(testing::WaitChild(child), 0);
  EXPECT_EQ(numbers.to_vector(), (std::vector<int>{42, 2, 20}));
  EXPECT_EQ(numbers.count(2), 1u);
  EXPECT_EQ(numbers.index(20), 2u);
  EXPECT_THROW(numbers.index(7), ValueError);
  EXPECT_THROW(numbers.get(3), IndexError);
  EXPECT_THROW(numbers.get(-4), IndexError);
}

TEST(ShareableList, StringsHaveTheRoomOfTheLongest) {
  ShareableList<std::string> words({"a", "bcd", ""});
  words.set(2, "eightchr");  // room: 8 bytes
  EXPECT_THROW(words.set(0, "ninechars"), ValueError);
  EXPECT_EQ(words.to_vector(), (std::vector<std::string>{"a", "bcd", "eightchr"}));
  // Serialized by name: the receiver attaches to the same block.
  auto copy = decode<ShareableList<std::string>>(encode(words));
  copy.set(0, "z");
  EXPECT_EQ(words.get(0), "z");
}

TEST(ShareableList, AttachRefusesBlocksThatAreNotListsOfItsType) {
  ShareableList<double> reals({1.0});
  EXPECT_THROW(ShareableList<int>::attach(reals.name()), ValueError);
  EXPECT_THROW(ShareableList<std::string>::attach(reals.name()), ValueError);
  SharedMemory raw(SharedMemory::create, 4096);
  EXPECT_THROW(ShareableList<int>::attach(raw.name()), ValueError);
  // A header that claims more items than the block holds.
  ShareableList<int> small({1, 2});
  reinterpret_cast<uint64_t*>(small.shm().buf().data())[2] = uint64_t{1} << 40;
  EXPECT_THROW(ShareableList<int>::attach(small.name()), ValueError);
}

}  // namespace
}  // namespace mp
