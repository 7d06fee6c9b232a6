#include "ipc/codec.h"

#include <map>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

#include "gtest/gtest.h"

namespace mp {
namespace {

struct Point {
  int x = 0;
  double y = 0;
  std::string label;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(x, y, label);
  }
  bool operator==(const Point&) const = default;
};

template <class T>
void ExpectRoundTrip(const T& value) {
  EXPECT_EQ(decode<T>(encode(value)), value);
}

TEST(Codec, RoundTripsEveryBuiltInType) {
  ExpectRoundTrip(42);
  ExpectRoundTrip(-7L);
  ExpectRoundTrip(3.5);
  ExpectRoundTrip(true);
  ExpectRoundTrip('c');
  ExpectRoundTrip(std::string("两点水"));
  ExpectRoundTrip(std::string(1 << 20, 'x'));
  ExpectRoundTrip(std::vector<int>{1, 2, 3});
  ExpectRoundTrip(std::map<std::string, int>{{"a", 1}, {"b", 2}});
  ExpectRoundTrip(std::unordered_map<int, std::string>{{1, "one"}});
  ExpectRoundTrip(std::pair<int, std::string>{1, "x"});
  ExpectRoundTrip(std::tuple<int, std::optional<int>, std::string>{42, std::nullopt, "hello"});
  ExpectRoundTrip(std::optional<std::string>("x"));
  ExpectRoundTrip(std::variant<int, std::string>(std::string("v")));
  ExpectRoundTrip(std::monostate{});
  ExpectRoundTrip(Point{1, 2.5, "p"});
  ExpectRoundTrip(std::vector<Point>{{1, 2, "a"}, {3, 4, "b"}});
}

TEST(Codec, TruncatedAndTrailingBytesAreErrors) {
  std::string bytes = encode(std::string("hello"));
  EXPECT_THROW(decode<std::string>(bytes.substr(0, bytes.size() - 1)), Error);
  EXPECT_THROW(decode<int>(encode(1L)), Error);  // 8 bytes for a 4-byte int.
  EXPECT_THROW(decode<int>(""), Error);
}

TEST(Codec, HugeClaimedLengthIsRefusedWithoutAllocating) {
  std::string bytes = encode(std::vector<int>{1});
  uint64_t huge = uint64_t{1} << 60;
  std::memcpy(bytes.data(), &huge, sizeof huge);
  EXPECT_THROW(decode<std::vector<int>>(bytes), Error);
}

TEST(Codec, BoolsOtherThanZeroOrOneAreRefused) {
  EXPECT_EQ(decode<bool>(std::string(1, '\1')), true);
  EXPECT_EQ(decode<bool>(std::string(1, '\0')), false);
  EXPECT_THROW(decode<bool>(std::string(1, '\2')), Error);
  EXPECT_THROW(decode<std::vector<bool>>(encode(std::vector<uint8_t>{1, 7})), Error);
}

enum class Colour : uint8_t { kRed, kGreen, kBlue, kMaxValue = kBlue };
enum class Level : int16_t { kMinValue = -2, kLow = -2, kHigh = 2, kMaxValue = kHigh };
enum class Flags : uint32_t { kA = 1, kB = 2 };  // no kMaxValue: any uint32_t

TEST(Codec, EnumsOutOfTheirRangeAreRefused) {
  EXPECT_EQ(decode<Colour>(encode(Colour::kBlue)), Colour::kBlue);
  EXPECT_EQ(encode(Colour::kGreen), std::string(1, '\1'));  // the underlying integer
  EXPECT_THROW(decode<Colour>(std::string(1, '\3')), Error);
  EXPECT_THROW(decode<std::vector<Colour>>(encode(std::vector<uint8_t>{0, 200})), Error);
  EXPECT_EQ(decode<Level>(encode(int16_t{-2})), Level::kLow);
  EXPECT_THROW(decode<Level>(encode(int16_t{-3})), Error);
  EXPECT_THROW(decode<Level>(encode(int16_t{3})), Error);
  EXPECT_EQ(static_cast<uint32_t>(decode<Flags>(encode(uint32_t{3}))), 3u);
}

TEST(Codec, NumberVectorsNeedTheBytesTheyClaim) {
  // 100 claimed doubles, 100 bytes given: refused before 800 bytes are
  // allocated (the claim fits the bytes, its element size does not).
  std::string bytes = encode(uint64_t{100}) + std::string(100, 'x');
  EXPECT_THROW(decode<std::vector<double>>(bytes), Error);
  EXPECT_EQ(decode<std::vector<double>>(encode(std::vector<double>{1.5, 2.5})),
            (std::vector<double>{1.5, 2.5}));
}

// A self-nesting type: deep nesting must be refused, not recurse the stack
// away.
struct Nest {
  std::vector<Nest> inner;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(inner);
  }
};

TEST(Codec, DeepNestingIsRefused) {
  Nest shallow;
  shallow.inner.resize(1);
  shallow.inner[0].inner.resize(2);
  EXPECT_EQ(decode<Nest>(encode(shallow)).inner.at(0).inner.size(), 2u);
  // 100,000 levels of "one element": size tags of 1, each 8 bytes.
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += encode(uint64_t{1});
  deep += encode(uint64_t{0});
  EXPECT_THROW(decode<Nest>(deep), Error);
}

TEST(Codec, VectorsOfEmptyValuesRoundTrip) {
  // Python's [None] * n.
  std::vector<std::monostate> nones(1000);
  EXPECT_EQ(decode<std::vector<std::monostate>>(encode(nones)).size(), 1000u);
  EXPECT_THROW(decode<std::vector<std::monostate>>(encode(uint64_t{1} << 40)), Error);
}

TEST(Codec, RandomBytesOnlyEverThrowMpError) {
  std::mt19937 rng(1234);
  for (int i = 0; i < 20000; ++i) {
    std::string bytes(rng() % 64, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    try {
      decode<std::tuple<int, std::string, std::vector<double>, std::optional<Point>,
                        std::variant<int, std::string>, std::map<int, std::string>>>(bytes);
    } catch (const Error&) {
    }
  }
}

TEST(Codec, SpansEncodeLikeVectorsAndDecodeInPlace) {
  const std::vector<int> ints{1, -2, 3, 40000};
  EXPECT_EQ(encode_span(std::span<const int>(ints)), encode(ints));
  EXPECT_EQ(encode_span(std::span<const int>(ints.data() + 1, 2)), encode(std::vector<int>{-2, 3}));
  const std::vector<std::string> words{"a", "", "long word"};
  EXPECT_EQ(encode_span(std::span<const std::string>(words)), encode(words));

  std::vector<int> out(6, 0);
  decode_into(encode(std::vector<int>{7, 8}), std::span<int>(out.data() + 2, 2));
  EXPECT_EQ(out, (std::vector<int>{0, 0, 7, 8, 0, 0}));
  std::vector<std::string> texts(3);
  decode_into(encode(words), std::span<std::string>(texts));
  EXPECT_EQ(texts, words);
  // A count that differs from the destination's is an error, not an overrun.
  EXPECT_THROW(decode_into(encode(std::vector<int>{1, 2, 3}), std::span<int>(out.data(), 2)), Error);
  EXPECT_THROW(decode_into(std::string("\x01"), std::span<int>(out.data(), 1)), Error);

  std::tuple<std::string, int> value{"a much longer string than the next one", 1};
  decode_in_place(encode(std::tuple<std::string, int>{"short", 2}), value);
  EXPECT_EQ(value, (std::tuple<std::string, int>{"short", 2}));
}

TEST(Codec, IsSerializableTrait) {
  struct Opaque {
    int x;
  };
  static_assert(is_serializable_v<Point>);
  static_assert(is_serializable_v<std::vector<std::string>>);
  static_assert(!is_serializable_v<Opaque>);
}

}  // namespace
}  // namespace mp
