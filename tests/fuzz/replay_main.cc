// The main() of a fuzz target built without libFuzzer (every build but
// --config=fuzz): it runs LLVMFuzzerTestOneInput once on each file named on
// the command line, or found under a directory named there, so the corpus in
// the repository is a regression test in every test run (the *_corpus_test
// targets) and a crash libFuzzer found can be replayed under any build.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

void RunOne(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

}  // namespace

int main(int argc, char** argv) {
  size_t runs = 0;
  LLVMFuzzerTestOneInput(nullptr, 0);  // the empty input, always
  ++runs;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path root(argv[i]);
    if (std::filesystem::is_directory(root)) {
      std::vector<std::filesystem::path> files;
      for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
      for (const auto& file : files) RunOne(file), ++runs;
    } else if (std::filesystem::is_regular_file(root)) {
      RunOne(root), ++runs;
    } else {
      std::fprintf(stderr, "replay: no such file or directory: %s\n", argv[i]);
      return 2;
    }
  }
  std::printf("replay: %zu inputs ran without a crash\n", runs);
  return 0;
}
