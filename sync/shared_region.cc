#include "sync/shared_region.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "sync/errors.h"

namespace mp::internal {

namespace {
size_t RoundToPages(size_t bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}
}  // namespace

std::shared_ptr<SharedRegion> SharedRegion::Create(size_t bytes) {
  const size_t size = RoundToPages(bytes);
  void* data = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (data == MAP_FAILED) throw_errno("mmap");
  return std::shared_ptr<SharedRegion>(new SharedRegion(data, size, -1));
}

std::shared_ptr<SharedRegion> SharedRegion::CreateMemfd(size_t bytes) {
  const size_t size = RoundToPages(bytes);
  const int fd = memfd_create("mp-shared", MFD_CLOEXEC);
  if (fd < 0) throw_errno("memfd_create");
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    const int err = errno;
    close(fd);
    throw_errno("ftruncate", err);
  }
  void* data = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (data == MAP_FAILED) {
    const int err = errno;
    close(fd);
    throw_errno("mmap", err);
  }
  return std::shared_ptr<SharedRegion>(new SharedRegion(data, size, fd));
}

std::shared_ptr<SharedRegion> SharedRegion::Attach(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    throw_errno("fstat", err);
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* data = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (data == MAP_FAILED) {
    const int err = errno;
    close(fd);
    throw_errno("mmap", err);
  }
  return std::shared_ptr<SharedRegion>(new SharedRegion(data, size, fd));
}

SharedRegion::~SharedRegion() {
  munmap(data_, size_);
  if (fd_ >= 0) close(fd_);
}

}  // namespace mp::internal
