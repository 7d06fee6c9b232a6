// PendingTable: the tasks of a pool that have not finished yet, by id, each
// with the function that receives its outcome.
//
// Internal to //pool. The thread that submits tasks adds entries, and the
// pool's outcome thread takes them out, about a million times a second each,
// on two CPUs. Behind one lock (or a sharded map's locks: the outcome
// thread works a few ids behind the submitter, so on the same shard) the
// lock's cache line crossed between the two CPUs twice per task, and that
// alone took a quarter of the submitting thread's time. Here an entry is a
// slot of its own, found from the id with no lock, and claimed with one
// compare-and-swap on its id word: the only line that crosses per task is
// the slot's, which has to carry the entry across anyway. Ids are handed out
// in increasing order, so slot id % kSlots is normally free again long
// before it is needed; when it is not (more than kSlots tasks outstanding
// and an old one still running), the entry goes to an overflow map behind a
// mutex.
//
// Thread safety: Add, Take and TakeAll from any threads at once.
#ifndef POOL_PENDING_TABLE_H_
#define POOL_PENDING_TABLE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "base/mutex.h"
#include "pool/pool_backend.h"

namespace mp::internal {

class PendingTable {
 public:
  using Done = PoolBackend::Done;

  PendingTable();

  // Add registers `done` under `id` (non-zero, not in the table).
  void Add(uint64_t id, Done done);
  // Take removes id's entry and returns its function, or an empty one if
  // the id is not in the table (taken already): of two threads that take the
  // same id, exactly one gets it. Call it only once Add(id) has returned.
  Done Take(uint64_t id);
  // TakeAll removes and returns every entry. Safe against concurrent Take
  // calls (each entry goes to exactly one taker); an entry whose Add runs
  // concurrently may be left in the table.
  std::vector<std::pair<uint64_t, Done>> TakeAll();

 private:
  // 1 MiB of slots, each on a line of its own (the submitter and the
  // outcome thread work on neighbouring ids when the workers keep up). With
  // 4,096 slots, 20,000 apply_async calls in a row overflowed most of the
  // time; 32,768 measured no faster than this.
  static constexpr size_t kSlots = 16384;
  // Slot::id: the id of the entry it holds, kFree, or kBusy while one thread
  // fills or empties it.
  static constexpr uint64_t kFree = 0;
  static constexpr uint64_t kBusy = ~uint64_t{0};

  struct alignas(64) Slot {
    std::atomic<uint64_t> id{kFree};
    Done done;  // written only by the thread that set id to kBusy
  };
  Slot& SlotOf(uint64_t id) { return slots_[id % kSlots]; }
  // Empty moves the entry out of a slot this thread holds (its id claimed)
  // and frees the slot.
  static Done Empty(Slot& slot);

  std::unique_ptr<Slot[]> slots_;
  Mutex overflow_mu_;
  absl::flat_hash_map<uint64_t, Done> overflow_ ABSL_GUARDED_BY(overflow_mu_);
};

}  // namespace mp::internal

#endif  // POOL_PENDING_TABLE_H_
