#include "apps/copier/beneath.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mpcopy {

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

bool Fd::Close() { return ::close(std::exchange(fd_, -1)) == 0; }

namespace {

// Before Linux 5.6 (no openat2): one component at a time, each opened with
// O_NOFOLLOW (folders with O_DIRECTORY too), which refuses symlinks just as
// RESOLVE_NO_SYMLINKS does.
Fd OpenByComponents(int root, const std::string& rel, int flags, mode_t mode) {
  Fd dir(::fcntl(root, F_DUPFD_CLOEXEC, 0));
  if (!dir.valid()) return Fd();
  std::vector<std::string> parts = absl::StrSplit(rel, '/', absl::SkipEmpty());
  if (parts.empty()) return Fd(::openat(root, ".", flags | O_CLOEXEC, mode));
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (parts[i] == "..") {
      errno = EXDEV;
      return Fd();
    }
    Fd next(::openat(dir.get(), parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next.valid()) return Fd();
    dir = std::move(next);
  }
  if (parts.back() == "..") {
    errno = EXDEV;
    return Fd();
  }
  return Fd(::openat(dir.get(), parts.back().c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode));
}

}  // namespace

Fd OpenBeneath(int root, const std::string& rel, int flags, mode_t mode) {
  static std::atomic<bool> have_openat2{true};
  const char* path = rel.empty() ? "." : rel.c_str();
  if (have_openat2.load(std::memory_order_relaxed)) {
    open_how how{};
    how.flags = static_cast<uint64_t>(flags | O_NOFOLLOW | O_CLOEXEC);
    how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    const long fd = ::syscall(SYS_openat2, root, path, &how, sizeof how);
    if (fd >= 0) return Fd(static_cast<int>(fd));
    if (errno != ENOSYS) return Fd();
    have_openat2.store(false, std::memory_order_relaxed);
  }
  return OpenByComponents(root, rel, flags, mode);
}

std::pair<std::string, std::string> SplitParent(const std::string& rel) {
  const size_t slash = rel.rfind('/');
  if (slash == std::string::npos) return {"", rel};
  return {rel.substr(0, slash), rel.substr(slash + 1)};
}

std::string JoinRel(const std::string& parent, const std::string& name) {
  return parent.empty() ? name : absl::StrCat(parent, "/", name);
}

std::string TransientName() {
  static std::atomic<uint64_t> counter{0};
  return absl::StrCat(".mpcopy-", ::getpid(), "-", counter.fetch_add(1));
}

std::string AssemblyName(const std::string& name) {
  return absl::StrCat(".mpcopy-big-", absl::Hex(std::hash<std::string>{}(name), absl::kZeroPad16));
}

bool RenameInto(int dir, const std::string& tmp, const std::string& name) {
  if (::renameat(dir, tmp.c_str(), dir, name.c_str()) == 0) return true;
  const int error = errno;
  ::unlinkat(dir, tmp.c_str(), 0);
  errno = error;
  return false;
}

std::string ProcFdPath(int fd) { return absl::StrCat("/proc/self/fd/", fd); }

bool LinkInto(int fd, int dir, const std::string& name) {
  const std::string proc = ProcFdPath(fd);
  // The common case (a new file) costs one call; an existing entry is
  // replaced in one step by linking under a temporary name and renaming.
  if (::linkat(AT_FDCWD, proc.c_str(), dir, name.c_str(), AT_SYMLINK_FOLLOW) == 0) return true;
  if (errno != EEXIST) return false;
  const std::string tmp = TransientName();
  if (::linkat(AT_FDCWD, proc.c_str(), dir, tmp.c_str(), AT_SYMLINK_FOLLOW) != 0) return false;
  return RenameInto(dir, tmp, name);
}

bool SameVersion(const struct stat& a, const struct stat& b) {
  return a.st_size == b.st_size && a.st_mtim.tv_sec == b.st_mtim.tv_sec &&
         a.st_mtim.tv_nsec == b.st_mtim.tv_nsec && a.st_ctim.tv_sec == b.st_ctim.tv_sec &&
         a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
}

bool IsOutOfSpace(int error) { return error == ENOSPC || error == EDQUOT; }

}  // namespace mpcopy
