// End-to-end tests of mpcopy (apps/copier/mpcopy.cc) on generated trees:
// faithfulness (modes, times, symlinks, hard links, holes, extended
// attributes, FIFOs, sockets, devices, owners), safety (no symlink followed
// in SRC or DST, setuid bits, files changing while copied, no half-written
// file under its name, out of space), and reporting (every problem with its
// path, exit status 1, the rest still copied).
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "tests/run_binary.h"
#include "tests/temp_tree.h"

namespace {

namespace fs = std::filesystem;
using mp::testing::ReadFile;
using mp::testing::RunBinary;
using mp::testing::Shell;
using mp::testing::TempDir;
using mp::testing::WriteFile;

const std::string kMpcopy = "apps/copier/mpcopy";
const std::string kAsNobody = "/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups ";

// True when this test may run commands as "nobody" (it runs as root, and
// setpriv works here), or already is unprivileged.
bool CanBecomeNobody() {
  return geteuid() != 0 || Shell(kAsNobody + "/bin/true").status == 0;
}

struct stat Lstat(const fs::path& p) {
  struct stat st {};
  lstat(p.c_str(), &st);
  return st;
}

// A copy of the mpcopy binary that "nobody" may run (bazel's runfiles may
// sit under a folder it cannot enter).
fs::path BinaryForNobody(const TempDir& tmp) {
  const fs::path bin = tmp.path() / "mpcopy";
  fs::copy_file(kMpcopy, bin, fs::copy_options::overwrite_existing);
  chmod(bin.c_str(), 0755);
  return bin;
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
    EXPECT_EQ(e.path().filename().string().find(".mpcopy-"), std::string::npos) << e.path();
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
  if (!CanBecomeNobody()) GTEST_SKIP() << "cannot switch to an unprivileged user here (setpriv)";
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
    prefix = kAsNobody;
  }
  auto [status, out] = Shell(prefix + bin.string() + " " + src.string() + " " + dst.string() + " --quiet");
  EXPECT_EQ(status, 1) << out;
  EXPECT_NE(out.find("secret.txt: open: Permission denied"), std::string::npos) << out;
  EXPECT_EQ(ReadFile(dst / "ok.txt"), ReadFile(src / "ok.txt"));
  EXPECT_FALSE(fs::exists(dst / "secret.txt"));
  // No permission on DST's parent: refused, nothing written.
  chmod(tmp.path().c_str(), 0555);
  const auto r2 = Shell(prefix + bin.string() + " " + src.string() + " " + (tmp.path() / "dst2").string());
  EXPECT_EQ(r2.status, 2) << r2.out;
  EXPECT_NE(r2.out.find("no permission"), std::string::npos) << r2.out;
  EXPECT_FALSE(fs::exists(tmp.path() / "dst2"));
}


// 001's tree with one unreadable folder of 20: its problem is reported with
// its path, the other 19 folders' files are all copied, status 1.
TEST(Mpcopy, UnreadableFolderIsReportedAndTheRestIsCopied) {
  TempDir tmp;
  if (!CanBecomeNobody()) GTEST_SKIP() << "cannot switch to an unprivileged user here (setpriv)";
  const fs::path src = tmp.path() / "src", dst = tmp.path() / "dst";
  for (int d = 0; d < 20; ++d) {
    fs::create_directories(src / ("d" + std::to_string(d)));
    WriteFile(src / ("d" + std::to_string(d)) / "f", 5000, d);
  }
  fs::permissions(src, fs::perms::all, fs::perm_options::replace);  // "nobody" may write nothing there
  chmod(src.c_str(), 0755);
  for (int d = 0; d < 20; ++d) chmod((src / ("d" + std::to_string(d))).c_str(), 0755);
  chmod((src / "d7").c_str(), 0000);
  const fs::path bin = BinaryForNobody(tmp);
  chmod(tmp.path().c_str(), 0777);
  const std::string prefix = geteuid() == 0 ? kAsNobody : "";
  const auto [status, out] = Shell(prefix + bin.string() + " " + src.string() + " " + dst.string() + " --quiet");
  chmod(tmp.path().c_str(), 0755);
  EXPECT_EQ(status, 1) << out;
  EXPECT_NE(out.find((src / "d7").string() + ": open folder: Permission denied"), std::string::npos) << out;
  for (int d = 0; d < 20; ++d) {
    if (d == 7) continue;
    const fs::path f = fs::path("d" + std::to_string(d)) / "f";
    EXPECT_EQ(ReadFile(dst / f), ReadFile(src / f)) << f;
  }
  EXPECT_TRUE(fs::is_directory(dst / "d7"));
  EXPECT_EQ(Lstat(dst / "d7").st_mode & 07777, 0000u);  // its own mode, given at the end
  chmod((dst / "d7").c_str(), 0755);
}

// A symlink in DST where a folder or a file belongs is replaced; nothing is
// written or chmod-ed through it, on the first run or on a rerun after a
// symlink in SRC became a folder.
TEST(Mpcopy, SymlinksInDstAreReplacedNeverWrittenThrough) {
  TempDir tmp;
  const fs::path src = tmp.path() / "src", dst = tmp.path() / "dst", outside = tmp.path() / "outside";
  fs::create_directories(src / "a");
  fs::create_directories(outside);
  WriteFile(src / "a" / "x", 1000, 1);
  WriteFile(src / "f", 1000, 2);
  WriteFile(outside / "victim", 10, 3);
  WriteFile(outside / "x", 10, 4);
  chmod((outside / "victim").c_str(), 0600);
  chmod((src / "a").c_str(), 0777);
  fs::create_directories(dst);
  fs::create_directory_symlink(outside, dst / "a");
  fs::create_symlink(outside / "victim", dst / "f");
  // SRC's own symlink to a folder is copied as a symlink, not followed.
  fs::create_directory_symlink(outside, src / "s");
  auto r = RunBinary(kMpcopy, {src.string(), dst.string(), "--quiet"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(S_ISDIR(Lstat(dst / "a").st_mode));
  EXPECT_EQ(ReadFile(dst / "a" / "x"), ReadFile(src / "a" / "x"));
  EXPECT_TRUE(S_ISREG(Lstat(dst / "f").st_mode));
  EXPECT_EQ(ReadFile(dst / "f"), ReadFile(src / "f"));
  EXPECT_TRUE(S_ISLNK(Lstat(dst / "s").st_mode));
  EXPECT_EQ(ReadFile(outside / "victim"), std::string(ReadFile(outside / "victim")));
  EXPECT_EQ(ReadFile(outside / "x").size(), 10u);
  EXPECT_EQ(Lstat(outside / "victim").st_mode & 07777, 0600u);
  EXPECT_EQ(Lstat(outside).st_mode & 07777, 0755u);
  // The symlink in SRC becomes a folder: the rerun must not write through
  // the symlink the first run made in DST.
  fs::remove(src / "s");
  fs::create_directories(src / "s");
  WriteFile(src / "s" / "new", 100, 5);
  r = RunBinary(kMpcopy, {src.string(), dst.string(), "--quiet"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(S_ISDIR(Lstat(dst / "s").st_mode));
  EXPECT_EQ(ReadFile(dst / "s" / "new"), ReadFile(src / "s" / "new"));
  EXPECT_FALSE(fs::exists(outside / "new"));
  EXPECT_EQ(Lstat(outside).st_mode & 07777, 0755u);
}

// As root, owners are kept and so are setuid/setgid bits; as anyone else, a
// setuid file of another owner loses the bit (its copy is theirs).
TEST(Mpcopy, OwnersAndSetuidBits) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (owners other than our own)";
  TempDir tmp;
  const fs::path src = tmp.path() / "src", dst = tmp.path() / "dst";
  fs::create_directories(src);
  WriteFile(src / "user-setuid", 100, 1);
  chown((src / "user-setuid").c_str(), 65534, 65534);
  chmod((src / "user-setuid").c_str(), 04755);
  WriteFile(src / "root-setuid", 100, 2);
  chmod((src / "root-setuid").c_str(), 06755);
  fs::create_symlink("user-setuid", src / "link");
  lchown((src / "link").c_str(), 65534, 65534);
  auto r = RunBinary(kMpcopy, {src.string(), dst.string(), "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Lstat(dst / "user-setuid").st_uid, 65534u);
  EXPECT_EQ(Lstat(dst / "user-setuid").st_gid, 65534u);
  EXPECT_EQ(Lstat(dst / "user-setuid").st_mode & 07777, 04755u);
  EXPECT_EQ(Lstat(dst / "root-setuid").st_mode & 07777, 06755u);
  EXPECT_EQ(Lstat(dst / "link").st_uid, 65534u);
  // Copied by nobody: root's setuid/setgid file becomes nobody's, without them.
  if (!CanBecomeNobody()) GTEST_SKIP() << "cannot switch to an unprivileged user here (setpriv)";
  const fs::path bin = BinaryForNobody(tmp);
  chmod(tmp.path().c_str(), 0777);
  const auto [status, out] = Shell(kAsNobody + bin.string() + " " + src.string() + " " +
                                   (tmp.path() / "dst2").string() + " --quiet");
  chmod(tmp.path().c_str(), 0755);
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(Lstat(tmp.path() / "dst2" / "root-setuid").st_uid, 65534u);
  EXPECT_EQ(Lstat(tmp.path() / "dst2" / "root-setuid").st_mode & 07777, 0755u);
  EXPECT_EQ(Lstat(tmp.path() / "dst2" / "user-setuid").st_mode & 07777, 04755u);  // nobody's own
}

// A FIFO (which would block a reader forever), a socket and (as root) a
// device are recreated, never opened for reading.
TEST(Mpcopy, SpecialFilesAreRecreated) {
  TempDir tmp;
  const fs::path src = tmp.path() / "src", dst = tmp.path() / "dst";
  fs::create_directories(src);
  ASSERT_EQ(mkfifo((src / "fifo").c_str(), 0640), 0);
  const int sock = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, (src / "sock").c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  close(sock);
  const bool root = geteuid() == 0;
  if (root) {
    ASSERT_EQ(mknod((src / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  }
  WriteFile(src / "plain", 100, 1);
  auto r = RunBinary(kMpcopy, {src.string(), dst.string(), "--quiet"}, "", std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(S_ISFIFO(Lstat(dst / "fifo").st_mode));
  EXPECT_EQ(Lstat(dst / "fifo").st_mode & 07777, 0640u);
  EXPECT_TRUE(S_ISSOCK(Lstat(dst / "sock").st_mode));
  if (root) {
    EXPECT_TRUE(S_ISCHR(Lstat(dst / "null").st_mode));
    EXPECT_EQ(Lstat(dst / "null").st_rdev, makedev(1, 3));
  }
  EXPECT_EQ(ReadFile(dst / "plain"), ReadFile(src / "plain"));
  // A rerun finds them all in place.
  r = RunBinary(kMpcopy, {src.string(), dst.string(), "--quiet"}, "", std::chrono::seconds(30));
  EXPECT_NE(r.err.find("copied 0 files"), std::string::npos) << r.err;
}

// A file that changes while it is copied (a whole one, and one copied in
// ranges) is tried again and then reported; it is never given its name, so
// a rerun (once it is quiet) copies it. The change: a preloaded shim
// (mutate_source_shim.cc) appends a byte to a source file after each
// copy_file_range from it.
TEST(Mpcopy, FileChangingWhileCopiedIsNeverPassedOffAsACopy) {
  TempDir tmp;
  const fs::path src = tmp.path() / "src", dst = tmp.path() / "dst";
  fs::create_directories(src);
  WriteFile(src / "changing-whole", 3 << 20, 1);
  WriteFile(src / "changing-ranged", 5 << 20, 2);  // in ranges (--chunk_mib=4)
  WriteFile(src / "quiet", 1000, 3);
  // (Sanitizer runtimes want to be first among the preloaded libraries.)
  const std::string env = "ASAN_OPTIONS=verify_asan_link_order=0 LD_PRELOAD=" +
                          fs::absolute("tests/mutate_source_shim.so").string() + " MPCOPY_TEST_MUTATE=/changing-";
  auto [status, out] = Shell(env + " " + fs::absolute(kMpcopy).string() + " " + src.string() + " " +
                             dst.string() + " --quiet --chunk_mib=4");
  EXPECT_EQ(status, 1) << out;
  EXPECT_NE(out.find((src / "changing-whole").string() + ": changed while being copied (3 tries)"),
            std::string::npos) << out;
  EXPECT_NE(out.find((src / "changing-ranged").string() + ": changed while being copied (3 tries)"),
            std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dst / "changing-whole"));
  EXPECT_FALSE(fs::exists(dst / "changing-ranged"));
  EXPECT_EQ(ReadFile(dst / "quiet"), ReadFile(src / "quiet"));
  for (auto& e : fs::directory_iterator(dst)) {
    EXPECT_EQ(e.path().filename().string().find(".mpcopy-"), std::string::npos) << e.path();
  }
  // The rerun (no shim: the files are quiet now) copies both, and skips the rest.
  auto r = RunBinary(kMpcopy, {src.string(), dst.string(), "--quiet", "--chunk_mib=4"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("copied 2 files"), std::string::npos) << r.err;
  EXPECT_EQ(ReadFile(dst / "changing-whole"), ReadFile(src / "changing-whole"));
  EXPECT_EQ(ReadFile(dst / "changing-ranged"), ReadFile(src / "changing-ranged"));
}

TEST(Mpcopy, HardLinksStayHardLinks) {
  TempDir tmp;
  const fs::path src = tmp.path() / "src", dst = tmp.path() / "dst";
  fs::create_directories(src / "a");
  fs::create_directories(src / "b");
  WriteFile(src / "a" / "f", 5000, 1);
  fs::create_hard_link(src / "a" / "f", src / "a" / "g");
  fs::create_hard_link(src / "a" / "f", src / "b" / "h");
  WriteFile(src / "big", 3 << 20, 2);  // copied in ranges (--chunk_mib=1)
  fs::create_hard_link(src / "big", src / "b" / "big2");
  WriteFile(src / "single", 100, 3);
  auto r = RunBinary(kMpcopy, {src.string(), dst.string(), "--quiet", "--chunk_mib=1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const ino_t f = Lstat(dst / "a" / "f").st_ino;
  EXPECT_EQ(Lstat(dst / "a" / "g").st_ino, f);
  EXPECT_EQ(Lstat(dst / "b" / "h").st_ino, f);
  EXPECT_EQ(Lstat(dst / "a" / "f").st_nlink, 3u);
  EXPECT_EQ(Lstat(dst / "big").st_ino, Lstat(dst / "b" / "big2").st_ino);
  EXPECT_EQ(ReadFile(dst / "b" / "h"), ReadFile(src / "a" / "f"));
  EXPECT_EQ(ReadFile(dst / "b" / "big2"), ReadFile(src / "big"));
  EXPECT_EQ(Lstat(dst / "single").st_nlink, 1u);
  EXPECT_NE(r.err.find("3 hard links"), std::string::npos) << r.err;
  r = RunBinary(kMpcopy, {src.string(), dst.string(), "--quiet", "--chunk_mib=1"});
  EXPECT_NE(r.err.find("copied 0 files (0.0 B), 0 hard links"), std::string::npos) << r.err;
}

// An unreadable file with two names: both names are reported, neither is
// silently left out.
TEST(Mpcopy, UnreadableHardLinkedFileIsReportedByEveryName) {
  TempDir tmp;
  if (!CanBecomeNobody()) GTEST_SKIP() << "cannot switch to an unprivileged user here (setpriv)";
  const fs::path src = tmp.path() / "src", dst = tmp.path() / "dst";
  fs::create_directories(src);
  WriteFile(src / "a", 100, 1);
  fs::create_hard_link(src / "a", src / "b");
  chmod((src / "a").c_str(), 0000);
  const fs::path bin = BinaryForNobody(tmp);
  chmod(tmp.path().c_str(), 0777);
  const auto [status, out] = Shell((geteuid() == 0 ? kAsNobody : "") + bin.string() + " " + src.string() + " " +
                                   dst.string() + " --quiet");
  chmod(tmp.path().c_str(), 0755);
  EXPECT_EQ(status, 1) << out;
  EXPECT_NE(out.find((src / "a").string() + ": open: Permission denied"), std::string::npos) << out;
  EXPECT_NE(out.find((src / "b").string() + ": open: Permission denied"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dst / "a"));
  EXPECT_FALSE(fs::exists(dst / "b"));
}

// Holes stay holes, in a file copied whole and in one copied in ranges.
TEST(Mpcopy, SparseFilesStaySparse) {
  TempDir tmp;
  const fs::path src = tmp.path() / "src", dst = tmp.path() / "dst";
  fs::create_directories(src);
  for (const auto& [name, size] : {std::pair<std::string, off_t>{"small", 8 << 20}, {"big", 64 << 20}}) {
    const int fd = open((src / name).c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_EQ(ftruncate(fd, size), 0);
    const std::string data(4096, 'x');
    ASSERT_EQ(pwrite(fd, data.data(), data.size(), 0), 4096);
    ASSERT_EQ(pwrite(fd, data.data(), data.size(), size / 2), 4096);
    close(fd);
  }
  auto r = RunBinary(kMpcopy, {src.string(), dst.string(), "--quiet", "--chunk_mib=16"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* name : {"small", "big"}) {
    EXPECT_EQ(Lstat(dst / name).st_size, Lstat(src / name).st_size) << name;
    EXPECT_LE(Lstat(dst / name).st_blocks * 512, 1 << 20) << name;
    EXPECT_EQ(ReadFile(dst / name), ReadFile(src / name)) << name;
  }
}

TEST(Mpcopy, ExtendedAttributesAreKept) {
  TempDir tmp;
  const fs::path src = tmp.path() / "src", dst = tmp.path() / "dst";
  fs::create_directories(src / "folder");
  WriteFile(src / "file", 100, 1);
  if (setxattr((src / "file").c_str(), "user.mp.test", "value", 5, 0) != 0) {
    GTEST_SKIP() << "no user extended attributes here: " << std::strerror(errno);
  }
  const std::string long_value(3000, 'v');
  ASSERT_EQ(setxattr((src / "file").c_str(), "user.mp.long", long_value.data(), long_value.size(), 0), 0);
  ASSERT_EQ(setxattr((src / "folder").c_str(), "user.mp.dir", "d", 1, 0), 0);
  auto r = RunBinary(kMpcopy, {src.string(), dst.string(), "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  char buf[4096];
  ssize_t n = getxattr((dst / "file").c_str(), "user.mp.test", buf, sizeof buf);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "value");
  n = getxattr((dst / "file").c_str(), "user.mp.long", buf, sizeof buf);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), long_value);
  n = getxattr((dst / "folder").c_str(), "user.mp.dir", buf, sizeof buf);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "d");
}

// Checks, inside `dst`, that every file under its own name is complete (as
// its namesake in `src`); returns the names that are not.
std::string Incomplete(const fs::path& src, const fs::path& dst) {
  std::string bad;
  std::error_code ec;
  for (auto& e : fs::recursive_directory_iterator(dst, ec)) {
    if (!e.is_regular_file()) continue;
    const fs::path rel = e.path().lexically_relative(dst);
    if (ReadFile(e.path()) != ReadFile(src / rel)) bad += rel.string() + " ";
  }
  return bad;
}

// DST fills up: a clear message, status 1, no half-written file under its
// name. A 3 MiB tmpfs, mounted in a mount namespace of the test's own (it
// goes away with it), is the full disk.
TEST(Mpcopy, OutOfSpaceStopsWithAClearMessageAndNoHalfFiles) {
  TempDir tmp;
  const fs::path src = tmp.path() / "src", mnt = tmp.path() / "mnt";
  fs::create_directories(src / "d");
  fs::create_directories(mnt);
  for (int i = 0; i < 8; ++i) WriteFile(src / "d" / ("f" + std::to_string(i)), 700 << 10, i);
  WriteFile(src / "big", 4 << 20, 9);  // in ranges (--chunk_mib=1)
  // The namespace's shell copies, then checks the copy and reports.
  const fs::path check = tmp.path() / "check.txt";
  const std::string inner = "mount -t tmpfs -o size=3m tmpfs " + mnt.string() + " && " +
                            fs::absolute(kMpcopy).string() + " " + src.string() + " " + (mnt / "dst").string() +
                            " --quiet --chunk_mib=1; echo \"status=$?\"; cp -a " + (mnt / "dst").string() + " " +
                            (tmp.path() / "seen").string();
  const auto [status, out] = Shell("unshare --mount --propagation private sh -c '" + inner + "'");
  if (out.find("status=") == std::string::npos) GTEST_SKIP() << "cannot mount a tmpfs here: " << out;
  EXPECT_NE(out.find("status=1"), std::string::npos) << out;
  EXPECT_NE(out.find("No space left on device"), std::string::npos) << out;
  EXPECT_NE(out.find("DST is out of space: stopping"), std::string::npos) << out;
  EXPECT_EQ(Incomplete(src, tmp.path() / "seen"), "") << out;
}

// A file-size limit (RLIMIT_FSIZE) the copy runs into: the files above it are
// reported (EFBIG), none is left under its name half-written, the rest is
// copied.
TEST(Mpcopy, FileSizeLimitIsReportedAndNothingIsHalfWritten) {
  TempDir tmp;
  const fs::path src = tmp.path() / "src", dst = tmp.path() / "dst";
  fs::create_directories(src);
  WriteFile(src / "small", 100 << 10, 1);
  WriteFile(src / "large", 2 << 20, 2);
  WriteFile(src / "huge", 5 << 20, 3);  // in ranges (--chunk_mib=2)
  const auto [status, out] = Shell("prlimit --fsize=1048576 " + fs::absolute(kMpcopy).string() + " " +
                                   src.string() + " " + dst.string() + " --quiet --chunk_mib=2");
  EXPECT_EQ(status, 1) << out;
  EXPECT_NE(out.find((dst / "large").string() + ": write: File too large"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dst / "large"));
  EXPECT_FALSE(fs::exists(dst / "huge"));
  EXPECT_EQ(ReadFile(dst / "small"), ReadFile(src / "small"));
  EXPECT_EQ(Incomplete(src, dst), "");
}

TEST(Mpcopy, DryRunListsAndChangesNothing) {
  TempDir tmp;
  const fs::path src = tmp.path() / "src", dst = tmp.path() / "dst";
  fs::create_directories(src / "a");
  WriteFile(src / "a" / "f", 100, 1);
  WriteFile(src / "g", 100, 2);
  auto r = RunBinary(kMpcopy, {src.string(), dst.string(), "--dry_run"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("copy a/f\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("copy g\n"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dst));
  // With DST there, only what differs is listed.
  r = RunBinary(kMpcopy, {src.string(), dst.string(), "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  WriteFile(src / "g", 200, 3);
  r = RunBinary(kMpcopy, {src.string(), dst.string(), "--dry_run"});
  EXPECT_EQ(r.out, "copy g\n");
  EXPECT_EQ(ReadFile(dst / "g").size(), 100u);
}

}  // namespace
