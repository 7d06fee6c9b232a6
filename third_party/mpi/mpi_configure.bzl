"""A repository rule that makes MPI an optional dependency.

@mpi//:defs.bzl says whether Open MPI and Boost.MPI are installed
(HAVE_MPI), and @mpi//:mpi is a cc_library with their compile and link
flags, taken from `mpicxx --showme`. Without them HAVE_MPI is False and the
targets declared through //third_party/mpi:rules.bzl do not exist, so
`bazel test //...` builds and tests everything else. MP_WITHOUT_MPI=1 in
the environment of a bazel command builds as if MPI were not installed (how
the optional path is checked on a machine that has it).
"""

def _mpi_configure_impl(ctx):
    mpicxx = ctx.which("mpicxx")
    boost_mpi = ctx.path("/usr/include/boost/mpi.hpp")
    have = mpicxx != None and boost_mpi.exists and ctx.os.environ.get("MP_WITHOUT_MPI", "") != "1"
    includes = []
    linkopts = []
    if have:
        compile = ctx.execute([mpicxx, "--showme:incdirs"])
        link = ctx.execute([mpicxx, "--showme:link"])
        if compile.return_code != 0 or link.return_code != 0:
            have = False
        else:
            includes = compile.stdout.strip().split(" ")
            linkopts = link.stdout.strip().split(" ") + ["-lboost_mpi", "-lboost_serialization"]
    ctx.file("defs.bzl", "HAVE_MPI = %s\n" % ("True" if have else "False"))

    # `includes` must be paths inside the repository: link each directory in.
    local_includes = []
    for i, d in enumerate(includes):
        ctx.symlink(d, "include%d" % i)
        local_includes.append("include%d" % i)
    ctx.file("BUILD", """package(default_visibility = ["//visibility:public"])
exports_files(["defs.bzl"])
cc_library(
    name = "mpi",
    hdrs = glob(["include*/**/*.h"]),
    includes = {includes},
    linkopts = {linkopts},
)
""".format(
        includes = repr(local_includes),
        linkopts = repr(linkopts),
    ))

mpi_configure = repository_rule(
    implementation = _mpi_configure_impl,
    # Re-run when the packages come or go (e.g. after `apt-get install`).
    environ = ["PATH", "MP_WITHOUT_MPI"],
    local = True,
)
