#include "manager/internal/custom_type.h"

#include <map>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "base/mutex.h"

namespace mp::internal {
namespace {

// Registrations happen before main, lookups in server threads: one mutex.
struct Registry {
  Mutex mu;
  std::map<std::string, std::unique_ptr<ManagedTypeInfo>, std::less<>> types ABSL_GUARDED_BY(mu);
  std::map<std::string, ManagedConstructor, std::less<>> constructors ABSL_GUARDED_BY(mu);
};

Registry& TheRegistry() {
  static Registry* registry = new Registry;  // used until exit, never destroyed
  return *registry;
}

}  // namespace

const ManagedTypeInfo& RegisterManagedType(ManagedTypeInfo info) {
  Registry& r = TheRegistry();
  MutexLock lock(r.mu);
  auto it = r.types.find(info.name);
  if (it == r.types.end()) {
    std::string name = info.name;
    it = r.types.emplace(std::move(name), std::make_unique<ManagedTypeInfo>(std::move(info))).first;
  }
  return *it->second;
}

const ManagedTypeInfo* FindManagedType(std::string_view name) {
  Registry& r = TheRegistry();
  MutexLock lock(r.mu);
  auto it = r.types.find(name);
  return it == r.types.end() ? nullptr : it->second.get();
}

void RegisterManagedConstructor(std::string key, ManagedConstructor constructor) {
  Registry& r = TheRegistry();
  MutexLock lock(r.mu);
  r.constructors.emplace(std::move(key), std::move(constructor));
}

const ManagedConstructor* FindManagedConstructor(std::string_view key) {
  Registry& r = TheRegistry();
  MutexLock lock(r.mu);
  auto it = r.constructors.find(key);
  return it == r.constructors.end() ? nullptr : &it->second;
}

}  // namespace mp::internal
