// Fuzzes the codec's decoder: bytes from another process decode into every
// built-in kind of value and a user struct, or throw mp::Error; nothing else
// (no other exception, no crash, no read past the input, no allocation the
// bytes cannot back). What decodes must encode back to bytes that decode to
// the same value.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

#include "base/check.h"
#include "base/errors.h"
#include "ipc/codec.h"

namespace {

enum class Side : uint8_t { kBuy, kSell, kMaxValue = kSell };

// A user type, as an application would write one.
struct Order {
  int64_t id = 0;
  std::string symbol;
  std::vector<double> prices;
  std::optional<std::map<std::string, int>> tags;
  Side side = Side::kBuy;
  bool urgent = false;
  std::vector<std::variant<std::monostate, int, std::string>> notes;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, symbol, prices, tags, side, urgent, notes);
  }
  bool operator==(const Order&) const = default;
};

template <class T>
void DecodeAndRoundTrip(std::string_view bytes) {
  T value;
  try {
    value = mp::decode<T>(bytes);
  } catch (const mp::Error&) {
    return;  // refused: what bad bytes must get
  }
  const std::string again = mp::encode(value);
  MP_CHECK(mp::decode<T>(again) == value);
}

// Types with NaN inside cannot compare equal to themselves: decode only.
template <class T>
void DecodeOnly(std::string_view bytes) {
  try {
    (void)mp::decode<T>(bytes);
  } catch (const mp::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 12) {
    case 0: DecodeAndRoundTrip<int32_t>(bytes); break;
    case 1: DecodeAndRoundTrip<bool>(bytes); break;
    case 2: DecodeAndRoundTrip<std::string>(bytes); break;
    case 3: DecodeAndRoundTrip<std::vector<std::string>>(bytes); break;
    case 4: DecodeAndRoundTrip<std::vector<int64_t>>(bytes); break;
    case 5: DecodeAndRoundTrip<std::map<std::string, std::vector<int>>>(bytes); break;
    case 6: DecodeAndRoundTrip<std::unordered_map<int, std::set<std::string>>>(bytes); break;
    case 7: DecodeAndRoundTrip<std::tuple<int, bool, std::optional<std::string>>>(bytes); break;
    case 8: DecodeAndRoundTrip<std::variant<std::monostate, int, std::string, std::vector<bool>>>(bytes); break;
    case 9: {
      // Up to kMaxEmptyElements Nones are a valid claim (64 MiB of memory,
      // codec_test checks the bound): keep the claims small here, or each
      // run costs a large allocation and the fuzzer slows to a crawl.
      uint64_t claim = 0;
      std::memcpy(&claim, bytes.data(), std::min<size_t>(bytes.size(), sizeof claim));
      if (claim <= 4096) DecodeAndRoundTrip<std::vector<std::monostate>>(bytes);
      break;
    }
    case 10: DecodeOnly<Order>(bytes); break;
    case 11: DecodeOnly<std::vector<std::pair<double, Side>>>(bytes); break;
  }
  return 0;
}
