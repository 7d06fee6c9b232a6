// The work of mpcopy that runs in pool workers: listing a folder (and
// making its subfolders in DST), copying a batch of one folder's entries,
// copying a byte range of a big file, comparing checksums. Workers find SRC
// and DST through the root descriptors their parent opened before it
// started the pool (SetUp); every path in a task is relative to them and is
// opened without following symlinks (beneath.h). Every task reports what
// went wrong instead of throwing, so one bad file never stops the copy.
#ifndef APPS_COPIER_COPY_TASKS_H_
#define APPS_COPIER_COPY_TASKS_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "apps/copier/file_copy.h"

namespace mpcopy {

// What every worker knows; set once before the pool starts (workers are
// forked and inherit it).
struct Settings {
  int src_root = -1;   // the SRC folder (O_RDONLY | O_DIRECTORY)
  int dst_root = -1;   // the DST folder
  Identity who;
  bool dry_run = false;
  bool checksum = false;       // "unchanged" means same checksum, not same size and mtime
  uint64_t big_file = 16 << 20;  // files larger than this are copied in ranges
  int change_retries = 2;      // copies again of a file that changed while copied
};
void SetUp(const Settings& settings);
const Settings& settings();

// Something that went wrong, with the path (relative to SRC or DST, as
// `where` says) and the reason.
struct Problem {
  std::string path;
  std::string reason;
  bool in_dst = false;
  bool out_of_space = false;  // ENOSPC or EDQUOT: the run stops
  template <class Archive>
  void serialize(Archive& ar) {
    ar(path, reason, in_dst, out_of_space);
  }
};

// One folder's names (not "." or ".."), as listed from SRC.
struct Listing {
  std::string folder;                // relative to SRC; "" is SRC itself
  std::vector<std::string> folders;  // subfolders (made in DST, unless a dry run)
  std::vector<unsigned char> made;   // 1 where the subfolder was made now (it holds nothing yet)
  std::vector<std::string> names;    // everything else
  std::vector<unsigned char> types;  // d_type of each of `names` (DT_UNKNOWN if the fs does not say)
  std::vector<Problem> problems;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(folder, folders, made, names, types, problems);
  }
};

// Lists SRC/folder, and makes each subfolder in DST/folder (a symlink there
// is replaced by a folder; a file there is a problem and the subfolder is
// not listed).
Listing ListFolder(std::string folder);

// Entries of one folder to copy.
struct Batch {
  std::string folder;
  std::vector<std::string> names;
  std::vector<unsigned char> types;
  bool copy_linked = false;  // copy files with other hard links too (else defer them)
  bool fresh = false;        // DST/folder was made by this run: nothing there to compare with
  template <class Archive>
  void serialize(Archive& ar) {
    ar(folder, names, types, copy_linked, fresh);
  }
};

// What became of one entry.
enum class Outcome : uint8_t {
  kCopied,      // a regular file, symlink or special file made in DST
  kUnchanged,   // already identical in DST
  kWouldCopy,   // a dry run: it would be copied
  kBig,         // deferred: to be copied in ranges
  kLinked,      // deferred: has other hard links
  kFailed,
  kMaxValue = kFailed,
};

struct EntryResult {
  std::string name;
  Outcome outcome = Outcome::kFailed;
  uint64_t bytes = 0;
  // For kLinked: the source's identity (its hard-link group).
  uint64_t dev = 0, ino = 0;
  std::vector<Problem> problems;  // kFailed: why; else the attributes not kept
  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, outcome, bytes, dev, ino, problems);
  }
};

// Copies a batch: regular files (each written unnamed or under a temporary
// name and given its name only when complete and unchanged), symlinks as
// symlinks, FIFOs, sockets and devices recreated (never opened for reading).
std::vector<EntryResult> CopyBatch(Batch batch);

// A byte range of a big file, written into its assembly file in DST.
struct Range {
  std::string src;   // relative to SRC
  std::string tmp;   // relative to DST
  uint64_t offset = 0, length = 0;
  bool sparse = false;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(src, tmp, offset, length, sparse);
  }
};
std::vector<Problem> CopyRange(Range range);

// Compares SRC/rel and DST/rel by SHA-256 (--verify).
std::vector<Problem> SameChecksum(std::string rel);

// Hex SHA-256 of an open file, or "" with *error set.
std::string Digest(int fd, StepError* error);

}  // namespace mpcopy

#endif  // APPS_COPIER_COPY_TASKS_H_
