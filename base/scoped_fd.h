// ScopedFd: the one owner of a file descriptor; closes it when destroyed.
//
// Thread safety: like a std::unique_ptr.
// Fork safety: a child inherits the descriptor unless it is close-on-exec and
//   the child execs; the child's ScopedFd closes only the child's copy.
// Sharing: move-only.
#ifndef BASE_SCOPED_FD_H_
#define BASE_SCOPED_FD_H_

#include <unistd.h>

#include <utility>

namespace mp::internal {

class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(ScopedFd&& other) noexcept : fd_(other.release()) {}
  ScopedFd& operator=(ScopedFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace mp::internal

#endif  // BASE_SCOPED_FD_H_
