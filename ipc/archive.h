// The codec's cereal archives: binary, written straight into a std::string and
// read from a std::string_view with every length checked against the bytes
// that remain.
//
// Internal to ipc/codec.h. Why not cereal::BinaryInputArchive as it is: it
// reads through std::istream (slow for 8-byte queue items), and it trusts a
// decoded container size, so random bytes could make it allocate gigabytes
// before failing. These archives reuse cereal's binary format and every
// cereal type serializer; only the byte source and sink differ.
#ifndef IPC_ARCHIVE_H_
#define IPC_ARCHIVE_H_

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "base/errors.h"
#include "cereal/cereal.hpp"

namespace mp::internal {

// Thrown (as mp::Error) when bytes do not decode as the requested type.
class DecodeError : public Error {
 public:
  using Error::Error;
};

// OutputArchive writes to one of three sinks: the end of a std::string; a
// counter (to learn an encoding's size before writing it); or up to two
// fixed stretches of memory, such as the free space of a ring that wraps
// around its end (see SpanSink), which must then be filled exactly.
struct SpanSink {
  char* first = nullptr;
  size_t first_size = 0;
  char* second = nullptr;
  size_t second_size = 0;
  // How bytes are copied into the stretches (null: memcpy). A queue's ring
  // copies large pieces its own way (ipc/handover_copy.h).
  void (*copy)(char* dst, const char* src, size_t n) = nullptr;
};

class OutputArchive : public cereal::OutputArchive<OutputArchive, cereal::AllowEmptyClassElision> {
 public:
  explicit OutputArchive(std::string* out)
      : cereal::OutputArchive<OutputArchive, cereal::AllowEmptyClassElision>(this), out_(out) {}
  // Counting only: size() is what the bytes would take.
  OutputArchive() : cereal::OutputArchive<OutputArchive, cereal::AllowEmptyClassElision>(this) {}
  explicit OutputArchive(const SpanSink& spans)
      : cereal::OutputArchive<OutputArchive, cereal::AllowEmptyClassElision>(this),
        spans_(spans),
        writing_spans_(true) {}

  void saveBinary(const void* data, size_t size) {
    if (out_ != nullptr) {
      out_->append(static_cast<const char*>(data), size);
    } else if (writing_spans_) {
      WriteSpans(static_cast<const char*>(data), size);
    }
    size_ += size;
  }
  size_t size() const { return size_; }
  // counting_only: this archive only measures (encoded_size). A type whose
  // save() has a side effect (a manager proxy pins its referent) skips it
  // here and writes bytes of the same size.
  bool counting_only() const { return out_ == nullptr && !writing_spans_; }

 private:
  void WriteSpans(const char* data, size_t size) {
    if (size_ + size > spans_.first_size + spans_.second_size) {
      throw Error("encode: a value's encoding grew between measuring and writing it");
    }
    size_t at = size_;
    if (at < spans_.first_size) {
      const size_t n = std::min(size, spans_.first_size - at);
      Copy(spans_.first + at, data, n);
      data += n;
      size -= n;
      at += n;
    }
    if (size > 0) Copy(spans_.second + (at - spans_.first_size), data, size);
  }
  void Copy(char* dst, const char* src, size_t n) const {
    if (spans_.copy != nullptr) {
      spans_.copy(dst, src, n);
    } else {
      std::memcpy(dst, src, n);
    }
  }

  std::string* out_ = nullptr;
  SpanSink spans_;
  bool writing_spans_ = false;
  size_t size_ = 0;
};

class InputArchive : public cereal::InputArchive<InputArchive, cereal::AllowEmptyClassElision> {
 public:
  // How deeply values may nest (a vector of variants of vectors ...): bytes
  // from another process must not recurse the decoder off its stack.
  static constexpr int kMaxDepth = 200;

  explicit InputArchive(std::string_view in)
      : cereal::InputArchive<InputArchive, cereal::AllowEmptyClassElision>(this), in_(in) {}

  // Enter and Leave bracket every value (cereal's prologue and epilogue).
  void Enter() {
    if (++depth_ > kMaxDepth) {
      throw DecodeError("decode: values nested more than " + std::to_string(kMaxDepth) +
                        " deep");
    }
  }
  void Leave() { --depth_; }
  void loadBinary(void* data, size_t size) {
    if (size == 0) return;  // `data` may be null (an empty vector's): no memcpy
    if (size > in_.size()) {
      throw DecodeError("decode: message truncated (wanted " + std::to_string(size) +
                        " more bytes, " + std::to_string(in_.size()) + " left)");
    }
    std::memcpy(data, in_.data(), size);
    in_.remove_prefix(size);
  }
  size_t remaining() const { return in_.size(); }
  // TakeBytes hands out the next `size` bytes in place.
  std::string_view TakeBytes(size_t size) {
    if (size > in_.size()) loadBinary(nullptr, size);  // throws: truncated
    std::string_view bytes = in_.substr(0, size);
    in_.remove_prefix(size);
    return bytes;
  }

 private:
  std::string_view in_;
  int depth_ = 0;
};

template <class T>
void prologue(InputArchive& ar, const T&) {
  ar.Enter();
}
template <class T>
void epilogue(InputArchive& ar, const T&) {
  ar.Leave();
}

template <class T>
std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_SAVE_FUNCTION_NAME(OutputArchive& ar,
                                                                     const T& t) {
  ar.saveBinary(std::addressof(t), sizeof(t));
}

template <class T>
std::enable_if_t<std::is_arithmetic_v<T> && !std::is_same_v<T, bool>> CEREAL_LOAD_FUNCTION_NAME(
    InputArchive& ar, T& t) {
  ar.loadBinary(std::addressof(t), sizeof(t));
}

// A bool is one byte, 0 or 1: any other byte would be undefined behaviour
// once read as a bool.
inline void CEREAL_LOAD_FUNCTION_NAME(InputArchive& ar, bool& b) {
  unsigned char byte;
  ar.loadBinary(&byte, 1);
  if (byte > 1) throw DecodeError("decode: a bool of value " + std::to_string(byte));
  b = byte == 1;
}

// An enum arrives as its underlying integer. An enum that names its largest
// value kMaxValue (Chromium's convention; kMinValue too, else 0 is the
// least) refuses any integer outside [kMinValue, kMaxValue]: a switch over
// it then never sees a value its enumerators do not name. Other enums take
// any value of their underlying type (well-defined for an enum class, or any
// enum with a fixed underlying type).
template <class E, class = void>
struct HasMaxValue : std::false_type {};
template <class E>
struct HasMaxValue<E, std::void_t<decltype(E::kMaxValue)>> : std::true_type {};
template <class E, class = void>
struct HasMinValue : std::false_type {};
template <class E>
struct HasMinValue<E, std::void_t<decltype(E::kMinValue)>> : std::true_type {};

template <class E>
std::enable_if_t<std::is_enum_v<E>> CEREAL_LOAD_MINIMAL_FUNCTION_NAME(
    const InputArchive&, E& e, const std::underlying_type_t<E>& value) {
  if constexpr (HasMaxValue<E>::value) {
    using U = std::underlying_type_t<E>;
    U least = 0;
    if constexpr (HasMinValue<E>::value) least = static_cast<U>(E::kMinValue);
    if (value < least || value > static_cast<U>(E::kMaxValue)) {
      throw DecodeError("decode: " + std::to_string(+value) + " is not a value of enum " +
                        typeid(E).name());
    }
  }
  e = static_cast<E>(value);
}

// A vector of numbers loads as one block: its claimed size must be backed by
// bytes (size times the element's size), checked before it is resized.
template <class T, class A>
std::enable_if_t<std::is_arithmetic_v<T> && !std::is_same_v<T, bool>> CEREAL_LOAD_FUNCTION_NAME(
    InputArchive& ar, std::vector<T, A>& vector) {
  cereal::size_type size = 0;
  ar(size);
  if (size > ar.remaining() / sizeof(T)) {
    throw DecodeError("decode: a vector claims " + std::to_string(size) + " elements of " +
                      std::to_string(sizeof(T)) + " bytes but only " +
                      std::to_string(ar.remaining()) + " bytes remain");
  }
  vector.resize(static_cast<size_t>(size));
  ar.loadBinary(vector.data(), static_cast<size_t>(size) * sizeof(T));
}

template <class Archive, class T>
CEREAL_ARCHIVE_RESTRICT(InputArchive, OutputArchive)
CEREAL_SERIALIZE_FUNCTION_NAME(Archive& ar, cereal::NameValuePair<T>& t) {
  ar(t.value);
}

template <class T>
void CEREAL_SAVE_FUNCTION_NAME(OutputArchive& ar, const cereal::SizeTag<T>& t) {
  ar(t.size);
}

// A container cannot have more elements than there are bytes left (every
// element this library serializes takes at least one byte), so a larger size
// is garbage: refuse it before the container is resized.
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(InputArchive& ar, cereal::SizeTag<T>& t) {
  ar(t.size);
  if (static_cast<unsigned long long>(t.size) > ar.remaining()) {
    throw DecodeError("decode: a container claims " + std::to_string(t.size) +
                      " elements but only " + std::to_string(ar.remaining()) + " bytes remain");
  }
}

// Strings load with one copy: cereal's own loader resizes first, which
// zero-fills the string before copying into it (twice the memory traffic for
// a large queue item).
// Same bytes as cereal's format: a size tag, then the characters.
template <class Traits, class Alloc>
void CEREAL_LOAD_FUNCTION_NAME(InputArchive& ar, std::basic_string<char, Traits, Alloc>& str) {
  cereal::size_type size = 0;
  ar(cereal::make_size_tag(size));
  const std::string_view bytes = ar.TakeBytes(static_cast<size_t>(size));
  str.assign(bytes.data(), bytes.size());
}

// A vector of empty elements (std::monostate: Python's [None] * n) encodes
// as its size alone, so the rule above (no more elements than bytes left)
// cannot hold; its memory is one byte an element, bounded here instead.
inline constexpr uint64_t kMaxEmptyElements = uint64_t{1} << 26;

template <class T, class A>
std::enable_if_t<std::is_empty_v<T>> CEREAL_LOAD_FUNCTION_NAME(InputArchive& ar,
                                                              std::vector<T, A>& vector) {
  cereal::size_type size = 0;
  ar(size);
  if (size > kMaxEmptyElements) {
    throw DecodeError("decode: a vector claims " + std::to_string(size) + " empty elements");
  }
  vector.assign(static_cast<size_t>(size), T{});
}

template <class T>
void CEREAL_SAVE_FUNCTION_NAME(OutputArchive& ar, const cereal::BinaryData<T>& bd) {
  ar.saveBinary(bd.data, static_cast<size_t>(bd.size));
}

template <class T>
void CEREAL_LOAD_FUNCTION_NAME(InputArchive& ar, cereal::BinaryData<T>& bd) {
  ar.loadBinary(bd.data, static_cast<size_t>(bd.size));
}

}  // namespace mp::internal

CEREAL_REGISTER_ARCHIVE(mp::internal::OutputArchive)
CEREAL_REGISTER_ARCHIVE(mp::internal::InputArchive)
CEREAL_SETUP_ARCHIVE_TRAITS(mp::internal::InputArchive, mp::internal::OutputArchive)

#endif  // IPC_ARCHIVE_H_
