#include "ipc/byte_queue.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>

#include "base/errors.h"
#include "sync/process_token.h"

namespace mp::internal {
namespace {

// Spin this many times watching a futex word before sleeping on it: a
// producer and a consumer on two CPUs usually hand over within a microsecond,
// much less than a sleep and wake-up (MEASURING.md: 5-80 us).
constexpr int kSpins = 200;

// Beyond that, go on spinning while the other side holds its lock, for up to
// this long: it is then copying an item in or out, and a large item takes
// tens of microseconds to copy, less than a sleep and a wake-up across CPUs
// here (MEASURING.md: 40-80 us). An idle other side holds no lock, so a
// waiter for a quiet queue still goes to sleep after the short spin.
constexpr auto kBusySpin = std::chrono::microseconds(150);

// The two futex words (items_seq, space_seq) are event counts: the upper 31
// bits count wake-ups, the low bit says that someone sleeps, or is about to
// sleep, on the word. A waiter sets the bit, checks its condition once more
// and sleeps while the word still holds the value it set; a notifier, after
// publishing its change, looks at the word and only if the bit is set bumps
// the count, clearing the bit in the same atomic step, and calls the kernel.
// So when nobody sleeps a put or get costs the other side nothing (not even
// a write to a shared line), and a producer makes one wake-up call per sleep
// of its consumers, not one per item while a woken consumer waits for a CPU
// (on a single CPU that alone cut a queue's throughput tenfold). No wake-up
// is lost: the notifier's fence between its change and its look at the word
// pairs with the waiter's atomic setting of the bit before its last check,
// so either the waiter sees the change or the notifier sees the bit.
constexpr uint32_t kSleepers = 1;
constexpr uint32_t kOneEvent = 2;

// Notify wakes the sleepers on `seq`, if any (see above). Put and Get notify
// after releasing their mutex: a waiter woken (or spinning) while we still
// held it would only collide with us on it.
void Notify(std::atomic<uint32_t>* seq) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  uint32_t current = seq->load(std::memory_order_relaxed);
  do {
    if (!(current & kSleepers)) return;
  } while (!seq->compare_exchange_weak(current, (current + kOneEvent) & ~kSleepers,
                                       std::memory_order_seq_cst, std::memory_order_relaxed));
  FutexWake(seq, INT_MAX);
}

void StoreClaim(uint64_t* claim, std::string_view item) {
  if (claim == nullptr || item.size() < sizeof(uint64_t)) return;
  uint64_t id;
  std::memcpy(&id, item.data(), sizeof id);
  std::atomic_ref<uint64_t>(*claim).store(id, std::memory_order_release);
}

// Gone is true once the process `token` names has ended, or its pid went
// to another process (sync/process_token.h).
bool Gone(uint64_t token) { return TokenGone(token); }

Deadline Earlier(const Deadline& deadline, Clock::time_point t) {
  return deadline.has_value() && *deadline < t ? deadline : Deadline(t);
}


// A reusable buffer for items that must be copied out of the ring.
std::string& ScratchBuffer() {
  thread_local std::string buffer;
  return buffer;
}

}  // namespace

bool ByteQueue::Locked::Wait(std::atomic<uint32_t>* seq, const RobustMutexState* other_side,
                             const Deadline& deadline, absl::FunctionRef<bool()> ready) {
  Release(m_);
  bool in_time = true;
  // Spin first, unannounced, so the other side pays no wake-up system call
  // for a hand-over that takes a microsecond; a _nowait call does not spin.
  if (!Expired(deadline)) {
    for (int spins = 0; spins < kSpins && !ready(); ++spins) CpuRelax();
    if (!ready() && IsLocked(other_side)) {
      const auto until = std::chrono::steady_clock::now() + kBusySpin;
      for (int spins = 1; !ready() && IsLocked(other_side); ++spins) {
        CpuRelax();
        if (spins % 64 == 0 && std::chrono::steady_clock::now() > until) break;
      }
    }
  }
  for (;;) {
    if (ready()) break;
    uint32_t current = seq->load(std::memory_order_relaxed);
    if (!(current & kSleepers)) {
      if (!seq->compare_exchange_weak(current, current | kSleepers, std::memory_order_seq_cst,
                                      std::memory_order_relaxed)) {
        continue;
      }
      current |= kSleepers;
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (ready()) break;
    if (!FutexWait(seq, current, deadline)) {
      in_time = ready();
      break;
    }
  }
  Acquire(m_, std::nullopt);
  return in_time;
}

ByteQueue::ByteQueue(long maxsize, size_t capacity_bytes, bool joinable)
    : state_(SharedObject<State>::Make(capacity_bytes)), capacity_(state_.tail_size()) {
  Init(maxsize, joinable);
}

ByteQueue::ByteQueue(SharedObject<State> state, bool attached)
    : state_(std::move(state)), capacity_(state_.tail_size()) {
  // An attached ring's capacity must be its region's: the region may come
  // from another process, and every copy is bounded by capacity_.
  if (attached && state_->capacity != capacity_) {
    throw Error("Queue: the shared ring received is not a queue's (its size does not match)");
  }
}

void ByteQueue::Init(long maxsize, bool joinable) {
  state_->capacity = capacity_;
  state_->maxsize = maxsize > 0 ? maxsize : 0;
  state_->joinable = joinable ? 1 : 0;
}

std::shared_ptr<ByteQueue> ByteQueue::Shareable(long maxsize, size_t capacity_bytes, bool joinable) {
  auto region = SharedRegion::CreateMemfd(sizeof(State) + capacity_bytes);
  std::shared_ptr<ByteQueue> q(
      new ByteQueue(SharedObject<State>::MakeIn(std::move(region)), /*attached=*/false));
  q->Init(maxsize, joinable);
  return q;
}

std::shared_ptr<ByteQueue> ByteQueue::Attach(int fd) { return Attach(ScopedFd(fd)); }

std::shared_ptr<ByteQueue> ByteQueue::Attach(ScopedFd fd) {
  return std::shared_ptr<ByteQueue>(new ByteQueue(
      SharedObject<State>::Attach(SharedRegion::Attach(std::move(fd), sizeof(State))), /*attached=*/true));
}

void ByteQueue::CopyIn(uint64_t offset, const char* data, size_t len) {
  const uint64_t cap = capacity_;
  const size_t at = offset % cap;
  const size_t first = std::min<size_t>(len, cap - at);
  char* ring = reinterpret_cast<char*>(state_.tail());
  HandOverCopy(ring + at, data, first);
  if (first < len) HandOverCopy(ring, data + first, len - first);
}

void ByteQueue::CopyOut(uint64_t offset, char* data, size_t len) const {
  const uint64_t cap = capacity_;
  const size_t at = offset % cap;
  const size_t first = std::min<size_t>(len, cap - at);
  std::memcpy(data, state_.tail() + at, first);
  if (first < len) std::memcpy(data + first, state_.tail(), len - first);
}

// ---- Producers ----

bool ByteQueue::Put(std::string_view item, const Deadline& deadline) {
  if (!PutLocked(item, deadline)) return false;
  AfterPut();
  return true;
}

void ByteQueue::AfterPut() { Notify(&state_->items_seq); }

bool ByteQueue::WaitForRoomLocked(Locked& locked, uint64_t need, bool streamed,
                                  const Deadline& deadline) {
  State& s = *state_;
  const uint64_t wanted = streamed ? kHeader : need;
  auto room_with = [&](uint64_t free_bytes) {
    return (s.maxsize == 0 || Count() < s.maxsize) && free_bytes >= wanted &&
           !s.writer_streaming.load(std::memory_order_relaxed);
  };
  auto room = [&] { return room_with(FreeBytes()); };  // without the lock, while waiting
  while (!room_with(FreeBytesLocked(wanted))) {
    // Behind another process's stream, look at it now and then.
    const bool behind_stream = s.writer_streaming.load(std::memory_order_relaxed) != 0;
    if (behind_stream) ClearDeadWriterLocked();
    const Deadline wait_until = behind_stream ? Earlier(deadline, Clock::now() + kLivenessCheck) : deadline;
    if (!locked.Wait(&s.space_seq, &s.get_mutex, wait_until, room) && Expired(deadline)) return false;
  }
  return true;
}

void ByteQueue::ClearDeadWriterLocked() {
  State& s = *state_;
  const uint64_t writer = s.writer_streaming.load(std::memory_order_relaxed);
  const uint64_t tail = s.tail.load(std::memory_order_relaxed);
  if (tail != s.writer_stream_start && tail != s.writer_stream_end) return;  // a consumer's task
  if (!Gone(writer)) return;
  s.writer_streaming.store(0, std::memory_order_relaxed);
  Notify(&s.space_seq);
}

void ByteQueue::CommitLocked(uint64_t size, uint64_t written) {
  State& s = *state_;
  const uint64_t tail = s.tail.load(std::memory_order_relaxed);
  CopyIn(tail, reinterpret_cast<const char*>(&size), kHeader);
  // Counted before it is published, so that a consumer never counts it out
  // first.
  s.puts.store(s.puts.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  if (s.joinable) s.unfinished.fetch_add(1, std::memory_order_relaxed);
  s.tail.store(tail + kHeader + written, std::memory_order_release);
}

bool ByteQueue::PutLocked(std::string_view item, const Deadline& deadline) {
  State& s = *state_;
  Locked locked(&s.put_mutex);
  const uint64_t need = kHeader + item.size();
  const bool streamed = need > capacity_;
  if (!WaitForRoomLocked(locked, need, streamed, deadline)) return false;
  if (!streamed) {
    CopyIn(s.tail.load(std::memory_order_relaxed) + kHeader, item.data(), item.size());
    CommitLocked(item.size(), item.size());
    return true;
  }
  // Stream the item through the ring: publish its header, then each piece
  // as room appears, while other producers wait (writer_streaming).
  s.writer_stream_start = s.tail.load(std::memory_order_relaxed);
  s.writer_stream_end = s.writer_stream_start + kHeader + item.size();
  s.writer_streaming.store(SelfToken(), std::memory_order_relaxed);
  CommitLocked(item.size(), 0);
  Notify(&s.items_seq);
  size_t sent = 0;
  auto any_room = [&] { return FreeBytes() > 0; };
  while (sent < item.size()) {
    const uint64_t free_bytes = FreeBytesLocked(item.size() - sent);
    if (free_bytes == 0) {
      locked.Wait(&s.space_seq, &s.get_mutex, std::nullopt, any_room);
      continue;
    }
    const size_t n = std::min<size_t>(free_bytes, item.size() - sent);
    const uint64_t tail = s.tail.load(std::memory_order_relaxed);
    CopyIn(tail, item.data() + sent, n);
    s.tail.store(tail + n, std::memory_order_release);
    sent += n;
    Notify(&s.items_seq);
  }
  s.writer_streaming.store(0, std::memory_order_relaxed);
  Notify(&s.space_seq);  // Producers waiting for the stream to end.
  return true;
}

// ---- Consumers ----

void ByteQueue::AfterTake() { Notify(&state_->space_seq); }

bool ByteQueue::Taking::Take(const Deadline& deadline, std::string_view* view, std::string** copy,
                             const Claim* claiming) {
  uint64_t* claim = claiming != nullptr ? claiming->slot : nullptr;
  ByteQueue& q = *q_;
  State& s = *q.state_;
  auto item_there = [&] {
    return !s.reader_streaming.load(std::memory_order_relaxed) &&
           s.tail.load(std::memory_order_acquire) - s.head.load(std::memory_order_relaxed) >= kHeader;
  };
  for (;;) {
    while (!item_there()) {
      // Behind another process's stream, look at it now and then.
      const bool behind_stream = s.reader_streaming.load(std::memory_order_relaxed) != 0;
      const Deadline wait_until = behind_stream ? Earlier(deadline, Clock::now() + kLivenessCheck) : deadline;
      if (locked_.Wait(&s.items_seq, &s.put_mutex, wait_until, item_there)) continue;
      if (Expired(deadline)) return false;
      if (behind_stream) q.SkipDeadReadersItemLocked(locked_);
    }
    // The lock (taken or taken again while waiting) was a dead consumer's.
    if (claiming != nullptr && s.get_mutex.recovered) {
      s.get_mutex.recovered = 0;
      q.RecoverClaimLocked(*claiming);
      continue;
    }
    const uint64_t head = s.head.load(std::memory_order_relaxed);
    uint64_t size;
    q.CopyOut(head, reinterpret_cast<char*>(&size), kHeader);
    const uint64_t start = head + kHeader;
    waker_.took = true;
    if (kHeader + size <= q.capacity_) {
      // Published whole, together with its header.
      advance_ = kHeader + size;
      if (claim != nullptr) s.claim_head = head + 1;  // before the claim: see Claim
      const size_t at = start % q.capacity_;
      if (at + size <= q.capacity_) {
        // In one piece: hand out the ring's own bytes. Producers leave them
        // alone until the head moves past them, at the end of this Taking.
        *view = std::string_view(reinterpret_cast<const char*>(q.state_.tail()) + at, size);
        StoreClaim(claim, *view);
        return true;
      }
      std::string& buffer = ScratchBuffer();  // Wrapped around the ring's end.
      buffer.resize(size);
      q.CopyOut(start, buffer.data(), size);
      *copy = &buffer;
      StoreClaim(claim, buffer);
      return true;
    }
    // A streamed item: take each piece as the producer writes it, freeing the
    // room it took at once.
    s.reader_stream_start = start;
    s.reader_stream_end = start + size;
    s.reader_streaming.store(SelfToken(), std::memory_order_relaxed);
    std::string& buffer = ScratchBuffer();
    buffer.resize(size);
    s.head.store(start, std::memory_order_release);
    Notify(&s.space_seq);
    if (q.StreamOutLocked(locked_, buffer.data(), claim)) {
      *copy = &buffer;
      return true;
    }
    // Its writer died half-way: the item is dropped; on to the next one.
  }
}

bool ByteQueue::StreamOutLocked(Locked& locked, char* out, uint64_t* claim) {
  State& s = *state_;
  const uint64_t start = s.reader_stream_start;
  const uint64_t end = s.reader_stream_end;
  bool whole = true;
  for (uint64_t head = s.head.load(std::memory_order_relaxed); head != end;) {
    const uint64_t tail = s.tail.load(std::memory_order_acquire);
    if (tail == head) {
      auto piece_there = [&] { return s.tail.load(std::memory_order_acquire) != head; };
      if (locked.Wait(&s.items_seq, &s.put_mutex, Clock::now() + kLivenessCheck, piece_there)) continue;
      // Nothing for a while: is the writer still there? (While bytes are
      // missing, writer_streaming is this item's writer: nobody else
      // streams in before it is done.)
      if (s.tail.load(std::memory_order_acquire) == head &&
          Gone(s.writer_streaming.load(std::memory_order_relaxed))) {
        whole = false;
        break;
      }
      continue;
    }
    const size_t n = std::min<uint64_t>(tail - head, end - head);
    const uint64_t got = head - start;
    if (out != nullptr) {
      CopyOut(head, out + got, n);
      if (got < sizeof(uint64_t) && got + n >= sizeof(uint64_t)) {
        StoreClaim(claim, std::string_view(out, sizeof(uint64_t)));
      }
    }
    head += n;
    s.head.store(head, std::memory_order_release);
    Notify(&s.space_seq);
  }
  if (!whole) {
    // Drop the torn item (its bytes so far are consumed: head == tail) and
    // let producers go on after it. Consumers may take the producers' lock
    // (producers never take the consumers'); a dead owner's is recovered.
    Acquire(&s.put_mutex, std::nullopt);
    s.writer_streaming.store(0, std::memory_order_relaxed);
    Release(&s.put_mutex);
    Notify(&s.space_seq);
    if (s.joinable) TaskDone();  // Nobody gets the item, so nobody will mark it done.
  }
  s.takes.store(s.takes.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  s.reader_streaming.store(0, std::memory_order_relaxed);
  Notify(&s.items_seq);  // Consumers waiting for the stream to end.
  return whole;
}

void ByteQueue::RecoverClaimLocked(const Claim& claim) {
  State& s = *state_;
  if (s.claim_head == 0) return;
  const uint64_t at = s.claim_head - 1;
  const uint64_t head = s.head.load(std::memory_order_relaxed);
  // Moved on: the dead consumer had finished taking it (its claim stands).
  if (at != head || s.tail.load(std::memory_order_acquire) - head < kHeader) {
    s.claim_head = 0;
    return;
  }
  uint64_t size;
  CopyOut(head, reinterpret_cast<char*>(&size), kHeader);
  if (kHeader + size > capacity_) {  // Streamed items are not claimed this way.
    s.claim_head = 0;
    return;
  }
  uint64_t first_word = 0;
  CopyOut(head + kHeader, reinterpret_cast<char*>(&first_word),
          std::min<uint64_t>(size, sizeof first_word));
  // Reported first and the mark cleared last: if this consumer dies too,
  // the next one does it all again (a second report is harmless; a lost one
  // would not be).
  claim.orphaned(first_word);
  s.head.store(head + kHeader + size, std::memory_order_release);
  s.takes.store(s.takes.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  s.claim_head = 0;
  Notify(&s.space_seq);
}

void ByteQueue::SkipDeadReadersItemLocked(Locked& locked) {
  State& s = *state_;
  const uint64_t reader = s.reader_streaming.load(std::memory_order_relaxed);
  if (reader == 0 || !Gone(reader)) return;
  s.reader_streaming.store(SelfToken(), std::memory_order_relaxed);
  StreamOutLocked(locked, nullptr, nullptr);
}

ByteQueue::Taking::~Taking() {
  if (!waker_.took) return;
  State& s = *q_->state_;
  if (advance_ != 0) {  // (A streamed item is counted out by StreamOutLocked.)
    s.head.store(s.head.load(std::memory_order_relaxed) + advance_, std::memory_order_release);
    s.takes.store(s.takes.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    s.claim_head = 0;
  }
  q_->RewindIfEmptyLocked();
}

void ByteQueue::RewindIfEmptyLocked() {
  State& s = *state_;
  const uint64_t head = s.head.load(std::memory_order_relaxed);
  if (head < s.next_rewind_try || s.reader_streaming.load(std::memory_order_relaxed)) return;
  if (s.tail.load(std::memory_order_acquire) != head) return;
  s.next_rewind_try = head + kRewindRetryEvery;
  if (!TryAcquire(&s.put_mutex)) return;
  if (s.tail.load(std::memory_order_relaxed) == head &&
      !s.writer_streaming.load(std::memory_order_relaxed)) {
    s.tail.store(0, std::memory_order_relaxed);
    s.head.store(0, std::memory_order_release);
    s.head_seen = 0;
    s.next_rewind_try = kRewindFrom;
  }
  Release(&s.put_mutex);
}

bool ByteQueue::Get(std::string* out, const Deadline& deadline, const Claim* claim) {
  Taking taking(this);
  std::string_view view;
  std::string* copy = nullptr;
  if (!taking.Take(deadline, &view, &copy, claim)) return false;
  if (copy != nullptr) {
    out->swap(*copy);
  } else {
    out->assign(view);
  }
  return true;
}

long ByteQueue::qsize() const {
  return static_cast<long>(std::max<int64_t>(0, Count()));
}

bool ByteQueue::TaskDone() {
  State& s = *state_;
  uint32_t v = s.unfinished.load();
  do {
    if (v == 0) return false;
  } while (!s.unfinished.compare_exchange_weak(v, v - 1));
  if (v == 1 && s.join_waiters.load() > 0) FutexWake(&s.unfinished, INT_MAX);
  return true;
}

bool ByteQueue::Join(const Deadline& deadline) {
  State& s = *state_;
  s.join_waiters.fetch_add(1);
  bool in_time = true;
  for (uint32_t v = s.unfinished.load(); v != 0; v = s.unfinished.load()) {
    if (!FutexWait(&s.unfinished, v, deadline)) {
      in_time = s.unfinished.load() == 0;
      break;
    }
  }
  s.join_waiters.fetch_sub(1);
  return in_time;
}

}  // namespace mp::internal
