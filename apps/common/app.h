// What the example apps share: flags (--time_scale), Python's print, sleep,
// time and random, so that each app's main.cc reads like the Python it
// reproduces.
#ifndef APPS_COMMON_APP_H_
#define APPS_COMMON_APP_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace apps {

// Init parses the flags (gflags) and then calls mp::init, so spawn and
// forkserver children work. Call first in main.
void Init(int* argc, char*** argv, const char* usage);

// Print writes `line` and a newline with one write and flushes at once, as
// Python's print does to a terminal, so lines of several processes do not
// tear or reorder in a pipe.
void Print(std::string_view line);
// Python: print(..., end="").
void PrintNoNewline(std::string_view text);

// Sleep sleeps `seconds` times --time_scale. Python: time.sleep.
void Sleep(double seconds);
// Scaled is seconds times --time_scale.
double Scaled(double seconds);

// Python: time.ctime() / time.asctime(time.localtime()).
std::string CTime();
// Python: time.time().
double Time();
// Python: random.random() and random.randrange(a, b), reseeded per process.
double Random();
int RandRange(int a, int b);

// Python's repr of a float (shortest round trip, "2.0" not "2").
std::string PyFloat(double value);
// Python's repr of a list of ints: "[11, 22]".
std::string PyList(const std::vector<int>& values);
// Python's repr of a str->int dict: "{'m': 20}".
std::string PyDict(const std::map<std::string, int>& values);

}  // namespace apps

#endif  // APPS_COMMON_APP_H_
