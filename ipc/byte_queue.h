// ByteQueue: a multi-producer, multi-consumer FIFO of byte strings in shared
// memory, the engine under mp::Queue, mp::SimpleQueue and mp::JoinableQueue.
//
// Internal to the library. A ring of bytes guarded by a robust futex mutex;
// producers and consumers sleep on two futex words (items added, space freed)
// after a short spin, and a wake-up system call is made only when someone
// sleeps. A put() that returns has copied the item into the shared ring: no
// feeder thread, nothing lost when the producer exits right after. Items
// larger than the ring are streamed through it in pieces (one such item at a
// time in each direction, so pieces never interleave).
//
// Thread safety: every method is safe from any thread of any sharing process.
// Fork safety: children forked after creation share the queue.
// Sharing: through fork; copies of the handle refer to the same queue.
#ifndef IPC_BYTE_QUEUE_H_
#define IPC_BYTE_QUEUE_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "sync/futex.h"
#include "sync/robust_mutex.h"
#include "sync/shared_region.h"

namespace mp::internal {

class ByteQueue {
 public:
  static constexpr size_t kDefaultCapacity = 4 << 20;

  // maxsize bounds the number of items (<= 0: unbounded); capacity_bytes is
  // the ring's size (the bytes it can hold at once).
  explicit ByteQueue(long maxsize = 0, size_t capacity_bytes = kDefaultCapacity,
                     bool joinable = false);

  // Shareable creates a queue in a memfd, which any process that receives
  // the descriptor (fd()) can Attach to; the manager hands its queues to
  // local clients this way.
  static std::shared_ptr<ByteQueue> Shareable(long maxsize, size_t capacity_bytes, bool joinable);
  // Attach maps the queue behind memfd `fd` (taking ownership of it).
  static std::shared_ptr<ByteQueue> Attach(int fd);
  // fd is the memfd behind a Shareable queue, or -1.
  int fd() const { return state_.region()->fd(); }

  // Put appends `item`, waiting for room until the deadline. Returns false if
  // there was no room in time (nothing was written). Once a streamed item has
  // started, Put finishes it whatever the deadline.
  bool Put(std::string_view item, const Deadline& deadline);
  // FitsInPlace: an item of `size` bytes fits the ring in one piece, so
  // PutInPlace can take it.
  bool FitsInPlace(size_t size) const { return kHeader + size <= state_->capacity; }

  // PutInPlace appends an item of exactly `size` bytes (FitsInPlace) that
  // `write` produces straight into the ring, saving the copy through a
  // buffer: write(first, first_size, second, second_size) fills both
  // stretches (the second is empty unless the item wraps around the ring's
  // end). Runs `write` with the queue's lock held; if it throws, nothing is
  // added. Returns false if there was no room before the deadline.
  template <class Write>
  bool PutInPlace(size_t size, const Deadline& deadline, Write&& write) {
    {
      Locked locked(state_.get());
      if (!WaitForRoomLocked(locked, kHeader + size, /*streamed=*/false, deadline)) return false;
      const uint64_t at = (state_->tail + kHeader) % state_->capacity;
      const size_t first = std::min<size_t>(size, state_->capacity - at);
      char* ring = reinterpret_cast<char*>(state_.tail());
      write(ring + at, first, ring, size - first);
      CommitLocked(size);
    }
    AfterPut();
    return true;
  }

  // Get removes the oldest item into *out, waiting until the deadline. Returns
  // false if none came in time. With `claim`, the item's first 8 bytes are
  // stored there before the queue's lock is released, so a process that dies
  // right after taking an item still leaves a trace of which one it took
  // (Pool uses this to fail exactly the task a dead worker held).
  bool Get(std::string* out, const Deadline& deadline, uint64_t* claim = nullptr);

  // GetWith removes the oldest item and hands its bytes to `consume`. Small
  // items are copied out and consumed after the queue's lock is released
  // (a short critical section matters more than a copy of a few bytes);
  // larger ones are consumed while the lock is held, straight from the
  // shared ring when they lie in one piece (no copy). The item is removed
  // even if `consume` throws. Returns false if no item came in time.
  template <class Consume>
  bool GetWith(const Deadline& deadline, Consume&& consume) {
    constexpr size_t kCopyOutUpTo = 256;
    char small[kCopyOutUpTo];
    std::string_view taken;  // consumed once the lock is released
    {
      struct WakeProducersAtEnd {  // After the lock below is released.
        ByteQueue* q;
        bool took = false;
        ~WakeProducersAtEnd() {
          if (took) q->AfterTake();
        }
      } wake{this};
      std::string_view view;
      std::string* copy = nullptr;
      Locked locked(state_.get());
      if (!TakeLocked(locked, deadline, &view, &copy, nullptr)) return false;
      wake.took = true;
      if (copy != nullptr) {
        taken = *copy;  // this thread's own buffer: stays put without the lock
      } else if (view.size() <= kCopyOutUpTo) {
        std::memcpy(small, view.data(), view.size());
        taken = std::string_view(small, view.size());
      } else {
        consume(view);
        return true;
      }
    }
    consume(taken);
    return true;
  }

  long qsize() const;
  long maxsize() const { return static_cast<long>(state_->maxsize); }

  // JoinableQueue support: every Put adds an unfinished task; TaskDone
  // removes one (false if there were none); Join waits for zero.
  bool TaskDone();
  bool Join(const Deadline& deadline);

 private:
  struct State {
    RobustMutexState mutex;
    // The two futex words (event counts, see byte_queue.cc) live on lines of
    // their own: a spinning waiter reads one while the other side updates
    // the bookkeeping.
    alignas(64) std::atomic<uint32_t> items_seq{0};  // bumped when bytes are added
    alignas(64) std::atomic<uint32_t> space_seq{0};  // bumped when bytes or items leave
    alignas(64) std::atomic<uint32_t> unfinished{0};  // JoinableQueue tasks
    std::atomic<uint32_t> join_waiters{0};
    uint64_t head = 0;  // byte offsets, ring index = offset % capacity; both go
    uint64_t tail = 0;  // back to 0 whenever the ring empties (RewindIfEmpty)
    uint64_t capacity = 0;
    uint64_t count = 0;  // items present (a streamed item counts from its header on)
    int64_t maxsize = 0;
    uint32_t writer_streaming = 0;
    uint32_t reader_streaming = 0;
    uint32_t joinable = 0;
  };

  // Holds the queue's mutex; Wait() gives it up while sleeping on a futex word.
  class Locked {
   public:
    explicit Locked(State* s) : s_(s) { Acquire(&s_->mutex, std::nullopt); }
    ~Locked() { Release(&s_->mutex); }
    Locked(const Locked&) = delete;
    Locked& operator=(const Locked&) = delete;
    bool Wait(std::atomic<uint32_t>* seq, const Deadline& deadline);

   private:
    State* s_;
  };

  // TakeLocked removes the head item: *view points into the ring when it is
  // in one piece, else *copy holds it. AfterTake wakes producers (called once the lock is released).
  static constexpr size_t kHeader = sizeof(uint64_t);  // an item's size, before its bytes

  bool PutLocked(std::string_view item, const Deadline& deadline);
  // WaitForRoomLocked waits until an item taking `need` bytes may be added
  // (for a streamed item, its header).
  bool WaitForRoomLocked(Locked& locked, uint64_t need, bool streamed, const Deadline& deadline);
  // CommitLocked writes the header of the `size` bytes that follow it at the
  // tail and makes the item visible; AfterPut wakes consumers (called once
  // the lock is released).
  void CommitLocked(uint64_t size);
  void AfterPut();
  bool TakeLocked(Locked& locked, const Deadline& deadline, std::string_view* view, std::string** copy,
                  uint64_t* claim);
  void AfterTake();

  explicit ByteQueue(SharedObject<State> state) : state_(std::move(state)) {}
  void Init(long maxsize, bool joinable);
  void CopyIn(uint64_t offset, const char* data, size_t len);
  void CopyOut(uint64_t offset, char* data, size_t len) const;

  SharedObject<State> state_;
};

}  // namespace mp::internal

#endif  // IPC_BYTE_QUEUE_H_
