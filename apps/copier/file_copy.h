// Copying one file's bytes and attributes between open descriptors: the
// part of mpcopy that knows about holes, extended attributes, owners and
// the bits that must not survive a change of owner.
#ifndef APPS_COPIER_FILE_COPY_H_
#define APPS_COPIER_FILE_COPY_H_

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mpcopy {

// Why a copy step failed: the step ("read", "write", "chown"...) and errno.
struct StepError {
  std::string step;
  int error = 0;
  std::string Describe() const;  // "write: No space left on device"
};

// Who runs the copy: root keeps owners (as cp -a does); others keep the
// group when they belong to it, and drop setuid/setgid bits they cannot
// keep with their owner.
struct Identity {
  bool root = false;
  uid_t uid = 0;
  gid_t gid = 0;
  static Identity OfThisProcess();
};

// True if the file has holes worth keeping (fewer blocks than its size).
bool LooksSparse(const struct stat& st);

// Copies [offset, offset + length) of `in` to the same offsets of `out`:
// in the kernel (copy_file_range) where it can, else read/write; with
// `sparse`, only the data extents (SEEK_DATA/SEEK_HOLE), so holes stay
// holes. A source shorter than expected is an error (it changed). On error
// returns false and sets *error.
bool CopyBytes(int in, int out, uint64_t offset, uint64_t length, bool sparse, StepError* error);

// Gives `out` the attributes of the source `in` (its stat in `st`): owner
// (as `who` may), mode (without setuid/setgid when the owner or group was
// not kept), extended attributes, and last the access and modification
// times. `out` may be an O_PATH descriptor (special files): then the
// calls go through /proc/self/fd. `created_mode` is the mode `out` was
// created with (its chmod is skipped when that is already right; likewise
// the chown when the owner is already right). Returns the attributes not
// kept (the copy itself stands).
std::vector<StepError> KeepAttributes(int in, int out, const struct stat& st, const Identity& who,
                                      bool out_is_path = false, mode_t created_mode = static_cast<mode_t>(-1));

}  // namespace mpcopy

#endif  // APPS_COPIER_FILE_COPY_H_
