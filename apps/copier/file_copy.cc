#include "apps/copier/file_copy.h"

#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "apps/copier/beneath.h"

namespace mpcopy {

std::string StepError::Describe() const { return absl::StrCat(step, ": ", std::strerror(error)); }

Identity Identity::OfThisProcess() {
  Identity who;
  who.uid = ::geteuid();
  who.gid = ::getegid();
  who.root = who.uid == 0;
  return who;
}

bool LooksSparse(const struct stat& st) {
  return S_ISREG(st.st_mode) && st.st_size > 0 &&
         static_cast<uint64_t>(st.st_blocks) * 512 < static_cast<uint64_t>(st.st_size);
}

namespace {

bool Fail(StepError* error, const char* step) {
  *error = StepError{step, errno};
  return false;
}

// For file systems (or descriptors) where copy_file_range cannot work.
bool ReadWriteCopy(int in, int out, uint64_t offset, uint64_t length, StepError* error) {
  std::vector<char> buf(std::min<uint64_t>(length, 1 << 20));
  uint64_t done = 0;
  while (done < length) {
    const size_t want = std::min<uint64_t>(buf.size(), length - done);
    const ssize_t n = ::pread(in, buf.data(), want, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Fail(error, "read");
    if (n == 0) {
      errno = ENODATA;  // Shorter than it was: it changed under us.
      return Fail(error, "read");
    }
    for (size_t written = 0; written < static_cast<size_t>(n);) {
      const ssize_t w = ::pwrite(out, buf.data() + written, static_cast<size_t>(n) - written,
                                 static_cast<off_t>(offset + done + written));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return Fail(error, "write");
      written += static_cast<size_t>(w);
    }
    done += static_cast<uint64_t>(n);
  }
  return true;
}

bool DenseCopy(int in, int out, uint64_t offset, uint64_t length, StepError* error) {
  uint64_t done = 0;
  while (done < length) {
    loff_t in_off = static_cast<loff_t>(offset + done), out_off = in_off;
    const size_t want = std::min<uint64_t>(length - done, 1u << 30);
    const ssize_t n = ::copy_file_range(in, &in_off, out, &out_off, want, 0);
    if (n > 0) {
      done += static_cast<uint64_t>(n);
      continue;
    }
    if (n == 0) {
      errno = ENODATA;
      return Fail(error, "read");
    }
    if (errno == EINTR) continue;
    if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP || errno == EBADF) {
      return ReadWriteCopy(in, out, offset + done, length - done, error);
    }
    return Fail(error, "write");
  }
  return true;
}

}  // namespace

bool CopyBytes(int in, int out, uint64_t offset, uint64_t length, bool sparse, StepError* error) {
  if (!sparse) return DenseCopy(in, out, offset, length, error);
  const uint64_t end = offset + length;
  for (uint64_t pos = offset; pos < end;) {
    const off_t data = ::lseek(in, static_cast<off_t>(pos), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // Only a hole is left.
      return DenseCopy(in, out, pos, end - pos, error);  // No SEEK_DATA here.
    }
    if (static_cast<uint64_t>(data) >= end) break;
    off_t hole = ::lseek(in, data, SEEK_HOLE);
    if (hole < 0) return Fail(error, "seek");
    const uint64_t stop = std::min<uint64_t>(static_cast<uint64_t>(hole), end);
    if (!DenseCopy(in, out, static_cast<uint64_t>(data), stop - static_cast<uint64_t>(data), error)) return false;
    pos = stop;
  }
  return true;
}

namespace {

// Extended attributes, by descriptor or (for O_PATH descriptors, which the
// f*xattr calls refuse) by /proc/self/fd path.
class Xattrs {
 public:
  Xattrs(int fd, bool by_path) : fd_(fd), path_(by_path ? ProcFdPath(fd) : "") {}

  // The names, or nullopt-like false with errno set.
  bool List(std::vector<std::string>* names) const {
    std::string buf(256, '\0');
    for (;;) {
      const ssize_t n = path_.empty() ? ::flistxattr(fd_, buf.data(), buf.size())
                                      : ::listxattr(path_.c_str(), buf.data(), buf.size());
      if (n >= 0) {
        buf.resize(static_cast<size_t>(n));
        break;
      }
      if (errno != ERANGE) return errno == ENOTSUP;  // No xattrs on this file system: none to copy.
      const ssize_t need = path_.empty() ? ::flistxattr(fd_, nullptr, 0) : ::listxattr(path_.c_str(), nullptr, 0);
      if (need < 0) return false;
      buf.assign(static_cast<size_t>(need) + 1, '\0');
    }
    for (absl::string_view name : absl::StrSplit(buf, '\0', absl::SkipEmpty())) names->emplace_back(name);
    return true;
  }

  bool Get(const std::string& name, std::string* value) const {
    value->assign(256, '\0');
    for (;;) {
      const ssize_t n = path_.empty() ? ::fgetxattr(fd_, name.c_str(), value->data(), value->size())
                                      : ::getxattr(path_.c_str(), name.c_str(), value->data(), value->size());
      if (n >= 0) {
        value->resize(static_cast<size_t>(n));
        return true;
      }
      if (errno != ERANGE) return false;
      const ssize_t need = path_.empty() ? ::fgetxattr(fd_, name.c_str(), nullptr, 0)
                                         : ::getxattr(path_.c_str(), name.c_str(), nullptr, 0);
      if (need < 0) return false;
      value->assign(static_cast<size_t>(need) + 1, '\0');
    }
  }

  bool Set(const std::string& name, const std::string& value) const {
    return (path_.empty() ? ::fsetxattr(fd_, name.c_str(), value.data(), value.size(), 0)
                          : ::setxattr(path_.c_str(), name.c_str(), value.data(), value.size(), 0)) == 0;
  }

 private:
  int fd_;
  std::string path_;
};

void KeepXattrs(int in, int out, bool by_path, std::vector<StepError>* lost) {
  const Xattrs from(in, by_path), to(out, by_path);
  std::vector<std::string> names;
  if (!from.List(&names)) {
    lost->push_back({"list extended attributes", errno});
    return;
  }
  std::string value;
  for (const std::string& name : names) {
    if (!from.Get(name, &value)) {
      lost->push_back({absl::StrCat("read extended attribute ", name), errno});
    } else if (!to.Set(name, value)) {
      lost->push_back({absl::StrCat("keep extended attribute ", name), errno});
    }
  }
}

}  // namespace

std::vector<StepError> KeepAttributes(int in, int out, const struct stat& st, const Identity& who,
                                      bool out_is_path, mode_t created_mode) {
  std::vector<StepError> lost;
  // Owner first: chown clears setuid/setgid, so the mode comes after it.
  bool owner_kept = st.st_uid == who.uid, group_kept = st.st_gid == who.gid;
  const uid_t new_uid = who.root ? st.st_uid : static_cast<uid_t>(-1);
  // (A new file already has `who`'s owner and group: nothing to change.)
  if ((who.root && !(owner_kept && group_kept)) || !group_kept) {
    // Not root: chown to a group of ours is allowed; another is EPERM, and
    // then the setgid bit goes (as cp -a does).
    if (::fchownat(out, "", new_uid, st.st_gid, AT_EMPTY_PATH) == 0) {
      owner_kept = owner_kept || who.root;
      group_kept = true;
    } else if (who.root) {
      lost.push_back({"keep owner", errno});
    }
  }
  mode_t mode = st.st_mode & 07777;
  if (!owner_kept) mode &= ~S_ISUID;
  if (!group_kept) mode &= ~S_ISGID;
  if (mode != created_mode) {
    const int chmod_rc =
        out_is_path ? ::fchmodat(AT_FDCWD, ProcFdPath(out).c_str(), mode, 0) : ::fchmod(out, mode);
    if (chmod_rc != 0) lost.push_back({"chmod", errno});
  }
  KeepXattrs(in, out, out_is_path, &lost);
  // Times last: nothing after them may touch the file.
  const timespec times[2] = {st.st_atim, st.st_mtim};
  const int times_rc =
      out_is_path ? ::utimensat(AT_FDCWD, ProcFdPath(out).c_str(), times, 0) : ::futimens(out, times);
  if (times_rc != 0) lost.push_back({"set times", errno});
  return lost;
}

}  // namespace mpcopy
