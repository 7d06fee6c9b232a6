#include "ipc/shared_memory.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <utility>

#include "base/errors.h"
#include "base/scoped_fd.h"
#include "ipc/internal/resource_tracker.h"

namespace mp {
namespace {

std::string RandomName() {
  unsigned char bytes[8];
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw Error("SharedMemory: RAND_bytes failed");
  std::string name = "psm_";
  char hex[3];
  for (unsigned char b : bytes) {
    std::snprintf(hex, sizeof hex, "%02x", b);
    name += hex;
  }
  return name;
}

std::string StripSlash(std::string name) {
  if (!name.empty() && name.front() == '/') name.erase(0, 1);
  return name;
}

}  // namespace

SharedMemory::SharedMemory(create_t, size_t size, std::string name, bool track)
    : name_(name.empty() ? RandomName() : StripSlash(std::move(name))) {
  open(true, size);
  if (track) {
    StartTracking();
  } else {
    creator_pid_ = 0;  // another owner unlinks it
  }
}

void SharedMemory::StartTracking() {
  try {
    internal::TrackSegment(name_);
  } catch (...) {
    close();
    unlink();
    throw;
  }
  tracked_ = true;
}

SharedMemory::SharedMemory(std::string name) : name_(StripSlash(std::move(name))) {
  open(false, 0);
}

SharedMemory::SharedMemory(std::string name, bool create, size_t size)
    : name_(name.empty() && create ? RandomName() : StripSlash(std::move(name))) {
  open(create, size);
  if (create) StartTracking();
}

void SharedMemory::open(bool create, size_t size) {
  if (name_.empty()) throw ValueError("SharedMemory: a name is required to attach");
  if (create && size == 0) throw ValueError("SharedMemory: size must be > 0 when creating");
  const std::string path = "/" + name_;
  const int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);
  internal::ScopedFd fd(shm_open(path.c_str(), flags, 0600));
  if (!fd.valid()) throw_errno(("shm_open(" + name_ + ")").c_str());
  if (create) {
    creator_pid_ = getpid();
    tracked_ = false;
    if (ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
      const int err = errno;
      shm_unlink(path.c_str());
      throw_errno("SharedMemory: ftruncate", err);
    }
  } else {
    struct stat st;
    if (fstat(fd.get(), &st) != 0) throw_errno("SharedMemory: fstat");
    size = static_cast<size_t>(st.st_size);
  }
  data_ = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (data_ == MAP_FAILED) {
    data_ = nullptr;
    const int err = errno;
    if (create) shm_unlink(path.c_str());
    throw_errno("SharedMemory: mmap", err);
  }
  size_ = size;
}

SharedMemory::SharedMemory(SharedMemory&& other) noexcept
    : name_(std::move(other.name_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      creator_pid_(std::exchange(other.creator_pid_, 0)),
      tracked_(std::exchange(other.tracked_, false)),
      unlinked_(other.unlinked_) {}

SharedMemory::SharedMemory(const SharedMemory& other) : name_(other.name_) {
  if (!name_.empty()) open(false, 0);
}

SharedMemory& SharedMemory::operator=(const SharedMemory& other) {
  if (this != &other) *this = SharedMemory(other);
  return *this;
}

SharedMemory& SharedMemory::operator=(SharedMemory&& other) noexcept {
  if (this != &other) {
    this->~SharedMemory();
    new (this) SharedMemory(std::move(other));
  }
  return *this;
}

SharedMemory::~SharedMemory() {
  close();
  if (creator_pid_ != 0 && creator_pid_ == getpid() && !unlinked_) unlink();
}

std::span<std::byte> SharedMemory::buf() const {
  return {static_cast<std::byte*>(data_), data_ ? size_ : 0};
}

void SharedMemory::close() {
  if (data_ != nullptr) {
    munmap(data_, size_);
    data_ = nullptr;
  }
}

void SharedMemory::unlink() {
  if (unlinked_) return;
  if (shm_unlink(("/" + name_).c_str()) != 0 && errno != ENOENT) throw_errno("shm_unlink");
  unlinked_ = true;
  if (tracked_) {
    tracked_ = false;
    try {
      internal::UntrackSegment(name_);
    } catch (const std::exception&) {
      // The tracker is gone: it has nothing of ours to unlink.
    }
  }
}

}  // namespace mp
