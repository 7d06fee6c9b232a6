// End-to-end tests of the document's three folder copiers (001 6.6).
// mpcopy, the copier grown into a tool, has its own: mpcopy_test.cc.
#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "tests/temp_tree.h"

namespace {

namespace fs = std::filesystem;
using mp::testing::ReadFile;
using mp::testing::Shell;
using mp::testing::TempDir;
using mp::testing::WriteFile;

TEST(DocumentCopiers, AllThreeCopyTheFolder) {
  TempDir tmp;
  const fs::path folder = tmp.path() / "test";
  fs::create_directories(folder);
  for (int i = 0; i < 5; ++i) WriteFile(folder / ("file" + std::to_string(i)), 3000, 20 + i);
  struct Copier {
    std::string app, suffix, progress;
  } copiers[] = {{"copy_folder", "[复件]", "======>模拟copy文件"},
                 {"copy_folder_progress", "[复件]", "拷贝的进度为：100.00 %"},
                 {"copy_folder_chunked", "[副本]", "100.00...("}};
  for (const auto& c : copiers) {
    // Run from the temp dir with the folder name on stdin, like input().
    const std::string cmd = "cd " + tmp.path().string() + " && echo test | " + fs::absolute("apps/copier/" + c.app).string() +
                            " --time_scale=0.001";
    const auto [status, out] = Shell(cmd);
    EXPECT_EQ(status, 0) << c.app << out;
    EXPECT_NE(out.find(c.progress), std::string::npos) << c.app << ": " << out;
    for (int i = 0; i < 5; ++i) {
      const std::string name = "file" + std::to_string(i);
      EXPECT_EQ(ReadFile(tmp.path() / ("test" + c.suffix) / name), ReadFile(folder / name)) << c.app;
    }
    fs::remove_all(tmp.path() / ("test" + c.suffix));
  }
}

}  // namespace
