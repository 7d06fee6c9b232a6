// mpcopy SRC DST [--jobs N]: the folder copier of 001 6.6, grown into a tool.
//
// Copies the tree SRC into DST (created if missing): subfolders, empty
// folders, symlinks as symlinks, file modes and modification times. Files
// are copied by a pool of worker processes (the library's Pool), big ones in
// ranges so one large file keeps every worker busy, by the kernel
// (copy_file_range) where it can. Each file is written under a temporary
// name and renamed when complete, so an interrupted copy never leaves a
// half-written file under a real name, and a rerun skips files already
// identical (size and mtime, or --checksum) and so resumes. (Files are
// written as unnamed O_TMPFILE files and linked under their name when
// complete; where that is unsupported, as named ".NAME.mpcopy-tmp" files.) Errors on single
// files are reported with the path and the reason and the copy goes on; the
// exit status is 1 if any file failed, 2 for bad input (nothing written).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "apps/common/app.h"
#include "apps/copier/copy_tasks.h"
#include "gflags/gflags.h"
#include "pool/pool.h"
#include "process/process.h"

DEFINE_int32(jobs, 0, "worker processes (default: cpu_count())");
DEFINE_bool(quiet, false, "print nothing but errors and the summary");
DEFINE_bool(checksum, false, "skip an existing file only if its checksum matches (not size+mtime)");
DEFINE_bool(verify, false, "after copying, compare the checksums of every source and copy");
DEFINE_int64(chunk_mib, 16, "files larger than this many MiB are copied in ranges of this size");

namespace fs = std::filesystem;
using mpcopy::CopyTask;
using mpcopy::TaskResult;

namespace {

[[noreturn]] void BadInput(const std::string& message) {
  std::fprintf(stderr, "mpcopy: %s\n", message.c_str());
  std::exit(2);
}

struct FileEntry {
  fs::path rel;
  uint64_t size = 0;
  timespec mtime{};
};

struct Tree {
  std::vector<fs::path> dirs;  // relative, parents first
  std::vector<fs::path> symlinks;
  std::vector<FileEntry> files;
  std::vector<std::string> skipped_special;
};

Tree Walk(const fs::path& src, std::vector<TaskResult>* errors) {
  Tree tree;
  std::error_code ec;
  fs::recursive_directory_iterator it(src, fs::directory_options::none, ec), end;
  if (ec) BadInput("cannot read SRC '" + src.string() + "': " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) {
      errors->push_back({false, it->path().string(), "read directory: " + ec.message(), 0});
      ec.clear();
      continue;
    }
    const fs::path rel = it->path().lexically_relative(src);  // Not fs::relative: it follows symlinks.
    struct stat st;
    if (::lstat(it->path().c_str(), &st) != 0) {
      errors->push_back({false, it->path().string(), std::string("lstat: ") + std::strerror(errno), 0});
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      tree.dirs.push_back(rel);
    } else if (S_ISLNK(st.st_mode)) {
      tree.symlinks.push_back(rel);
    } else if (S_ISREG(st.st_mode)) {
      tree.files.push_back({rel, static_cast<uint64_t>(st.st_size), st.st_mtim});
    } else {
      tree.skipped_special.push_back(it->path().string());
    }
  }
  return tree;
}

bool SameSizeAndTime(const fs::path& dst, const FileEntry& f) {
  struct stat st;
  if (::stat(dst.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  return static_cast<uint64_t>(st.st_size) == f.size && st.st_mtim.tv_sec == f.mtime.tv_sec &&
         st.st_mtim.tv_nsec == f.mtime.tv_nsec;
}

fs::path TempName(const fs::path& dst) {
  return dst.parent_path() / ("." + dst.filename().string() + ".mpcopy-tmp");
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

// The progress display: a bar on a terminal, a line a second otherwise.
class Progress {
 public:
  Progress(size_t files, uint64_t bytes)
      : total_files_(files), total_bytes_(bytes), tty_(isatty(STDERR_FILENO) == 1) {}

  void AddBytes(uint64_t n) { bytes_ += n; }
  void FileDone() { ++files_; }

  void Show(bool final = false) {
    if (FLAGS_quiet) return;
    const auto now = std::chrono::steady_clock::now();
    if (!final && now - last_ < (tty_ ? std::chrono::milliseconds(100) : std::chrono::seconds(1))) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? bytes_ / secs : 0;
    const double left = rate > 0 ? (total_bytes_ - std::min(bytes_, total_bytes_)) / rate : 0;
    const std::string counts =
        absl::StrFormat("%zu/%zu files  %s/%s  %s/s  ETA %ds", files_, total_files_,
                        HumanBytes(static_cast<double>(bytes_)), HumanBytes(static_cast<double>(total_bytes_)),
                        HumanBytes(rate), static_cast<int>(left + 0.5));
    if (tty_) {
      const double fraction = total_bytes_ ? static_cast<double>(bytes_) / total_bytes_
                                           : (total_files_ ? static_cast<double>(files_) / total_files_ : 1.0);
      const int width = 30, filled = static_cast<int>(std::min(1.0, fraction) * width);
      std::fprintf(stderr, "\r[%s%s] %s   ", std::string(filled, '#').c_str(),
                   std::string(width - filled, '.').c_str(), counts.c_str());
      if (final) std::fputc('\n', stderr);
    } else {
      std::fprintf(stderr, "progress: %s\n", counts.c_str());
    }
  }

 private:
  const size_t total_files_;
  const uint64_t total_bytes_;
  const bool tty_;
  size_t files_ = 0;
  uint64_t bytes_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace

// Batches of small files (up to kBatchFiles files or kBatchBytes each, one
// pool task each: a hand-over to a worker costs more than copying a small
// file). A batch holds files of one folder, and batches go out round-robin
// over the folders, so that the workers create files in different folders
// at once (creating two files in one folder serializes on that folder's lock
// in the kernel).
constexpr size_t kBatchFiles = 32;
constexpr uint64_t kBatchBytes = 8 << 20;

std::vector<std::vector<size_t>> SmallFileBatches(const std::vector<const FileEntry*>& files,
                                                  uint64_t small_limit) {
  std::map<fs::path, std::vector<std::vector<size_t>>> by_folder;
  std::map<fs::path, uint64_t> open_batch_bytes;
  for (size_t i = 0; i < files.size(); ++i) {
    if (files[i]->size > small_limit) continue;
    const fs::path folder = files[i]->rel.parent_path();
    auto& batches = by_folder[folder];
    uint64_t& bytes = open_batch_bytes[folder];
    if (batches.empty() || batches.back().size() == kBatchFiles || bytes >= kBatchBytes) {
      batches.emplace_back();
      bytes = 0;
    }
    batches.back().push_back(i);
    bytes += files[i]->size;
  }
  std::vector<std::vector<std::vector<size_t>>*> left;
  for (auto& [folder, batches] : by_folder) left.push_back(&batches);
  std::vector<std::vector<size_t>> order;
  for (size_t k = 0; !left.empty(); ++k) {
    std::erase_if(left, [&](std::vector<std::vector<size_t>>* batches) {
      if (k >= batches->size()) return true;  // Emptied folders leave the round.
      order.push_back(std::move((*batches)[k]));
      return false;
    });
  }
  return order;
}

int main(int argc, char** argv) {
  apps::Init(&argc, &argv,
             "mpcopy SRC DST [--jobs N] [--quiet] [--checksum] [--verify]: copy a folder tree with "
             "worker processes");
  if (argc != 3) BadInput("usage: mpcopy SRC DST [--jobs N] [--quiet] [--checksum] [--verify]");
  const fs::path src_arg = argv[1], dst = fs::absolute(argv[2]).lexically_normal();

  // Bad input is refused before anything is written.
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

  std::vector<TaskResult> errors;
  Tree tree = Walk(src, &errors);
  for (const auto& special : tree.skipped_special) {
    errors.push_back({false, special, "not a regular file, folder or symlink: skipped", 0});
  }

  // Folders first (writable while we fill them; their modes and times are
  // applied at the end), then symlinks.
  fs::create_directories(dst, ec);
  if (ec) BadInput("cannot create DST '" + dst.string() + "': " + ec.message());
  for (const auto& rel : tree.dirs) {
    fs::create_directory(dst / rel, ec);
    if (ec) errors.push_back({false, (dst / rel).string(), "mkdir: " + ec.message(), 0});
  }
  for (const auto& rel : tree.symlinks) {
    const fs::path target = fs::read_symlink(src / rel, ec);
    if (ec) {
      errors.push_back({false, (src / rel).string(), "readlink: " + ec.message(), 0});
      continue;
    }
    if (fs::is_symlink(fs::symlink_status(dst / rel)) && fs::read_symlink(dst / rel, ec) == target) continue;
    fs::remove(dst / rel, ec);
    fs::create_symlink(target, dst / rel, ec);
    if (ec) errors.push_back({false, (dst / rel).string(), "symlink: " + ec.message(), 0});
  }

  mpcopy::ProgressQueue progress_queue;  // Before the pool: its workers inherit it.
  mpcopy::UseProgressQueue(&progress_queue);
  mp::Pool pool(mp::PoolOptions{.processes = FLAGS_jobs > 0 ? FLAGS_jobs : mp::cpu_count()});

  // Which files need copying: not there yet, or different.
  std::vector<const FileEntry*> todo;
  size_t unchanged = 0;
  if (FLAGS_checksum) {
    std::vector<std::tuple<std::string, std::string>> pairs;
    std::vector<const FileEntry*> candidates;
    for (const auto& f : tree.files) {
      struct stat st;
      if (::stat((dst / f.rel).c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) == f.size) {
        pairs.emplace_back((src / f.rel).string(), (dst / f.rel).string());
        candidates.push_back(&f);
      } else {
        todo.push_back(&f);
      }
    }
    const auto same = pool.starmap(mpcopy::SameChecksum, pairs);
    for (size_t i = 0; i < same.size(); ++i) same[i].ok ? ++unchanged : (todo.push_back(candidates[i]), 0);
  } else {
    for (const auto& f : tree.files) {
      SameSizeAndTime(dst / f.rel, f) ? ++unchanged : (todo.push_back(&f), 0);
    }
  }

  uint64_t total_bytes = 0;
  for (const FileEntry* f : todo) total_bytes += f->size;
  Progress progress(todo.size(), total_bytes);

  // Results arrive on the pool's result thread; the main thread drains them.
  std::mutex mu;
  std::condition_variable all_arrived;
  std::vector<std::pair<size_t, TaskResult>> finished;  // guarded by mu
  size_t arrived = 0;                                   // guarded by mu
  size_t expected = SIZE_MAX;  // guarded by mu; known once every task is submitted
  // The main thread is woken only by the last result (and otherwise every
  // 100 ms for the display): a wake-up per file would cost more than the copy.
  auto Arrived = [&](size_t index, TaskResult r) {
    bool last;
    {
      std::lock_guard<std::mutex> lock(mu);
      finished.emplace_back(index, std::move(r));
      last = ++arrived == expected;
    }
    if (last) all_arrived.notify_one();
  };
  const uint64_t chunk = static_cast<uint64_t>(std::max<int64_t>(1, FLAGS_chunk_mib)) << 20;
  std::map<size_t, size_t> ranges_left;  // file index -> ranges not yet done
  std::map<size_t, bool> range_failed;
  size_t outstanding = 0;
  auto on_done = [&](size_t index) {
    return mp::callbacks(
        [&, index](const TaskResult& r) { Arrived(index, r); },
        [&, index](const mp::Error& e) {
          Arrived(index, TaskResult{false, todo[index]->rel.string(), e.what(), 0});
        });
  };
  for (std::vector<size_t>& batch : SmallFileBatches(todo, chunk)) {
    std::vector<mpcopy::CopyTask> tasks;
    for (size_t i : batch) {
      const fs::path target = dst / todo[i]->rel;
      tasks.push_back({(src / todo[i]->rel).string(), TempName(target).string(), target.string(), 0,
                       0, true});
    }
    outstanding += batch.size();
    pool.apply_async(mp::callbacks(
                         [&, batch](const std::vector<TaskResult>& results) {
                           for (size_t k = 0; k < batch.size(); ++k) Arrived(batch[k], results[k]);
                         },
                         [&, batch](const mp::Error& e) {
                           for (size_t i : batch) {
                             Arrived(i, TaskResult{false, todo[i]->rel.string(), e.what(), 0});
                           }
                         }),
                     mpcopy::CopyFiles, std::move(tasks));
  }
  std::vector<size_t> big;  // files copied in ranges
  for (size_t i = 0; i < todo.size(); ++i) {
    const FileEntry& f = *todo[i];
    if (f.size <= chunk) continue;
    // A big file: a temporary of the final size, filled in ranges.
    const fs::path target = dst / f.rel, tmp = TempName(target);
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(f.size)) != 0) {
      errors.push_back({false, target.string(), std::string("create: ") + std::strerror(errno), 0});
      if (fd >= 0) ::close(fd);
      continue;
    }
    ::close(fd);
    big.push_back(i);
  }
  // Ranges go out round-robin over the big files, so that the workers copy
  // different files at once: ranges of one file written side by side
  // contend for that file's inode lock, and the copy is no faster than one
  // worker's.
  for (uint64_t off = 0; !big.empty(); off += chunk) {
    std::erase_if(big, [&](size_t i) {
      const FileEntry& f = *todo[i];
      if (off >= f.size) return true;
      const fs::path target = dst / f.rel, tmp = TempName(target);
      pool.apply_async(on_done(i), mpcopy::CopyRange,
                       CopyTask{(src / f.rel).string(), tmp.string(), target.string(), off,
                                std::min(chunk, f.size - off), false});
      ++ranges_left[i];
      ++outstanding;
      return false;
    });
  }
  pool.close();
  {
    std::lock_guard<std::mutex> lock(mu);
    expected = outstanding;
  }

  size_t copied = 0;
  while (outstanding > 0) {
    std::vector<std::pair<size_t, TaskResult>> batch;
    {
      // The timeout paces the progress display (big files' ranges report
      // their bytes through the queue as they go).
      std::unique_lock<std::mutex> lock(mu);
      all_arrived.wait_for(lock, std::chrono::milliseconds(100), [&] { return arrived == expected; });
      batch.swap(finished);
    }
    try {
      while (true) progress.AddBytes(progress_queue.get_nowait());
    } catch (const mp::Empty&) {
    }
    for (auto& [index, r] : batch) {
      --outstanding;
      auto ranged = ranges_left.find(index);
      if (ranged == ranges_left.end()) {
        progress.AddBytes(r.bytes);  // Whole files report their bytes here only.
        if (r.ok) {
          ++copied;
        } else {
          errors.push_back(r);
          ::unlink(TempName(dst / todo[index]->rel).c_str());
        }
        progress.FileDone();
        continue;
      }
      if (!r.ok) range_failed[index] = true, errors.push_back(r);
      if (--ranged->second > 0) continue;
      const fs::path target = dst / todo[index]->rel, tmp = TempName(target);
      if (range_failed[index]) {
        ::unlink(tmp.c_str());
      } else {
        TaskResult done = mpcopy::FinishFile((src / todo[index]->rel).string(), tmp.string(), target.string());
        done.ok ? ++copied : (errors.push_back(done), 0);
      }
      progress.FileDone();
    }
    progress.Show();
  }
  pool.join();
  try {
    while (true) progress.AddBytes(progress_queue.get_nowait());
  } catch (const mp::Empty&) {
  }
  progress.Show(/*final=*/true);

  // Folder modes and times last, deepest first, so that writing into them
  // was never blocked and their times are not disturbed afterwards.
  for (auto it = tree.dirs.rbegin(); it != tree.dirs.rend(); ++it) {
    struct stat st;
    if (::stat((src / *it).c_str(), &st) != 0) continue;
    ::chmod((dst / *it).c_str(), st.st_mode & 07777);
    const timespec times[2] = {st.st_atim, st.st_mtim};
    ::utimensat(AT_FDCWD, (dst / *it).c_str(), times, 0);
  }

  if (FLAGS_verify) {
    mp::Pool verifier(mp::PoolOptions{.processes = FLAGS_jobs > 0 ? FLAGS_jobs : mp::cpu_count()});
    std::vector<std::tuple<std::string, std::string>> pairs;
    for (const auto& f : tree.files) pairs.emplace_back((src / f.rel).string(), (dst / f.rel).string());
    size_t verified = 0;
    for (const TaskResult& r : verifier.starmap(mpcopy::SameChecksum, pairs)) {
      r.ok ? ++verified : (errors.push_back(r), 0);
    }
    if (!FLAGS_quiet) std::fprintf(stderr, "verified %zu files\n", verified);
  }

  std::fprintf(stderr, "mpcopy: copied %zu files (%s), %zu unchanged skipped, %zu errors\n", copied,
               HumanBytes(static_cast<double>(total_bytes)).c_str(), unchanged, errors.size());
  for (const auto& e : errors) std::fprintf(stderr, "  %s: %s\n", e.path.c_str(), e.error.c_str());
  return errors.empty() ? 0 : 1;
}
