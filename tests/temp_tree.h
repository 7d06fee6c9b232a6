// Helpers of the copier tests: a scratch folder under /tmp that is removed
// (whatever its modes) when the test ends, and files of seeded random bytes.
#ifndef TESTS_TEMP_TREE_H_
#define TESTS_TEMP_TREE_H_

#include <chrono>
#include <filesystem>
#include <string>

namespace mp::testing {

class TempDir {
 public:
  TempDir();  // mode 0755, so that an unprivileged user may enter it
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

void WriteFile(const std::filesystem::path& p, size_t size, unsigned seed);
std::string ReadFile(const std::filesystem::path& p);

// Runs a shell command (through RunBinary, so with its deadline: a command
// still running then is killed and reports status -1000), returning its exit
// status and its output, stderr included.
struct ShellResult {
  int status = -1;
  std::string out;
};
ShellResult Shell(const std::string& command, std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace mp::testing

#endif  // TESTS_TEMP_TREE_H_
