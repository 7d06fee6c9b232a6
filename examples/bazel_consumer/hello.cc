// A program of another project, built against @multiprocessing_cpp.
#include <cstdio>
#include <string>
#include <vector>

#include "multiprocessing.h"

int square(int x) { return x * x; }

int main(int argc, char** argv) {
  mp::init(argc, argv);
  // The child first: a fork from a process that has no threads yet.
  mp::Queue<std::string> q;
  mp::Process p([q]() mutable { q.put("hello from a child"); });
  p.start();
  const std::string greeting = q.get();
  p.join();
  mp::Pool pool(2);
  const std::vector<int> squares = pool.map(square, std::vector<int>{1, 2, 3, 4});
  mp::ProcessPoolExecutor ex({.max_workers = 2});
  const int nine = ex.submit(square, 3).result();
  std::printf("multiprocessing %s: %d %d %d %d, %s, %d\n", mp::version(), squares[0], squares[1],
              squares[2], squares[3], greeting.c_str(), nine);
  return squares == std::vector<int>{1, 4, 9, 16} && nine == 9 ? 0 : 1;
}
