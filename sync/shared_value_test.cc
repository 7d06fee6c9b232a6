#include "sync/shared_value.h"

#include <mutex>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace mp {
namespace {

using testing::ForkChild;
using testing::WaitChild;

TEST(Value, IncrementsUnderItsLockLoseNothing) {
  Value<int> v(0);
  std::vector<pid_t> kids;
  for (int i = 0; i < 2; ++i) {
    kids.push_back(ForkChild([&] {
      for (int j = 0; j < 20000; ++j) {
        std::lock_guard<RLock> with(v.get_lock());
        v.set_value(v.value() + 1);
      }
      return 0;
    }));
  }
  for (pid_t pid : kids) EXPECT_EQ(WaitChild(pid), 0);
  EXPECT_EQ(v.value(), 40000);
}

TEST(Value, CopiesShareTheValue) {
  Value<double> a(1.5);
  Value<double> b = a;
  b.set_value(2.5);
  EXPECT_EQ(a.value(), 2.5);
}

TEST(Array, ConstructionFormsAndBounds) {
  Array<int> zeros(4);
  EXPECT_EQ(zeros.size(), 4u);
  EXPECT_EQ(zeros.to_vector(), (std::vector<int>{0, 0, 0, 0}));
  Array<int> xs{1, 2, 3};
  EXPECT_EQ(xs[2], 3);
  EXPECT_THROW(xs.at(3), ValueError);
  RawArray<char> raw(std::vector<char>{'a', 'b'});
  EXPECT_EQ(raw.at(1), 'b');
}

TEST(Array, ChildWritesAreVisibleToParent) {
  Array<int> xs(10);
  pid_t pid = ForkChild([&] {
    std::lock_guard<RLock> with(xs.get_lock());
    for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<int>(i * i);
    return 0;
  });
  EXPECT_EQ(WaitChild(pid), 0);
  EXPECT_EQ(xs[9], 81);
}

}  // namespace
}  // namespace mp
