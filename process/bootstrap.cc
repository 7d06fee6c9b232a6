// What every child runs around its target, whatever the start method.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ext/stdio_sync_filebuf.h>
#include <iostream>

#include "process/popen.h"
#include "sync/errors.h"

namespace mp::internal {
namespace {

bool SyncedWithStdio(std::ostream& stream) {
  return dynamic_cast<__gnu_cxx::stdio_sync_filebuf<char>*>(stream.rdbuf()) != nullptr;
}

}  // namespace

void FlushStandardStreams() {
  for (std::ostream* stream : {&std::cout, &std::cerr, &std::clog}) {
    if (!SyncedWithStdio(*stream)) stream->flush();
  }
  std::fflush(nullptr);
}

void ArmDeathSignal(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // The parent may have died between fork and prctl: then nobody will send
  // the signal, so act on it now.
  if (getppid() != parent) _exit(1);
}

void ChildMain(const ChildSetup& setup, const std::function<int()>& body) {
  Identity identity;
  identity.name = setup.name;
  identity.daemon = setup.daemon;
  identity.path = setup.identity;
  identity.parent.emplace(setup.parent_pid, setup.parent_name, false);
  BecomeChild(identity);

  // Python gives children /dev/null as stdin, so that only the parent reads
  // the terminal.
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull >= 0) {
    dup2(devnull, STDIN_FILENO);
    ::close(devnull);
  }

  int code = 1;
  try {
    code = body();
  } catch (const std::exception& e) {
    FlushStandardStreams();
    std::fprintf(stderr, "Process %s:\n%s: %s\n", setup.name.c_str(),
                 CurrentExceptionTypeName().c_str(), e.what());
    code = 1;
  } catch (...) {
    FlushStandardStreams();
    std::fprintf(stderr, "Process %s:\n%s\n", setup.name.c_str(),
                 CurrentExceptionTypeName().c_str());
    code = 1;
  }
  try {
    ExitCleanup();
  } catch (...) {
  }
  FlushStandardStreams();
  _exit(code & 0xff);
}

int RunSpawnMessage(const SpawnMessage& message) {
  if (message.build_id != BuildId()) {
    throw ProcessError("spawned child: this binary (build id " + BuildId() +
                       ") differs from the parent's (" + message.build_id +
                       "); refusing to run the target");
  }
  auto entry = reinterpret_cast<int (*)(void*, std::string_view)>(FindCode(message.entry));
  return entry(FindCode(message.function), message.args);
}

SpawnMessage MakeSpawnMessage(const SpawnRecipe& recipe, const ChildSetup& setup) {
  return SpawnMessage{BuildId(), NameCode(recipe.entry), NameCode(recipe.function),
                      recipe.encode_args(), setup};
}

}  // namespace mp::internal
