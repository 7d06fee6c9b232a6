#include "sync/shared_region.h"

#include <sys/mman.h>
#include <unistd.h>

#include "sync/errors.h"

namespace mp::internal {

std::shared_ptr<SharedRegion> SharedRegion::Create(size_t bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t size = (bytes + page - 1) / page * page;
  void* data = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (data == MAP_FAILED) throw_errno("mmap");
  return std::shared_ptr<SharedRegion>(new SharedRegion(data, size));
}

SharedRegion::~SharedRegion() { munmap(data_, size_); }

}  // namespace mp::internal
