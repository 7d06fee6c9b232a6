"""Targets that exist only when MPI is installed (see mpi_configure.bzl)."""

load("@mpi//:defs.bzl", "HAVE_MPI")

def mpi_cc_library(**kwargs):
    if HAVE_MPI:
        native.cc_library(**kwargs)

def mpi_cc_binary(**kwargs):
    if HAVE_MPI:
        native.cc_binary(**kwargs)

def mpi_sh_test(**kwargs):
    if HAVE_MPI:
        native.sh_test(**kwargs)
