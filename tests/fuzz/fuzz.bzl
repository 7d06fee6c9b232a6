"""mp_fuzz_target: one fuzzer, as a binary and as a corpus replay test."""

def mp_fuzz_target(name, deps, dict = None):
    """<name>: the fuzzer (libFuzzer's main under --config=fuzz, the replay
    main otherwise); <name>_corpus_test: replays corpus/<name>/ (all builds).

    Args:
      name: the target, and the source file <name>.cc.
      deps: what the fuzzer's source needs.
      dict: an optional libFuzzer dictionary (run.sh fuzz passes it).
    """
    native.cc_binary(
        name = name,
        srcs = [name + ".cc"],
        deps = deps + select({
            ":libfuzzer": [],
            "//conditions:default": [":replay_main"],
        }),
        linkopts = select({
            ":libfuzzer": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        data = [dict] if dict else [],
        tags = ["fuzzer"],
    )
    native.cc_test(
        name = name + "_corpus_test",
        size = "small",
        srcs = [name + ".cc"],
        deps = deps + [":replay_main"],
        args = ["tests/fuzz/corpus/" + name],
        data = native.glob(["corpus/" + name + "/**"]),
    )
