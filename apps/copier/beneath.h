// File-system primitives of mpcopy that never follow a symlink: every path
// is relative to a directory descriptor (the SRC or DST root) and is opened
// with openat2's RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, so a symlink planted
// anywhere in SRC or DST (a folder swapped for a link to /etc between two
// runs) makes the open fail instead of leading outside the tree.
#ifndef APPS_COPIER_BENEATH_H_
#define APPS_COPIER_BENEATH_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <string>
#include <utility>

namespace mpcopy {

// The owner of one descriptor. (The library's ScopedFd is internal to it;
// an app uses the public API only.)
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Closes now, reporting close's error (a delayed write error, ENOSPC on
  // some file systems). Returns false with errno set.
  bool Close();

 private:
  int fd_ = -1;
};

// Opens `rel` ("" or "." for the root itself; no leading '/', no "..")
// beneath `root` without following any symlink on the way or at the end.
// Returns an invalid Fd with errno set (ELOOP or EXDEV for a symlink).
Fd OpenBeneath(int root, const std::string& rel, int flags, mode_t mode = 0);

// "dir/name" -> ("dir", "name"); "name" -> ("", "name").
std::pair<std::string, std::string> SplitParent(const std::string& rel);

// A / b, with "" as the root.
std::string JoinRel(const std::string& parent, const std::string& name);

// A fresh temporary name for this process (".mpcopy-<pid>-<n>"): short, so
// that it fits whatever the name it stands in for.
std::string TransientName();

// The temporary name a big file is assembled under: the same for a name on
// every run, so that a rerun after a killed copy reuses (replaces) it rather
// than leaving it behind.
std::string AssemblyName(const std::string& name);

// Moves `tmp` (in dir) to `name` (in dir), replacing what is there unless it
// is a folder (rename never follows a symlink at `name`: a link there is
// replaced, never written through). On failure `tmp` is removed.
bool RenameInto(int dir, const std::string& tmp, const std::string& name);

// Links the unnamed (O_TMPFILE) file `fd` as dir/name, replacing what is
// there as RenameInto does. Returns false with errno set.
bool LinkInto(int fd, int dir, const std::string& name);

// "/proc/self/fd/N": the path by which chmod, utimensat and linkat reach an
// O_PATH or O_TMPFILE descriptor.
std::string ProcFdPath(int fd);

// The mtime, size and ctime are all the same: the file did not change.
bool SameVersion(const struct stat& a, const struct stat& b);

// Was this error the destination running out of room?
bool IsOutOfSpace(int error);

}  // namespace mpcopy

#endif  // APPS_COPIER_BENEATH_H_
