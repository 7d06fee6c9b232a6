// Runs a program with arguments and optional stdin, capturing its stdout
// and stderr, with a bound on its running time. For end-to-end tests.
#ifndef TESTS_RUN_BINARY_H_
#define TESTS_RUN_BINARY_H_

#include <chrono>
#include <string>
#include <vector>

namespace mp::testing {

struct RunResult {
  int exit_code = -1;  // -N: killed by signal N; -1000: timed out (and killed)
  std::string out;
  std::string err;
  std::vector<std::string> lines() const;  // stdout split into lines
};

RunResult RunBinary(const std::string& path, const std::vector<std::string>& args,
                    const std::string& stdin_text = "",
                    std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace mp::testing

#endif  // TESTS_RUN_BINARY_H_
