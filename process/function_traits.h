// The signature of a plain function, for the code that calls one in another
// process (spawn and forkserver children, pool workers).
#ifndef PROCESS_FUNCTION_TRAITS_H_
#define PROCESS_FUNCTION_TRAITS_H_

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

namespace mp::internal {

// PlainFunction: a function, function pointer or captureless lambda (`+f`
// yields a function pointer).
template <class F>
concept PlainFunction = requires(F f) {
  { +f };
} && std::is_pointer_v<decltype(+std::declval<F>())> &&
    std::is_function_v<std::remove_pointer_t<decltype(+std::declval<F>())>>;

template <class F>
using FunctionPointer = decltype(+std::declval<F>());

// FunctionTraits<R (*)(P...)>: the result and the parameters, as values.
template <class Fn>
struct FunctionTraits;
template <class R, class... P>
struct FunctionTraits<R (*)(P...)> {
  using Result = R;
  using ArgTuple = std::tuple<std::decay_t<P>...>;
  static constexpr size_t kArity = sizeof...(P);
};
// noexcept functions (most of libc: ::getpid) have the same call.
template <class R, class... P>
struct FunctionTraits<R (*)(P...) noexcept> : FunctionTraits<R (*)(P...)> {};

}  // namespace mp::internal

#endif  // PROCESS_FUNCTION_TRAITS_H_
