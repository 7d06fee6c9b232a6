#include "apps/common/app.h"

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>
#include <thread>

#include "gflags/gflags.h"
#include "process/context.h"

DEFINE_double(time_scale, 1.0,
              "factor applied to every sleep and timeout of the example (0.1 runs it 10x faster)");

namespace apps {

void Init(int* argc, char*** argv, const char* usage) {
  mp::init(*argc, *argv);
  gflags::SetUsageMessage(usage);
  gflags::ParseCommandLineFlags(argc, argv, true);
}

void Print(std::string_view line) {
  std::string out(line);
  out += '\n';
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

void PrintNoNewline(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

double Scaled(double seconds) { return seconds * FLAGS_time_scale; }

void Sleep(double seconds) {
  std::this_thread::sleep_for(std::chrono::duration<double>(Scaled(seconds)));
}

std::string CTime() {
  const std::time_t now = std::time(nullptr);
  std::tm local;
  localtime_r(&now, &local);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a %b %e %H:%M:%S %Y", &local);
  return buf;
}

double Time() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

namespace {
std::mt19937_64& Rng() {
  // Reseeded in each process, as Python's random is after fork.
  thread_local pid_t seeded_for = 0;
  thread_local std::mt19937_64 rng;
  if (seeded_for != getpid()) {
    rng.seed(std::random_device{}() ^ static_cast<uint64_t>(getpid()));
    seeded_for = getpid();
  }
  return rng;
}
}  // namespace

double Random() { return std::uniform_real_distribution<double>(0.0, 1.0)(Rng()); }

int RandRange(int a, int b) { return std::uniform_int_distribution<int>(a, b - 1)(Rng()); }

std::string PyFloat(double value) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  std::string out(buf, end);
  if (out.find_first_of(".einn") == std::string::npos) out += ".0";
  return out;
}

std::string PyList(const std::vector<int>& values) {
  return "[" + absl::StrJoin(values, ", ") + "]";
}

std::string PyDict(const std::map<std::string, int>& values) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : values) parts.push_back(absl::StrCat("'", k, "': ", v));
  return "{" + absl::StrJoin(parts, ", ") + "}";
}

}  // namespace apps
