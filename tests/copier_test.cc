// End-to-end tests of the folder copier: the document's three versions and
// mpcopy, on generated trees.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/run_binary.h"

namespace {

namespace fs = std::filesystem;
using mp::testing::RunBinary;

// A fresh directory under /tmp that everyone may enter (see Unreadable).
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/mp-copier-test-XXXXXX";
    path_ = mkdtemp(tmpl);
    chmod(path_.c_str(), 0755);
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::all, ec);
    for (auto& p : fs::recursive_directory_iterator(path_, ec)) fs::permissions(p, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

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

// The tree the issue asks for: nested folders, empty files and folders, a
// 100 MiB file, symlinks, names with spaces, newlines and UTF-8.
void MakeTree(const fs::path& root) {
  fs::create_directories(root / "a" / "b" / "c");
  fs::create_directories(root / "empty dir");
  WriteFile(root / "small.txt", 100, 1);
  WriteFile(root / "a" / "mid.bin", 300000, 2);
  WriteFile(root / "a" / "b" / "c" / "deep.bin", 5000, 3);
  WriteFile(root / "empty", 0, 4);
  WriteFile(root / "with space.txt", 10, 5);
  WriteFile(root / "new\nline", 10, 6);
  WriteFile(root / "两点水.txt", 10, 7);
  WriteFile(root / "a" / "big.bin", 100 << 20, 8);
  fs::create_symlink("small.txt", root / "link-to-small");
  fs::create_symlink("/nonexistent/target", root / "a" / "dangling");
  chmod((root / "small.txt").c_str(), 0640);
  const timespec times[2] = {{1500000000, 123456789}, {1500000000, 123456789}};
  utimensat(AT_FDCWD, (root / "a" / "mid.bin").c_str(), times, 0);
}

// Compares two trees: names, types, contents, symlink targets, modes, mtimes.
::testing::AssertionResult SameTree(const fs::path& a, const fs::path& b) {
  std::map<fs::path, fs::path> left, right;
  for (auto& e : fs::recursive_directory_iterator(a)) left[e.path().lexically_relative(a)] = e.path();
  for (auto& e : fs::recursive_directory_iterator(b)) right[e.path().lexically_relative(b)] = e.path();
  for (auto& [rel, pa] : left) {
    if (!right.count(rel)) return ::testing::AssertionFailure() << "missing in copy: " << rel;
    const fs::path& pb = right[rel];
    struct stat sa, sb;
    lstat(pa.c_str(), &sa);
    lstat(pb.c_str(), &sb);
    if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT)) return ::testing::AssertionFailure() << "type differs: " << rel;
    if (S_ISLNK(sa.st_mode)) {
      if (fs::read_symlink(pa) != fs::read_symlink(pb)) return ::testing::AssertionFailure() << "link differs: " << rel;
      continue;
    }
    if ((sa.st_mode & 07777) != (sb.st_mode & 07777)) return ::testing::AssertionFailure() << "mode differs: " << rel;
    if (S_ISREG(sa.st_mode)) {
      if (sa.st_mtim.tv_sec != sb.st_mtim.tv_sec || sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec) {
        return ::testing::AssertionFailure() << "mtime differs: " << rel;
      }
      if (ReadFile(pa) != ReadFile(pb)) return ::testing::AssertionFailure() << "content differs: " << rel;
    }
  }
  for (auto& [rel, pb] : right) {
    if (!left.count(rel)) return ::testing::AssertionFailure() << "extra in copy: " << rel;
  }
  return ::testing::AssertionSuccess();
}

const std::string kMpcopy = "apps/copier/mpcopy";

TEST(Mpcopy, CopiesATreeFaithfully) {
  TempDir tmp;
  MakeTree(tmp.path() / "src");
  auto r = RunBinary(kMpcopy, {(tmp.path() / "src").string(), (tmp.path() / "dst").string(), "--jobs=2",
                               "--chunk_mib=8", "--verify"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(SameTree(tmp.path() / "src", tmp.path() / "dst"));
  EXPECT_NE(r.err.find("verified"), std::string::npos);
  // A rerun finds everything identical and copies nothing.
  r = RunBinary(kMpcopy, {(tmp.path() / "src").string(), (tmp.path() / "dst").string(), "--quiet"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.err.find("copied 0 files"), std::string::npos) << r.err;
  r = RunBinary(kMpcopy, {(tmp.path() / "src").string(), (tmp.path() / "dst").string(), "--quiet", "--checksum"});
  EXPECT_NE(r.err.find("copied 0 files"), std::string::npos) << r.err;
}

TEST(Mpcopy, ResumesAfterAKilledRunWithoutHalfFilesUnderRealNames) {
  TempDir tmp;
  const fs::path src = tmp.path() / "src", dst = tmp.path() / "dst";
  fs::create_directories(src);
  for (int i = 0; i < 6; ++i) WriteFile(src / ("f" + std::to_string(i)), 30 << 20, 100 + i);
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);
    execl(kMpcopy.c_str(), kMpcopy.c_str(), src.c_str(), dst.c_str(), "--jobs=1", "--chunk_mib=4", nullptr);
    _exit(127);
  }
  // Kill it once some but not all of the data is there.
  for (int i = 0; i < 2000; ++i) {
    std::error_code ec;
    uint64_t bytes = 0;
    for (auto& e : fs::recursive_directory_iterator(dst, ec)) bytes += e.is_regular_file() ? e.file_size() : 0;
    if (bytes > (20u << 20)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // Polls the copy's progress on disk.
  }
  kill(-pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  // Every file under its real name is complete.
  for (int i = 0; i < 6; ++i) {
    const fs::path f = dst / ("f" + std::to_string(i));
    if (fs::exists(f)) {
      EXPECT_EQ(ReadFile(f), ReadFile(src / f.filename())) << f;
    }
  }
  auto r = RunBinary(kMpcopy, {src.string(), dst.string(), "--quiet"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (auto& e : fs::directory_iterator(dst)) {
    EXPECT_EQ(e.path().filename().string().find("mpcopy-tmp"), std::string::npos) << e.path();
  }
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(ReadFile(dst / ("f" + std::to_string(i))), ReadFile(src / ("f" + std::to_string(i))));
  }
}

TEST(Mpcopy, BadInputIsRefusedAndNothingIsWritten) {
  TempDir tmp;
  MakeTree(tmp.path() / "src");
  WriteFile(tmp.path() / "file", 10, 9);
  struct Case {
    std::vector<std::string> args;
    std::string message;
  } cases[] = {
      {{(tmp.path() / "missing").string(), (tmp.path() / "d1").string()}, "does not exist"},
      {{(tmp.path() / "file").string(), (tmp.path() / "d2").string()}, "is not a directory"},
      {{(tmp.path() / "src").string(), (tmp.path() / "src" / "a" / "inside").string()}, "is inside SRC"},
      {{(tmp.path() / "src").string(), (tmp.path() / "file").string()}, "exists and is not a directory"},
      {{(tmp.path() / "src").string()}, "usage"},
  };
  for (const auto& c : cases) {
    auto r = RunBinary(kMpcopy, c.args);
    EXPECT_EQ(r.exit_code, 2) << c.message;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
  }
  EXPECT_FALSE(fs::exists(tmp.path() / "d1"));
  EXPECT_FALSE(fs::exists(tmp.path() / "d2"));
  EXPECT_FALSE(fs::exists(tmp.path() / "src" / "a" / "inside"));
}

// Runs mpcopy as an unprivileged user (root reads everything), so that an
// unreadable file and an unwritable destination are real.
TEST(Mpcopy, UnreadableFileIsReportedAndTheRestIsCopied) {
  TempDir tmp;
  if (geteuid() == 0 &&
      std::system("/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups /bin/true 2>/dev/null") != 0) {
    GTEST_SKIP() << "cannot switch to an unprivileged user here (setpriv)";
  }
  const fs::path src = tmp.path() / "src", dst = tmp.path() / "dst", bin = tmp.path() / "mpcopy";
  fs::create_directories(src);
  WriteFile(src / "ok.txt", 1000, 1);
  WriteFile(src / "secret.txt", 1000, 2);
  fs::copy_file(kMpcopy, bin);
  chmod(bin.c_str(), 0755);
  chmod(src.c_str(), 0755);
  chmod((src / "ok.txt").c_str(), 0644);
  chmod((src / "secret.txt").c_str(), 0000);
  std::string prefix;
  if (geteuid() == 0) {
    chown(tmp.path().c_str(), 65534, 65534);  // nobody may create dst here
    prefix = "/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups ";
  }
  const std::string cmd = prefix + bin.string() + " " + src.string() + " " + dst.string() + " --quiet 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  EXPECT_EQ(WEXITSTATUS(status), 1) << out;
  EXPECT_NE(out.find("secret.txt: open: Permission denied"), std::string::npos) << out;
  EXPECT_EQ(ReadFile(dst / "ok.txt"), ReadFile(src / "ok.txt"));
  EXPECT_FALSE(fs::exists(dst / "secret.txt"));
  // No permission on DST's parent: refused, nothing written.
  chmod(tmp.path().c_str(), 0555);
  const std::string cmd2 = prefix + bin.string() + " " + src.string() + " " + (tmp.path() / "dst2").string() + " 2>&1";
  p = popen(cmd2.c_str(), "r");
  out.clear();
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  EXPECT_EQ(WEXITSTATUS(pclose(p)), 2) << out;
  EXPECT_NE(out.find("no permission"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(tmp.path() / "dst2"));
}

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
                            " --time_scale=0.001 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    EXPECT_EQ(WEXITSTATUS(pclose(p)), 0) << c.app << out;
    EXPECT_NE(out.find(c.progress), std::string::npos) << c.app << ": " << out;
    for (int i = 0; i < 5; ++i) {
      const std::string name = "file" + std::to_string(i);
      EXPECT_EQ(ReadFile(tmp.path() / ("test" + c.suffix) / name), ReadFile(folder / name)) << c.app;
    }
    fs::remove_all(tmp.path() / ("test" + c.suffix));
  }
}

}  // namespace
