// Counting primes below --limit with a Pool, in ranges: the CPU-heavy map of
// the MPI pool issue. The same code runs on a local fork pool and on an MPI
// pool; only the launch differs:
//
//   bazel run //apps/primes:count_primes -- --limit=20000000
//   mpirun -np 3 bazel-bin/apps/primes/count_primes --limit=20000000
//
// Python equivalent:
//   with Pool() as pool:
//       counts = pool.map(count_primes, ranges, chunksize=1)
//   print(sum(counts))
#include <cstdint>
#include <vector>

#include "apps/common/app.h"
#include "gflags/gflags.h"
#include "pool/mpi_pool.h"
#include "pool/pool.h"

DEFINE_int64(limit, 20'000'000, "count the primes below this number");
DEFINE_int32(ranges, 64, "split [0, limit) into this many tasks");

namespace {

// [begin, end) of integers to test.
struct Range {
  int64_t begin = 0;
  int64_t end = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(begin, end);
  }
};

bool IsPrime(int64_t n) {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (int64_t d = 3; d * d <= n; d += 2) {
    if (n % d == 0) return false;
  }
  return true;
}

int64_t CountPrimes(Range range) {
  int64_t count = 0;
  for (int64_t n = range.begin; n < range.end; ++n) count += IsPrime(n);
  return count;
}

}  // namespace

int main(int argc, char** argv) {
  mp::mpi::init(argc, argv);  // Under mpirun, ranks > 0 serve the pool from here.
  apps::Init(&argc, &argv, "count_primes [--limit=N] [--ranges=K]");
  std::vector<Range> ranges;
  const int64_t step = (FLAGS_limit + FLAGS_ranges - 1) / FLAGS_ranges;
  for (int64_t begin = 0; begin < FLAGS_limit; begin += step) {
    ranges.push_back({begin, std::min(begin + step, FLAGS_limit)});
  }

  mp::Pool pool;  // cpu_count() local workers, or every worker rank under mpirun
  const std::string where = mp::mpi::size() > 1
                                ? absl::StrCat(pool.processes(), " MPI worker ranks")
                                : absl::StrCat(pool.processes(), " local worker processes");
  apps::Print(absl::StrCat("counting primes below ", FLAGS_limit, " in ", ranges.size(),
                           " ranges on ", where));
  const double start = apps::Time();
  int64_t total = 0;
  for (int64_t count : pool.map(CountPrimes, ranges, 1)) total += count;
  apps::Print(absl::StrFormat("%d primes below %d (%.2f s)", total, FLAGS_limit,
                              apps::Time() - start));
  pool.close();
  pool.join();
  return 0;
}
