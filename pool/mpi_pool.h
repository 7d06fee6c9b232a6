// MPI pools: the same mp::Pool, with its workers on the other ranks of an
// MPI job, so a program outgrows one machine without a rewrite.
//
//   int count_primes(Range r) { ... }
//
//   int main(int argc, char** argv) {
//     mp::mpi::init(argc, argv);  // ranks > 0 serve rank 0's pools here and exit
//     mp::Pool pool;              // under mpirun -np N: N-1 worker ranks;
//                                 // run plainly: cpu_count() local workers
//     std::vector<int> counts = pool.map(count_primes, ranges);
//   }
//
//   bazel run //apps/primes:count_primes                # local fork pool
//   mpirun -np 3 bazel-bin/apps/primes/count_primes     # rank 0 + 2 worker ranks
//
// Every rank runs the same binary: tasks name their functions as the spawn
// start method does (object + offset, see process/function_id.h) and their
// arguments and results go through the codec. init() compares every rank's
// ELF build id with rank 0's; if one differs, creating an MPI pool throws
// mp::ProcessError naming the rank and its host, and nothing runs there.
//
// Which pool: under mpirun with 2 or more ranks, init() makes "mpi" the
// default start method of pools (PoolOptions::start_method = "fork" still
// asks for a local one); Pool(n) takes n worker ranks (mp::ValueError if
// fewer exist), Pool() all of them. One MPI pool at a time (mp::ProcessError
// for a second one alive at once); pools may follow one another. An MPI
// pool's initializer must be a plain function (it is named, not copied);
// maxtasksperchild is honoured on each rank.
//
// Each worker rank runs its tasks in a local worker process (a one-process
// mp::Pool of its own, named "MpiPoolWorker-<rank>-N"), so a task that
// crashes (segfault, abort, SIGKILL of that process, OOM) fails with
// mp::WorkerLostError and the rank carries on with a fresh worker: this needs
// nothing from MPI.
//
// A whole rank dying is another matter, and this is what Open MPI 4.1 (the
// Debian 12 version) permits:
// - By default mpirun aborts the entire job when any rank exits abnormally:
//   rank 0 is killed too, and there is nothing a library can do about it.
// - With `mpirun --enable-recovery` the other ranks keep running. Open MPI
//   then reports nothing to the survivors (no ULFM in 4.1: sends to the dead
//   rank still "succeed", receives from it never complete), so every worker
//   rank also holds a TCP connection to rank 0 (mp::Client, authenticated,
//   opened by init()); when it closes, rank 0 fails that rank's in-flight
//   tasks with mp::WorkerLostError and the pool goes on with the other ranks.
//   When no rank is left, remaining tasks fail the same way.
// - Open MPI 4.1's MPI_Finalize waits for every rank, dead ones included,
//   and never returns after a death. So after a rank died, the surviving
//   ranks exit without calling it, and mpirun reports that they did.
//
// Waiting: Open MPI's blocking receive spins on a CPU. Instead, whoever is
// about to send an MPI message first rings the receiver's doorbell (a byte on
// the liveness connection). A rank with no message announced and no send of
// its own in progress sleeps in poll() with no timeout, so an idle pool, and
// a pool whose tasks are all running, costs no CPU; while a message is
// announced or a send is in progress it probes, sleeping in between with a
// backoff from 10 us up to 1 ms (5 ms on worker ranks).
//
// Threads: MPI is initialized with MPI_THREAD_SERIALIZED; inside the library
// one thread at a time calls MPI (rank 0's pool thread while a pool lives).
// A program that makes MPI calls of its own must not make them while an MPI
// pool exists.
//
// Build: this is the target //pool:mpi, declared only when Open MPI and
// Boost.MPI are installed (Debian: openmpi-bin libopenmpi-dev
// libboost-mpi-dev; see third_party/mpi). As root, mpirun needs
// --allow-run-as-root (or OMPI_ALLOW_RUN_AS_ROOT=1 and
// OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1), and --oversubscribe for more ranks than
// cores.
#ifndef POOL_MPI_POOL_H_
#define POOL_MPI_POOL_H_

namespace mp::mpi {

// init starts MPI (and does mp::init's work for spawned children: call it
// instead of mp::init, first thing in main). On rank 0, or without mpirun,
// it returns; on every other rank it serves rank 0's pools until rank 0's
// program exits, then exits the process with status 0. Calling it twice is
// harmless. Throws mp::ProcessError if MPI cannot start.
void init(int& argc, char**& argv);

// rank and size of this process in the MPI job (0 and 1 without mpirun, or
// before init).
int rank();
int size();

}  // namespace mp::mpi

#endif  // POOL_MPI_POOL_H_
