using System.Diagnostics;
using System.Globalization;

namespace ActorPool.Benchmarks;

/// <summary>One figure a workload reports: a row of the results table.</summary>
/// <param name="Key">The key of the figure in a sample (and in bench_mp.py's JSON).</param>
public sealed record Metric(string Row, string Unit, string Better, string Key = "value");

/// <summary>What one repetition of one workload measured on one side.</summary>
public sealed record Sample(IReadOnlyDictionary<string, double?> Values, string? Outcome = null)
{
    public static Sample Of(double value, string? outcome = null) => new(new Dictionary<string, double?> { ["value"] = value }, outcome);
    public static Sample Unavailable(string why) => new(new Dictionary<string, double?>(), why);
}

/// <summary>A workload: the ActorPool side in this process, the Python side as bench_mp.py's arguments.</summary>
public sealed record Workload(
    string Name,
    string Description,
    Metric[] Metrics,
    Func<BenchContext, CancellationToken, Task<Sample>> ActorPool,
    string[] PythonArgs,
    int? Repetitions = null,
    bool Peers = false);

/// <summary>State shared by the ActorPool side of the workloads: one warm pool, reused as a long-running program would.</summary>
public sealed class BenchContext(int workers) : IAsyncDisposable
{
    private Pool? _pool;

    public int Workers { get; } = workers;

    /// <summary>
    /// The shared pool, every worker having answered and registered (a spawned worker starts its ActorSystem in
    /// the background once it is ready: a timed region must not share the CPU with that).
    /// </summary>
    public async Task<Pool> WarmPoolAsync(CancellationToken ct)
    {
        _pool ??= new Pool(new PoolOptions { Processes = Workers, ForwardWorkerOutput = false });
        await _pool.WaitForWorkersAsync(ct);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((await _pool.CountsAsync()).RegisteredWorkers < Workers && DateTime.UtcNow < deadline)
            await Task.Delay(20, ct);
        return _pool;
    }

    public async ValueTask DisposeAsync()
    {
        if (_pool is not null)
            await _pool.DisposeAsync();
    }
}

public static class Workloads
{
    /// <summary>Trial-division bound per side, chosen so one task takes about 150 ms in each language here.</summary>
    public const int PrimesBoundDotnet = 1_050_000, PrimesBoundPython = 65_000;

    public static Workload[] All(int workers) =>
    [
        new("tiny-map", "map x*x over 1,000,000 ints, default chunksize",
            [new("tiny-map", "tasks/s", "higher")], TinyMap, ["tiny-map"], Peers: true),
        new("tiny-imap", "imap x*x over 100,000 ints, chunksize 1",
            [new("tiny-imap", "tasks/s", "higher")], TinyImap, ["tiny-imap"]),
        new("apply-latency", "10,000 sequential apply of a function returning 42",
            [new("apply-latency p50", "µs", "lower", "p50"), new("apply-latency p99", "µs", "lower", "p99")], ApplyLatency, ["apply-latency"], Peers: true),
        new("cpu-bound", $"16 prime counts by trial division (≈150 ms each), speedup over sequential in the same language",
            [new("cpu-bound", "speedup", "higher")], CpuBound, ["cpu-bound", "--size", PrimesBoundPython.ToString(CultureInfo.InvariantCulture)], Peers: true),
        new("startup-spawn", $"new pool of {workers} (spawn) to a first result from every worker",
            [new("startup-spawn", "ms", "lower")], (ctx, ct) => Startup(ctx, "spawn", ct), ["startup", "--method", "spawn"], Peers: true),
        new("startup-forkserver", "a second pool of the warm start method (Python: forkserver) to a first result from every worker",
            [new("startup-forkserver", "ms", "lower")], (ctx, ct) => Startup(ctx, "forkserver", ct), ["startup", "--method", "forkserver"]),
        new("startup-thread", $"new pool of {workers} threads (Python: multiprocessing.pool.ThreadPool) to a first result from every worker",
            [new("startup-thread", "ms", "lower")], (ctx, ct) => Startup(ctx, "thread", ct), ["startup", "--method", "thread"]),
        new("seed-sleep", "the seed example, 1 unit = 0.1 s",
            [new("seed-sleep", "s", "lower")], SeedSleep, ["seed-sleep"], Peers: true),
        new("seed-paired", "the seed data in pairs (both items of a pair at once, a barrier between pairs), 1 unit = 0.1 s; ActorPool reuses its pool",
            [new("seed-paired vs Python new Pool per pair", "s", "lower"), new("seed-paired vs Python reused Pool", "s", "lower", "reused")],
            SeedPaired, ["seed-paired"]),
        new("queue-throughput", "200,000 ints from a producer in a worker process to a consumer in the main one, through an unbounded queue (Python: multiprocessing.Queue, and Manager().Queue() with 20,000)",
            [new("queue-throughput vs mp.Queue", "items/s", "higher"), new("queue-throughput vs Manager().Queue()", "items/s", "higher", "manager")],
            QueueThroughput, ["queue-throughput"]),
        new("lock-cycles", "acquire+release of one lock from a worker process, 100,000 times (Python: Manager().Lock() 20,000 times, and multiprocessing.Lock); contended: 2 workers at once for 1 s (Python: Manager().Lock(), and a multiprocessing.Lock the workers inherit)",
            [new("lock-cycles vs Manager().Lock()", "cycles/s", "higher"), new("lock-cycles vs multiprocessing.Lock", "cycles/s", "higher", "mp"),
             new("lock-cycles contended vs Manager().Lock()", "cycles/s", "higher", "contended"),
             new("lock-cycles contended vs multiprocessing.Lock", "cycles/s", "higher", "contendedmp")],
            LockCycles, ["lock-cycles"]),
        new("payload", "200 distinct 1 MiB byte arrays, workers return their length",
            [new("payload", "MiB/s", "higher")], Payload, ["payload"], Peers: true),
        new("worker-crash", "task 3 of 8 ends its own worker process; seconds to the call's outcome (bound 10 s)",
            [new("worker-crash", "s", "lower")], WorkerCrash, ["worker-crash", "--timeout", "10"], Repetitions: 1, Peers: true),
        new("idle-cpu", $"a warm pool of {workers} left idle for {IdleSeconds:F0} s: CPU used by the caller and its worker processes (Linux /proc), % of one core",
            [new("idle-cpu", "% of a core", "lower"), new("idle-cpu context switches", "per s", "lower", "switches")], IdleCpu,
            ["idle-cpu", "--seconds", IdleSeconds.ToString(CultureInfo.InvariantCulture)]),
        new("cluster-start", "10 worker nodes (1 worker each) started at once on 127.0.0.1 beside a cluster pool: seconds from their start until each has run a task",
            [new("cluster-start (10 nodes)", "s", "lower")], ClusterBench.StartTen, [], Repetitions: 3),
        new("node-join", "a third node started while two serve a long map: seconds from its process start to its first task done",
            [new("node-join", "s", "lower")], ClusterBench.NodeJoin, [], Repetitions: 3),
        new("node-kill", "3 nodes serve a map of 120 tasks of 50 ms; one is killed (SIGKILL): seconds the failure adds to the call (its tasks re-run on the others)",
            [new("node-kill: time lost, Akka's failure detection", "s", "lower"),
             new("node-kill: time lost, hocon/three-node-local.conf's (2 s pause, SBR stable-after 3 s)", "s", "lower", "fast")],
            ClusterBench.NodeKill, [], Repetitions: 3),
        new("cluster-throughput", "imap x*x over 200,000 ints, chunksize 1, through 2 worker nodes: every task a message over the cluster transport",
            [new("cluster-throughput (2 nodes)", "tasks/s", "higher")], ClusterBench.Throughput, [], Repetitions: 3),
        new("dispatch-cost", "200,000 single-task chunks through the real coordinator to simulated workers that answer at once: the coordinator's microseconds per task as the pool grows",
            [new("dispatch-cost, 2 workers", "µs/task", "lower", "2"), new("dispatch-cost, 10 workers", "µs/task", "lower", "10"),
             new("dispatch-cost, 100 workers", "µs/task", "lower", "100"), new("dispatch-cost, 1,000 workers", "µs/task", "lower", "1000")],
            ClusterBench.DispatchCost, [], Repetitions: 3),
        new("imap-memory", $"imap x*x over {ImapMemoryInputs:N0} ints from a lazy generator, chunksize 1000: the caller's RSS growth during the call and its peak (sampled every 20 ms)",
            [new("imap-memory growth", "MB", "lower"), new("imap-memory peak RSS", "MB", "lower", "peak"),
             new("imap-memory growth, a fresh process", "MB", "lower", "fresh"), new("imap-memory peak RSS, a fresh process", "MB", "lower", "freshpeak")], ImapMemory, ["imap-memory", "--size", ImapMemoryInputs.ToString(CultureInfo.InvariantCulture)], Repetitions: 2),
    ];

    public const int ImapMemoryInputs = 10_000_000;

    /// <summary>Seconds an idle pool is watched for the idle-cpu row.</summary>
    public const double IdleSeconds = 10;

    private static async Task<Sample> IdleCpu(BenchContext ctx, CancellationToken ct)
    {
        var pool = await ctx.WarmPoolAsync(ct);
        await pool.MapAsync(Functions.Square, Enumerable.Range(0, 1_000), cancellationToken: ct);
        await Task.Delay(TimeSpan.FromSeconds(3), ct); // what a call leaves behind settles: acknowledgements, GC, the JIT's second tier
        var (before, switchesBefore) = ProcessCpu.OfTree(Environment.ProcessId);
        var clock = Stopwatch.StartNew();
        await Task.Delay(TimeSpan.FromSeconds(IdleSeconds), ct);
        var (after, switchesAfter) = ProcessCpu.OfTree(Environment.ProcessId);
        var seconds = clock.Elapsed.TotalSeconds;
        return new Sample(new Dictionary<string, double?>
        {
            ["value"] = 100 * (after - before).TotalSeconds / seconds,
            ["switches"] = (switchesAfter - switchesBefore) / seconds,
        });
    }

    private static async Task<Sample> ImapMemory(BenchContext ctx, CancellationToken ct)
    {
        var (growth, peak) = await MeasureImapMemory(await ctx.WarmPoolAsync(ct), ct);
        var fresh = await ImapMemoryInFreshProcess(ctx.Workers, ct);
        return new Sample(new Dictionary<string, double?> { ["value"] = growth, ["peak"] = peak, ["fresh"] = fresh?.Growth, ["freshpeak"] = fresh?.Peak });
    }

    /// <summary>The flag that makes this program measure imap-memory alone, in a process of its own, and print it.</summary>
    public const string ImapMemoryChildFlag = "--imap-memory-child";

    /// <summary>The body of <see cref="ImapMemoryChildFlag"/>: a new pool, then the measurement, as one line "growth peak".</summary>
    public static async Task<int> ImapMemoryChild(int workers)
    {
        await using var pool = new Pool(new PoolOptions { Processes = workers, ForwardWorkerOutput = false });
        await pool.MapAsync(Functions.Square, Enumerable.Range(0, 1_000));
        var (growth, peak) = await MeasureImapMemory(pool, CancellationToken.None);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{growth} {peak}"));
        return 0;
    }

    /// <summary>Runs <see cref="ImapMemoryChild"/> in a new process of this program (nothing before it has grown its heap).</summary>
    private static async Task<(double Growth, double Peak)?> ImapMemoryInFreshProcess(int workers, CancellationToken ct)
    {
        var self = Environment.ProcessPath!;
        var psi = new ProcessStartInfo(self) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
            psi.ArgumentList.Add(typeof(Workloads).Assembly.Location);
        psi.ArgumentList.Add(ImapMemoryChildFlag);
        psi.ArgumentList.Add(workers.ToString(CultureInfo.InvariantCulture));
        using var child = Process.Start(psi)!;
        try
        {
            var line = await child.StandardOutput.ReadToEndAsync(ct).WaitAsync(TimeSpan.FromMinutes(5), ct);
            await child.WaitForExitAsync(ct);
            var parts = line.Trim().Split(' ');
            return child.ExitCode == 0 && parts.Length == 2
                ? (double.Parse(parts[0], CultureInfo.InvariantCulture), double.Parse(parts[1], CultureInfo.InvariantCulture))
                : null;
        }
        finally
        {
            if (!child.HasExited)
                child.Kill(entireProcessTree: true);
        }
    }

    private static async Task<(double Growth, double Peak)> MeasureImapMemory(Pool pool, CancellationToken ct)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var stop = new CancellationTokenSource();
        var start = RssBytes();
        var peak = start;
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                peak = Math.Max(peak, RssBytes());
                await Task.Delay(20);
            }
        });
        long total = 0, count = 0;
        await foreach (var r in pool.ImapAsync(Functions.Square, Lazy(ImapMemoryInputs), 1000, cancellationToken: ct))
        {
            total += r;
            count++;
        }
        await stop.CancelAsync();
        await sampler;
        long expected = 0;
        for (long x = 0; x < ImapMemoryInputs; x++)
            expected += x * x; // wraps, as the total does
        Check(count == ImapMemoryInputs && total == expected, "imap-memory results");
        peak = Math.Max(peak, RssBytes());
        const double mb = 1024.0 * 1024.0;
        return ((peak - start) / mb, peak / mb);

        static IEnumerable<int> Lazy(int n)
        {
            for (var i = 0; i < n; i++)
                yield return i;
        }
    }

    /// <summary>This process's resident set (Linux /proc).</summary>
    private static long RssBytes()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        return 0;
    }

    private static async Task<Sample> TinyMap(BenchContext ctx, CancellationToken ct)
    {
        var pool = await ctx.WarmPoolAsync(ct);
        const int n = 1_000_000;
        await pool.MapAsync(Functions.Square, Enumerable.Range(0, 10_000), cancellationToken: ct);
        var clock = Stopwatch.StartNew();
        var results = await pool.MapAsync(Functions.Square, Enumerable.Range(0, n), cancellationToken: ct);
        var elapsed = clock.Elapsed.TotalSeconds;
        Check(results.Count == n && results[^1] == (long)(n - 1) * (n - 1), "tiny-map results");
        return Sample.Of(n / elapsed);
    }

    private static async Task<Sample> TinyImap(BenchContext ctx, CancellationToken ct)
    {
        var pool = await ctx.WarmPoolAsync(ct);
        const int n = 100_000;
        await foreach (var _ in pool.ImapAsync(Functions.Square, Enumerable.Range(0, 1_000), 1, cancellationToken: ct)) { }
        var clock = Stopwatch.StartNew();
        long total = 0;
        await foreach (var r in pool.ImapAsync(Functions.Square, Enumerable.Range(0, n), 1, cancellationToken: ct))
            total += r;
        var elapsed = clock.Elapsed.TotalSeconds;
        Check(total == Enumerable.Range(0, n).Sum(x => (long)x * x), "tiny-imap results");
        return Sample.Of(n / elapsed);
    }

    private static async Task<Sample> ApplyLatency(BenchContext ctx, CancellationToken ct)
    {
        var pool = await ctx.WarmPoolAsync(ct);
        const int n = 10_000;
        for (var i = 0; i < 200; i++)
            pool.Apply(Functions.Answer);
        var samples = new double[n];
        for (var i = 0; i < n; i++)
        {
            ct.ThrowIfCancellationRequested();
            var start = Stopwatch.GetTimestamp();
            var r = pool.Apply(Functions.Answer);
            samples[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            Check(r == 42, "apply result");
        }
        Array.Sort(samples);
        return new Sample(new Dictionary<string, double?> { ["p50"] = samples[n / 2], ["p99"] = samples[(int)(n * 0.99)] });
    }

    private static async Task<Sample> CpuBound(BenchContext ctx, CancellationToken ct)
    {
        var pool = await ctx.WarmPoolAsync(ct);
        var tasks = Enumerable.Repeat(PrimesBoundDotnet, 16).ToArray();
        await pool.MapAsync(Functions.CountPrimes, Enumerable.Repeat(1_000, ctx.Workers), chunkSize: 1, cancellationToken: ct);
        Functions.CountPrimes(1_000);
        var clock = Stopwatch.StartNew();
        var sequential = tasks.Select(Functions.CountPrimes).ToArray();
        var seqSeconds = clock.Elapsed.TotalSeconds;
        clock.Restart();
        var parallel = await pool.MapAsync(Functions.CountPrimes, tasks, chunkSize: 1, cancellationToken: ct);
        var parSeconds = clock.Elapsed.TotalSeconds;
        Check(sequential.SequenceEqual(parallel), "cpu-bound results");
        return new Sample(new Dictionary<string, double?> { ["value"] = seqSeconds / parSeconds, ["sequential"] = seqSeconds, ["parallel"] = parSeconds });
    }

    private static async Task<Sample> Startup(BenchContext ctx, string method, CancellationToken ct)
    {
        var options = new PoolOptions { Processes = ctx.Workers, StartMethod = method, ForwardWorkerOutput = false };
        Pool? first = null;
        try
        {
            if (method == "forkserver")
            {
                // A warm start method pays its one-time set-up with the program's first pool; the second is timed
                // once the server is warm again (Python's forkserver process is; ours has pre-loaded its spares).
                first = new Pool(options);
                await first.WaitForWorkersAsync(ct);
                await Launching.ForkServer.For([], ctx.Workers).WhenReady(ctx.Workers, TimeSpan.FromSeconds(30));
            }
            var clock = Stopwatch.StartNew();
            await using var pool = new Pool(options);
            var pids = await pool.MapAsync(Functions.ProcessId, Enumerable.Range(0, ctx.Workers), chunkSize: 1, cancellationToken: ct);
            await pool.WaitForWorkersAsync(ct);
            var elapsed = clock.Elapsed.TotalMilliseconds;
            Check(method == "thread" ? pids.All(p => p == Environment.ProcessId) : pids.All(p => p != Environment.ProcessId), "startup results");
            return Sample.Of(elapsed);
        }
        catch (ArgumentException e) when (e.Message.Contains(method, StringComparison.Ordinal))
        {
            return Sample.Unavailable($"no {method} start method yet");
        }
        finally
        {
            if (first is not null)
                await first.DisposeAsync();
        }
    }

    private static async Task<Sample> SeedSleep(BenchContext ctx, CancellationToken ct)
    {
        var pool = await ctx.WarmPoolAsync(ct);
        var clock = Stopwatch.StartNew();
        var names = await pool.MapAsync(Functions.SeedWork, Functions.Seed, cancellationToken: ct);
        var elapsed = clock.Elapsed.TotalSeconds;
        Check(names.SequenceEqual(Functions.Seed.Select(s => s.Name)), "seed-sleep results");
        return Sample.Of(elapsed);
    }

    private static async Task<Sample> SeedPaired(BenchContext ctx, CancellationToken ct)
    {
        var pool = await ctx.WarmPoolAsync(ct);
        await pool.MapPairedAsync(Functions.Square, [1, 2, 3, 4], cancellationToken: ct);
        var clock = Stopwatch.StartNew();
        var names = await pool.MapPairedAsync(Functions.SeedWork, Functions.Seed, batchSize: 2, cancellationToken: ct);
        var elapsed = clock.Elapsed.TotalSeconds;
        Check(names.SequenceEqual(Functions.Seed.Select(s => s.Name)), "seed-paired results");
        return new Sample(new Dictionary<string, double?> { ["value"] = elapsed, ["reused"] = elapsed });
    }

    private static async Task<Sample> QueueThroughput(BenchContext ctx, CancellationToken ct)
    {
        var pool = await ctx.WarmPoolAsync(ct);
        var queue = new ActorQueue<int>();
        const int n = 200_000;
        await pool.ApplyAsync(() => Functions.Produce(queue, 1_000), ct); // the worker connects to the queue
        for (var i = 0; i < 1_000; i++)
            await queue.GetAsync(ct);
        var clock = Stopwatch.StartNew();
        var producer = pool.ApplyAsync(() => Functions.Produce(queue, n), ct);
        long sum = 0;
        for (var i = 0; i < n; i++)
            sum += await queue.GetAsync(ct);
        var elapsed = clock.Elapsed.TotalSeconds;
        var pid = await producer;
        Check(sum == (long)n * (n - 1) / 2 && pid != Environment.ProcessId, "queue-throughput items");
        return new Sample(new Dictionary<string, double?> { ["value"] = n / elapsed, ["manager"] = n / elapsed });
    }

    private static async Task<Sample> LockCycles(BenchContext ctx, CancellationToken ct)
    {
        var pool = await ctx.WarmPoolAsync(ct);
        var lk = new ActorLock();
        var single = await pool.ApplyAsync(() => Functions.LockCycles(lk, 100_000), ct);
        // Two workers at once for one second, started together: every hand-over goes through the manager.
        var start = DateTime.UtcNow.AddMilliseconds(300).Ticks;
        var counts = await pool.MapAsync(_ => Functions.LockCyclesFor(lk, start), [0, 1], chunkSize: 1, cancellationToken: ct);
        var contended = counts.Sum() / 1.0;
        return new Sample(new Dictionary<string, double?> { ["value"] = single, ["mp"] = single, ["contended"] = contended, ["contendedmp"] = contended });
    }

    private static async Task<Sample> Payload(BenchContext ctx, CancellationToken ct)
    {
        var pool = await ctx.WarmPoolAsync(ct);
        const int count = 200, size = 1 << 20;
        var arrays = new byte[count][];
        for (var i = 0; i < count; i++)
        {
            arrays[i] = new byte[size];
            Random.Shared.NextBytes(arrays[i]);
        }
        await pool.MapAsync(Functions.Length, arrays.Take(4), cancellationToken: ct);
        var clock = Stopwatch.StartNew();
        var lengths = await pool.MapAsync(Functions.Length, arrays, cancellationToken: ct);
        var elapsed = clock.Elapsed.TotalSeconds;
        Check(lengths.Count == count && lengths.All(l => l == size), "payload results");
        return Sample.Of(count / elapsed);
    }

    private static async Task<Sample> WorkerCrash(BenchContext ctx, CancellationToken ct)
    {
        await using var pool = new Pool(new PoolOptions { Processes = ctx.Workers, ForwardWorkerOutput = false });
        await pool.WaitForWorkersAsync(ct);
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bound.CancelAfter(TimeSpan.FromSeconds(10));
        var clock = Stopwatch.StartNew();
        try
        {
            await pool.MapAsync(Functions.Die, Enumerable.Range(0, 8), chunkSize: 1, cancellationToken: bound.Token);
            return Sample.Of(clock.Elapsed.TotalSeconds, "completed");
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return Sample.Unavailable("hangs (no result after 10 s)");
        }
        catch (ActorPoolException e)
        {
            return Sample.Of(clock.Elapsed.TotalSeconds, $"error: {e.GetType().Name}");
        }
    }

    private static void Check(bool ok, string what)
    {
        if (!ok)
            throw new InvalidOperationException($"Wrong {what}: the benchmark measured a broken run.");
    }
}
