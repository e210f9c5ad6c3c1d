using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace ActorPool.Benchmarks;

/// <summary>
/// The cluster rows: a cluster pool in this process (the coordinator) and worker nodes started through the node's
/// command line (<c>ActorPool.Node.dll</c>, next to this program), on 127.0.0.1, over Akka.Cluster with TLS from a
/// shared secret. multiprocessing has no cluster: these rows have no Python column.
/// </summary>
public sealed class ClusterBench : IAsyncDisposable
{
    private static readonly string NodeDll = Path.Combine(AppContext.BaseDirectory, "ActorPool.Node.dll");

    private readonly string _secret;
    private readonly string _nodeConfig = Path.Combine(Path.GetTempPath(), $"actorpool-bench-node-{Guid.NewGuid():N}.conf");
    private readonly List<Process> _nodes = new();

    public Pool Pool { get; }

    private ClusterBench(Pool pool, string secret, int port, string extra)
    {
        Pool = pool;
        _secret = secret;
        File.WriteAllText(_nodeConfig, $"akka.cluster.seed-nodes = [\"akka.tcp://actorpool@127.0.0.1:{port}\"]\n{extra}\n");
    }

    /// <summary>The failure detection of <c>hocon/three-node-local.conf</c>, for a loopback cluster (every member gets it).</summary>
    public const string FastDetection = """
        akka.cluster.failure-detector.acceptable-heartbeat-pause = 2s
        akka.cluster.split-brain-resolver.stable-after = 3s
        """;

    /// <summary>A cluster pool that waits for <paramref name="minWorkers"/> node workers, none of its own.</summary>
    /// <param name="extra">HOCON for the coordinator and the nodes alike.</param>
    public static ClusterBench Start(int minWorkers, string extra = "")
    {
        var port = FreePort();
        var secret = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        var pool = new Pool(new PoolOptions
        {
            ForwardWorkerOutput = false,
            Config = $$"""
                actorpool.cluster { enabled = on, secret = "{{secret}}", min-workers = {{minWorkers}}, local-workers = 0 }
                akka.remote.dot-netty.tcp { hostname = "127.0.0.1", port = {{port}} }
                akka.cluster.seed-nodes = ["akka.tcp://actorpool@127.0.0.1:{{port}}"]
                {{extra}}
                """,
        });
        return new ClusterBench(pool, secret, port, extra);
    }

    /// <summary>Starts a worker node of one worker; its output is read and dropped.</summary>
    public Process StartNode()
    {
        if (!File.Exists(NodeDll))
            throw new InvalidOperationException($"The worker node program is missing ({NodeDll}): build the benchmark with build.ps1 bench.");
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { NodeDll, "--config", _nodeConfig, "--workers", "1", "--assembly", typeof(Functions).Assembly.Location })
            psi.ArgumentList.Add(a);
        psi.Environment["ACTORPOOL_SECRET"] = _secret;
        var node = Process.Start(psi)!;
        node.OutputDataReceived += (_, _) => { };
        node.ErrorDataReceived += (_, _) => { };
        node.BeginOutputReadLine();
        node.BeginErrorReadLine();
        lock (_nodes)
            _nodes.Add(node);
        return node;
    }

    /// <summary>Runs 20 ms tasks, as many at a time as workers are wanted, until <paramref name="count"/> distinct node processes have run one.</summary>
    public async Task<HashSet<int>> UntilRunByAsync(int count, TimeSpan within, CancellationToken ct)
    {
        var seen = new HashSet<int>();
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bound.CancelAfter(within);
        while (seen.Count < count)
        {
            var pids = await Pool.MapAsync(Functions.ProcessIdAfter20Ms, Enumerable.Range(0, count), chunkSize: 1, cancellationToken: bound.Token);
            seen.UnionWith(pids);
        }
        return seen;
    }

    public async ValueTask DisposeAsync()
    {
        await Pool.DisposeAsync();
        lock (_nodes)
        {
            foreach (var node in _nodes)
            {
                try
                {
                    // A node leaves when its coordinator does; one that has not within 20 s is ended (by its id).
                    if (!node.WaitForExit(TimeSpan.FromSeconds(20)))
                        node.Kill(entireProcessTree: true);
                    node.WaitForExit();
                }
                catch (InvalidOperationException)
                {
                    // never started
                }
                node.Dispose();
            }
        }
        File.Delete(_nodeConfig);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>10 nodes started at once: seconds from their start until each has run a task.</summary>
    public static async Task<Sample> StartTen(BenchContext ctx, CancellationToken ct)
    {
        const int nodes = 10;
        await using var cluster = Start(nodes);
        await Task.Delay(TimeSpan.FromSeconds(2), ct); // the coordinator's cluster is up (not part of the row)
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < nodes; i++)
            cluster.StartNode();
        var ready = await cluster.UntilRunByAsync(nodes, TimeSpan.FromMinutes(3), ct);
        var elapsed = clock.Elapsed.TotalSeconds;
        Check(ready.Count >= nodes, "cluster-start: node processes that ran a task");
        return Sample.Of(elapsed);
    }

    /// <summary>Two nodes serve a long map; a third starts: seconds from its process start to its first task done.</summary>
    public static async Task<Sample> NodeJoin(BenchContext ctx, CancellationToken ct)
    {
        await using var cluster = Start(2);
        cluster.StartNode();
        cluster.StartNode();
        await cluster.Pool.WaitForWorkersAsync(ct).WaitAsync(TimeSpan.FromMinutes(2), ct);
        var before = await cluster.UntilRunByAsync(2, TimeSpan.FromMinutes(2), ct);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var firstSeen = new ConcurrentDictionary<int, double>();
        var clock = new Stopwatch();
        var map = Task.Run(async () =>
        {
            await foreach (var pid in cluster.Pool.ImapAsync(Functions.ProcessIdAfter20Ms, Enumerable.Range(0, 100_000), 1, cancellationToken: stop.Token))
            {
                if (!before.Contains(pid))
                    firstSeen.TryAdd(pid, clock.Elapsed.TotalSeconds);
                if (!firstSeen.IsEmpty)
                    break;
            }
        }, ct);
        await Task.Delay(TimeSpan.FromSeconds(1), ct); // the map is under way
        clock.Start();
        cluster.StartNode();
        try
        {
            await map.WaitAsync(TimeSpan.FromMinutes(2), ct);
        }
        finally
        {
            await stop.CancelAsync();
        }
        Check(firstSeen.Count == 1, "node-join: the new node's first task");
        return Sample.Of(firstSeen.Values.Single());
    }

    /// <summary>
    /// Three nodes serve a map of 50 ms tasks; one is killed (SIGKILL, by its id): seconds until the call has every
    /// result again (the killed node's tasks re-run on the others) counted from the kill, less what the map would
    /// still have taken on the two left: the time lost to the failure.
    /// </summary>
    public static async Task<Sample> NodeKill(BenchContext ctx, CancellationToken ct) =>
        new(new Dictionary<string, double?> { ["value"] = await TimeLostToKill("", ct), ["fast"] = await TimeLostToKill(FastDetection, ct) });

    private static async Task<double> TimeLostToKill(string detection, CancellationToken ct)
    {
        await using var cluster = Start(3, detection);
        var nodes = new[] { cluster.StartNode(), cluster.StartNode(), cluster.StartNode() };
        await cluster.Pool.WaitForWorkersAsync(ct).WaitAsync(TimeSpan.FromMinutes(2), ct);
        await cluster.UntilRunByAsync(3, TimeSpan.FromMinutes(2), ct);
        const int tasks = 120;
        var map = cluster.Pool.MapAsync(Functions.ProcessIdAfter50Ms, Enumerable.Range(0, tasks), chunkSize: 1, cancellationToken: ct);
        await Task.Delay(TimeSpan.FromSeconds(0.5), ct);
        var doneAtKill = (await cluster.Pool.GetStatusAsync(ct)).Calls.Sum(c => c.Completed);
        var clock = Stopwatch.StartNew();
        nodes[0].Kill(entireProcessTree: true);
        var pids = await map.WaitAsync(TimeSpan.FromMinutes(2), ct);
        var afterKill = clock.Elapsed.TotalSeconds;
        Check(pids.Count == tasks, "node-kill results");
        // What the rest would have taken on two workers without the failure: 50 ms each, two at a time.
        var rest = (tasks - doneAtKill) * 0.05 / 2;
        return Math.Max(0, afterKill - rest);
    }

    /// <summary>Unchunked tiny tasks through two nodes (every task its own message over the cluster transport).</summary>
    public static async Task<Sample> Throughput(BenchContext ctx, CancellationToken ct)
    {
        await using var cluster = Start(2);
        cluster.StartNode();
        cluster.StartNode();
        await cluster.Pool.WaitForWorkersAsync(ct).WaitAsync(TimeSpan.FromMinutes(2), ct);
        await cluster.UntilRunByAsync(2, TimeSpan.FromMinutes(2), ct);
        const int warm = 20_000, n = 200_000;
        await foreach (var _ in cluster.Pool.ImapAsync(Functions.Square, Enumerable.Range(0, warm), 1, cancellationToken: ct)) { }
        var clock = Stopwatch.StartNew();
        long total = 0;
        await foreach (var r in cluster.Pool.ImapAsync(Functions.Square, Enumerable.Range(0, n), 1, cancellationToken: ct))
            total += r;
        var elapsed = clock.Elapsed.TotalSeconds;
        Check(total == Enumerable.Range(0, n).Sum(x => (long)x * x), "cluster-throughput results");
        return Sample.Of(n / elapsed);
    }

    /// <summary>
    /// What the coordinator spends per task as workers grow: single-task chunks over 2 to 1,000 simulated workers
    /// (see <see cref="SimulatedDispatch"/>), microseconds per task. Flat means dispatch does not grow with the pool.
    /// </summary>
    public static async Task<Sample> DispatchCost(BenchContext ctx, CancellationToken ct)
    {
        var values = new Dictionary<string, double?>();
        foreach (var workers in new[] { 2, 10, 100, 1000 })
            values[workers.ToString(CultureInfo.InvariantCulture)] = await SimulatedDispatch.MeasureAsync(workers, 200_000, ct);
        return new Sample(values);
    }

    private static void Check(bool ok, string what)
    {
        if (!ok)
            throw new InvalidOperationException($"Wrong {what}: the benchmark measured a broken run.");
    }
}
