// Naming code so that another process running the same binary can find it:
// the spawn and forkserver start methods send a target function this way.
//
// Internal to the library. An address is named by the loaded object that
// holds it (the main program, or a shared library by its path) and its offset
// from that object's load address, so it survives ASLR and PIE. The main
// program's ELF build id travels along, and a child whose binary differs
// refuses to run the code (mp::ProcessError) instead of jumping into garbage.
#ifndef PROCESS_FUNCTION_ID_H_
#define PROCESS_FUNCTION_ID_H_

#include <cstdint>
#include <string>

namespace mp::internal {

struct CodeRef {
  std::string object;  // "" for the main program, else the library's path
  uint64_t offset = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(object, offset);
  }
};

// NameCode names an address in this process. Throws mp::ProcessError if it is
// not inside a loaded object.
CodeRef NameCode(const void* address);

// FindCode resolves a name back to an address in this process. Throws
// mp::ProcessError if the object is not loaded here.
void* FindCode(const CodeRef& ref);

// The same, where no code is a possibility (a function object's task has no
// function): a null address is CodeRef{} (offset 0 of the main program is
// its ELF header, never code), and back.
CodeRef NameCodeOrNull(const void* address);
void* FindCodeOrNull(const CodeRef& ref);

// BuildId is the main program's ELF build id (hex), or its size and mtime
// when it has none, so a replaced binary is detected.
const std::string& BuildId();

}  // namespace mp::internal

#endif  // PROCESS_FUNCTION_ID_H_
