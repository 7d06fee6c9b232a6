// The work of mpcopy that runs in pool workers: copying a file, or a byte
// range of a big one, into its temporary name; finishing a file (mode,
// times, rename); comparing checksums. Every task reports what went wrong
// instead of throwing, so one bad file never stops the copy.
#ifndef APPS_COPIER_COPY_TASKS_H_
#define APPS_COPIER_COPY_TASKS_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ipc/queue.h"

namespace mpcopy {

// One unit of work: a whole file, or [offset, offset + length) of one.
struct CopyTask {
  std::string src;
  std::string tmp;  // written here, renamed to dst when complete
  std::string dst;
  uint64_t offset = 0;
  uint64_t length = 0;
  bool whole = true;  // a whole file: the task also finishes it
  template <class Archive>
  void serialize(Archive& ar) {
    ar(src, tmp, dst, offset, length, whole);
  }
};

struct TaskResult {
  bool ok = true;
  std::string path;
  std::string error;
  uint64_t bytes = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(ok, path, error, bytes);
  }
};

// Progress events from the workers: bytes copied since the last event.
using ProgressQueue = mp::Queue<uint64_t>;

// UseProgressQueue names the queue CopyRange reports to. Call it before the
// pool is created: the workers are forked from this process and inherit it
// (an mp::Queue is shared by inheritance, not passed as a task argument).
void UseProgressQueue(ProgressQueue* queue);

// CopyRange copies the task's bytes (copy_file_range, else read/write),
// reporting progress every few MiB. A whole-file task then finishes the file.
TaskResult CopyRange(CopyTask task);

// CopyFiles copies several whole small files in one task (CopyRange each):
// one pool hand-over for many files, instead of one each.
std::vector<TaskResult> CopyFiles(std::vector<CopyTask> tasks);

// FinishFile gives `tmp` the mode and times of `src` and renames it to `dst`.
TaskResult FinishFile(const std::string& src, const std::string& tmp, const std::string& dst);

// SameChecksum compares two files' SHA-256 digests.
TaskResult SameChecksum(std::string a, std::string b);

// Hex SHA-256 of a file, or "" with *error set.
std::string FileDigest(const std::string& path, std::string* error);

}  // namespace mpcopy

#endif  // APPS_COPIER_COPY_TASKS_H_
