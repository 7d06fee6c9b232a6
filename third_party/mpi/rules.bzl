"""Targets that exist only when MPI is installed (see mpi_configure.bzl)."""

load("@mpi//:defs.bzl", "HAVE_MPI")

def mpi_cc_library(**kwargs):
    if HAVE_MPI:
        native.cc_library(**kwargs)

def mpi_cc_binary(**kwargs):
    if HAVE_MPI:
        native.cc_binary(**kwargs)

def mpi_sh_test(tags = [], **kwargs):
    """An MPI job as a test, run alone ("exclusive").

    Open MPI's shared-memory transport keeps files in /dev/shm while a job
    runs, and the library's tests check that /dev/shm is the same before and
    after them: run side by side, they would see the job's files come and go.
    """
    if HAVE_MPI:
        native.sh_test(tags = tags + ["exclusive"], **kwargs)
