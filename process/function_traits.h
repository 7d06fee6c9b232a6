// The signature of a plain function, for the code that calls one in another
// process (spawn and forkserver children, pool workers).
#ifndef PROCESS_FUNCTION_TRAITS_H_
#define PROCESS_FUNCTION_TRAITS_H_

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include "ipc/codec.h"

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
// A function object's operator(), for the signature of a task object.
template <class R, class C, class... P>
struct FunctionTraits<R (C::*)(P...)> : FunctionTraits<R (*)(P...)> {};
template <class R, class C, class... P>
struct FunctionTraits<R (C::*)(P...) const> : FunctionTraits<R (*)(P...)> {};
template <class R, class C, class... P>
struct FunctionTraits<R (C::*)(P...) noexcept> : FunctionTraits<R (*)(P...)> {};
template <class R, class C, class... P>
struct FunctionTraits<R (C::*)(P...) const noexcept> : FunctionTraits<R (*)(P...)> {};

// SerializableFunctor: a function object whose type is serializable (its
// state travels to the process that calls it; Python: a picklable callable
// instance) and default-constructible (to decode into).
template <class F>
concept SerializableFunctor = std::is_class_v<F> && !PlainFunction<F> && is_serializable_v<F> &&
                              std::is_default_constructible_v<F>;

// Signature<F>: the traits of a plain function, or of a function object's
// one (not overloaded, not a template) operator().
// Other types have none (SFINAE-friendly: an overload taking a callable is
// not viable for them, rather than an error).
template <class F>
struct SignatureOf {};
template <class F>
  requires(!PlainFunction<F> && requires { &F::operator(); })
struct SignatureOf<F> {
  using type = FunctionTraits<decltype(&F::operator())>;
};
template <PlainFunction F>
struct SignatureOf<F> {
  using type = FunctionTraits<FunctionPointer<F>>;
};
template <class F>
using Signature = typename SignatureOf<F>::type;

}  // namespace mp::internal

#endif  // PROCESS_FUNCTION_TRAITS_H_
