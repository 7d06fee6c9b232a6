// Custom manager types: Python's BaseManager.register(typeid, callable).
//
//   class Maths {
//    public:
//     int add(int x, int y) const { return x + y; }
//     int mul(int x, int y) const { return x * y; }
//   };
//   MP_MANAGED_TYPE(Maths, add, mul);       // at namespace scope, beside Maths
//
//   mp::Manager manager;
//   auto maths = manager.create<Maths>();  // a Maths in the server
//   int seven = maths.call<&Maths::add>(4, 3);
//
// MP_MANAGED_TYPE(T, methods...) names the methods a proxy may call (the
// exposed list of Python's register). It goes in T's namespace, once per
// program (in a header every user of T includes); T is written as that
// namespace sees it. Methods are non-virtual, not overloaded; their
// arguments and results are any types the codec serializes, and a void
// method returns nothing. A method's exception reaches the caller as itself
// for the mp:: types and std:: logic/runtime errors the codec knows, as
// mp::RemoteError (type and message) otherwise.
//
// The server runs one call of an object at a time (C++ objects are rarely
// safe to use from several threads; Python runs them concurrently under
// its GIL), and different objects' calls concurrently.
//
// Construction: manager.create<T>(args...) runs T(args...) in the server.
// A server knows the constructors its program uses: a Manager's server is
// forked from the program and knows all; a BaseManager serving in another
// program knows the default constructor (if T has one) and every
// create<T>(...) that program itself makes (with the same argument types).
#ifndef MANAGER_MANAGED_TYPE_H_
#define MANAGER_MANAGED_TYPE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "ipc/codec.h"
#include "manager/internal/custom_type.h"
#include "manager/internal/protocol.h"
#include "manager/proxy.h"

namespace mp {
namespace internal {

// The shape of a pointer to member function: its class, result and
// argument types, whatever its const and noexcept qualifiers.
template <class M>
struct MethodTraits;
#define MP_METHOD_TRAITS(QUALIFIERS)                   \
  template <class C, class R, class... A>              \
  struct MethodTraits<R (C::*)(A...) QUALIFIERS> {     \
    using Class = C;                                   \
    using Result = R;                                  \
    using Arguments = std::tuple<std::decay_t<A>...>;  \
  };
MP_METHOD_TRAITS()
MP_METHOD_TRAITS(const)
MP_METHOD_TRAITS(noexcept)
MP_METHOD_TRAITS(const noexcept)
MP_METHOD_TRAITS(&)
MP_METHOD_TRAITS(const&)
#undef MP_METHOD_TRAITS

// The methods of a managed type: the member pointers its MP_MANAGED_TYPE
// line lists, as template arguments (found by argument-dependent lookup).
template <auto... Methods>
struct MethodList {
  static constexpr size_t size = sizeof...(Methods);
};
template <class T>
using ManagedMethods = decltype(MpManagedTypeMethods(static_cast<const T*>(nullptr)));
template <class T>
constexpr bool IsManagedType = requires { MpManagedTypeMethods(static_cast<const T*>(nullptr)); };

// MethodIndex: the position of `M` in T's list (template arguments compare
// exactly, which member pointer comparison in constant expressions does not
// on every compiler); a method not listed does not compile.
template <auto V>
struct ValueTag {};
template <auto M, auto... Methods>
constexpr size_t IndexIn(MethodList<Methods...>) {
  constexpr bool same[] = {std::is_same_v<ValueTag<M>, ValueTag<Methods>>..., false};
  for (size_t i = 0; i < sizeof...(Methods); ++i) {
    if (same[i]) return i;
  }
  return sizeof...(Methods);
}
template <class T, auto M>
constexpr size_t MethodIndex() {
  constexpr size_t index = IndexIn<M>(ManagedMethods<T>{});
  static_assert(index < ManagedMethods<T>::size, "call<&T::method>: the method is not in T's MP_MANAGED_TYPE list");
  return index;
}

// The server's side of one method: decode the arguments, call, encode.
template <class T, auto M>
std::string InvokeMethod(void* self, std::string_view arguments) {
  using Traits = MethodTraits<decltype(M)>;
  auto args = decode<typename Traits::Arguments>(arguments);
  T& object = *static_cast<T*>(self);
  if constexpr (std::is_void_v<typename Traits::Result>) {
    std::apply([&](auto&... a) { (object.*M)(a...); }, args);
    return encode(wire::None{});
  } else {
    return encode(std::apply([&](auto&... a) { return (object.*M)(a...); }, args));
  }
}

template <class T, auto... Methods>
ManagedTypeInfo MakeTypeInfo(MethodList<Methods...>) {
  ManagedTypeInfo info;
  info.name = MpManagedTypeName(static_cast<const T*>(nullptr));
  for (absl::string_view name : absl::StrSplit(MpManagedTypeMethodNames(static_cast<const T*>(nullptr)), ',')) {
    info.method_names.emplace_back(absl::StripAsciiWhitespace(name));
  }
  (info.methods.push_back(&InvokeMethod<T, Methods>), ...);
  return info;
}

// The registration of T, made before main wherever T is used.
template <class T>
struct ManagedTypeRegistrar {
  static const ManagedTypeInfo& Info() {
    static const ManagedTypeInfo& info = RegisterManagedType(MakeTypeInfo<T>(ManagedMethods<T>{}));
    return info;
  }
  static inline const ManagedTypeInfo& registered = Info();
};

// Argument<A>: how a create<T> argument travels: decayed, with string
// literals and char pointers as std::string.
template <class A>
using Argument = std::conditional_t<std::is_convertible_v<std::decay_t<A>, const char*>, std::string, std::decay_t<A>>;

// The key of T's constructor from `Args`.
template <class T, class... Args>
std::string ConstructorKey() {
  return std::string(ManagedTypeRegistrar<T>::Info().name) + "(" + typeid(std::tuple<Args...>).name() + ")";
}

// T's constructor from `Args`, registered before main in every program that
// uses it (create<T>(args...) names `registered`).
template <class T, class... Args>
struct ConstructorRegistrar {
  static bool Register() {
    RegisterManagedConstructor(ConstructorKey<T, Args...>(), [](std::string_view arguments) -> std::shared_ptr<void> {
      auto args = decode<std::tuple<Args...>>(arguments);
      return std::apply([](auto&... a) { return std::make_shared<T>(a...); }, args);
    });
    return true;
  }
  static inline const bool registered = Register();
};

// MP_MANAGED_TYPE registers the default constructor where there is one.
template <class T>
bool RegisterDefaultConstructor() {
  (void)ManagedTypeRegistrar<T>::registered;
  if constexpr (std::is_default_constructible_v<T>) return ConstructorRegistrar<T>::registered;
  return true;
}

}  // namespace internal

namespace proxy {

// The proxy of a custom type's object (Python's AutoProxy).
template <class T>
class Managed : public ProxyBase {
 public:
  using ProxyBase::ProxyBase;
  // Python's repr: <AutoProxy[Maths] object, typeid 'Maths' at 0x...>.
  friend std::ostream& operator<<(std::ostream& os, const Managed& p) {
    const std::string name = MpManagedTypeName(static_cast<const T*>(nullptr));
    return internal::PrintProxy(os, "AutoProxy[" + name + "]", name, &p);
  }
  // call<&T::method>(args...) runs the method on the server's object and
  // returns its result.
  template <auto M, class... Args>
  auto call(Args&&... args) const {
    using Traits = internal::MethodTraits<decltype(M)>;
    static_assert(std::is_same_v<typename Traits::Class, T>, "call<&T::method>: a method of another class");
    using Arguments = typename Traits::Arguments;
    static_assert(std::tuple_size_v<Arguments> == sizeof...(Args), "call<&T::method>: wrong number of arguments");
    constexpr size_t index = internal::MethodIndex<T, M>();
    std::string result = ProxyBase::call(internal::wire::Invoke{
        {}, static_cast<uint32_t>(index), encode(Arguments(std::forward<Args>(args)...))});
    if constexpr (!std::is_void_v<typename Traits::Result>) {
      return decode<std::decay_t<typename Traits::Result>>(result);
    }
  }
};

}  // namespace proxy
}  // namespace mp

// MP_FOR_EACH_METHOD(F, T, a, b, ...) is F(T, a), F(T, b), ... (up to 16).
#define MP_INTERNAL_EXPAND(x) x
#define MP_INTERNAL_M1(F, T, a) F(T, a)
#define MP_INTERNAL_M2(F, T, a, ...) F(T, a), MP_INTERNAL_EXPAND(MP_INTERNAL_M1(F, T, __VA_ARGS__))
#define MP_INTERNAL_M3(F, T, a, ...) F(T, a), MP_INTERNAL_EXPAND(MP_INTERNAL_M2(F, T, __VA_ARGS__))
#define MP_INTERNAL_M4(F, T, a, ...) F(T, a), MP_INTERNAL_EXPAND(MP_INTERNAL_M3(F, T, __VA_ARGS__))
#define MP_INTERNAL_M5(F, T, a, ...) F(T, a), MP_INTERNAL_EXPAND(MP_INTERNAL_M4(F, T, __VA_ARGS__))
#define MP_INTERNAL_M6(F, T, a, ...) F(T, a), MP_INTERNAL_EXPAND(MP_INTERNAL_M5(F, T, __VA_ARGS__))
#define MP_INTERNAL_M7(F, T, a, ...) F(T, a), MP_INTERNAL_EXPAND(MP_INTERNAL_M6(F, T, __VA_ARGS__))
#define MP_INTERNAL_M8(F, T, a, ...) F(T, a), MP_INTERNAL_EXPAND(MP_INTERNAL_M7(F, T, __VA_ARGS__))
#define MP_INTERNAL_M9(F, T, a, ...) F(T, a), MP_INTERNAL_EXPAND(MP_INTERNAL_M8(F, T, __VA_ARGS__))
#define MP_INTERNAL_M10(F, T, a, ...) F(T, a), MP_INTERNAL_EXPAND(MP_INTERNAL_M9(F, T, __VA_ARGS__))
#define MP_INTERNAL_M11(F, T, a, ...) F(T, a), MP_INTERNAL_EXPAND(MP_INTERNAL_M10(F, T, __VA_ARGS__))
#define MP_INTERNAL_M12(F, T, a, ...) F(T, a), MP_INTERNAL_EXPAND(MP_INTERNAL_M11(F, T, __VA_ARGS__))
#define MP_INTERNAL_M13(F, T, a, ...) F(T, a), MP_INTERNAL_EXPAND(MP_INTERNAL_M12(F, T, __VA_ARGS__))
#define MP_INTERNAL_M14(F, T, a, ...) F(T, a), MP_INTERNAL_EXPAND(MP_INTERNAL_M13(F, T, __VA_ARGS__))
#define MP_INTERNAL_M15(F, T, a, ...) F(T, a), MP_INTERNAL_EXPAND(MP_INTERNAL_M14(F, T, __VA_ARGS__))
#define MP_INTERNAL_M16(F, T, a, ...) F(T, a), MP_INTERNAL_EXPAND(MP_INTERNAL_M15(F, T, __VA_ARGS__))
#define MP_INTERNAL_PICK(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, NAME, ...) NAME
#define MP_INTERNAL_FOR_EACH(F, T, ...)                                                                    \
  MP_INTERNAL_EXPAND(MP_INTERNAL_PICK(__VA_ARGS__, MP_INTERNAL_M16, MP_INTERNAL_M15, MP_INTERNAL_M14,     \
                                      MP_INTERNAL_M13, MP_INTERNAL_M12, MP_INTERNAL_M11, MP_INTERNAL_M10, \
                                      MP_INTERNAL_M9, MP_INTERNAL_M8, MP_INTERNAL_M7, MP_INTERNAL_M6,     \
                                      MP_INTERNAL_M5, MP_INTERNAL_M4, MP_INTERNAL_M3, MP_INTERNAL_M2,     \
                                      MP_INTERNAL_M1)(F, T, __VA_ARGS__))
#define MP_INTERNAL_MEMBER_POINTER(T, m) &T::m
#define MP_INTERNAL_CONCAT2(a, b) a##b
#define MP_INTERNAL_CONCAT(a, b) MP_INTERNAL_CONCAT2(a, b)

// MP_MANAGED_TYPE(T, method, ...): see the top of this file. Up to 16 methods.
#define MP_MANAGED_TYPE(T, ...)                                                                  \
  [[maybe_unused]] constexpr auto MpManagedTypeMethods(const T*) {                               \
    return ::mp::internal::MethodList<MP_INTERNAL_FOR_EACH(MP_INTERNAL_MEMBER_POINTER, T, __VA_ARGS__)>{}; \
  }                                                                                              \
  [[maybe_unused]] constexpr const char* MpManagedTypeName(const T*) { return #T; }              \
  [[maybe_unused]] constexpr const char* MpManagedTypeMethodNames(const T*) { return #__VA_ARGS__; } \
  [[maybe_unused]] static const bool MP_INTERNAL_CONCAT(mp_managed_type_registered_, __LINE__) = \
      ::mp::internal::RegisterDefaultConstructor<T>()

#endif  // MANAGER_MANAGED_TYPE_H_
