// What every child runs around its target, whatever the start method.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sys/single_threaded.h>

#include <cstdio>
#include <cstdlib>
#include <ext/stdio_sync_filebuf.h>
#include <iostream>

#include "base/descriptors.h"
#include "base/errors.h"
#include "base/logging.h"
#include "process/popen.h"

#if defined(__GLIBC__)
// glibc's list of open C streams (exported, not declared in its headers).
extern "C" FILE* _IO_list_all;
#endif

namespace mp::internal {
namespace {

// Whether `stream` writes through stdio, decided once per stream buffer: the
// dynamic_cast's code would otherwise be one more page for every child to
// fault in. Written only when the buffer changes, so that a fork's
// copy-on-write page stays shared.
struct SyncCache {
  std::streambuf* buffer = nullptr;
  bool synced = false;
};

MP_CHILD_PATH bool SyncedWithStdio(std::ostream& stream, SyncCache& cache) {
  std::streambuf* buffer = stream.rdbuf();
  if (buffer != cache.buffer) {
    cache.synced = dynamic_cast<__gnu_cxx::stdio_sync_filebuf<char>*>(buffer) != nullptr;
    cache.buffer = buffer;
  }
  return cache.synced;
}

// AnyCStreamHoldsOutput: whether fflush(nullptr) would write anything. Reads
// glibc's list of open C streams without taking its lock, which is safe only
// while no other thread can open or close one: with other threads, assume
// there is output. Why by hand: C has no call that asks this, and
// fflush(nullptr) locks (writes) every stream and the list even when all are
// empty.
MP_CHILD_PATH bool AnyCStreamHoldsOutput() {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  if (!__libc_single_threaded) return true;
  for (FILE* f = _IO_list_all; f != nullptr; f = f->_chain) {
    if (f->_IO_write_ptr > f->_IO_write_base) return true;
  }
  return false;
#else
  return true;
#endif
}

// RedirectStdin makes `fd` the standard input and closes it. By hand, with
// the syscall instruction, on x86-64: libc's dup2 and close sit in a stretch of
// libc that nothing else a new child runs touches, and fork does not copy
// the page tables of code, so the wrappers alone cost each child a page
// fault (about 20 us here, 3% of a fork).
MP_CHILD_PATH void RedirectStdin(int fd) {
#if defined(__x86_64__) && defined(__linux__)
  long ret;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(static_cast<long>(SYS_dup2)), "D"(static_cast<long>(fd)),
                 "S"(static_cast<long>(STDIN_FILENO))
               : "rcx", "r11", "memory");
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(static_cast<long>(SYS_close)), "D"(static_cast<long>(fd))
               : "rcx", "r11", "memory");
#else
  dup2(fd, STDIN_FILENO);
  ::close(fd);
#endif
}

}  // namespace

MP_CHILD_PATH void FlushStandardStreams() {
  static SyncCache caches[3];
  std::ostream* streams[3] = {&std::cout, &std::cerr, &std::clog};
  for (int i = 0; i < 3; ++i) {
    if (!SyncedWithStdio(*streams[i], caches[i])) streams[i]->flush();
  }
  if (AnyCStreamHoldsOutput()) std::fflush(nullptr);
}

int OpenDevNull() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

MP_CHILD_PATH void ArmDeathSignal(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // The parent may have died between fork and prctl: then nobody will send
  // the signal, so act on it now.
  if (getppid() != parent) _exit(1);
}

MP_CHILD_PATH void ChildMain(Identity& identity, const std::function<int()>& body, int devnull) {
  BecomeChild(identity);

  // Python gives children /dev/null as stdin, so that only the parent reads
  // the terminal.
  if (devnull < 0) devnull = OpenDevNull();
  if (devnull >= 0) RedirectStdin(devnull);

  internal::Log(INFO, [] { return std::string("child process calling self.run()"); });
  int code = 1;
  try {
    code = body();
  } catch (const std::exception& e) {
    FlushStandardStreams();
    std::fprintf(stderr, "Process %s:\n%s: %s\n", identity.name.c_str(),
                 CurrentExceptionTypeName().c_str(), e.what());
    code = 1;
  } catch (...) {
    FlushStandardStreams();
    std::fprintf(stderr, "Process %s:\n%s\n", identity.name.c_str(),
                 CurrentExceptionTypeName().c_str());
    code = 1;
  }
  internal::Log(INFO, [code] { return "process exiting with exitcode " + std::to_string(code & 0xff); });
  try {
    ExitCleanup();
  } catch (...) {
  }
  FlushStandardStreams();
  _exit(code & 0xff);
}

int RunSpawnMessage(SpawnMessage& message) {
  if (message.build_id != BuildId()) {
    throw ProcessError("spawned child: this binary (build id " + BuildId() +
                       ") differs from the parent's (" + message.build_id +
                       "); refusing to run the target");
  }
  DescriptorSource source(std::move(message.fds));
  ScopedDescriptorSource arguments(&source);
  if (!message.subclass.empty()) {
    const SubclassRunner* runner = FindSubclass(message.subclass.c_str());
    if (runner == nullptr) {
      throw ProcessError("spawned child: Process subclass " + message.subclass +
                         " is not registered (MP_SPAWNABLE_PROCESS)");
    }
    return runner->run(message.args);
  }
  auto entry = reinterpret_cast<int (*)(void*, std::string_view)>(FindCode(message.entry));
  return entry(FindCodeOrNull(message.function), message.args);
}

SpawnMessage MakeSpawnMessage(const SpawnRecipe& recipe, const ChildSetup& setup) {
  SpawnMessage message{BuildId(), NameCode(recipe.entry),
                       NameCodeOrNull(recipe.function),
                       "", setup, ProcessAuthkey(), "", {}};
  message.log_level = get_logger().level();
  message.args = EncodeCollecting(recipe.encode_args, &message.fds);
  return message;
}

SpawnMessage MakeSubclassMessage(const Process& process, const char* type, const SubclassRunner& runner,
                                 const ChildSetup& setup) {
  SpawnMessage message{BuildId(), {}, {}, "", setup, ProcessAuthkey(), type, {}};
  message.log_level = get_logger().level();
  message.args = EncodeCollecting([&] { return runner.encode(process); }, &message.fds);
  return message;
}

SpawnMessage ReceiveSpawnMessage(Connection& conn) {
  const std::string bytes = conn.recv_bytes();
  DescriptorSource arrived = conn.take_arrived_descriptors();
  SpawnMessage message = decode<SpawnMessage>(bytes);
  message.fds = arrived.Release();
  return message;
}

}  // namespace mp::internal
