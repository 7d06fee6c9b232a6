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

#include <atomic>
#include <cstdint>
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
  // Get removes the oldest item into *out, waiting until the deadline. Returns
  // false if none came in time. With `claim`, the item's first 8 bytes are
  // stored there before the queue's lock is released, so a process that dies
  // right after taking an item still leaves a trace of which one it took
  // (Pool uses this to fail exactly the task a dead worker held).
  bool Get(std::string* out, const Deadline& deadline, uint64_t* claim = nullptr);

  // GetWith removes the oldest item and hands its bytes to `consume` while
  // the queue's lock is held, straight from the shared ring when the item
  // lies in one piece (no copy). The item is removed even if `consume`
  // throws. Returns false if no item came in time.
  template <class Consume>
  bool GetWith(const Deadline& deadline, Consume&& consume) {
    std::string_view view;
    std::string* copy = nullptr;
    Locked locked(state_.get());
    if (!TakeLocked(locked, deadline, &view, &copy, nullptr)) return false;
    struct Finish {
      ByteQueue* q;
      ~Finish() { q->AfterTake(); }
    } finish{this};
    consume(copy != nullptr ? std::string_view(*copy) : view);
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
    // The two futex words live on lines of their own: a spinning waiter
    // reads one while the other side updates the bookkeeping.
    alignas(64) std::atomic<uint32_t> items_seq{0};  // bumped when bytes are added
    std::atomic<uint32_t> get_waiters{0};
    alignas(64) std::atomic<uint32_t> space_seq{0};  // bumped when bytes or items leave
    std::atomic<uint32_t> put_waiters{0};
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
    bool Wait(std::atomic<uint32_t>* seq, std::atomic<uint32_t>* waiters, const Deadline& deadline);

   private:
    State* s_;
  };

  // TakeLocked removes the head item: *view points into the ring when it is
  // in one piece, else *copy holds it. AfterTake wakes producers.
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
