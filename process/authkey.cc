// The process's authkey (Python's current_process().authkey): 32 random
// bytes made once in the main process and inherited by every child, through
// fork's copy of memory or in the spawn message, so that a manager started
// with the default key is reachable from all of them.
#include <sys/random.h>

#include <cerrno>
#include <string>

#include "absl/base/thread_annotations.h"
#include "base/errors.h"
#include "base/mutex.h"
#include "process/popen.h"

namespace mp::internal {
namespace {

ABSL_CONST_INIT Mutex g_authkey_mu;
std::string* g_authkey ABSL_GUARDED_BY(g_authkey_mu) = nullptr;  // never freed: used until exit

std::string RandomBytes(size_t n) {
  std::string bytes(n, '\0');
  size_t got = 0;
  while (got < n) {
    const ssize_t r = getrandom(bytes.data() + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw_errno("getrandom");
    got += static_cast<size_t>(r);
  }
  return bytes;
}

}  // namespace

std::string ProcessAuthkey() {
  MutexLock lock(g_authkey_mu);
  if (g_authkey == nullptr) g_authkey = new std::string(RandomBytes(32));
  return *g_authkey;
}

void SetProcessAuthkey(std::string key) {
  if (key.empty()) return;  // a message from a parent that had none: keep ours
  MutexLock lock(g_authkey_mu);
  if (g_authkey == nullptr) {
    g_authkey = new std::string(std::move(key));
  } else {
    *g_authkey = std::move(key);
  }
}

}  // namespace mp::internal
