#include "process/function_id.h"

#include <elf.h>
#include <link.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>

#include "absl/strings/escaping.h"
#include "base/errors.h"
#include "sync/fork_safe_mutex.h"

namespace mp::internal {
namespace {

struct Search {
  uintptr_t address = 0;
  std::string object;
  uintptr_t base = 0;
  bool found = false;
  bool first = true;
};

int FindContaining(dl_phdr_info* info, size_t, void* data) {
  auto* s = static_cast<Search*>(data);
  const bool is_main = s->first;
  s->first = false;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    const uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    if (s->address >= start && s->address < start + ph.p_memsz) {
      s->object = is_main ? "" : info->dlpi_name;
      s->base = info->dlpi_addr;
      s->found = true;
      return 1;
    }
  }
  return 0;
}

int FindByName(dl_phdr_info* info, size_t, void* data) {
  auto* s = static_cast<Search*>(data);
  const bool is_main = s->first;
  s->first = false;
  if ((is_main && s->object.empty()) || (!is_main && s->object == info->dlpi_name)) {
    s->base = info->dlpi_addr;
    s->found = true;
    return 1;
  }
  return 0;
}

int ReadMainBuildId(dl_phdr_info* info, size_t, void* data) {
  auto* out = static_cast<std::string*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    const char* p = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
    const char* end = p + ph.p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const auto* note = reinterpret_cast<const ElfW(Nhdr)*>(p);
      const char* name = p + sizeof(ElfW(Nhdr));
      const char* desc = name + ((note->n_namesz + 3) & ~3u);
      if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0) {
        *out = absl::BytesToHexString(absl::string_view(desc, note->n_descsz));
        return 1;
      }
      p = desc + ((note->n_descsz + 3) & ~3u);
    }
  }
  return 1;  // Only the first entry (the main program) matters.
}

}  // namespace

CodeRef NameCode(const void* address) {
  Search s;
  s.address = reinterpret_cast<uintptr_t>(address);
  dl_iterate_phdr(&FindContaining, &s);
  if (!s.found) throw ProcessError("cannot name code address for a spawned child");
  return CodeRef{s.object, s.address - s.base};
}

void* FindCode(const CodeRef& ref) {
  Search s;
  s.object = ref.object;
  dl_iterate_phdr(&FindByName, &s);
  if (!s.found) {
    throw ProcessError("spawned child: the object holding the target (" +
                       (ref.object.empty() ? std::string("main program") : ref.object) +
                       ") is not loaded in the child");
  }
  return reinterpret_cast<void*>(s.base + ref.offset);
}

CodeRef NameCodeOrNull(const void* address) { return address ? NameCode(address) : CodeRef{}; }

void* FindCodeOrNull(const CodeRef& ref) {
  return ref.object.empty() && ref.offset == 0 ? nullptr : FindCode(ref);
}

namespace {

// Seen: a child forked while another thread made the first forkserver
// start hung in BuildId's guard (see RunBeforeEveryFork).
[[maybe_unused]] const bool kBuildIdReadyAtFork = [] {
  RunBeforeEveryFork([] { BuildId(); });
  return true;
}();

}  // namespace

const std::string& BuildId() {
  static const std::string id = [] {
    std::string out;
    dl_iterate_phdr(&ReadMainBuildId, &out);
    if (out.empty()) {
      struct stat st;
      if (stat("/proc/self/exe", &st) == 0) {
        out = "size:" + std::to_string(st.st_size) + ",mtime:" + std::to_string(st.st_mtime);
      }
    }
    return out;
  }();
  return id;
}

}  // namespace mp::internal
