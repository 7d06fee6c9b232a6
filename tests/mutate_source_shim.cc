// Preloaded (LD_PRELOAD) into mpcopy by mpcopy_test: after every
// copy_file_range from a file whose path contains $MPCOPY_TEST_MUTATE, one
// byte is appended to that file. A source that changes while it is copied,
// every time and without depending on how a writer process is scheduled.
#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" ssize_t copy_file_range(int in, loff_t* in_off, int out, loff_t* out_off, size_t len,
                                   unsigned int flags) {
  using Fn = ssize_t (*)(int, loff_t*, int, loff_t*, size_t, unsigned int);
  static const Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "copy_file_range"));
  const ssize_t n = real(in, in_off, out, out_off, len, flags);
  const char* needle = std::getenv("MPCOPY_TEST_MUTATE");
  if (needle != nullptr && n > 0) {
    char link[64], path[4096];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", in);
    const ssize_t k = readlink(link, path, sizeof path - 1);
    if (k > 0) {
      path[k] = '\0';
      if (std::strstr(path, needle) != nullptr) {
        const int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd >= 0) {
          if (write(fd, "x", 1) != 1) std::perror("mutate_source_shim: write");
          close(fd);
        }
      }
    }
  }
  return n;
}
