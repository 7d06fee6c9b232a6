// The registry of custom manager types (MP_MANAGED_TYPE): for each type its
// name, the methods a proxy may call (by their number in the macro's list)
// and the constructors the program uses (by the types of their arguments).
// Filled before main by the templates in manager/managed_type.h, read by
// the server: a server forked from the program, or one serving in a program
// built with the same MP_MANAGED_TYPE lines, knows the same types.
//
// Internal to //manager.
#ifndef MANAGER_INTERNAL_CUSTOM_TYPE_H_
#define MANAGER_INTERNAL_CUSTOM_TYPE_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mp::internal {

struct ManagedTypeInfo {
  std::string name;
  std::vector<std::string> method_names;
  // methods[i](instance, encoded argument tuple) -> encoded result.
  std::vector<std::function<std::string(void*, std::string_view)>> methods;
};

using ManagedConstructor = std::function<std::shared_ptr<void>(std::string_view arguments)>;

// RegisterManagedType adds `info` unless a type of its name is known (every
// translation unit that uses a type registers it); returns the one kept.
const ManagedTypeInfo& RegisterManagedType(ManagedTypeInfo info);
const ManagedTypeInfo* FindManagedType(std::string_view name);
void RegisterManagedConstructor(std::string key, ManagedConstructor constructor);
const ManagedConstructor* FindManagedConstructor(std::string_view key);

}  // namespace mp::internal

#endif  // MANAGER_INTERNAL_CUSTOM_TYPE_H_
