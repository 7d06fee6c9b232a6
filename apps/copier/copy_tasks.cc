#include "apps/copier/copy_tasks.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "apps/copier/beneath.h"

namespace mpcopy {
namespace {

Settings g_settings;

Problem SrcProblem(const std::string& rel, const StepError& e) {
  return Problem{rel, e.Describe(), false, false};
}
Problem DstProblem(const std::string& rel, const StepError& e) {
  return Problem{rel, e.Describe(), true, IsOutOfSpace(e.error)};
}
StepError Errno(const char* step) { return StepError{step, errno}; }

// Makes `name` a folder in `dir` that we can write into: made if missing; a
// symlink (or FIFO, socket, device) in its place is replaced, never
// followed; a folder already there is kept (made writable for us: its own
// mode is given back at the end).
bool MakeFolder(int dir, const std::string& name, bool* made, StepError* error) {
  *made = true;
  if (::mkdirat(dir, name.c_str(), 0700) == 0) return true;
  *made = false;
  if (errno != EEXIST) return (*error = Errno("mkdir"), false);
  struct stat st;
  if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return (*error = Errno("stat"), false);
  if (S_ISDIR(st.st_mode)) {
    if ((st.st_mode & 0700) == 0700) return true;
    Fd folder(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!folder.valid() || ::fchmod(folder.get(), (st.st_mode & 07777) | 0700) != 0) {
      return (*error = Errno("make writable"), false);
    }
    return true;
  }
  if (S_ISREG(st.st_mode)) {
    *error = StepError{"a file is in the way of the folder", EEXIST};
    return false;
  }
  if (::unlinkat(dir, name.c_str(), 0) != 0) return (*error = Errno("remove what is in the way"), false);
  if (::mkdirat(dir, name.c_str(), 0700) != 0) return (*error = Errno("mkdir"), false);
  *made = true;
  return true;
}

EntryResult Failed(const std::string& name, Problem problem) {
  EntryResult r;
  r.name = name;
  r.outcome = Outcome::kFailed;
  r.problems.push_back(std::move(problem));
  return r;
}

// What one batch works in.
struct Folder {
  std::string rel;
  int src = -1;  // O_PATH descriptors of SRC/rel and DST/rel (-1 in a dry run into a new folder)
  int dst = -1;
  bool fresh = false;  // made by this run: no entry there to compare with or replace
  Identity who;  // the group a new file gets here, if the folder is setgid
  std::string Path(const std::string& name) const { return JoinRel(rel, name); }
};

void AddLost(const Folder& f, const std::string& name, const std::vector<StepError>& lost, EntryResult* r) {
  for (const StepError& e : lost) r->problems.push_back(DstProblem(f.Path(name), e));
}

bool SameTime(const timespec& a, const timespec& b) { return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec; }

// Is DST/name already a copy of the source file `in` (stat `st`)?
bool UnchangedFile(const Folder& f, const std::string& name, int in, const struct stat& st) {
  if (f.dst < 0 || f.fresh) return false;
  struct stat d;
  if (::fstatat(f.dst, name.c_str(), &d, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(d.st_mode)) return false;
  if (d.st_size != st.st_size || (d.st_mode & 0777) != (st.st_mode & 0777)) return false;
  if (f.who.root && (d.st_uid != st.st_uid || d.st_gid != st.st_gid)) return false;
  if (!g_settings.checksum) return SameTime(d.st_mtim, st.st_mtim);
  Fd copy(::openat(f.dst, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!copy.valid()) return false;
  StepError ignored;
  const std::string a = Digest(in, &ignored);
  return !a.empty() && a == Digest(copy.get(), &ignored);
}

// The file being written: unnamed (O_TMPFILE) where the file system allows,
// else under a transient name; named in DST only when complete.
struct Output {
  Fd fd;
  std::string tmp;  // "" for an unnamed file

  // `mode`: the file's permission bits (mpcopy runs with umask 0), so that
  // most files need no chmod afterwards.
  bool Create(int dir, mode_t mode) {
    fd = Fd(::openat(dir, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, mode));
    if (fd.valid() || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)) return fd.valid();
    tmp = TransientName();
    fd = Fd(::openat(dir, tmp.c_str(), O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, mode));
    return fd.valid();
  }
  void Discard(int dir) {
    fd = Fd();
    if (!tmp.empty()) ::unlinkat(dir, tmp.c_str(), 0);
  }
  bool Publish(int dir, const std::string& name) {
    return tmp.empty() ? LinkInto(fd.get(), dir, name) : RenameInto(dir, tmp, name);
  }
};

EntryResult CopySpecial(const Folder& f, const std::string& name, const struct stat& st) {
  EntryResult r;
  r.name = name;
  if (f.dst >= 0 && !f.fresh) {
    struct stat d;
    if (::fstatat(f.dst, name.c_str(), &d, AT_SYMLINK_NOFOLLOW) == 0 &&
        (d.st_mode & S_IFMT) == (st.st_mode & S_IFMT) && d.st_rdev == st.st_rdev &&
        (d.st_mode & 07777) == (st.st_mode & 07777)) {
      r.outcome = Outcome::kUnchanged;
      return r;
    }
  }
  if (g_settings.dry_run) {
    r.outcome = Outcome::kWouldCopy;
    return r;
  }
  // Made under a transient name, given its attributes through O_PATH
  // descriptors (a FIFO is never opened for reading: that would block, and
  // opening a device may act on it), then renamed into place.
  const std::string tmp = TransientName();
  if (::mknodat(f.dst, tmp.c_str(), (st.st_mode & S_IFMT) | 0600, st.st_rdev) != 0) {
    return Failed(name, DstProblem(f.Path(name), Errno(S_ISFIFO(st.st_mode) ? "mkfifo" : "mknod")));
  }
  Fd in(::openat(f.src, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  Fd out(::openat(f.dst, tmp.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!in.valid() || !out.valid()) {
    const StepError e = Errno("open");
    ::unlinkat(f.dst, tmp.c_str(), 0);
    return Failed(name, DstProblem(f.Path(name), e));
  }
  AddLost(f, name, KeepAttributes(in.get(), out.get(), st, f.who, /*out_is_path=*/true), &r);
  if (!RenameInto(f.dst, tmp, name)) return Failed(name, DstProblem(f.Path(name), Errno("rename")));
  r.outcome = Outcome::kCopied;
  return r;
}

bool ReadLink(int dir, const std::string& name, std::string* target) {
  std::string buf(256, '\0');
  for (;;) {
    const ssize_t n = ::readlinkat(dir, name.c_str(), buf.data(), buf.size());
    if (n < 0) return false;
    if (static_cast<size_t>(n) < buf.size()) {
      target->assign(buf.data(), static_cast<size_t>(n));
      return true;
    }
    buf.resize(buf.size() * 4);
  }
}

EntryResult CopySymlink(const Folder& f, const std::string& name, const struct stat& st) {
  EntryResult r;
  r.name = name;
  std::string target, existing;
  if (!ReadLink(f.src, name, &target)) return Failed(name, SrcProblem(f.Path(name), Errno("readlink")));
  if (f.dst >= 0 && !f.fresh && ReadLink(f.dst, name, &existing) && existing == target) {
    r.outcome = Outcome::kUnchanged;
    return r;
  }
  if (g_settings.dry_run) {
    r.outcome = Outcome::kWouldCopy;
    return r;
  }
  if (::symlinkat(target.c_str(), f.dst, name.c_str()) != 0) {
    if (errno != EEXIST) return Failed(name, DstProblem(f.Path(name), Errno("symlink")));
    const std::string tmp = TransientName();
    if (::symlinkat(target.c_str(), f.dst, tmp.c_str()) != 0 || !RenameInto(f.dst, tmp, name)) {
      return Failed(name, DstProblem(f.Path(name), Errno("symlink")));
    }
  }
  // The link's own owner and times (AT_SYMLINK_NOFOLLOW: never its target's).
  if (f.who.root && ::fchownat(f.dst, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0) {
    r.problems.push_back(DstProblem(f.Path(name), Errno("keep owner")));
  }
  const timespec times[2] = {st.st_atim, st.st_mtim};
  if (::utimensat(f.dst, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    r.problems.push_back(DstProblem(f.Path(name), Errno("set times")));
  }
  r.outcome = Outcome::kCopied;
  return r;
}

EntryResult Deferred(const std::string& name, Outcome outcome, const struct stat& st) {
  EntryResult r;
  r.name = name;
  r.outcome = outcome;
  r.bytes = static_cast<uint64_t>(st.st_size);
  r.dev = st.st_dev;
  r.ino = st.st_ino;
  return r;
}

// An entry that is not (or is no longer) a regular file, by its lstat.
EntryResult CopyOther(const Folder& f, const std::string& name, const struct stat& st) {
  switch (st.st_mode & S_IFMT) {
    case S_IFLNK:
      return CopySymlink(f, name, st);
    case S_IFDIR:
      return Failed(name, Problem{f.Path(name), "became a folder while being copied; run again", false, false});
    case S_IFREG:  // A symlink or special file a moment ago: it keeps changing.
      return Failed(name, Problem{f.Path(name), "changed while being copied; run again", false, false});
    default:
      return CopySpecial(f, name, st);
  }
}

EntryResult CopyRegular(const Folder& f, const std::string& name, bool copy_linked) {
  // O_NONBLOCK | O_NOCTTY: if the name became a FIFO or a terminal since it
  // was listed, the open neither blocks nor takes it over; fstat then sends
  // it down the special-file path.
  Fd in(::openat(f.src, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  struct stat st;
  if (!in.valid()) {
    const StepError open_error = Errno("open");
    if (open_error.error == ELOOP && ::fstatat(f.src, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      return CopyOther(f, name, st);  // Now a symlink.
    }
    return Failed(name, SrcProblem(f.Path(name), open_error));
  }
  if (::fstat(in.get(), &st) != 0) return Failed(name, SrcProblem(f.Path(name), Errno("stat")));
  if (!S_ISREG(st.st_mode)) {
    in = Fd();
    return CopyOther(f, name, st);
  }
  if (st.st_nlink > 1 && !copy_linked) return Deferred(name, Outcome::kLinked, st);
  if (UnchangedFile(f, name, in.get(), st)) {
    EntryResult r;
    r.name = name;
    r.outcome = Outcome::kUnchanged;
    return r;
  }
  if (g_settings.dry_run) {
    EntryResult r = Deferred(name, Outcome::kWouldCopy, st);
    return r;
  }
  if (static_cast<uint64_t>(st.st_size) > g_settings.big_file) return Deferred(name, Outcome::kBig, st);
  for (int attempt = 0; attempt <= g_settings.change_retries; ++attempt) {
    Output out;
    const mode_t created_mode = st.st_mode & 0777;
    if (!out.Create(f.dst, created_mode)) return Failed(name, DstProblem(f.Path(name), Errno("create")));
    const bool sparse = LooksSparse(st);
    StepError e;
    if (!CopyBytes(in.get(), out.fd.get(), 0, static_cast<uint64_t>(st.st_size), sparse, &e) ||
        (sparse && ::ftruncate(out.fd.get(), st.st_size) != 0 && (e = Errno("truncate"), true))) {
      out.Discard(f.dst);
      if (e.error == ENODATA && ::fstat(in.get(), &st) == 0) continue;  // It shrank while we read it: a change.
      return Failed(name, e.step == "read" ? SrcProblem(f.Path(name), e) : DstProblem(f.Path(name), e));
    }
    const std::vector<StepError> lost = KeepAttributes(in.get(), out.fd.get(), st, f.who, false, created_mode);
    struct stat after;
    if (::fstat(in.get(), &after) != 0) return Failed(name, SrcProblem(f.Path(name), Errno("stat")));
    if (!SameVersion(st, after)) {  // Changed while copied: never published as a copy of it.
      out.Discard(f.dst);
      st = after;
      continue;
    }
    if (!out.Publish(f.dst, name)) {
      const StepError publish = Errno(out.tmp.empty() ? "link" : "rename");
      out.Discard(f.dst);
      return Failed(name, DstProblem(f.Path(name), publish));
    }
    EntryResult r;
    r.name = name;
    r.outcome = Outcome::kCopied;
    r.bytes = static_cast<uint64_t>(st.st_size);
    AddLost(f, name, lost, &r);
    if (!out.fd.Close()) r.problems.push_back(DstProblem(f.Path(name), Errno("close")));
    return r;
  }
  return Failed(name, Problem{f.Path(name),
                              absl::StrCat("changed while being copied (", g_settings.change_retries + 1,
                                           " tries); not copied, run again"),
                              false, false});
}

EntryResult CopyEntry(const Folder& f, const std::string& name, unsigned char type, bool copy_linked) {
  if (type == DT_REG) return CopyRegular(f, name, copy_linked);
  struct stat st;
  if (::fstatat(f.src, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return Failed(name, SrcProblem(f.Path(name), Errno("stat")));
  }
  return S_ISREG(st.st_mode) ? CopyRegular(f, name, copy_linked) : CopyOther(f, name, st);
}

}  // namespace

void SetUp(const Settings& settings) { g_settings = settings; }
const Settings& settings() { return g_settings; }

Listing ListFolder(std::string folder) {
  Listing out;
  out.folder = folder;
  Fd src = OpenBeneath(g_settings.src_root, folder, O_RDONLY | O_DIRECTORY);
  if (!src.valid()) {
    out.problems.push_back(SrcProblem(folder, Errno("open folder")));
    return out;
  }
  Fd dst;
  if (!g_settings.dry_run) {
    dst = OpenBeneath(g_settings.dst_root, folder, O_PATH | O_DIRECTORY);
    if (!dst.valid()) {
      out.problems.push_back(DstProblem(folder, StepError{"open folder (nothing in it copied)", errno}));
      return out;
    }
  }
  // (fdopendir owns the descriptor it is given: a duplicate, so that `src`
  // stays usable for fstatat.)
  const int listed = ::fcntl(src.get(), F_DUPFD_CLOEXEC, 0);
  struct CloseDir {
    void operator()(DIR* d) const { ::closedir(d); }
  };
  std::unique_ptr<DIR, CloseDir> dir(listed < 0 ? nullptr : ::fdopendir(listed));
  if (dir == nullptr) {
    out.problems.push_back(SrcProblem(folder, Errno("read folder")));
    if (listed >= 0) ::close(listed);
    return out;
  }
  std::vector<std::string> subfolders;
  for (;;) {
    errno = 0;
    const dirent* e = ::readdir(dir.get());
    if (e == nullptr) {
      if (errno != 0) out.problems.push_back(SrcProblem(folder, Errno("read folder")));
      break;
    }
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    unsigned char type = e->d_type;
    if (type == DT_UNKNOWN) {
      struct stat st;
      if (::fstatat(src.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) type = DT_DIR;
    }
    if (type == DT_DIR) {
      subfolders.push_back(name);
    } else {
      out.names.push_back(name);
      out.types.push_back(type);
    }
  }
  for (const std::string& name : subfolders) {
    StepError e;
    bool made = false;
    if (g_settings.dry_run || MakeFolder(dst.get(), name, &made, &e)) {
      out.folders.push_back(name);
      out.made.push_back(made ? 1 : 0);
    } else {
      out.problems.push_back(DstProblem(JoinRel(folder, name), StepError{
          absl::StrCat(e.step, " (nothing in it copied)").c_str(), e.error}));
    }
  }
  return out;
}

std::vector<EntryResult> CopyBatch(Batch batch) {
  std::vector<EntryResult> results;
  results.reserve(batch.names.size());
  auto all_failed = [&](const std::string& step, bool in_dst) {
    const int error = errno;
    for (const std::string& name : batch.names) {
      results.push_back(Failed(name, Problem{JoinRel(batch.folder, name), StepError{step, error}.Describe(),
                                             in_dst, in_dst && IsOutOfSpace(error)}));
    }
    return results;
  };
  Fd src = OpenBeneath(g_settings.src_root, batch.folder, O_PATH | O_DIRECTORY);
  if (!src.valid()) return all_failed("open folder", false);
  Fd dst = OpenBeneath(g_settings.dst_root, batch.folder, O_PATH | O_DIRECTORY);
  if (!dst.valid() && !g_settings.dry_run) return all_failed("open folder", true);
  Folder f{batch.folder, src.get(), dst.get(), batch.fresh, g_settings.who};
  struct stat dst_st;
  if (f.dst >= 0 && ::fstat(f.dst, &dst_st) == 0 && (dst_st.st_mode & S_ISGID)) f.who.gid = dst_st.st_gid;
  for (size_t i = 0; i < batch.names.size(); ++i) {
    const unsigned char type = i < batch.types.size() ? batch.types[i] : static_cast<unsigned char>(DT_UNKNOWN);
    results.push_back(CopyEntry(f, batch.names[i], type, batch.copy_linked));
  }
  return results;
}

std::vector<Problem> CopyRange(Range range) {
  Fd in = OpenBeneath(g_settings.src_root, range.src, O_RDONLY | O_NONBLOCK | O_NOCTTY);
  if (!in.valid()) return {SrcProblem(range.src, Errno("open"))};
  Fd out = OpenBeneath(g_settings.dst_root, range.tmp, O_WRONLY);
  if (!out.valid()) return {DstProblem(range.tmp, Errno("open"))};
  StepError e;
  if (!CopyBytes(in.get(), out.get(), range.offset, range.length, range.sparse, &e)) {
    // Shorter than planned: the source changed, which its version check at
    // assembly (size, mtime, ctime) sees and answers by copying it again.
    if (e.error == ENODATA) return {};
    return {e.step == "read" ? SrcProblem(range.src, e) : DstProblem(range.tmp, e)};
  }
  return {};
}

std::string Digest(int fd, StepError* error) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  for (off_t offset = 0;;) {
    const ssize_t n = ::pread(fd, buf.data(), buf.size(), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = Errno("read");
      return "";
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n));
    offset += n;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), len));
}

std::vector<Problem> SameChecksum(std::string rel) {
  Fd a = OpenBeneath(g_settings.src_root, rel, O_RDONLY | O_NONBLOCK);
  if (!a.valid()) return {SrcProblem(rel, Errno("open"))};
  Fd b = OpenBeneath(g_settings.dst_root, rel, O_RDONLY | O_NONBLOCK);
  if (!b.valid()) return {DstProblem(rel, Errno("open"))};
  StepError e;
  const std::string da = Digest(a.get(), &e);
  if (da.empty()) return {SrcProblem(rel, e)};
  const std::string db = Digest(b.get(), &e);
  if (db.empty()) return {DstProblem(rel, e)};
  if (da != db) return {Problem{rel, "checksum differs from the source's", true, false}};
  return {};
}

}  // namespace mpcopy
