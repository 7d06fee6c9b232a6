#include "ipc/handover_copy.h"

#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace mp::internal {
namespace {

// Every size around the streaming threshold and the 64-byte lines, from
// every kind of misaligned source and destination: the bytes arrive, and
// nothing beside them is touched.
TEST(HandOverCopy, CopiesExactlyTheBytesAtEverySizeAndAlignment) {
  const size_t from = HandOverStreamingFrom();
  ASSERT_GT(from, 0u);
  const size_t sizes[] = {0, 1, 63, 64, 65, 4096, from - 1, from, from + 1, from + 63, 3 * from + 17};
  std::string src(3 * from + 17 + 128, '\0');
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<char>(i * 131 % 251);
  std::string dst(src.size() + 128, '\0');
  for (size_t size : sizes) {
    for (size_t dst_skew : {0, 1, 15, 63}) {
      for (size_t src_skew : {0, 7, 32}) {
        std::memset(dst.data(), '#', dst.size());
        HandOverCopy(dst.data() + dst_skew, src.data() + src_skew, size);
        SCOPED_TRACE(testing::Message() << "size " << size << " dst+" << dst_skew << " src+" << src_skew);
        ASSERT_EQ(std::memcmp(dst.data() + dst_skew, src.data() + src_skew, size), 0);
        for (size_t i = 0; i < dst_skew; ++i) ASSERT_EQ(dst[i], '#');
        ASSERT_EQ(dst[dst_skew + size], '#');
      }
    }
  }
}

}  // namespace
}  // namespace mp::internal
