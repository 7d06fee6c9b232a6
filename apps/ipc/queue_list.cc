// 003: a child puts [42, None, 'hello'] (a tuple with an optional) in a Queue.
#include <optional>
#include <string>
#include <tuple>

#include "apps/common/app.h"
#include "ipc/queue.h"
#include "process/process.h"

using Item = std::tuple<int, std::optional<int>, std::string>;

void f(mp::Queue<Item> q) { q.put({42, std::nullopt, "hello"}); }

int main(int argc, char** argv) {
  apps::Init(&argc, &argv, "003: a Queue of Python-like lists");
  mp::Queue<Item> q;
  mp::Process p(f, q);
  p.start();
  auto [a, b, c] = q.get();  // prints "[42, None, 'hello']"
  apps::Print(absl::StrCat("[", a, ", ", b ? std::to_string(*b) : "None", ", '", c, "']"));
  p.join();
}
