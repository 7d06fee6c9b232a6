// mpcopy SRC DST [--jobs N]: the folder copier of 001 6.6, grown into a tool
// you can trust with your data.
//
// Copies the tree SRC into DST (created if missing) as `cp -a` does: folders,
// files, symlinks as symlinks, FIFOs, sockets and devices recreated, hard
// links as hard links, holes as holes, modes, times, extended attributes,
// and (as root) owners; without root, setuid/setgid bits whose owner or
// group cannot be kept are dropped. The work (listing folders, copying
// batches of files, ranges of big files) is done by a pool of worker
// processes (the library's Pool).
//
// Safety: no symlink is followed below SRC or DST (every path is opened
// beneath a root descriptor, beneath.h); a symlink in DST where a folder or
// file belongs is replaced, never written through. A file is written
// unnamed (O_TMPFILE) or under a temporary name and gets its name only when
// complete and unchanged: a source that changes while copied is copied again
// or reported, never passed off as a copy. An interrupted run leaves no
// half-written file under a real name, and a rerun skips what is already
// identical (size and mtime, or --checksum), so it resumes.
//
// Every problem is printed with its path and reason as it happens and the
// rest is still copied; exit status 1 if there was any, 2 for bad input
// (nothing written). DST out of space stops the run (status 1).
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "apps/common/app.h"
#include "apps/copier/beneath.h"
#include "apps/copier/copy_tasks.h"
#include "gflags/gflags.h"
#include "pool/pool.h"
#include "process/process.h"

DEFINE_int32(jobs, 0, "worker processes (default: cpu_count())");
DEFINE_bool(quiet, false, "print nothing but problems and the summary");
DEFINE_bool(checksum, false, "skip an existing file only if its checksum matches (not size+mtime)");
DEFINE_bool(verify, false, "after copying, compare the checksums of every source and copy");
DEFINE_bool(dry_run, false, "list what would be copied; change nothing");
DEFINE_int64(chunk_mib, 16, "files larger than this many MiB are copied in ranges of this size");

namespace fs = std::filesystem;
using mpcopy::Batch;
using mpcopy::EntryResult;
using mpcopy::Fd;
using mpcopy::Listing;
using mpcopy::Outcome;
using mpcopy::Problem;
using mpcopy::Range;

namespace {

[[noreturn]] void BadInput(const std::string& message) {
  std::fprintf(stderr, "mpcopy: %s\n", message.c_str());
  std::exit(2);
}

std::string HumanBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return absl::StrFormat("%.1f %s", bytes, units[u]);
}

// Work items keyed by what they touch (a folder, a big file), handed out
// one key after another: two workers creating files in one folder, or
// writing one file, serialize on its lock in the kernel.
template <class T>
class RoundRobin {
 public:
  void Add(const std::string& key, T item) {
    auto [it, fresh] = queues_.try_emplace(key);
    it->second.push_back(std::move(item));
    if (fresh) order_.push_back(key);
  }
  bool Take(T* item) {
    while (!order_.empty()) {
      const std::string key = std::move(order_.front());
      order_.pop_front();
      auto it = queues_.find(key);
      *item = std::move(it->second.front());
      it->second.pop_front();
      if (it->second.empty()) {
        queues_.erase(it);
      } else {
        order_.push_back(key);
      }
      return true;
    }
    return false;
  }
  void Clear() {
    queues_.clear();
    order_.clear();
  }

 private:
  std::map<std::string, std::deque<T>> queues_;
  std::deque<std::string> order_;
};

// The progress line: on a terminal ten times a second, else once a second.
class Progress {
 public:
  void Show(size_t files, uint64_t bytes, bool final = false) {
    if (FLAGS_quiet || FLAGS_dry_run) return;
    const auto now = std::chrono::steady_clock::now();
    if (!final && now - last_ < (tty_ ? std::chrono::milliseconds(100) : std::chrono::seconds(1))) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const std::string line = absl::StrFormat("%zu files  %s  %s/s", files, HumanBytes(static_cast<double>(bytes)),
                                             HumanBytes(secs > 0 ? static_cast<double>(bytes) / secs : 0));
    if (tty_) {
      std::fprintf(stderr, "\r%s   %s", line.c_str(), final ? "\n" : "");
    } else {
      std::fprintf(stderr, "progress: %s\n", line.c_str());
    }
  }

 private:
  const bool tty_ = isatty(STDERR_FILENO) == 1;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_{};
};

// A file copied in ranges: assembled under AssemblyName in its folder, named
// when its last range is in and the source did not change meanwhile.
struct BigFile {
  std::string rel;
  struct stat st {};
  std::string tmp_rel;
  size_t ranges_left = 0;
  bool failed = false;
  int tries = 0;
};

constexpr size_t kBatchFiles = 32;

class Copier {
 public:
  Copier(fs::path src, fs::path dst, bool dst_made, mp::Pool* pool, size_t max_in_flight)
      : src_(std::move(src)), dst_(std::move(dst)), pool_(pool), max_in_flight_(max_in_flight) {
    if (dst_made) fresh_.insert("");
  }

  // Copies the tree; returns the exit status.
  int Run() {
    folders_.push_back("");
    to_list_.push_back("");
    Drain();  // The walk, the files, the big files.
    CopyLinkGroups();
    Drain();
    // A stop (out of space) drops the ranges not yet sent, so a big file
    // they belonged to never completes: its assembly file goes now.
    while (!big_.empty()) {
      BigFile left = std::move(big_.begin()->second);
      big_.erase(big_.begin());
      left.failed = true;
      FinishBig(left);
    }
    if (!stopped_ && !FLAGS_dry_run) FinishFolders();
    if (!stopped_ && !FLAGS_dry_run && FLAGS_verify) {
      to_verify_.insert(to_verify_.end(), copied_files_.begin(), copied_files_.end());
      Drain();
      if (!FLAGS_quiet) std::fprintf(stderr, "verified %zu files\n", verified_);
    }
    progress_.Show(copied_, bytes_, /*final=*/true);
    if (FLAGS_dry_run) {
      std::fprintf(stderr, "mpcopy: dry run: would copy %zu files (%s), %zu unchanged, %zu errors\n",
                   would_copy_, HumanBytes(static_cast<double>(bytes_)).c_str(), unchanged_, problems_);
    } else {
      std::fprintf(stderr, "mpcopy: copied %zu files (%s), %zu hard links, %zu unchanged skipped, %zu errors\n",
                   copied_, HumanBytes(static_cast<double>(bytes_)).c_str(), linked_, unchanged_, problems_);
    }
    return problems_ == 0 ? 0 : 1;
  }

 private:
  // --- Handing out work, and taking results back on this thread. -----------

  // Runs fn(arg) in a worker; `done` runs here, on the main thread, with its
  // result, or `lost` with the reason if the task failed (its worker died).
  template <class Result, class Fn, class Arg>
  void Submit(Fn fn, Arg arg, std::function<void(const Result&)> done, std::function<void(const std::string&)> lost) {
    ++in_flight_;
    pool_->apply_async(mp::callbacks([this, done](const Result& r) { Post([done, r] { done(r); }); },
                                     [this, lost](const mp::Error& e) {
                                       std::string what = e.what();
                                       Post([lost, what] { lost(what); });
                                     }),
                       fn, std::move(arg));
  }

  // Called on the pool's result thread: the main thread does the rest.
  void Post(std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      posted_.push_back(std::move(fn));
    }
    ready_.notify_one();
  }

  // Keeps the workers fed (a few tasks queued per worker, listings first:
  // they make more work; big files' ranges before small files: the longest
  // work starts early) until nothing is left or in flight.
  void Drain() {
    Fill();
    while (in_flight_ > 0) {
      std::vector<std::function<void()>> ready;
      {
        std::unique_lock<std::mutex> lock(mu_);
        // The timeout paces the progress line; results wake it at once.
        ready_.wait_for(lock, std::chrono::milliseconds(100), [&] { return !posted_.empty(); });
        ready.swap(posted_);
      }
      for (auto& fn : ready) {
        --in_flight_;
        fn();
      }
      Fill();
      progress_.Show(copied_, bytes_);
    }
  }

  void Fill() {
    while (in_flight_ < max_in_flight_ && !stopped_) {
      Range range;
      Batch batch;
      if (!to_list_.empty()) {
        std::string folder = std::move(to_list_.front());
        to_list_.pop_front();
        Submit<Listing>(mpcopy::ListFolder, folder, [this](const Listing& l) { OnListing(l); },
                        [this, folder](const std::string& why) { Report({folder, why}); });
      } else if (ranges_.Take(&range)) {
        const std::string tmp = range.tmp;
        Submit<std::vector<Problem>>(
            mpcopy::CopyRange, range, [this, tmp](const std::vector<Problem>& p) { OnRange(tmp, p); },
            [this, tmp](const std::string& why) { OnRange(tmp, {Problem{tmp, why, true}}); });
      } else if (batches_.Take(&batch)) {
        Submit<std::vector<EntryResult>>(
            mpcopy::CopyBatch, batch, [this, batch](const std::vector<EntryResult>& r) { OnBatch(batch, r); },
            [this, batch](const std::string& why) {
              for (const std::string& name : batch.names) Report({mpcopy::JoinRel(batch.folder, name), why});
            });
      } else if (!to_verify_.empty()) {
        std::string rel = std::move(to_verify_.front());
        to_verify_.pop_front();
        Submit<std::vector<Problem>>(
            mpcopy::SameChecksum, rel,
            [this](const std::vector<Problem>& p) {
              p.empty() ? ++verified_ : 0;
              for (const Problem& problem : p) Report(problem);
            },
            [this, rel](const std::string& why) { Report({rel, why}); });
      } else {
        break;
      }
    }
  }

  // --- Results. ---------------------------------------------------------------

  void OnListing(const Listing& l) {
    for (const Problem& p : l.problems) Report(p);
    for (size_t i = 0; i < l.folders.size(); ++i) {
      const std::string rel = mpcopy::JoinRel(l.folder, l.folders[i]);
      folders_.push_back(rel);
      to_list_.push_back(rel);
      if (i < l.made.size() && l.made[i]) fresh_.insert(rel);
    }
    const bool fresh = fresh_.count(l.folder) > 0;
    for (size_t i = 0; i < l.names.size(); i += kBatchFiles) {
      const size_t end = std::min(l.names.size(), i + kBatchFiles);
      Batch b;
      b.folder = l.folder;
      b.names.assign(l.names.begin() + i, l.names.begin() + end);
      b.types.assign(l.types.begin() + i, l.types.begin() + end);
      b.fresh = fresh;
      batches_.Add(l.folder, std::move(b));
    }
  }

  void OnBatch(const Batch& batch, const std::vector<EntryResult>& results) {
    for (const EntryResult& r : results) {
      const std::string rel = mpcopy::JoinRel(batch.folder, r.name);
      for (const Problem& p : r.problems) Report(p);
      switch (r.outcome) {
        case Outcome::kCopied:
          ++copied_;
          bytes_ += r.bytes;
          if (FLAGS_verify && r.bytes > 0) copied_files_.push_back(rel);
          LinkOthers(rel);
          break;
        case Outcome::kUnchanged:
          ++unchanged_;
          LinkOthers(rel);
          break;
        case Outcome::kWouldCopy:
          ++would_copy_;
          bytes_ += r.bytes;
          std::printf("copy %s\n", rel.c_str());
          LinkOthers(rel);
          break;
        case Outcome::kBig:
          PlanBig(rel, 0);
          break;
        case Outcome::kLinked:
          link_groups_[{r.dev, r.ino}].push_back(rel);
          break;
        case Outcome::kFailed:
          FailLinks(rel);
          break;
      }
    }
  }

  // --- Big files, in ranges. ------------------------------------------------

  void PlanBig(const std::string& rel, int tries) {
    if (stopped_) return;
    // Any failure here fails the file and the other names of its hard links.
    auto fail = [&](Problem p) {
      Report(p);
      FailLinks(rel);
    };
    const auto& s = mpcopy::settings();
    Fd in = mpcopy::OpenBeneath(s.src_root, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY);
    BigFile big;
    big.rel = rel;
    big.tries = tries;
    if (!in.valid() || ::fstat(in.get(), &big.st) != 0) return fail({rel, Errno("open")});
    if (!S_ISREG(big.st.st_mode)) return fail({rel, "changed while being copied (no longer a file); run again"});
    const auto [folder, name] = mpcopy::SplitParent(rel);
    Fd dir = mpcopy::OpenBeneath(s.dst_root, folder, O_PATH | O_DIRECTORY);
    if (!dir.valid()) return fail({folder, Errno("open folder"), true});
    const std::string tmp = mpcopy::AssemblyName(name);
    big.tmp_rel = mpcopy::JoinRel(folder, tmp);
    auto create = [&] {
      return Fd(::openat(dir.get(), tmp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600));
    };
    Fd out = create();
    if (!out.valid() && errno == EEXIST) {  // Left by a run that was killed.
      ::unlinkat(dir.get(), tmp.c_str(), 0);
      out = create();
    }
    if (!out.valid() || ::ftruncate(out.get(), big.st.st_size) != 0) {
      const int error = errno;
      ::unlinkat(dir.get(), tmp.c_str(), 0);
      return fail({rel, mpcopy::StepError{"create", error}.Describe(), true, mpcopy::IsOutOfSpace(error)});
    }
    const uint64_t size = static_cast<uint64_t>(big.st.st_size), chunk = mpcopy::settings().big_file;
    const bool sparse = mpcopy::LooksSparse(big.st);
    for (uint64_t off = 0; off < size; off += chunk) {
      ranges_.Add(big.tmp_rel, Range{rel, big.tmp_rel, off, std::min(chunk, size - off), sparse});
      ++big.ranges_left;
    }
    big_[big.tmp_rel] = std::move(big);
  }

  void OnRange(const std::string& tmp_rel, const std::vector<Problem>& problems) {
    BigFile& big = big_.at(tmp_rel);
    for (const Problem& p : problems) {
      big.failed = true;
      Report(p);
    }
    if (--big.ranges_left > 0) return;
    BigFile done = std::move(big);
    big_.erase(tmp_rel);
    FinishBig(done);
  }

  void FinishBig(const BigFile& big) {
    const auto& s = mpcopy::settings();
    const auto [folder, name] = mpcopy::SplitParent(big.rel);
    Fd dir = mpcopy::OpenBeneath(s.dst_root, folder, O_PATH | O_DIRECTORY);
    const std::string tmp = mpcopy::SplitParent(big.tmp_rel).second;
    auto fail = [&](Problem p) {
      if (dir.valid()) ::unlinkat(dir.get(), tmp.c_str(), 0);
      Report(p);
      FailLinks(big.rel);
    };
    if (big.failed || stopped_ || !dir.valid()) return fail({big.rel, "not copied (see above)", true});
    Fd in = mpcopy::OpenBeneath(s.src_root, big.rel, O_RDONLY | O_NONBLOCK | O_NOCTTY);
    struct stat now;
    if (!in.valid() || ::fstat(in.get(), &now) != 0) return fail({big.rel, Errno("open")});
    if (!mpcopy::SameVersion(big.st, now)) {
      ::unlinkat(dir.get(), tmp.c_str(), 0);
      if (big.tries < s.change_retries) return PlanBig(big.rel, big.tries + 1);
      return fail({big.rel, absl::StrFormat("changed while being copied (%d tries); not copied, run again",
                                            big.tries + 1)});
    }
    Fd out(::openat(dir.get(), tmp.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!out.valid()) return fail({big.tmp_rel, Errno("open"), true});
    for (const auto& e : mpcopy::KeepAttributes(in.get(), out.get(), now, s.who)) {
      Report({big.rel, e.Describe(), true});
    }
    if (!out.Close()) return fail({big.rel, Errno("close"), true, mpcopy::IsOutOfSpace(errno)});
    if (!mpcopy::RenameInto(dir.get(), tmp, name)) return fail({big.rel, Errno("rename"), true});
    ++copied_;
    bytes_ += static_cast<uint64_t>(now.st_size);
    if (FLAGS_verify) copied_files_.push_back(big.rel);
    LinkOthers(big.rel);
  }

  // --- Hard links: each group's first name is copied, the others linked. ---

  void CopyLinkGroups() {
    if (stopped_) return;
    for (auto& [inode, names] : link_groups_) {
      std::sort(names.begin(), names.end());
      const auto [folder, name] = mpcopy::SplitParent(names[0]);
      link_after_[names[0]].assign(names.begin() + 1, names.end());
      Batch b;
      b.folder = folder;
      b.names = {name};
      b.types = {DT_REG};
      b.copy_linked = true;
      batches_.Add(folder, std::move(b));
    }
    link_groups_.clear();
  }

  // The first name of a hard-link group failed: the others are reported, not
  // silently left out.
  void FailLinks(const std::string& first) {
    auto it = link_after_.find(first);
    if (it == link_after_.end()) return;
    for (const std::string& other : it->second) {
      Report({other, "not linked: copying its first name (" + first + ") failed", true});
    }
    link_after_.erase(it);
  }

  void LinkOthers(const std::string& first) {
    auto it = link_after_.find(first);
    if (it == link_after_.end()) return;
    const std::vector<std::string> others = std::move(it->second);
    link_after_.erase(it);
    const auto& s = mpcopy::settings();
    const auto [first_folder, first_name] = mpcopy::SplitParent(first);
    Fd from = FLAGS_dry_run ? Fd() : mpcopy::OpenBeneath(s.dst_root, first_folder, O_PATH | O_DIRECTORY);
    for (const std::string& other : others) {
      if (FLAGS_dry_run) {
        std::printf("link %s => %s\n", other.c_str(), first.c_str());
        continue;
      }
      const auto [folder, name] = mpcopy::SplitParent(other);
      Fd to = mpcopy::OpenBeneath(s.dst_root, folder, O_PATH | O_DIRECTORY);
      if (!from.valid() || !to.valid()) {
        Report({other, Errno("open folder"), true});
        continue;
      }
      struct stat a, b;
      if (::fstatat(from.get(), first_name.c_str(), &a, AT_SYMLINK_NOFOLLOW) == 0 &&
          ::fstatat(to.get(), name.c_str(), &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_ino == b.st_ino &&
          a.st_dev == b.st_dev) {
        ++unchanged_;
        continue;
      }
      if (::linkat(from.get(), first_name.c_str(), to.get(), name.c_str(), 0) != 0) {
        const std::string tmp = mpcopy::TransientName();
        if (errno != EEXIST || ::linkat(from.get(), first_name.c_str(), to.get(), tmp.c_str(), 0) != 0 ||
            !mpcopy::RenameInto(to.get(), tmp, name)) {
          Report({other, Errno("link"), true, mpcopy::IsOutOfSpace(errno)});
          continue;
        }
      }
      ++linked_;
    }
  }

  // --- Folders last: modes, owners, times, deepest first. --------------------

  void FinishFolders() {
    std::sort(folders_.begin(), folders_.end(), [](const std::string& a, const std::string& b) {
      const auto depth = [](const std::string& s) { return s.empty() ? -1 : std::count(s.begin(), s.end(), '/'); };
      return depth(a) > depth(b);
    });
    const auto& s = mpcopy::settings();
    for (const std::string& rel : folders_) {
      // O_PATH: an unreadable source folder still has attributes to copy.
      Fd in = mpcopy::OpenBeneath(s.src_root, rel, O_PATH | O_DIRECTORY);
      Fd out = mpcopy::OpenBeneath(s.dst_root, rel, O_PATH | O_DIRECTORY);
      struct stat st;
      if (!in.valid() || !out.valid() || ::fstat(in.get(), &st) != 0) {
        Report({rel, Errno("open folder to set its attributes"), !out.valid()});
        continue;
      }
      for (const auto& e : mpcopy::KeepAttributes(in.get(), out.get(), st, s.who, /*out_is_path=*/true)) {
        Report({rel, e.Describe(), true});
      }
    }
  }

  // --- Problems. -------------------------------------------------------------

  static std::string Errno(const char* step) { return mpcopy::StepError{step, errno}.Describe(); }

  void Report(const Problem& p) {
    ++problems_;
    const fs::path where = (p.in_dst ? dst_ : src_) / p.path;
    std::fprintf(stderr, "mpcopy: %s: %s\n", p.path.empty() ? (p.in_dst ? dst_ : src_).c_str() : where.c_str(),
                 p.reason.c_str());
    if (p.out_of_space && !stopped_) {
      // Nothing more is started; what is in flight ends (and fails fast).
      stopped_ = true;
      to_list_.clear();
      ranges_.Clear();
      batches_.Clear();
      to_verify_.clear();
      std::fprintf(stderr,
                   "mpcopy: DST is out of space: stopping. Every file under its own name in DST is "
                   "complete; rerun when there is room to copy the rest.\n");
    }
  }

  const fs::path src_, dst_;
  mp::Pool* pool_;
  const size_t max_in_flight_;

  std::mutex mu_;
  std::condition_variable ready_;
  std::vector<std::function<void()>> posted_;  // guarded by mu_

  // Only the main thread touches the rest.
  size_t in_flight_ = 0;
  bool stopped_ = false;  // out of space
  std::deque<std::string> to_list_;
  RoundRobin<Range> ranges_;   // by big file
  RoundRobin<Batch> batches_;  // by folder
  std::deque<std::string> to_verify_;
  std::vector<std::string> folders_;  // made in DST, "" (DST itself) first
  std::set<std::string> fresh_;       // the folders of them this run made (empty until filled)
  std::map<std::string, BigFile> big_;  // by assembly file
  std::map<std::pair<uint64_t, uint64_t>, std::vector<std::string>> link_groups_;  // (dev, ino) -> names
  std::map<std::string, std::vector<std::string>> link_after_;  // first name -> the others
  std::vector<std::string> copied_files_;  // for --verify

  size_t copied_ = 0, linked_ = 0, unchanged_ = 0, would_copy_ = 0, problems_ = 0, verified_ = 0;
  uint64_t bytes_ = 0;
  Progress progress_;
};

}  // namespace

int main(int argc, char** argv) {
  apps::Init(&argc, &argv,
             "mpcopy SRC DST [--jobs N] [--quiet] [--checksum] [--verify] [--dry_run]: copy a folder tree "
             "with worker processes, as cp -a does");
  if (argc != 3) BadInput("usage: mpcopy SRC DST [--jobs N] [--quiet] [--checksum] [--verify] [--dry_run]");
  const fs::path src_arg = argv[1], dst = fs::absolute(argv[2]).lexically_normal();

  // Bad input is refused before anything is written. SRC and DST as named
  // on the command line may be symlinks (to folders); nothing below them is
  // followed.
  std::error_code ec;
  const fs::file_status src_status = fs::status(src_arg, ec);
  if (!fs::exists(src_status)) BadInput("SRC '" + src_arg.string() + "' does not exist");
  if (!fs::is_directory(src_status)) BadInput("SRC '" + src_arg.string() + "' is not a directory");
  const fs::path src = fs::canonical(src_arg);
  if (fs::exists(fs::symlink_status(dst)) && !fs::is_directory(dst)) {
    BadInput("DST '" + dst.string() + "' exists and is not a directory");
  }
  const fs::path dst_real = fs::weakly_canonical(dst);
  const std::string src_prefix = src.string() + "/";
  if (dst_real == src || dst_real.string().rfind(src_prefix, 0) == 0) {
    BadInput("DST '" + dst.string() + "' is inside SRC '" + src.string() + "'");
  }
  const fs::path writable = fs::exists(dst) ? dst : dst.parent_path();
  if (::access(writable.c_str(), W_OK | X_OK) != 0) {
    BadInput("no permission to write in '" + writable.string() + "': " + std::strerror(errno));
  }

  mpcopy::Settings settings;
  Fd src_root(::open(src.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!src_root.valid()) BadInput("cannot open SRC '" + src.string() + "': " + std::strerror(errno));
  Fd dst_root;
  const bool dst_made = !FLAGS_dry_run && !fs::exists(fs::symlink_status(dst));
  if (!FLAGS_dry_run) {
    fs::create_directories(dst, ec);
    if (ec) BadInput("cannot create DST '" + dst.string() + "': " + ec.message());
    dst_root = Fd(::open(dst.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  } else if (fs::exists(dst)) {
    dst_root = Fd(::open(dst.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }
  settings.src_root = src_root.get();
  settings.dst_root = dst_root.get();
  settings.who = mpcopy::Identity::OfThisProcess();
  settings.dry_run = FLAGS_dry_run;
  settings.checksum = FLAGS_checksum;
  settings.big_file = static_cast<uint64_t>(std::max<int64_t>(1, FLAGS_chunk_mib)) << 20;
  mpcopy::SetUp(settings);
  // A file-size limit (RLIMIT_FSIZE) makes a write fail with EFBIG, which
  // is reported, instead of killing the worker.
  ::signal(SIGXFSZ, SIG_IGN);
  // Files are created with their own permission bits (what cp -a does with
  // --preserve=mode): most then need no chmod. Folders are made 0700 and
  // given their modes at the end.
  ::umask(0);

  // The workers are forked now: they inherit the settings and both roots.
  const int jobs = FLAGS_jobs > 0 ? FLAGS_jobs : mp::cpu_count();
  mp::Pool pool(mp::PoolOptions{.processes = jobs});
  Copier copier(src, dst, dst_made, &pool, static_cast<size_t>(jobs) * 2);
  const int status = copier.Run();
  pool.close();
  pool.join();
  return status;
}
