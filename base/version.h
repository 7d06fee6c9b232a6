// The library's version: one number for the Bazel and CMake builds and the
// installed package (CMakeLists.txt reads it from here). CHANGELOG.md says
// what each version changed.
#ifndef BASE_VERSION_H_
#define BASE_VERSION_H_

#define MP_VERSION_MAJOR 0
#define MP_VERSION_MINOR 3
#define MP_VERSION_PATCH 0
#define MP_VERSION_STRING "0.3.0"

namespace mp {

// version: "MAJOR.MINOR.PATCH" of the library this program was built with.
constexpr const char* version() { return MP_VERSION_STRING; }

}  // namespace mp

#endif  // BASE_VERSION_H_
