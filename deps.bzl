"""What a workspace needs to build @multiprocessing_cpp//:multiprocessing.

In another workspace's WORKSPACE file:

    local_repository(name = "multiprocessing_cpp", path = "/path/to/this/repo")
    load("@multiprocessing_cpp//:deps.bzl", "multiprocessing_cpp_dependencies")
    multiprocessing_cpp_dependencies()

and in its .bazelrc the two flags the headers need (as in this repo's):

    build --cxxopt=-std=c++20
    build --cxxopt=-include --cxxopt=utility

It declares the Debian system libraries (Abseil, Boost, GoogleTest, gflags,
Google Benchmark, cereal, OpenSSL) under the names the library's BUILD files
use, Open MPI when installed (optional, @mpi), and the offline stand-ins for
the repositories Bazel 4.2.3 would otherwise download (rules_cc, rules_java,
remote_coverage_tools). Nothing is downloaded. This repository's own
WORKSPACE calls it too, so both see the same dependencies.
"""

load("@multiprocessing_cpp//third_party/mpi:mpi_configure.bzl", "mpi_configure")

_SYSTEM_LIBRARIES = ["absl", "boost", "gtest", "gflags", "benchmark", "cereal", "openssl"]
_STAND_INS = ["rules_cc", "rules_java", "remote_coverage_tools"]

def _stand_in_impl(ctx):
    # The stand-in's directory in this repository, wherever it is checked out.
    marker = ctx.path(Label("@multiprocessing_cpp//third_party/%s:WORKSPACE" % ctx.attr.stand_in))
    directory = marker.dirname
    for entry in directory.readdir():
        ctx.symlink(entry, entry.basename)

_stand_in = repository_rule(
    implementation = _stand_in_impl,
    attrs = {"stand_in": attr.string(mandatory = True)},
    local = True,
)

def multiprocessing_cpp_dependencies():
    """Declares the repositories @multiprocessing_cpp needs (none downloaded)."""
    for name in _STAND_INS:
        if not native.existing_rule(name):
            _stand_in(name = name, stand_in = name)
    for lib in _SYSTEM_LIBRARIES:
        if not native.existing_rule(lib):
            native.new_local_repository(
                name = lib,
                path = "/usr",
                build_file = "@multiprocessing_cpp//third_party/system:%s.BUILD" % lib,
            )
    if not native.existing_rule("mpi"):
        mpi_configure(name = "mpi")
