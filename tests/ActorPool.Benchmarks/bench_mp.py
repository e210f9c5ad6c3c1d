"""Python multiprocessing side of the ActorPool benchmark.

Runs one repetition of one workload and prints one JSON object on stdout.
Usage: python3 bench_mp.py WORKLOAD [--workers N] [--method spawn|forkserver|fork|thread] [--size N] [--timeout S]
                            [--engine mp|loky|dask]
(--method thread: multiprocessing.pool.ThreadPool.) --engine loky runs the workload on loky's ProcessPoolExecutor
(joblib's executor), --engine dask on a Dask distributed LocalCluster of --workers single-threaded worker processes,
for the workloads they have an equivalent of; "unavailable" when the package is not installed.
The workloads mirror tests/ActorPool.Benchmarks/Workloads.cs; see that file for the ActorPool side.
"""
import argparse
import json
import multiprocessing as mp
import os
import sys
import threading
import time
from multiprocessing.pool import ThreadPool


def square(x):
    return x * x


def identity(x):
    return x


def answer():
    return 42


def length(b):
    return len(b)


def count_primes(n):
    """Primes below n by trial division (the same algorithm as the ActorPool side)."""
    count = 0
    for k in range(2, n):
        d = 2
        prime = True
        while d * d <= k:
            if k % d == 0:
                prime = False
                break
            d += 1
        if prime:
            count += 1
    return count


def pid_after(delay):
    time.sleep(delay)
    return os.getpid()


def seed_work(item, unit=0.1):
    name, seconds = item
    print(" Process %s\tWaiting %s seconds" % (name, seconds), flush=True)
    time.sleep(seconds * unit)
    print(" Process %s\tDONE" % name, flush=True)
    return name


def die(x):
    if x == 3:
        os._exit(1)
    return x


_barrier = None


def set_barrier(barrier):
    global _barrier
    _barrier = barrier


def meet(_):
    """Returns only when every worker runs one of these at once: the pool's first result from each worker."""
    _barrier.wait(timeout=60)
    return os.getpid(), threading.get_ident()


def produce_on(q, n, go):
    """Waits for the signal, then puts 0..n-1 (the producer process is started before the timed region)."""
    go.wait()
    for i in range(n):
        q.put(i)


def queue_rate(ctx, q, n):
    go = ctx.Event()
    p = ctx.Process(target=produce_on, args=(q, n, go))
    p.start()
    time.sleep(0.3)
    t0 = time.perf_counter()
    go.set()
    total = 0
    for _ in range(n):
        total += q.get()
    elapsed = time.perf_counter() - t0
    p.join()
    assert total == n * (n - 1) // 2
    return n / elapsed


def lock_cycles(lock, n):
    lock.acquire()
    lock.release()
    t0 = time.perf_counter()
    for _ in range(n):
        lock.acquire()
        lock.release()
    return n / (time.perf_counter() - t0)


INHERITED_LOCK = None


def inherit_lock(lock):
    global INHERITED_LOCK
    INHERITED_LOCK = lock


def inherited_lock_cycles_for(start_at):
    return lock_cycles_for(INHERITED_LOCK, start_at)


def lock_cycles_for(lock, start_at):
    """From time.time() == start_at on, acquires and releases the lock for one second; returns the cycles."""
    while time.time() < start_at:
        time.sleep(0.001)
    end = time.time() + 1.0
    n = 0
    while time.time() < end:
        lock.acquire()
        lock.release()
        n += 1
    return n


def tree_cpu(root):
    """CPU seconds (user + system) and context switches of root and its live descendants (Linux /proc)."""
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                parents[int(name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
            except (OSError, IndexError, ValueError):
                pass
    tree = {root}
    grew = True
    while grew:
        grew = False
        for pid, (parent, _) in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grew = True
    ticks = sum(parents[p][1] for p in tree if p in parents)
    switches = 0
    for pid in tree:
        try:
            for task in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/status" % (pid, task)) as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                            switches += int(line.split(":")[1])
        except OSError:
            pass
    return ticks / os.sysconf("SC_CLK_TCK"), switches


SEED = (['a', 2], ['b', 4], ['c', 6], ['d', 8], ['e', 1], ['f', 3], ['g', 5], ['h', 7])


def warm(pool, workers):
    """Returns once every worker has answered."""
    seen = set()
    deadline = time.monotonic() + 60
    while len(seen) < workers and time.monotonic() < deadline:
        seen.update(pool.map(pid_after, [0.05] * workers, chunksize=1))
    if len(seen) < workers:
        raise SystemExit("workers did not all answer within 60 s")


def run(args, ctx):
    w = args.workers
    if args.workload == "startup":
        if args.method == "forkserver":
            # The server starts with the program's first pool; the warm start is every pool after it.
            with ctx.Pool(w) as first:
                warm(first, w)
        barrier = threading.Barrier(w) if args.method == "thread" else ctx.Barrier(w)
        t0 = time.perf_counter()
        if args.method == "thread":
            pool = ThreadPool(w, initializer=set_barrier, initargs=(barrier,))
        else:
            pool = ctx.Pool(w, initializer=set_barrier, initargs=(barrier,))
        pids = pool.map(meet, range(w), chunksize=1)
        elapsed = time.perf_counter() - t0
        assert len(set(pids)) == w
        pool.terminate()
        pool.join()
        return {"value": elapsed * 1e3}

    if args.workload == "seed-paired":
        # The seed's own code: a new Pool(2) for every pair; then the same pairs on one reused pool.
        pairs = list(zip(SEED[0::2], SEED[1::2]))
        t0 = time.perf_counter()
        for task1, task2 in pairs:
            with ctx.Pool(2) as p:
                p.map(seed_work, (task1, task2))
        new_pool = time.perf_counter() - t0
        with ctx.Pool(w) as pool:
            warm(pool, w)
            t0 = time.perf_counter()
            out = []
            for pair in pairs:
                out.extend(pool.map(seed_work, pair, chunksize=1))
            reused = time.perf_counter() - t0
        assert out == [name for name, _ in SEED]
        return {"value": new_pool, "reused": reused}

    if args.workload == "queue-throughput":
        n = args.size or 200_000
        rate = queue_rate(ctx, ctx.Queue(), n)
        with ctx.Manager() as manager:
            managed = queue_rate(ctx, manager.Queue(), min(n, 20_000))
        return {"value": rate, "manager": managed}

    if args.workload == "lock-cycles":
        mp_rate = lock_cycles(ctx.Lock(), 100_000)
        with ctx.Manager() as manager:
            managed = manager.Lock()
            single = lock_cycles(managed, 20_000)
            with ctx.Pool(2) as pool:
                warm(pool, 2)
                start_at = time.time() + 0.3
                contended = sum(pool.starmap(lock_cycles_for, [(managed, start_at)] * 2, chunksize=1)) / 1.0
        # multiprocessing.Lock contended: a semaphore cannot be sent to a pool's task, so the workers inherit it.
        lock = ctx.Lock()
        with ctx.Pool(2, initializer=inherit_lock, initargs=(lock,)) as pool:
            warm(pool, 2)
            start_at = time.time() + 0.3
            contended_mp = sum(pool.map(inherited_lock_cycles_for, [start_at] * 2, chunksize=1)) / 1.0
        return {"value": single, "mp": mp_rate, "contended": contended, "contendedmp": contended_mp}

    if args.workload == "imap-memory":
        # The caller's resident set while imap consumes a lazy generator (Python's task feeder reads it eagerly).
        def rss():
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
            return 0
        peak = [rss()]
        done = threading.Event()
        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], rss())
                time.sleep(0.02)
        sampler = threading.Thread(target=sample, daemon=True)
        with ctx.Pool(w) as pool:
            warm(pool, w)
            start = rss()
            peak[0] = start
            sampler.start()
            total = 0
            count = 0
            for r in pool.imap(square, (i for i in range(args.size)), chunksize=1000):
                total += r
                count += 1
            done.set()
            sampler.join()
        assert count == args.size
        top = max(peak[0], rss())
        growth, top_mb = (top - start) / (1024.0 * 1024.0), top / (1024.0 * 1024.0)
        # Every run here is a fresh interpreter: the same figures stand beside ActorPool's fresh-process rows.
        return {"value": growth, "peak": top_mb, "fresh": growth, "freshpeak": top_mb}

    if args.workload == "worker-crash":
        pool = ctx.Pool(w)
        warm(pool, w)
        t0 = time.perf_counter()
        result = pool.map_async(die, range(8), chunksize=1)
        try:
            result.get(timeout=args.timeout)
            outcome = "completed"
        except mp.TimeoutError:
            outcome = "hangs (no result after %g s)" % args.timeout
        except Exception as e:  # noqa: BLE001
            outcome = "error: %s" % type(e).__name__
        elapsed = time.perf_counter() - t0
        pool.terminate()
        pool.join()
        return {"value": None if outcome.startswith("hangs") else elapsed, "outcome": outcome}

    if args.workload == "cpu-bound":
        # The sequential run comes first, without a pool: the pool's handler threads would otherwise take the GIL
        # from it now and then and flatter the speedup.
        n = args.size or 65_000
        tasks = [n] * 16
        count_primes(1_000)
        t0 = time.perf_counter()
        seq = [count_primes(x) for x in tasks]
        sequential = time.perf_counter() - t0
        with ctx.Pool(w) as pool:
            warm(pool, w)
            pool.map(count_primes, [1_000] * w, chunksize=1)
            t0 = time.perf_counter()
            par = pool.map(count_primes, tasks, chunksize=1)
            parallel = time.perf_counter() - t0
        assert seq == par
        return {"value": sequential / parallel, "sequential": sequential, "parallel": parallel}

    with ctx.Pool(w) as pool:
        warm(pool, w)
        if args.workload == "idle-cpu":
            pool.map(square, range(1_000))
            time.sleep(1.0)
            before, switches_before = tree_cpu(os.getpid())
            t0 = time.perf_counter()
            time.sleep(args.seconds)
            after, switches_after = tree_cpu(os.getpid())
            elapsed = time.perf_counter() - t0
            return {"value": 100.0 * (after - before) / elapsed, "switches": (switches_after - switches_before) / elapsed}
        if args.workload == "tiny-map":
            n = args.size or 1_000_000
            pool.map(square, range(10_000))
            t0 = time.perf_counter()
            out = pool.map(square, range(n))
            elapsed = time.perf_counter() - t0
            assert out[-1] == (n - 1) * (n - 1)
            return {"value": n / elapsed}
        if args.workload == "tiny-imap":
            n = args.size or 100_000
            sum(pool.imap(square, range(1_000), chunksize=1))
            t0 = time.perf_counter()
            total = 0
            for r in pool.imap(square, range(n), chunksize=1):
                total += r
            elapsed = time.perf_counter() - t0
            assert total == sum(x * x for x in range(n))
            return {"value": n / elapsed}
        if args.workload == "apply-latency":
            n = args.size or 10_000
            for _ in range(200):
                pool.apply(answer)
            samples = []
            for _ in range(n):
                t0 = time.perf_counter()
                pool.apply(answer)
                samples.append(time.perf_counter() - t0)
            samples.sort()
            return {"p50": samples[len(samples) // 2] * 1e6, "p99": samples[int(len(samples) * 0.99)] * 1e6}
        if args.workload == "seed-sleep":
            t0 = time.perf_counter()
            out = pool.map(seed_work, SEED)
            elapsed = time.perf_counter() - t0
            assert out == [name for name, _ in SEED]
            return {"value": elapsed}
        if args.workload == "payload":
            count = args.size or 200
            arrays = [os.urandom(1 << 20) for _ in range(count)]
            pool.map(length, arrays[:4])
            t0 = time.perf_counter()
            out = pool.map(length, arrays)
            elapsed = time.perf_counter() - t0
            assert out == [1 << 20] * count
            return {"value": count / elapsed}
    raise SystemExit("unknown workload: %s" % args.workload)


def unavailable(why):
    print(json.dumps({"unavailable": why}), flush=True)


def first_from_each(submit_pid, w, deadline_s=60):
    """Submits w tasks at a time (each returns its worker's pid after 20 ms) until w distinct workers have answered."""
    seen = set()
    deadline = time.monotonic() + deadline_s
    while len(seen) < w and time.monotonic() < deadline:
        seen.update(submit_pid(w))
    if len(seen) < w:
        raise SystemExit("workers did not all answer within %d s" % deadline_s)


def sequential_primes(args):
    """The cpu-bound row's sequential run, done before any pool exists (as for multiprocessing)."""
    tasks = [args.size or 65_000] * 16
    count_primes(1_000)
    t0 = time.perf_counter()
    seq = [count_primes(x) for x in tasks]
    return tasks, seq, time.perf_counter() - t0


def run_common(args, map_all, call, sequential):
    """The workloads loky and Dask run alike: map_all(f, xs) -> list of results, call(f) -> one result."""
    wl = args.workload
    if wl == "apply-latency":
        n = args.size or (500 if args.engine == "dask" else 10_000)  # Dask's round trip is milliseconds
        for _ in range(50):
            call(answer)
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            call(answer)
            samples.append(time.perf_counter() - t0)
        samples.sort()
        return {"p50": samples[len(samples) // 2] * 1e6, "p99": samples[int(len(samples) * 0.99)] * 1e6}
    if wl == "cpu-bound":
        tasks, seq, seconds = sequential
        map_all(count_primes, [1_000] * args.workers)
        t0 = time.perf_counter()
        par = map_all(count_primes, tasks)
        parallel = time.perf_counter() - t0
        assert seq == par
        return {"value": seconds / parallel, "sequential": seconds, "parallel": parallel}
    if wl == "seed-sleep":
        t0 = time.perf_counter()
        out = map_all(seed_work, SEED)
        elapsed = time.perf_counter() - t0
        assert out == [name for name, _ in SEED]
        return {"value": elapsed}
    if wl == "payload":
        count = args.size or 200
        arrays = [os.urandom(1 << 20) for _ in range(count)]
        map_all(length, arrays[:4])
        t0 = time.perf_counter()
        out = map_all(length, arrays)
        elapsed = time.perf_counter() - t0
        assert out == [1 << 20] * count
        return {"value": count / elapsed}
    if wl == "worker-crash":
        t0 = time.perf_counter()
        try:
            map_all(die, range(8))
            outcome = "completed"
        except Exception as e:  # noqa: BLE001  (loky: TerminatedWorkerError; Dask: KilledWorker)
            outcome = "error: %s" % type(e).__name__
        elapsed = time.perf_counter() - t0
        if elapsed > args.timeout:
            outcome = "hangs (no result after %g s)" % args.timeout
        return {"value": None if outcome.startswith("hangs") else elapsed, "outcome": outcome}
    return {"unavailable": "no %s equivalent of %s" % (args.engine, wl)}


def run_loky(args):
    from joblib.externals.loky import ProcessPoolExecutor
    w = args.workers

    def pids(ex):
        return lambda k: list(ex.map(pid_after, [0.02] * k))

    if args.workload == "startup":
        t0 = time.perf_counter()
        ex = ProcessPoolExecutor(max_workers=w)
        first_from_each(pids(ex), w)
        elapsed = time.perf_counter() - t0
        ex.shutdown(wait=True)
        return {"value": elapsed * 1e3}
    sequential = sequential_primes(args) if args.workload == "cpu-bound" else None
    ex = ProcessPoolExecutor(max_workers=w)
    try:
        first_from_each(pids(ex), w)
        if args.workload == "tiny-map":
            # multiprocessing's default chunksize for this map: ceil(n / (4 * workers)).
            n = args.size or 1_000_000
            list(ex.map(square, range(10_000), chunksize=-(-10_000 // (4 * w))))
            t0 = time.perf_counter()
            out = list(ex.map(square, range(n), chunksize=-(-n // (4 * w))))
            elapsed = time.perf_counter() - t0
            assert out[-1] == (n - 1) * (n - 1)
            return {"value": n / elapsed}
        return run_common(args, lambda f, xs: list(ex.map(f, xs, timeout=args.timeout)),
                          lambda f: ex.submit(f).result(), sequential)
    finally:
        ex.shutdown(wait=False, kill_workers=True)


def run_dask(args):
    import logging
    logging.getLogger("distributed").setLevel(logging.ERROR)
    from distributed import Client, LocalCluster
    w = args.workers

    def start():
        cluster = LocalCluster(n_workers=w, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, silence_logs=logging.ERROR)
        return cluster, Client(cluster)

    if args.workload == "startup":
        t0 = time.perf_counter()
        cluster, client = start()
        client.wait_for_workers(w)
        pids = client.run(os.getpid)  # runs on every worker
        elapsed = time.perf_counter() - t0
        assert len(set(pids.values())) == w
        client.close()
        cluster.close()
        return {"value": elapsed * 1e3}
    sequential = sequential_primes(args) if args.workload == "cpu-bound" else None
    cluster, client = start()
    try:
        client.wait_for_workers(w)
        if args.workload == "tiny-map":
            # Dask's idiomatic form for many tiny items: a bag in partitions (one task per partition), as many as
            # multiprocessing's default chunks for this map.
            import dask.bag as db
            n = args.size or 100_000  # a bag of a million ints takes Dask minutes here
            db.from_sequence(range(10_000), npartitions=4 * w).map(square).compute()
            t0 = time.perf_counter()
            out = db.from_sequence(range(n), npartitions=4 * w).map(square).compute()
            elapsed = time.perf_counter() - t0
            assert out[-1] == (n - 1) * (n - 1)
            return {"value": n / elapsed}
        return run_common(args, lambda f, xs: client.gather(client.map(f, list(xs), pure=False), errors="raise"),
                          lambda f: client.submit(f, pure=False).result(), sequential)
    finally:
        client.close()
        cluster.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("workload")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--method", default="spawn")
    parser.add_argument("--size", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--engine", default="mp", choices=["mp", "loky", "dask"])
    args = parser.parse_args()
    engines = {"loky": ("joblib.externals.loky", "loky", run_loky), "dask": ("distributed", "Dask distributed", run_dask)}
    if args.engine in engines:
        module, name, runner = engines[args.engine]
        try:
            __import__(module)
        except ImportError as e:
            return unavailable("%s is not installed (%s)" % (name, e))
        print(json.dumps(runner(args)), flush=True)
        return
    if args.method == "thread":
        ctx = mp.get_context("spawn")  # unused: the thread workloads make a ThreadPool
    elif args.method not in mp.get_all_start_methods():
        print(json.dumps({"unavailable": "start method %s" % args.method}))
        return
    else:
        ctx = mp.get_context(args.method)
    result = run(args, ctx)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
