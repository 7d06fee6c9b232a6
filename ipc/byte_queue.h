// ByteQueue: a multi-producer, multi-consumer FIFO of byte strings in shared
// memory, the engine under mp::Queue, mp::SimpleQueue and mp::JoinableQueue.
//
// Internal to the library. A ring of bytes with two robust futex mutexes, one
// for the producers' end and one for the consumers' (the two-lock queue of
// Michael and Scott, on a ring): a producer and a consumer never wait for
// each other's lock, and the only lines they share are the ring's bytes and
// the two offsets, which each side publishes with a release store after
// copying. Producers and consumers sleep on two futex words (items added,
// space freed) after a short spin, and a wake-up system call is made only
// when someone sleeps. A put() that returns has copied the item into the
// shared ring: no feeder thread, nothing lost when the producer exits right
// after. Items larger than the ring are streamed through it in pieces (one
// such item at a time in each direction, so pieces never interleave). A
// process that dies in the middle of streaming an item does not wedge the
// queue: the others notice within kLivenessCheck, and an item whose writer
// died half-way is dropped whole (never handed out torn), while the rest of
// an item whose reader died is skipped. Large
// items and pieces are copied in with non-temporal stores
// (ipc/handover_copy.h): the producer never reads them again.
//
// Thread safety: every method is safe from any thread of any sharing process.
// Fork safety: children forked after creation share the queue.
// Sharing: through fork; copies of the handle refer to the same queue.
#ifndef IPC_BYTE_QUEUE_H_
#define IPC_BYTE_QUEUE_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "ipc/archive.h"
#include "ipc/handover_copy.h"
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
  static std::shared_ptr<ByteQueue> Attach(ScopedFd fd);
  // fd is the memfd behind the queue.
  int fd() const { return state_.region()->fd(); }

  // Put appends `item`, waiting for room until the deadline. Returns false if
  // there was no room in time (nothing was written). Once a streamed item has
  // started, Put finishes it whatever the deadline.
  bool Put(std::string_view item, const Deadline& deadline);
  // FitsInPlace: an item of `size` bytes fits the ring in one piece, so
  // PutInPlace can take it.
  bool FitsInPlace(size_t size) const { return kHeader + size <= capacity_; }

  // PutInPlace appends an item of exactly `size` bytes (FitsInPlace) that
  // `write` produces straight into the ring, saving the copy through a
  // buffer: write(spans) fills both stretches of `spans` (the second is
  // empty unless the item wraps around the ring's end), copying with
  // spans.copy. Runs `write` with the producers' lock held; if it throws, nothing is
  // added. Returns false if there was no room before the deadline.
  template <class Write>
  bool PutInPlace(size_t size, const Deadline& deadline, Write&& write) {
    {
      Locked locked(&state_->put_mutex);
      if (!WaitForRoomLocked(locked, kHeader + size, /*streamed=*/false, deadline)) return false;
      const uint64_t tail = state_->tail.load(std::memory_order_relaxed);
      const uint64_t at = (tail + kHeader) % capacity_;
      const size_t first = std::min<size_t>(size, capacity_ - at);
      char* ring = reinterpret_cast<char*>(state_.tail());
      write(SpanSink{ring + at, first, ring, size - first, &HandOverCopy});
      CommitLocked(size, size);
    }
    AfterPut();
    return true;
  }

  // Claim: how a consumer records which item it took, so that whoever
  // watches it (Pool's monitor) knows what a consumer that died had taken.
  // The item's first 8 bytes are stored in *slot before the consumers' lock
  // is released. If the consumer dies while taking the item (holding the
  // lock, its claim stored or not), the next consumer that claims completes
  // the removal and passes the item's first 8 bytes to `orphaned` instead of
  // handing the item out again: an item is taken at most once. A queue is
  // consumed with claims always or never. (An item larger than the ring,
  // whose taker dies before its first 8 bytes arrived, is skipped without
  // being reported.)
  struct Claim {
    uint64_t* slot;
    absl::FunctionRef<void(uint64_t first_word)> orphaned;
  };

  // Get removes the oldest item into *out, waiting until the deadline.
  // Returns false if none came in time. See Claim for `claim`.
  bool Get(std::string* out, const Deadline& deadline, const Claim* claim = nullptr);

  // GetWith removes the oldest item and hands its bytes to `consume`. Small
  // items are copied out and consumed after the consumers' lock is released
  // (a short critical section matters more than a copy of a few bytes);
  // larger ones are consumed while it is held, straight from the shared ring
  // when they lie in one piece (no copy). Producers are never held up by
  // `consume`. The item is removed even if `consume` throws. Returns false if
  // no item came in time.
  template <class Consume>
  bool GetWith(const Deadline& deadline, Consume&& consume) {
    constexpr size_t kCopyOutUpTo = 256;
    char small[kCopyOutUpTo];
    std::string_view taken;  // consumed once the lock is released
    {
      Taking taking(this);
      std::string_view view;
      std::string* copy = nullptr;
      if (!taking.Take(deadline, &view, &copy, nullptr)) return false;
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
  friend class ByteQueueTestPeer;  // byte_queue_test.cc: sees who streams
  static constexpr size_t kHeader = sizeof(uint64_t);  // an item's size, before its bytes
  // Rewinding needs the producers' lock as well, so a consumer tries it only
  // once the head is this far into the ring, and then once per this much
  // more, without ever waiting for that lock.
  static constexpr uint64_t kRewindFrom = 64 << 10;
  static constexpr uint64_t kRewindRetryEvery = 16 << 10;
  // A process waiting on another's stream checks this often that the other
  // process is still alive.
  static constexpr auto kLivenessCheck = std::chrono::milliseconds(100);

  struct State {
    RobustMutexState put_mutex;  // producers: the tail and writer_streaming
    RobustMutexState get_mutex;  // consumers: the head and reader_streaming
    // The two futex words (event counts, see byte_queue.cc) live on lines of
    // their own: a spinning waiter reads one while the other side updates
    // its offset.
    alignas(64) std::atomic<uint32_t> items_seq{0};  // bumped when bytes are added
    alignas(64) std::atomic<uint32_t> space_seq{0};  // bumped when bytes or items leave
    alignas(64) std::atomic<uint32_t> unfinished{0};  // JoinableQueue tasks
    std::atomic<uint32_t> join_waiters{0};
    // Set at creation, then only read: a line nobody writes.
    alignas(64) uint64_t capacity = 0;
    int64_t maxsize = 0;
    uint32_t joinable = 0;
    // Byte offsets, ring index = offset % capacity. Each is written by its
    // own side under its own mutex, with a release store once the bytes
    // before it are written (tail) or read (head); the other side reads it
    // with an acquire load. Both go back to 0 together when the ring empties
    // far from its start (RewindIfEmptyLocked), so that the pages in use stay
    // few and warm. Each side's counter of items (qsize = puts - takes)
    // shares its offset's line, so that counting costs no line of its own
    // going back and forth between the processes.
    alignas(64) std::atomic<uint64_t> tail{0};
    std::atomic<uint64_t> puts{0};  // items started (a streamed one from its header on)
    // The token (sync/process_token.h: pid and start time, so a reused pid
    // cannot pass for it) of the process streaming an item in, or 0; read by waiting
    // producers without the lock. The item's header is at writer_stream_start
    // and its last byte before writer_stream_end (both guarded by put_mutex).
    std::atomic<uint64_t> writer_streaming{0};
    uint64_t head_seen = 0;  // guarded by put_mutex: see FreeBytesLocked
    uint64_t writer_stream_start = 0;
    uint64_t writer_stream_end = 0;
    alignas(64) std::atomic<uint64_t> head{0};
    std::atomic<uint64_t> takes{0};  // items taken
    // The token of the process streaming an item out, or 0; read by waiting
    // consumers without the lock. The item's bytes are [reader_stream_start,
    // reader_stream_end) (both guarded by get_mutex).
    std::atomic<uint64_t> reader_streaming{0};
    uint64_t next_rewind_try = kRewindFrom;  // guarded by get_mutex
    // 1 + the head offset of the item a claiming consumer is taking, from
    // before it stores its claim until the head has moved past the item;
    // else 0 (guarded by get_mutex; see Claim).
    uint64_t claim_head = 0;
    uint64_t reader_stream_start = 0;
    uint64_t reader_stream_end = 0;
  };

  // Holds one of the queue's mutexes; Wait() gives it up while sleeping on a
  // futex word.
  class Locked {
   public:
    explicit Locked(RobustMutexState* m) : m_(m) { Acquire(m_, std::nullopt); }
    ~Locked() { Release(m_); }
    Locked(const Locked&) = delete;
    Locked& operator=(const Locked&) = delete;
    // Wait gives the mutex up until ready() holds (checked without the
    // mutex; the caller checks again with it) or the deadline passes, and
    // returns ready(). It sleeps on `seq`, which the other side notifies
    // after every change that can make ready() true (see byte_queue.cc),
    // after spinning for a while, longer while `other_side` (the other
    // end's mutex) is held.
    bool Wait(std::atomic<uint32_t>* seq, const RobustMutexState* other_side,
              const Deadline& deadline, absl::FunctionRef<bool()> ready);

   private:
    RobustMutexState* m_;
  };

  // Taking is one consumer's hold on the consumers' end. Take() finds the
  // head item; the destructor removes it from the ring (after the caller is
  // done with a view into the ring), releases the lock, and then wakes
  // producers.
  class Taking {
   public:
    explicit Taking(ByteQueue* q) : waker_{q}, locked_(&q->state_->get_mutex), q_(q) {}
    ~Taking();
    Taking(const Taking&) = delete;
    Taking& operator=(const Taking&) = delete;
    // Take: *view points into the ring when the item lies there in one piece
    // (valid until this object ends), else *copy holds it.
    bool Take(const Deadline& deadline, std::string_view* view, std::string** copy,
              const Claim* claim);

   private:
    struct Waker {  // destroyed last: after the lock is released
      ByteQueue* q;
      bool took = false;
      ~Waker() {
        if (took) q->AfterTake();
      }
    };
    Waker waker_;
    Locked locked_;
    ByteQueue* q_;
    uint64_t advance_ = 0;  // bytes to remove from the head at the end
  };

  bool PutLocked(std::string_view item, const Deadline& deadline);
  // StreamOutLocked (consumers' lock held, reader_streaming set) takes the
  // streamed item's bytes from the head to reader_stream_end, into `out` if
  // not null (which holds the whole item), and then counts the item out. If
  // the writer dies before the last byte, it drops the item, lets producers
  // go on after it, and returns false.
  bool StreamOutLocked(Locked& locked, char* out, uint64_t* claim);
  // RecoverClaimLocked (consumers' lock held, just recovered from a dead
  // owner): completes the removal of the item the dead consumer was
  // claiming, if any, and reports it (see Claim).
  void RecoverClaimLocked(const Claim& claim);
  // SkipDeadReadersItemLocked (consumers' lock held): if the process
  // streaming an item out died, this one takes the rest of that item and
  // discards it (the dead process had taken the item).
  void SkipDeadReadersItemLocked(Locked& locked);
  // ClearDeadWriterLocked (producers' lock held): if the process streaming
  // an item in died before publishing its header or after its last byte,
  // lets the other producers go on. (In between, the consumer that drops
  // the torn item does it: StreamOutLocked.)
  void ClearDeadWriterLocked();
  // WaitForRoomLocked (producers' lock held) waits until an item taking
  // `need` bytes may be added (for a streamed item, its header).
  bool WaitForRoomLocked(Locked& locked, uint64_t need, bool streamed, const Deadline& deadline);
  // CommitLocked (producers' lock held) writes the header of a `size`-byte
  // item at the tail and publishes it with the `written` bytes already
  // copied after the header (all of them, or none for a streamed item);
  // AfterPut wakes consumers (called once the lock is released).
  void CommitLocked(uint64_t size, uint64_t written);
  void AfterPut();
  // AfterTake wakes producers (called once the consumers' lock is released).
  void AfterTake();
  // RewindIfEmptyLocked (consumers' lock held): see State::head.
  void RewindIfEmptyLocked();
  // Items present, a snapshot. (takes first: it never passes puts.)
  int64_t Count() const {
    const uint64_t takes = state_->takes.load(std::memory_order_acquire);
    return static_cast<int64_t>(state_->puts.load(std::memory_order_acquire) - takes);
  }
  // FreeBytes is the room at the tail, from the head as consumers last
  // published it. FreeBytesLocked (producers' lock held) first trusts the
  // head it saw last time, which can only have moved on since, and looks at
  // the consumers' line only when that leaves too little room: most puts
  // then read nothing the consumers write.
  uint64_t FreeBytes() const {
    return capacity_ - (state_->tail.load(std::memory_order_relaxed) -
                               state_->head.load(std::memory_order_acquire));
  }
  uint64_t FreeBytesLocked(uint64_t wanted) {
    State& s = *state_;
    const uint64_t tail = s.tail.load(std::memory_order_relaxed);
    if (capacity_ - (tail - s.head_seen) < wanted) s.head_seen = s.head.load(std::memory_order_acquire);
    return capacity_ - (tail - s.head_seen);
  }

  ByteQueue(SharedObject<State> state, bool attached);
  void Init(long maxsize, bool joinable);
  void CopyIn(uint64_t offset, const char* data, size_t len);
  void CopyOut(uint64_t offset, char* data, size_t len) const;

  SharedObject<State> state_;
  uint64_t capacity_;  // the ring's size, this process's copy (see the constructors)
};

}  // namespace mp::internal

#endif  // IPC_BYTE_QUEUE_H_
