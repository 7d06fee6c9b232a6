#include "sync/shared_region.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "base/errors.h"

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
  return std::shared_ptr<SharedRegion>(new SharedRegion(data, size, ScopedFd()));
}

std::shared_ptr<SharedRegion> SharedRegion::CreateMemfd(size_t bytes) {
  const size_t size = RoundToPages(bytes);
  ScopedFd fd(memfd_create("mp-shared", MFD_CLOEXEC));
  if (!fd.valid()) throw_errno("memfd_create");
  if (ftruncate(fd.get(), static_cast<off_t>(size)) != 0) throw_errno("ftruncate");
  return Attach(std::move(fd));
}

std::shared_ptr<SharedRegion> SharedRegion::Attach(int fd) { return Attach(ScopedFd(fd)); }

std::shared_ptr<SharedRegion> SharedRegion::Attach(ScopedFd fd) {
  struct stat st;
  if (fstat(fd.get(), &st) != 0) throw_errno("fstat");
  const size_t size = static_cast<size_t>(st.st_size);
  void* data = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (data == MAP_FAILED) throw_errno("mmap");
  return std::shared_ptr<SharedRegion>(new SharedRegion(data, size, std::move(fd)));
}

SharedRegion::~SharedRegion() { munmap(data_, size_); }

}  // namespace mp::internal
