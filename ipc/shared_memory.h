// SharedMemory: a named block of shared memory that unrelated processes can
// attach to by name. Python: multiprocessing.shared_memory.SharedMemory.
//
//   mp::SharedMemory shm(mp::SharedMemory::create, 4096);   // random name
//   mp::SharedMemory peer(shm.name());                      // in any process
//   std::span<std::byte> bytes = peer.buf();
//
// The name lives in /dev/shm until unlink(). The handle that created the
// block owns the name: if its process has not unlinked it when that handle is
// destroyed, the destructor does (so nothing is left in /dev/shm). Attaching
// handles never unlink on their own.
//
// Tracking (Python's track=True, the default): a created block is also
// registered with the process's resource tracker (a small process of its
// own), which unlinks it if the creator, and the forked children that share
// its tracker, all end without unlinking it: SIGKILL leaves nothing in
// /dev/shm. track = false opts out of both: the handle then never unlinks on
// its own (another owner does, such as a SharedMemoryManager).
//
// Thread safety: the handle is not synchronized; the memory is raw (use a
//   Lock or atomics for what is stored in it).
// Fork safety: a forked child sees the same mapping; the child's copy of a
//   creator handle does not unlink (only the creating process does).
// Sharing: by name, with any process; as a Process or Pool task argument
//   (any start method), over a Connection or inside any encoded value (its
//   name travels; the receiver attaches).
#ifndef IPC_SHARED_MEMORY_H_
#define IPC_SHARED_MEMORY_H_

#include <sys/types.h>

#include <cstddef>
#include <span>
#include <string>

namespace mp {

class SharedMemory {
 public:
  struct create_t {
    explicit create_t() = default;
  };
  static constexpr create_t create{};

  // Creates a new block of `size` bytes (zeroed) under `name`, or a random
  // "/psm_..." name when empty. Throws mp::Error if the name exists.
  SharedMemory(create_t, size_t size, std::string name = "", bool track = true);
  // Attaches to an existing block. Throws mp::Error if there is none.
  explicit SharedMemory(std::string name);
  // Python's form: SharedMemory(name, create, size).
  SharedMemory(std::string name, bool create, size_t size);

  // SharedMemory() is no block (a placeholder to decode into).
  SharedMemory() = default;

  SharedMemory(SharedMemory&& other) noexcept;
  SharedMemory& operator=(SharedMemory&& other) noexcept;
  // A copy attaches to the same block by name (it does not own the name):
  // mp::Error if the name was unlinked meanwhile.
  SharedMemory(const SharedMemory& other);
  SharedMemory& operator=(const SharedMemory& other);
  ~SharedMemory();

  // Encoded by name, as Python pickles it: the receiver attaches to the
  // block (never owning or tracking it).
  template <class Archive>
  void save(Archive& ar) const {
    ar(name_);
  }
  template <class Archive>
  void load(Archive& ar) {
    std::string name;
    ar(name);
    *this = SharedMemory(std::move(name));
  }

  std::span<std::byte> buf() const;
  size_t size() const { return size_; }
  // name is the name to attach with (without the leading '/', as Python).
  const std::string& name() const { return name_; }
  // close unmaps the block from this process; buf() is then empty.
  void close();
  // unlink removes the name (the memory lives until every process closes it).
  void unlink();

 private:
  void open(bool create, size_t size);
  void StartTracking();
  std::string name_;
  void* data_ = nullptr;
  size_t size_ = 0;
  pid_t creator_pid_ = 0;  // nonzero: this handle created the name and owns it
  bool tracked_ = false;   // registered with the resource tracker
  bool unlinked_ = false;
};

}  // namespace mp

#endif  // IPC_SHARED_MEMORY_H_
