#!/usr/bin/env python3
"""Python multiprocessing's figures for the same work as the C++ benchmarks.

Prints one JSON object: metric name -> value (median of the repetitions).
Usage: mp_bench.py [--quick]
"""
import json
import multiprocessing as mp
import statistics
import sys
import time

QUICK = "--quick" in sys.argv
REPS = 1 if QUICK else 3


def noop():
    pass


def median_of(fn):
    return statistics.median(fn() for _ in range(REPS))


def process_ms(method, n):
    ctx = mp.get_context(method)

    def run():
        start = time.perf_counter()
        for _ in range(n):
            p = ctx.Process(target=noop)
            p.start()
            p.join()
        return (time.perf_counter() - start) / n * 1e3
    return median_of(run)


def produce(q, n, item):
    for _ in range(n):
        q.put(item)


def queue_rate(n, item):
    def run():
        q = mp.Queue()
        p = mp.Process(target=produce, args=(q, n, item))
        start = time.perf_counter()
        p.start()
        for _ in range(n):
            q.get()
        elapsed = time.perf_counter() - start
        p.join()
        return n / elapsed
    return median_of(run)


def echo(other_end, conn):
    other_end.close()  # The parent's end, inherited: close it, or EOF never comes.
    try:
        while True:
            conn.send_bytes(conn.recv_bytes())
    except EOFError:
        pass


def pipe_pingpong_us(n):
    def run():
        a, b = mp.Pipe()
        p = mp.Process(target=echo, args=(a, b))
        p.start()
        b.close()
        msg = b"12345678"
        start = time.perf_counter()
        for _ in range(n):
            a.send_bytes(msg)
            a.recv_bytes()
        elapsed = time.perf_counter() - start
        a.close()
        p.join()
        return elapsed / n * 1e6
    return median_of(run)


def pipe_1mib_gib_s(n):
    def run():
        a, b = mp.Pipe()
        p = mp.Process(target=echo_ack, args=(a, b))
        p.start()
        b.close()
        data = b"x" * (1 << 20)
        start = time.perf_counter()
        for _ in range(n):
            a.send_bytes(data)
            a.recv_bytes()
        elapsed = time.perf_counter() - start
        a.close()
        p.join()
        return n / elapsed / 1024
    return median_of(run)


def echo_ack(other_end, conn):
    other_end.close()
    try:
        while True:
            conn.recv_bytes()
            conn.send_bytes(b"k")
    except EOFError:
        pass


def identity(x):
    return x


def pool_rates():
    n_tasks = 2000 if QUICK else 20000
    n_map = 100000 if QUICK else 1000000
    n_imap = 2000 if QUICK else 20000
    out = {}
    with mp.Pool(2) as pool:
        def apply_run():
            start = time.perf_counter()
            rs = [pool.apply_async(identity, (i,)) for i in range(n_tasks)]
            for r in rs:
                r.get()
            return n_tasks / (time.perf_counter() - start)
        out["pool_apply_async_tasks_per_s"] = median_of(apply_run)
        xs = list(range(n_map))

        def map_run():
            start = time.perf_counter()
            pool.map(identity, xs)
            return n_map / (time.perf_counter() - start)
        out["pool_map_items_per_s"] = median_of(map_run)
        ys = list(range(n_imap))

        def imap_run():
            start = time.perf_counter()
            for _ in pool.imap_unordered(identity, ys, 1):
                pass
            return n_imap / (time.perf_counter() - start)
        out["pool_imap_unordered_items_per_s"] = median_of(imap_run)
    return out


def lock_pairs_per_s(n):
    lock = mp.Lock()

    def run():
        start = time.perf_counter()
        for _ in range(n):
            lock.acquire()
            lock.release()
        return n / (time.perf_counter() - start)
    return median_of(run)


def add_under_lock(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def value_increments_per_s(n):
    def run():
        v = mp.Value("i", 0)
        p = mp.Process(target=add_under_lock, args=(v, n))
        start = time.perf_counter()
        p.start()
        add_under_lock(v, n)
        p.join()
        return 2 * n / (time.perf_counter() - start)
    return median_of(run)


def manager_produce(q, n):
    for i in range(n):
        q.put(i)


def manager_queue_per_s(n):
    with mp.Manager() as manager, mp.Pool(1) as pool:
        q = manager.Queue()

        def run():
            start = time.perf_counter()
            r = pool.apply_async(manager_produce, (q, n))
            for _ in range(n):
                q.get()
            r.get()
            return n / (time.perf_counter() - start)
        return median_of(run)


def event_pong(ping, pong, n):
    for _ in range(n):
        ping.wait()
        ping.clear()
        pong.set()


def event_wakeup_us(n):
    def run():
        ping, pong = mp.Event(), mp.Event()
        p = mp.Process(target=event_pong, args=(ping, pong, n))
        p.start()
        start = time.perf_counter()
        for _ in range(n):
            ping.set()
            pong.wait()
            pong.clear()
        elapsed = time.perf_counter() - start
        p.join()
        return elapsed / (2 * n) * 1e6
    return median_of(run)


def main():
    mp.set_start_method("fork")
    small = 20000 if QUICK else 200000
    steps = [
        ("process_fork_us", lambda: process_ms("fork", 20 if QUICK else 200) * 1e3),
        ("process_forkserver_us", lambda: process_ms("forkserver", 5 if QUICK else 50) * 1e3),
        ("process_spawn_us", lambda: process_ms("spawn", 3 if QUICK else 20) * 1e3),
        ("queue_8b_items_per_s", lambda: queue_rate(small, 12345678)),
        ("queue_1mib_bytes_per_s", lambda: queue_rate(20 if QUICK else 256, b"x" * (1 << 20)) * (1 << 20)),
        ("pipe_pingpong_us", lambda: pipe_pingpong_us(2000 if QUICK else 20000)),
        ("pipe_1mib_bytes_per_s", lambda: pipe_1mib_gib_s(50 if QUICK else 1000) * (1 << 30)),
        ("lock_pairs_per_s", lambda: lock_pairs_per_s(100000 if QUICK else 1000000)),
        ("value_increments_per_s", lambda: value_increments_per_s(20000 if QUICK else 200000)),
        ("manager_queue_items_per_s", lambda: manager_queue_per_s(2000 if QUICK else 20000)),
        ("event_wakeup_us", lambda: event_wakeup_us(1000 if QUICK else 10000)),
    ]
    out = {}
    for name, measure in steps:
        print("python:", name, file=sys.stderr, flush=True)
        out[name] = measure()
    print("python: pool", file=sys.stderr, flush=True)
    out.update(pool_rates())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
