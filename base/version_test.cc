#include "base/version.h"

#include <string>

#include "gtest/gtest.h"

namespace mp {
namespace {

TEST(Version, OneNumberInEveryForm) {
  EXPECT_EQ(std::string(version()), std::to_string(MP_VERSION_MAJOR) + "." + std::to_string(MP_VERSION_MINOR) +
                                        "." + std::to_string(MP_VERSION_PATCH));
  static_assert(version()[0] != '\0');
}

}  // namespace
}  // namespace mp
