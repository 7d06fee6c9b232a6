#include "tests/temp_tree.h"

#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <system_error>

#include "tests/run_binary.h"

namespace mp::testing {

namespace fs = std::filesystem;

TempDir::TempDir() {
  char tmpl[] = "/tmp/mp-copier-test-XXXXXX";
  path_ = ::mkdtemp(tmpl);
  ::chmod(path_.c_str(), 0755);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::permissions(path_, fs::perms::all, ec);
  for (auto& p : fs::recursive_directory_iterator(path_, ec)) {
    if (!p.is_symlink()) fs::permissions(p, fs::perms::owner_all, fs::perm_options::add, ec);
  }
  fs::remove_all(path_, ec);
}

void WriteFile(const fs::path& p, size_t size, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string data(size, '\0');
  for (size_t i = 0; i + 8 <= size; i += 8) {
    const uint64_t v = rng();
    std::memcpy(data.data() + i, &v, 8);
  }
  for (size_t i = size / 8 * 8; i < size; ++i) data[i] = static_cast<char>(rng());
  std::ofstream(p, std::ios::binary).write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

ShellResult Shell(const std::string& command, std::chrono::milliseconds timeout) {
  const RunResult r = RunBinary("/bin/sh", {"-c", command + " 2>&1"}, "", timeout);
  return ShellResult{r.exit_code, r.out + r.err};
}

}  // namespace mp::testing
