// RunOnLongLivedThread: where children that must die with this process are
// started.
//
// Internal to //process. PR_SET_PDEATHSIG, which makes a daemonic child (and
// the Launcher and forkserver helpers) die with its parent even on SIGKILL,
// fires when the *thread* that forked the child exits, not the process. So
// a child started from a short-lived thread would be killed as soon as that
// thread ends. Such children are forked from a thread that lives as long as
// the process instead: the main thread when it is the caller, else one
// library thread (the starter), made on first use and never ended.
#ifndef PROCESS_STARTER_THREAD_H_
#define PROCESS_STARTER_THREAD_H_

#include "absl/functional/function_ref.h"

namespace mp::internal {

// RunOnLongLivedThread runs `fn` on the calling thread if it is the main
// thread (or the starter), else on the starter thread, waiting for it; what
// `fn` throws is rethrown here. Never call it holding a ForkSafeMutex: the
// starter may be forking for another caller, and a fork takes them all.
void RunOnLongLivedThread(absl::FunctionRef<void()> fn);

}  // namespace mp::internal

#endif  // PROCESS_STARTER_THREAD_H_
