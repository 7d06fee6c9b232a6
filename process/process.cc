#include "process/process.h"

#include "base/logging.h"

#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <cstring>
#include <ostream>
#include <string>
#include <string_view>

#include "process/popen.h"

namespace mp {

using internal::ChildState;

Process::Process(ProcessOptions options)
    : name_(std::move(options.name)),
      daemon_(options.daemon),
      start_method_(std::move(options.start_method)) {
  // Python numbers a Process when it is created, not when it starts.
  identity_ = internal::NextChildIdentity();
  if (name_.empty()) name_ = options.name_prefix + "-" + internal::IdentitySuffix(identity_);
  if (!start_method_.empty()) get_context(start_method_);  // Validates the name.
}

namespace internal {
namespace {
struct SubclassRegistry {
  Mutex mu;
  std::map<std::string, SubclassRunner, std::less<>> runners ABSL_GUARDED_BY(mu);
};
SubclassRegistry& Subclasses() {
  static SubclassRegistry* registry = new SubclassRegistry;
  return *registry;
}
}  // namespace

bool RegisterSubclass(const char* type, SubclassRunner runner) {
  SubclassRegistry& r = Subclasses();
  MutexLock lock(r.mu);
  r.runners[type] = runner;
  return true;
}

const SubclassRunner* FindSubclass(const char* type) {
  SubclassRegistry& r = Subclasses();
  MutexLock lock(r.mu);
  auto it = r.runners.find(std::string_view(type));
  return it == r.runners.end() ? nullptr : &it->second;
}
}  // namespace internal

Process::Process(Process&&) noexcept = default;
Process& Process::operator=(Process&&) noexcept = default;
Process::~Process() = default;

MP_CHILD_PATH void Process::run() {
  if (!target_) return;
  // Written only if not 0 already: this object's page is the parent's, and a
  // write would cost the child a copy-on-write fault.
  if (const int code = target_(); code != target_exit_code_) target_exit_code_ = code;
}

void Process::check_not_closed(const char* what) const {
  if (closed_) throw ProcessError(std::string("Process.") + what + ": process object is closed");
}

void Process::check_started(const char* what) const {
  check_not_closed(what);
  if (!child_) throw ProcessError(std::string("Process.") + what + ": process has not been started");
}

void Process::start() {
  check_not_closed("start");
  if (child_) throw ProcessError("Process.start: cannot start a process twice");
  std::string parent_name;
  {
    internal::MutexLock lock(internal::SelfMutex());
    if (internal::Self().daemon) {
      throw ProcessError("Process.start: daemonic processes are not allowed to have children");
    }
    parent_name = internal::Self().name;
  }
  if (std::getenv(internal::kSpawnFdEnv) != nullptr) {
    throw ProcessError(
        "Process.start: this process was started by spawn but main() did not call "
        "mp::init(argc, argv) first");
  }
  // Python's _cleanup(): children that ended and were never joined are
  // reaped now, so they do not pile up as zombies.
  internal::ReapEnded();
  // identity_ is moved: nothing needs it after a start (a second one throws).
  internal::ChildSetup setup{name_, daemon_, std::move(identity_), getpid(),
                             std::move(parent_name)};
  const std::string method = start_method_.empty() ? get_start_method() : start_method_;
  if (method == "fork") {
    child_ = internal::LaunchFork(std::move(setup), [this] {
      run();
      return target_exit_code_;
    });
  } else {
    std::optional<internal::SpawnMessage> message;
    if (spawn_) {
      message = internal::MakeSpawnMessage(*spawn_, setup);
    } else if (const internal::SubclassRunner* runner =
                   target_ ? nullptr : internal::FindSubclass(typeid(*this).name())) {
      message = internal::MakeSubclassMessage(*this, typeid(*this).name(), *runner, setup);
    } else {
      throw ProcessError("Process.start: the '" + method +
                         "' start method needs a plain-function or serializable function-object "
                         "target with serializable arguments, or a subclass registered with "
                         "MP_SPAWNABLE_PROCESS (closures work with 'fork' only)");
    }
    child_ = method == "spawn" ? internal::LaunchSpawn(*message) : internal::LaunchForkserver(*message);
  }
  // The child has its own copy of the target and arguments now; this
  // process lets go of its copies, as Python's start() does, so that what
  // they hold (a listener's socket, a connection end) is not kept open here.
  target_ = nullptr;
  spawn_.reset();
  internal::RegisterChild(child_);
}

void Process::join() {
  check_started("join");
  internal::WaitForExit(*child_, std::nullopt);
}

bool Process::join_until(const internal::Deadline& deadline) {
  check_started("join");
  return internal::WaitForExit(*child_, deadline);
}

bool Process::is_alive() {
  check_not_closed("is_alive");
  if (!child_) return false;
  return !internal::TryReap(*child_);
}

void Process::terminate() {
  check_started("terminate");
  internal::SendSignal(*child_, SIGTERM);
}

void Process::kill() {
  check_started("kill");
  internal::SendSignal(*child_, SIGKILL);
}

void Process::interrupt() {
  check_started("interrupt");
  internal::SendSignal(*child_, SIGINT);
}

void Process::close() {
  if (closed_) return;
  if (child_ && !internal::TryReap(*child_)) {
    throw ValueError("Process.close: cannot close a process while it is still running");
  }
  child_.reset();
  target_ = nullptr;
  closed_ = true;
}

int Process::sentinel() const {
  check_started("sentinel");
  internal::MutexLock lock(child_->mu);
  const int fd = internal::SentinelLocked(*child_);
  if (fd < 0) throw ProcessError("Process.sentinel: process already reaped");
  return fd;
}

pid_t Process::pid() const {
  check_not_closed("pid");
  return child_ ? child_->pid : 0;
}

void Process::set_name(std::string name) {
  check_not_closed("name");
  name_ = std::move(name);
}

void Process::set_daemon(bool daemon) {
  check_not_closed("daemon");
  if (child_) throw ProcessError("Process.daemon: cannot set daemon after the process started");
  daemon_ = daemon;
}

std::optional<int> Process::exitcode() {
  check_not_closed("exitcode");
  if (!child_) return std::nullopt;
  internal::TryReap(*child_);
  internal::MutexLock lock(child_->mu);
  return child_->exitcode;
}

namespace {
std::string CurrentProcessName() { return current_process().name(); }
// Log records name the process they come from.
[[maybe_unused]] const bool kLogsNameTheProcess = [] {
  internal::SetProcessNameSource(&CurrentProcessName);
  return true;
}();
}  // namespace

std::ostream& operator<<(std::ostream& os, const Process& p) {
  std::string type = internal::TypeName(typeid(p));
  if (const size_t colon = type.rfind("::"); colon != std::string::npos) type = type.substr(colon + 2);
  os << '<' << type << " name='" << p.name_ << "'";
  if (p.closed_) return os << " closed>";
  std::optional<int> code;
  if (p.child_) {
    os << " pid=" << p.child_->pid;
    code = const_cast<Process&>(p).exitcode();  // reaps, as Python's poll() does
  }
  os << " parent=" << p.parent_pid_;
  if (!p.child_) {
    os << " initial";
  } else if (code) {
    os << " stopped exitcode=";
    const char* signal_name = *code < 0 ? sigabbrev_np(-*code) : nullptr;
    if (signal_name != nullptr) {
      os << "-SIG" << signal_name;
    } else {
      os << *code;
    }
  } else {
    os << " started";
  }
  if (p.daemon_) os << " daemon";
  return os << '>';
}

ProcessInfo current_process() {
  ProcessInfo info = [] {
    internal::MutexLock lock(internal::SelfMutex());
    return ProcessInfo(getpid(), internal::Self().name, internal::Self().daemon);
  }();
  info.authkey_ = internal::ProcessAuthkey();
  return info;
}

std::optional<ProcessInfo> parent_process() {
  internal::MutexLock lock(internal::SelfMutex());
  return internal::Self().parent;
}

std::vector<ProcessInfo> active_children() {
  std::vector<ProcessInfo> out;
  for (const auto& child : internal::LiveChildren()) {
    out.emplace_back(child->pid, child->name, child->daemon);
  }
  return out;
}

int cpu_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

}  // namespace mp
