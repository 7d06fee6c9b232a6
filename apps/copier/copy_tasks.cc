#include "apps/copier/copy_tasks.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/escaping.h"

namespace mpcopy {
namespace {

constexpr uint64_t kReportEvery = 8 << 20;

ProgressQueue* g_progress = nullptr;

TaskResult Fail(const std::string& path, const std::string& what) {
  return TaskResult{false, path, what + ": " + std::strerror(errno), 0};
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Copies with read/write when copy_file_range cannot (other filesystems,
// special files).
bool ReadWriteCopy(int in, int out, uint64_t offset, uint64_t length, uint64_t* done,
                   ProgressQueue* progress) {
  std::vector<char> buf(1 << 20);
  uint64_t since_report = 0;
  while (*done < length) {
    const size_t want = std::min<uint64_t>(buf.size(), length - *done);
    const ssize_t n = pread(in, buf.data(), want, static_cast<off_t>(offset + *done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = ENODATA;  // The file shrank under us.
      return false;
    }
    size_t written = 0;
    while (written < static_cast<size_t>(n)) {
      const ssize_t w = pwrite(out, buf.data() + written, static_cast<size_t>(n) - written,
                               static_cast<off_t>(offset + *done + written));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      written += static_cast<size_t>(w);
    }
    *done += static_cast<uint64_t>(n);
    since_report += static_cast<uint64_t>(n);
    if (progress != nullptr && since_report >= kReportEvery) {
      progress->put(since_report);
      since_report = 0;
    }
  }
  if (progress != nullptr && since_report > 0) progress->put(since_report);
  return true;
}

}  // namespace

void UseProgressQueue(ProgressQueue* queue) { g_progress = queue; }

TaskResult CopyRange(CopyTask task) {
  // Ranges of big files report progress as they go; a whole (small) file's
  // bytes are counted from its result, which saves a queue hand-over each.
  ProgressQueue* progress = task.whole ? nullptr : g_progress;
  Fd in, out;
  in.fd = ::open(task.src.c_str(), O_RDONLY | O_CLOEXEC);
  if (in.fd < 0) return Fail(task.src, "open");
  struct stat st;
  bool unnamed = false;
  if (task.whole) {
    if (fstat(in.fd, &st) != 0) return Fail(task.src, "stat");
    task.length = static_cast<uint64_t>(st.st_size);
    // An unnamed file in the destination folder (O_TMPFILE), given its name
    // only when complete: nothing half-written is ever visible, and a crash
    // leaves nothing behind. Else a named temporary, renamed at the end.
    const std::string dir = task.dst.substr(0, task.dst.rfind('/'));
    out.fd = ::open(dir.empty() ? "/" : dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    unnamed = out.fd >= 0;
    if (!unnamed) out.fd = ::open(task.tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  } else {
    out.fd = ::open(task.tmp.c_str(), O_WRONLY | O_CLOEXEC);
  }
  if (out.fd < 0) return Fail(task.dst, "create");
  uint64_t done = 0, since_report = 0;
  bool kernel_copy = true;
  while (done < task.length && kernel_copy) {
    loff_t in_off = static_cast<loff_t>(task.offset + done);
    loff_t out_off = in_off;
    const size_t want = std::min<uint64_t>(task.length - done, 64 << 20);
    const ssize_t n = copy_file_range(in.fd, &in_off, out.fd, &out_off, want, 0);
    if (n > 0) {
      done += static_cast<uint64_t>(n);
      since_report += static_cast<uint64_t>(n);
      if (progress != nullptr && since_report >= kReportEvery) {
        progress->put(since_report);
        since_report = 0;
      }
      continue;
    }
    if (n == 0) {  // The file shrank (vanished or truncated during the copy).
      errno = ENODATA;
      return Fail(task.src, "read");
    }
    if (errno == EINTR) continue;
    if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
      kernel_copy = false;  // Fall back below.
      break;
    }
    return Fail(task.dst, "copy");
  }
  if (progress != nullptr && since_report > 0) progress->put(since_report);
  if (!kernel_copy && !ReadWriteCopy(in.fd, out.fd, task.offset, task.length, &done, progress)) {
    return Fail(task.dst, "copy");
  }
  if (task.whole && unnamed) {
    if (::fchmod(out.fd, st.st_mode & 07777) != 0) return Fail(task.dst, "chmod");
    const timespec times[2] = {st.st_atim, st.st_mtim};
    if (::futimens(out.fd, times) != 0) return Fail(task.dst, "utimensat");
    char proc_path[64];
    std::snprintf(proc_path, sizeof proc_path, "/proc/self/fd/%d", out.fd);
    auto link = [&] {
      return ::linkat(AT_FDCWD, proc_path, AT_FDCWD, task.dst.c_str(), AT_SYMLINK_FOLLOW) == 0;
    };
    // An outdated copy is replaced; the common case (a new file) costs no
    // unlink.
    if (!link()) {
      if (errno != EEXIST) return Fail(task.dst, "link");
      if (::unlink(task.dst.c_str()) != 0 && errno != ENOENT) return Fail(task.dst, "unlink");
      if (!link()) return Fail(task.dst, "link");
    }
    return TaskResult{true, task.dst, "", done};
  }
  if (task.whole) {
    if (::close(out.fd) != 0) {
      out.fd = -1;
      return Fail(task.dst, "close");
    }
    out.fd = -1;
    TaskResult finished = FinishFile(task.src, task.tmp, task.dst);
    finished.bytes = done;
    return finished;
  }
  return TaskResult{true, task.dst, "", done};
}

std::vector<TaskResult> CopyFiles(std::vector<CopyTask> tasks) {
  std::vector<TaskResult> results;
  results.reserve(tasks.size());
  for (CopyTask& task : tasks) results.push_back(CopyRange(std::move(task)));
  return results;
}

TaskResult FinishFile(const std::string& src, const std::string& tmp, const std::string& dst) {
  struct stat st;
  if (::stat(src.c_str(), &st) != 0) return Fail(src, "stat");
  if (::chmod(tmp.c_str(), st.st_mode & 07777) != 0) return Fail(dst, "chmod");
  const timespec times[2] = {st.st_atim, st.st_mtim};
  if (::utimensat(AT_FDCWD, tmp.c_str(), times, 0) != 0) return Fail(dst, "utimensat");
  // The real name appears only now, complete: a crash before this leaves a
  // temporary file, never a half-written one under the real name.
  if (::rename(tmp.c_str(), dst.c_str()) != 0) return Fail(dst, "rename");
  return TaskResult{true, dst, "", 0};
}

std::string FileDigest(const std::string& path, std::string* error) {
  Fd in;
  in.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in.fd < 0) {
    *error = path + ": open: " + std::strerror(errno);
    return "";
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t n = ::read(in.fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = path + ": read: " + std::strerror(errno);
      return "";
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest), len));
}

TaskResult SameChecksum(std::string a, std::string b) {
  std::string error;
  const std::string da = FileDigest(a, &error);
  if (!error.empty()) return TaskResult{false, a, error, 0};
  const std::string db = FileDigest(b, &error);
  if (!error.empty()) return TaskResult{false, b, error, 0};
  if (da != db) return TaskResult{false, b, "checksum differs from " + a, 0};
  return TaskResult{true, b, "", 0};
}

}  // namespace mpcopy
