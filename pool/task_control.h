// TaskControl: what a Future asks of the pool that runs its task (cancel it
// before it starts; is it running?), and TaskGates, the shared words through
// which the pool and its workers agree on that.
//
// Internal to //pool. A future's task is "gated": its gate, a word in
// memory the pool shares with its workers, holds the task's id and phase
// (queued, running, cancelled). The worker that takes the task moves it
// from queued to running, cancel() from queued to cancelled, each with one
// compare-and-swap, so exactly one of them wins: a cancelled task never
// runs, and a task that started cannot be cancelled (Python's semantics,
// except that Python counts a task as running once it is in the workers'
// queue, while here it runs when a worker has it).
#ifndef POOL_TASK_CONTROL_H_
#define POOL_TASK_CONTROL_H_

#include <atomic>
#include <cstdint>

#include "sync/shared_value.h"

namespace mp::internal {

class TaskControl {
 public:
  virtual ~TaskControl() = default;
  // Cancel: true if the task had not started; then it never will, and its
  // `done` has been called with OutcomeKind::kCancelled before this returns.
  virtual bool Cancel(uint64_t id) = 0;
  // Running: a worker is running the task now.
  virtual bool Running(uint64_t id) const = 0;
  // CancelQueued cancels every task that has not started
  // (Executor::shutdown(cancel_futures=true)).
  virtual void CancelQueued() = 0;
};

// TaskGates: the gates of one pool, a shared array indexed by id. A gate
// whose word another pending task holds (more than kGates futures pending)
// is not given: that task cannot be cancelled, and reports not running.
class TaskGates {
 public:
  // 2 MiB of shared memory, touched only as used.
  static constexpr size_t kGates = size_t{1} << 18;
  enum Phase : uint64_t { kQueued = 1, kRunning = 2, kCancelled = 3 };

  TaskGates() : words_(kGates) {}
  explicit TaskGates(RawArray<uint64_t> words) : words_(std::move(words)) {}
  const RawArray<uint64_t>& words() const { return words_; }

  // Open (the pool, before queuing task `id`): false if its gate is taken.
  bool Open(uint64_t id) {
    uint64_t expected = 0;
    return Word(id).compare_exchange_strong(expected, Value(id, kQueued));
  }
  // Begin (the worker that took the task): false if it was cancelled.
  bool Begin(uint64_t id) {
    uint64_t expected = Value(id, kQueued);
    if (Word(id).compare_exchange_strong(expected, Value(id, kRunning))) return true;
    return expected != Value(id, kCancelled);
  }
  bool Cancel(uint64_t id) {
    uint64_t expected = Value(id, kQueued);
    return Word(id).compare_exchange_strong(expected, Value(id, kCancelled));
  }
  bool Running(uint64_t id) const { return Word(id).load() == Value(id, kRunning); }
  // Close (the pool, once the task ended): frees the gate if `id` holds it.
  void Close(uint64_t id) {
    std::atomic_ref<uint64_t> word = Word(id);
    uint64_t value = word.load(std::memory_order_relaxed);
    if (value != 0 && (value >> 2) == id) word.compare_exchange_strong(value, 0);
  }
  // QueuedIds: the tasks whose gate says queued, for CancelQueued.
  template <class Fn>
  void ForEachQueued(Fn&& fn) const {
    if (words_.size() != kGates) return;
    for (size_t i = 0; i < kGates; ++i) {
      const uint64_t value = std::atomic_ref<uint64_t>(words_[i]).load(std::memory_order_relaxed);
      if ((value & 3) == kQueued) fn(value >> 2);
    }
  }
  // Valid: the array received is the size this pool makes (a worker checks).
  bool Valid() const { return words_.size() == kGates; }

 private:
  static uint64_t Value(uint64_t id, Phase phase) { return (id << 2) | phase; }
  std::atomic_ref<uint64_t> Word(uint64_t id) const {
    return std::atomic_ref<uint64_t>(words_[id & (kGates - 1)]);
  }
  RawArray<uint64_t> words_;
};

}  // namespace mp::internal

#endif  // POOL_TASK_CONTROL_H_
