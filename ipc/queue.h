// Queues: Python's multiprocessing.Queue, SimpleQueue and JoinableQueue, for
// any serializable T.
//
//   mp::Queue<std::string> q(3);            // maxsize 3; 0 or negative: unbounded
//   mp::Process pw(write, q);               // children created after q share it
//   q.put("x"); q.put("x", 2s); q.put_nowait("x");   // mp::Full when full
//   q.get(); q.get(2s); q.get_nowait();               // mp::Empty when empty
//
// Better than Python's: put() copies the item into the shared ring before it
// returns (there is no feeder thread), so an item that put() accepted is never
// lost, even if the producer exits or is killed right after. Items are FIFO
// per producer, never duplicated or torn; any size works (items larger than
// the ring stream through it).
//
// Thread safety: every method may be called from any thread of any process
//   sharing the queue.
// Fork safety: children forked after the queue share it.
// Sharing: pass it as a Process argument (any start method), a Pool task
//   argument, or send it over a Connection: the receiver uses the same queue
//   (its ring's descriptor travels along). Copies of the handle are the same
//   queue. A queue cannot travel inside another queue's item or a manager
//   value (mp::ValueError), as in Python.
#ifndef IPC_QUEUE_H_
#define IPC_QUEUE_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "base/descriptors.h"
#include "base/errors.h"
#include "ipc/byte_queue.h"
#include "ipc/codec.h"

namespace mp {

template <class T>
class Queue {
 public:
  // Queue(maxsize): maxsize <= 0 is unbounded.
  explicit Queue(long maxsize = 0) : Queue(maxsize, internal::ByteQueue::kDefaultCapacity) {}
  // capacity_bytes sizes the shared ring (default 4 MiB, touched lazily).
  Queue(long maxsize, size_t capacity_bytes)
      : Queue(maxsize, capacity_bytes, /*joinable=*/false) {}

  // put blocks until there is room. Python: put(obj).
  void put(const T& item) { put_until(item, std::nullopt); }
  // put(item, timeout): mp::Full if there was no room in time.
  template <class Rep, class Period>
  void put(const T& item, std::chrono::duration<Rep, Period> timeout) {
    put_until(item, internal::DeadlineAfter(timeout));
  }
  // put(item, false) is put_nowait.
  void put(const T& item, bool block) {
    block ? put(item) : put_nowait(item);
  }
  // put_nowait: mp::Full at once if there is no room.
  void put_nowait(const T& item) { put_until(item, internal::Clock::now()); }

  // get blocks until an item is there. Python: get().
  T get() { return get_until(std::nullopt); }
  // get(timeout): mp::Empty if nothing came in time.
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) {
    return get_until(internal::DeadlineAfter(timeout));
  }
  // get(false) is get_nowait; get(true) is get().
  T get(bool block) { return block ? get() : get_nowait(); }
  // get_nowait: mp::Empty at once if there is no item.
  T get_nowait() { return get_until(internal::Clock::now()); }

  // qsize is the number of items (a snapshot). empty/full likewise.
  long qsize() const { return queue_->qsize(); }
  bool empty() const { return qsize() == 0; }
  bool full() const { return queue_->maxsize() > 0 && qsize() >= queue_->maxsize(); }

  // close: this process will not use the queue again; later calls on this
  // handle (and its copies in this process) throw mp::ValueError.
  void close() { *closed_ = true; }

  // Encoded as its ring's descriptor (see "Sharing"); the received handle
  // is open whatever this one is.
  template <class Archive>
  void save(Archive& ar) const {
    ar(internal::SaveDescriptor(queue_->fd(), "a Queue"));
  }
  template <class Archive>
  void load(Archive& ar) {
    uint32_t index = 0;
    ar(index);
    queue_ = internal::ByteQueue::Attach(internal::LoadDescriptor(index, "Queue"));
    closed_ = std::make_shared<bool>(false);
  }

 protected:
  Queue(long maxsize, size_t capacity_bytes, bool joinable)
      : queue_(std::make_shared<internal::ByteQueue>(maxsize, capacity_bytes, joinable)),
        closed_(std::make_shared<bool>(false)) {}

  void put_until(const T& item, const internal::Deadline& deadline) {
    check_open();
    // Large items are encoded straight into the shared ring: one copy of
    // their bytes instead of two. That needs their size first, and measuring
    // costs about as much as encoding a small item (30 ns here), so it is
    // done only while this thread's last item of this type was large.
    constexpr size_t kInPlaceFrom = 4096;
    thread_local size_t last_size = 0;
    if (last_size >= kInPlaceFrom) {
      last_size = encoded_size(item);
      if (last_size >= kInPlaceFrom && queue_->FitsInPlace(last_size)) {
        const bool put = queue_->PutInPlace(
            last_size, deadline, [&](const internal::SpanSink& ring) { encode_into(ring, item); });
        if (!put) throw Full();
        return;
      }
    }
    // A per-thread buffer that keeps its capacity: no allocation per item.
    thread_local std::string bytes;
    bytes.clear();
    encode_to(&bytes, item);
    last_size = bytes.size();
    if (!queue_->Put(bytes, deadline)) throw Full();
  }
  T get_until(const internal::Deadline& deadline) {
    check_open();
    std::optional<T> value;
    // Decoded straight from the shared ring: no intermediate copy.
    if (!queue_->GetWith(deadline, [&](std::string_view bytes) { value.emplace(decode<T>(bytes)); })) {
      throw Empty();
    }
    return std::move(*value);
  }
  void check_open() const {
    if (*closed_) throw ValueError("Queue is closed");
  }

  std::shared_ptr<internal::ByteQueue> queue_;
  std::shared_ptr<bool> closed_;
};

// SimpleQueue: an unbounded queue with put/get/empty/close.
// Python: multiprocessing.SimpleQueue.
template <class T>
class SimpleQueue {
 public:
  SimpleQueue() = default;
  void put(const T& item) { queue_.put(item); }
  T get() { return queue_.get(); }
  bool empty() const { return queue_.empty(); }
  void close() { queue_.close(); }

  template <class Archive>
  void save(Archive& ar) const { ar(queue_); }
  template <class Archive>
  void load(Archive& ar) { ar(queue_); }

 private:
  Queue<T> queue_;
};

// JoinableQueue: a Queue whose consumers call task_done() for every item they
// finished, so that join() can wait until all items were processed.
// Python: multiprocessing.JoinableQueue.
template <class T>
class JoinableQueue : public Queue<T> {
 public:
  explicit JoinableQueue(long maxsize = 0)
      : Queue<T>(maxsize, internal::ByteQueue::kDefaultCapacity, /*joinable=*/true) {}
  JoinableQueue(long maxsize, size_t capacity_bytes) : Queue<T>(maxsize, capacity_bytes, true) {}

  // task_done marks one item processed; mp::ValueError if called more often
  // than there were items.
  void task_done() {
    if (!this->queue_->TaskDone()) throw ValueError("task_done() called too many times");
  }
  // join blocks until every item put has been marked done.
  void join() { this->queue_->Join(std::nullopt); }
  // join(timeout) returns false if items were still unfinished at the end.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return this->queue_->Join(internal::DeadlineAfter(timeout));
  }
};

}  // namespace mp

#endif  // IPC_QUEUE_H_
