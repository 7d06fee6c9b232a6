#include "ipc/shareable_list.h"

namespace mp::internal {

const ShareableListHeader& CheckShareableList(const SharedMemory& shm, uint64_t item_type) {
  const auto bytes = shm.buf();
  if (bytes.size() < sizeof(ShareableListHeader)) throw ValueError("ShareableList: block " + shm.name() + " is too small");
  const auto& h = *reinterpret_cast<const ShareableListHeader*>(bytes.data());
  if (h.magic != kShareableListMagic) throw ValueError("ShareableList: block " + shm.name() + " is not a ShareableList");
  if (h.item_type != item_type) throw ValueError("ShareableList: block " + shm.name() + " holds items of another type");
  const size_t room = bytes.size() - sizeof(ShareableListHeader);
  if (h.slot == 0 || h.slot > room || (item_type == 1 && h.slot < 16) || h.count > room / h.slot) {
    throw ValueError("ShareableList: block " + shm.name() + " has a corrupt header");
  }
  return h;
}

}  // namespace mp::internal
