// The codec: how every value that crosses a process boundary after the
// process was created (queue items, pipe messages, pool arguments and results,
// manager values, spawn arguments) becomes bytes and back. Built on cereal's
// binary archives; there is no other serializer in the project.
//
// Built in: arithmetic types, std::string, std::vector, std::map,
// std::unordered_map, std::set, std::pair, std::tuple, std::optional,
// std::variant, std::monostate, std::array, std::chrono durations. A user type
// opts in with one member:
//
//   struct Point {
//     int x, y;
//     template <class Archive> void serialize(Archive& ar) { ar(x, y); }
//   };
//   std::string bytes = mp::encode(Point{1, 2});
//   Point p = mp::decode<Point>(bytes);
//
// A type that cannot be serialized is a compile-time error naming the type
// (look for "mp::CannotSerialize<YourType>" in the compiler's message).
// Bytes that do not decode as the requested type throw mp::Error; decoding
// never reads past the input or trusts a length it cannot back with bytes.
//
// Thread safety: stateless functions.
// Fork safety: stateless.
// Sharing: the encoding is the same in every process running the same binary.
#ifndef IPC_CODEC_H_
#define IPC_CODEC_H_

#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>

#include "cereal/types/array.hpp"
#include "cereal/types/chrono.hpp"
#include "cereal/types/map.hpp"
#include "cereal/types/optional.hpp"
#include "cereal/types/set.hpp"
#include "cereal/types/string.hpp"
#include "cereal/types/tuple.hpp"
#include "cereal/types/unordered_map.hpp"
#include "cereal/types/utility.hpp"
#include "cereal/types/variant.hpp"
#include "cereal/types/vector.hpp"
#include "ipc/archive.h"

namespace mp {

// is_serializable_v<T> is true when T can cross a process boundary.
namespace internal {
template <class T, bool kPointer = std::is_pointer_v<T> || std::is_reference_v<T>>
struct IsSerializable : std::false_type {};  // Raw pointers never cross processes.
template <class T>
struct IsSerializable<T, false>
    : std::bool_constant<cereal::traits::is_output_serializable<T, OutputArchive>::value &&
                         cereal::traits::is_input_serializable<T, InputArchive>::value> {};
// cereal declares every tuple, pair and vector serializable and fails deep
// inside on a bad element; look at the elements instead, for a clear error.
template <class... A>
struct IsSerializable<std::tuple<A...>, false> : std::bool_constant<(IsSerializable<A>::value && ...)> {};
template <class A, class B>
struct IsSerializable<std::pair<A, B>, false>
    : std::bool_constant<IsSerializable<A>::value && IsSerializable<B>::value> {};
template <class A>
struct IsSerializable<std::vector<A>, false> : IsSerializable<A> {};
template <class A>
struct IsSerializable<std::optional<A>, false> : IsSerializable<A> {};
}  // namespace internal

template <class T>
inline constexpr bool is_serializable_v = internal::IsSerializable<T>::value;

template <class T>
struct CannotSerialize {
  static_assert(is_serializable_v<T>,
                "mp: this type cannot cross a process boundary. Give it a member "
                "`template <class Archive> void serialize(Archive& ar) { ar(fields...); }`, "
                "or use a built-in type (see ipc/codec.h). The type is the T of "
                "mp::CannotSerialize<T> in this error.");
  static constexpr bool value = true;
};

// encode_to appends the encoding of `value` to *out.
template <class T>
void encode_to(std::string* out, const T& value) {
  static_assert(CannotSerialize<T>::value);
  internal::OutputArchive archive(out);
  archive(value);
}

// encode returns the encoding of `value`.
// encoded_size is the number of bytes encode(value) makes, without making them.
template <class T>
size_t encoded_size(const T& value) {
  static_assert(CannotSerialize<T>::value);
  internal::OutputArchive archive;
  archive(value);
  return archive.size();
}

// encode_into writes encode(value) into `spans`, which must hold exactly
// encoded_size(value) bytes (mp::Error otherwise: a serialize() that does not
// write the same bytes twice).
template <class T>
void encode_into(const internal::SpanSink& spans, const T& value) {
  static_assert(CannotSerialize<T>::value);
  internal::OutputArchive archive(spans);
  archive(value);
  if (archive.size() != spans.first_size + spans.second_size) {
    throw Error("encode: a value's encoding shrank between measuring and writing it");
  }
}

template <class T>
std::string encode(const T& value) {
  std::string out;
  encode_to(&out, value);
  return out;
}

// decode parses `bytes` as a T. Throws mp::Error if they are not exactly the
// encoding of a T (truncated, trailing bytes, impossible lengths, bad variant
// index, ...).
// encode_span: the bytes of encode(std::vector<T>(items.begin(), items.end())),
// without building that vector. Pool sends chunks of the caller's items so.
template <class T>
std::string encode_span(std::span<const T> items) {
  static_assert(CannotSerialize<std::vector<T>>::value);
  std::string out;
  internal::OutputArchive archive(&out);
  archive(cereal::make_size_tag(static_cast<cereal::size_type>(items.size())));
  if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
    out.reserve(out.size() + items.size_bytes());
    // What cereal's vector does for arithmetic types: one block of bytes.
    archive(cereal::binary_data(items.data(), items.size() * sizeof(T)));
  } else {
    for (const T& item : items) archive(item);
  }
  return out;
}

namespace internal {
// RunDecoder runs `load` on an archive over `bytes`: any failure becomes a
// DecodeError naming `what`, and bytes left over are an error too.
template <class Load>
void RunDecoder(std::string_view bytes, const std::string& what, Load&& load) {
  InputArchive archive(bytes);
  try {
    load(archive);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw DecodeError("decode: bytes are not a valid " + what + ": " + e.what());
  }
  if (archive.remaining() != 0) {
    throw DecodeError("decode: " + std::to_string(archive.remaining()) +
                      " bytes left over after a " + what);
  }
}
}  // namespace internal

// decode_into: decodes the bytes of a std::vector<T> of exactly out.size()
// elements into `out`, without a vector in between (Pool writes each chunk's
// results straight into the caller's result). DecodeError otherwise.
template <class T>
void decode_into(std::string_view bytes, std::span<T> out) {
  static_assert(CannotSerialize<std::vector<T>>::value);
  internal::RunDecoder(bytes, std::string("vector of ") + typeid(T).name(), [&](auto& archive) {
    cereal::size_type size = 0;
    archive(cereal::make_size_tag(size));
    if (size != out.size()) {
      throw internal::DecodeError("decode: expected " + std::to_string(out.size()) +
                                  " elements, the bytes hold " + std::to_string(size));
    }
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      archive(cereal::binary_data(out.data(), out.size() * sizeof(T)));
    } else {
      for (T& item : out) archive(item);
    }
  });
}

// decode_in_place decodes into an existing value, so strings and vectors in
// it keep their capacity when a loop decodes into the same object again.
template <class T>
void decode_in_place(std::string_view bytes, T& value) {
  static_assert(CannotSerialize<T>::value);
  internal::RunDecoder(bytes, typeid(T).name(), [&](auto& archive) { archive(value); });
}

template <class T>
T decode(std::string_view bytes) {
  static_assert(std::is_default_constructible_v<T>,
                "mp: decoded types must be default-constructible");
  T value{};
  decode_in_place(bytes, value);
  return value;
}

}  // namespace mp

#endif  // IPC_CODEC_H_
