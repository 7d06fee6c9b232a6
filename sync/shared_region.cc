#include "sync/shared_region.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

#include "base/descriptors.h"
#include "base/errors.h"

namespace mp::internal {

namespace {
size_t RoundToPages(size_t bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}

// A region's size is sealed: no process that holds its descriptor (one it
// was sent, say) can shrink it under the others' mappings, which would make
// their next access a SIGBUS, or grow it.
constexpr int kSizeSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;


// Under a file-size limit (RLIMIT_FSIZE, as a copier's test or a shell's
// ulimit -f sets) a memfd cannot grow past it: its ftruncate would fail, and
// first raise SIGXFSZ, which kills by default. Such regions are anonymous
// mappings: shared with forked children, but not passable otherwise.
bool WithinFileSizeLimit(size_t size) {
  rlimit limit{};
  return getrlimit(RLIMIT_FSIZE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY ||
         size <= limit.rlim_cur;
}

}  // namespace

std::shared_ptr<SharedRegion> SharedRegion::Create(size_t bytes) {
  const size_t size = RoundToPages(bytes == 0 ? 1 : bytes);
  if (!WithinFileSizeLimit(size)) {
    void* data = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (data == MAP_FAILED) throw_errno("mmap");
    return std::shared_ptr<SharedRegion>(new SharedRegion(data, size, ScopedFd()));
  }
  // A memfd rather than MAP_ANONYMOUS: the same memory (nameless, freed with
  // the last mapping and descriptor) that can also be handed to a process
  // that is not a fork of this one, such as a spawn child.
  ScopedFd fd(memfd_create("mp-shared", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) throw_errno("memfd_create");
  if (ftruncate(fd.get(), static_cast<off_t>(size)) != 0) throw_errno("ftruncate");
  if (fcntl(fd.get(), F_ADD_SEALS, kSizeSeals) != 0) throw_errno("fcntl(F_ADD_SEALS)");
  void* data = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (data == MAP_FAILED) throw_errno("mmap");
  return std::shared_ptr<SharedRegion>(new SharedRegion(data, size, std::move(fd)));
}

std::shared_ptr<SharedRegion> SharedRegion::CreateMemfd(size_t bytes) { return Create(bytes); }

std::shared_ptr<SharedRegion> SharedRegion::Attach(int fd) { return Attach(ScopedFd(fd), 0); }
std::shared_ptr<SharedRegion> SharedRegion::Attach(ScopedFd fd) { return Attach(std::move(fd), 0); }

std::shared_ptr<SharedRegion> SharedRegion::Attach(ScopedFd fd, size_t min_bytes) {
  // The descriptor may come from another process: it must be one of ours
  // (a memfd whose size is sealed) and large enough for what it should hold.
  const int seals = fcntl(fd.get(), F_GET_SEALS);
  if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW)) {
    throw Error("shared object: the descriptor received is not a sealed shared-memory region");
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) throw_errno("fstat");
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < min_bytes || size == 0) {
    throw Error("shared object: the region received holds " + std::to_string(size) +
                " bytes where at least " + std::to_string(min_bytes) + " belong");
  }
  void* data = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (data == MAP_FAILED) throw_errno("mmap");
  return std::shared_ptr<SharedRegion>(new SharedRegion(data, size, std::move(fd)));
}

uint32_t SaveRegion(const std::shared_ptr<SharedRegion>& region, const char* what) {
  if (region->fd() < 0) {
    throw ValueError(std::string(what) +
                     " was made under a file-size limit (RLIMIT_FSIZE) smaller than its memory, so "
                     "it is shared with forked children only");
  }
  return SaveDescriptor(region->fd(), what);
}

std::shared_ptr<SharedRegion> LoadRegion(uint32_t index, size_t min_bytes, const char* what) {
  return SharedRegion::Attach(LoadDescriptor(index, what), min_bytes);
}

SharedRegion::~SharedRegion() { munmap(data_, size_); }

}  // namespace mp::internal
