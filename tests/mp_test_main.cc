// The main() of tests whose children may be spawn or forkserver children:
// mp::init runs a spawned child's work (and never returns there) before
// GoogleTest sees the command line. Link //tests:mp_test_main instead of
// @gtest//:gtest_main.
#include <gtest/gtest.h>

#include "process/context.h"

int main(int argc, char** argv) {
  mp::init(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
