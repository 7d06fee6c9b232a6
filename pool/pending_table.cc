#include "pool/pending_table.h"

namespace mp::internal {

PendingTable::PendingTable() : slots_(new Slot[kSlots]) {}

PendingTable::Done PendingTable::Empty(Slot& slot) {
  Done done = std::move(slot.done);
  slot.done = nullptr;
  slot.id.store(kFree, std::memory_order_release);
  return done;
}

void PendingTable::Add(uint64_t id, Done done) {
  Slot& slot = SlotOf(id);
  uint64_t expected = kFree;
  // acquire: whatever the thread that emptied the slot did to `done` happens
  // before this thread writes it.
  if (slot.id.compare_exchange_strong(expected, kBusy, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
    slot.done = std::move(done);
    slot.id.store(id, std::memory_order_release);  // publishes `done`
    return;
  }
  MutexLock lock(overflow_mu_);
  overflow_.emplace(id, std::move(done));
}

PendingTable::Done PendingTable::Take(uint64_t id) {
  Slot& slot = SlotOf(id);
  uint64_t expected = id;
  if (slot.id.compare_exchange_strong(expected, kBusy, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
    return Empty(slot);
  }
  // Not in its slot: in the overflow map, or taken already. (An entry never
  // moves between the two, so there is no moment when it is in neither.)
  MutexLock lock(overflow_mu_);
  auto it = overflow_.find(id);
  if (it == overflow_.end()) return nullptr;
  Done done = std::move(it->second);
  overflow_.erase(it);
  return done;
}

std::vector<std::pair<uint64_t, PendingTable::Done>> PendingTable::TakeAll() {
  std::vector<std::pair<uint64_t, Done>> all;
  for (size_t i = 0; i < kSlots; ++i) {
    Slot& slot = slots_[i];
    uint64_t id = slot.id.load(std::memory_order_relaxed);
    if (id == kFree || id == kBusy) continue;
    // Claimed as Take claims it, so a Take racing with this one gets the
    // entry or nothing, never the same entry.
    if (!slot.id.compare_exchange_strong(id, kBusy, std::memory_order_acquire,
                                         std::memory_order_relaxed)) {
      continue;
    }
    all.emplace_back(id, Empty(slot));
  }
  MutexLock lock(overflow_mu_);
  for (auto& [id, done] : overflow_) all.emplace_back(id, std::move(done));
  overflow_.clear();
  return all;
}

}  // namespace mp::internal
