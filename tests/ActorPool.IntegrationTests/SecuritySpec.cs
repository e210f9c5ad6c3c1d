using System.Diagnostics;
using ActorPool.IntegrationTests.Support;
using Akka.Actor;
using Akka.Configuration;
using Microsoft.Extensions.Logging;
using Xunit;
using Xunit.Abstractions;

namespace ActorPool.IntegrationTests;

/// <summary>
/// A hostile local process (another uid where this machine lets the tests make one; the same uid otherwise, which TLS
/// keeps out just the same) that knows ActorPool's protocol but not the pool's key or the cluster's secret, against a
/// spawned pool, its workers, a queue, a lock, a forkserver spare and a cluster: it tries code execution, forged control
/// messages, deleting a file through a forged result, floods, huge frame headers and joining the cluster. Every attempt
/// is refused, the pool's calls stay right, nothing is deleted, nothing crashes. A spawned worker listens on no port at
/// all (its traffic is on the 0700 data link), so a pool in an application's plain (non-TLS) ActorSystem is safe from
/// the attack too; there the refusals logged show the attack arrived.
/// </summary>
/// <remarks>
/// The tests are in three classes by what they share with the rest of the suite: <see cref="SecuritySpec"/> attacks this
/// process's forkserver spare, queue and lock host (one test at a time with the other tests that use them);
/// <see cref="SecurityTransportSpec"/> attacks pools of their own over plain TCP and a cluster (beside the other tests);
/// <see cref="SecuritySpillSpec"/> runs alone, as any pool that starts meanwhile would remove the folder it checks.
/// </remarks>
public abstract class HostileSpec(ITestOutputHelper output) : IDisposable
{
    protected static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);
    protected static readonly string HostileDll = Path.Combine(AppContext.BaseDirectory, "ActorPool.Hostile.dll");

    /// <summary>
    /// The hostile program where uid 65534 can read it: this build's folder may sit below one only its owner may enter
    /// (a clone in a mktemp folder, 0700), so the program and its dependencies are copied to a folder of their own in
    /// the temp directory, readable by all, removed with the test.
    /// </summary>
    private string HostileDllForOthers()
    {
        if (OperatingSystem.IsWindows())
            return HostileDll; // no uid to switch to there
        lock (_copyGate) // attacks start at once: one copies, the others wait for the whole copy
            return Path.Combine(_hostileCopy ??= CopyForOthers(), "ActorPool.Hostile.dll");
    }

    private readonly object _copyGate = new();

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static string CopyForOthers()
    {
        var folder = Path.Combine(Path.GetTempPath(), $"actorpool-hostile-{Guid.NewGuid():N}");
        var readable = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute |
                       UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
        foreach (var source in Directory.EnumerateFiles(AppContext.BaseDirectory, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(folder, Path.GetRelativePath(AppContext.BaseDirectory, source));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!, readable);
            File.Copy(source, target);
            File.SetUnixFileMode(target, readable);
        }
        File.SetUnixFileMode(folder, readable);
        return folder;
    }

    private string? _hostileCopy;
    protected string Dir { get; } = Directory.CreateTempSubdirectory("actorpool-security-").FullName;
    protected List<Pool> Pools { get; } = new();

    public void Dispose()
    {
        foreach (var pool in Pools)
            pool.Terminate();
        Directory.Delete(Dir, recursive: true);
        if (_hostileCopy is not null && Directory.Exists(_hostileCopy))
            Directory.Delete(_hostileCopy, recursive: true);
    }

    /// <summary>
    /// Runs the hostile program to its end (bounded): as uid 65534 (nobody) when this process may switch to it, else as
    /// this uid. Its output, one attempt a line.
    /// </summary>
    protected async Task<string> Hostile(params string[] args)
    {
        var asOther = Environment.UserName == "root" && File.Exists("/usr/bin/setpriv");
        using var program = asOther
            ? StartedProgram.Start("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "dotnet", HostileDllForOthers(), .. args],
                new Dictionary<string, string?> { ["HOME"] = Dir, ["DOTNET_CLI_HOME"] = Dir, ["DOTNET_NOLOGO"] = "1" })
            : StartedProgram.Start("dotnet", [HostileDll, .. args], new Dictionary<string, string?>());
        var exit = await program.WaitForExitAsync(Bound);
        output.WriteLine($"hostile {string.Join(' ', args.Take(3))}: exit {exit}\n{program.Stdout}{program.Stderr}");
        Assert.True(exit == 0, $"the hostile program failed (exit {exit}): {program.Stderr}");
        Assert.Contains("hostile: uid ", program.Stdout);
        if (!asOther)
            output.WriteLine("(ran as this process's own uid: this machine does not let the tests switch to another one)");
        return program.Stdout;
    }

    protected static long RssBytes()
    {
        using var self = Process.GetCurrentProcess();
        return self.WorkingSet64;
    }

    protected string Victim()
    {
        var victim = Path.Combine(Dir, "victim.txt");
        File.WriteAllText(victim, "keep me");
        return victim;
    }
}

/// <summary>The attacks on this process's own services: a spawned pool and its workers, a queue, a lock and a forkserver spare.</summary>
[Collection("processes")]
public sealed class SecuritySpec(ITestOutputHelper output) : HostileSpec(output)
{
    [Fact]
    public async Task A_stranger_must_not_run_code_control_or_read_a_spawned_pool_its_workers_queue_lock_or_spare()
    {
        var log = new LogCapture();
        var pool = new Pool(new PoolOptions { Processes = 2, LoggerFactory = log });
        Pools.Add(pool);
        Assert.Equal([0, 1, 4], await pool.MapAsync(TestFunctions.Square, [0, 1, 2]).WaitAsync(Bound));
        var workers = (await pool.GetStatusAsync()).Workers.Select(w => w.Pid!.Value).ToList();
        var queue = new ActorQueue<int>();
        queue.Put(1);
        var gate = new ActorLock();
        Assert.True(gate.Acquire(timeout: TimeSpan.FromSeconds(30)));
        gate.Release();
        var spares = ForkServerSpares();

        var paths = new List<string> { pool.CoordinatorPath, queue.ActorPath, Hosting.Runtime.LockManagerPath };
        foreach (var pid in workers)
            Assert.Empty(Processes.ListeningPorts(pid)); // a spawned worker's traffic is all on its data link: nothing to attack over TCP
        var sparePorts = spares.SelectMany(Processes.ListeningPorts).ToList();
        paths.AddRange(sparePorts.Select(port => $"akka.ssl.tcp://actorpool-worker@127.0.0.1:{port}/user/worker"));
        Assert.True(paths.Count >= 4, string.Join("\n", paths));
        var marker = Path.Combine(Dir, "pwned");
        var victim = Victim();
        var rssBefore = RssBytes();

        // The attacks at once, as several hostile processes would.
        var coordinatorPort = new Uri(pool.CoordinatorPath.Replace("akka.ssl.tcp", "tcp")).Port;
        var attacks = new[] { "plain", "stranger" }.Select(tls => Hostile(["akka", "--tls", tls, "--marker", marker, "--victim", victim,
                "--coordinator", pool.CoordinatorPath, .. paths.SelectMany(p => new[] { "--path", p })]))
            .Append(Hostile("raw", "--to", $"127.0.0.1:{coordinatorPort}", "--connections", "100"))
            .Append(Hostile("raw", "--to", $"127.0.0.1:{sparePorts.First()}", "--connections", "100")).ToList();
        foreach (var said in await Task.WhenAll(attacks))
            Assert.DoesNotContain("ANSWERED", said);
        if (pool.SpillFolder is { } spill)
        {
            var said = await Hostile("unix", "--socket", Path.Combine(spill, Coordination.DataLinkListener.SocketName));
            if (Environment.UserName == "root")
                Assert.Contains("refused", said); // another uid cannot even reach the data link (0700 folder)
        }

        // Nothing ran, nothing was deleted, the same workers are there, and everything still works.
        await Task.Delay(1000);
        Assert.False(File.Exists(marker), "the stranger's code ran in a worker");
        Assert.Equal("keep me", File.ReadAllText(victim));
        Assert.Equal(Enumerable.Range(0, 50).Select(x => x * x), await pool.MapAsync(TestFunctions.Square, Enumerable.Range(0, 50)).WaitAsync(Bound));
        Assert.Equal(workers.Order(), (await pool.GetStatusAsync()).Workers.Select(w => w.Pid!.Value).Order());
        Assert.Equal(1, queue.Get(TimeSpan.FromSeconds(30)));
        Assert.True(gate.Acquire(timeout: TimeSpan.FromSeconds(30)));
        gate.Release();
        // Refused peers cost a few log lines, not one per attempt (the hostile made hundreds of connections and 20,000 messages).
        var lines = log.Entries.Count(e => e.Level >= LogLevel.Warning);
        Assert.True(lines < 40, string.Join("\n", log.Entries.Select(e => e.Message)));
        Assert.True(RssBytes() - rssBefore < 400L << 20, $"the caller grew by {(RssBytes() - rssBefore) >> 20} MB under the attack");
    }

    /// <summary>
    /// The pids of forkserver spares waiting now (after asking for one), listening, so they are attacked too: the server's
    /// own, not whatever else this process has started.
    /// </summary>
    private static List<int> ForkServerSpares()
    {
        var server = Launching.ForkServer.For(Configuration.PoolSettings.DefaultPreload, 1, 67108864);
        Assert.True(server.WhenReady(1, TimeSpan.FromSeconds(60)).GetAwaiter().GetResult(), "no forkserver spare became ready");
        return Conformance.ConformanceFunctions.SparePids(server).Where(pid => Processes.ListeningPorts(pid).Count > 0).ToList();
    }
}

/// <summary>The attacks over plain TCP and on clusters, each on pools of its own.</summary>
[Collection("cluster")]
public sealed class SecurityTransportSpec(ITestOutputHelper output) : HostileSpec(output)
{
    [Fact]
    public async Task A_pool_in_an_applications_plain_ActorSystem_must_refuse_the_attack_and_its_workers_listen_on_no_port()
    {
        // A pool inside an application's own ActorSystem takes that system's transport: here plain TCP. Its workers
        // work over the data link and start no remoting, so they offer nothing to attack; the coordinator's gate drops
        // the forged calls, results and commands.
        var app = ActorSystem.Create("app", ConfigurationFactory.ParseString("""
            akka.actor.provider = remote
            akka.remote.dot-netty.tcp.hostname = "127.0.0.1"
            akka.remote.dot-netty.tcp.port = 0
            akka.loglevel = ERROR
            """));
        try
        {
            var pool = new Pool(new PoolOptions { ActorSystem = app, Processes = 1 });
            Pools.Add(pool);
            Assert.Equal([4], await pool.MapAsync(TestFunctions.Square, [2]).WaitAsync(Bound));
            var worker = (await pool.GetStatusAsync()).Workers.Single().Pid!.Value;
            Assert.Empty(Processes.ListeningPorts(worker));
            var marker = Path.Combine(Dir, "pwned");
            var victim = Victim();
            var said = await Hostile(["akka", "--tls", "plain", "--marker", marker, "--victim", victim, "--coordinator", pool.CoordinatorPath,
                "--path", pool.CoordinatorPath]);
            // Plain TCP lets it reach the coordinator (Akka itself answers Identify there: the attack arrived), and
            // the challenge a status request gets is no status; nothing else is answered.
            Assert.Contains("ANSWERED Identify", said);
            foreach (var asked in new[] { "ANSWERED GetCounts", "ANSWERED GetPoolStatus", "ANSWERED WaitForWorkers", ": StatusReply" })
                Assert.DoesNotContain(asked, said);
            await Task.Delay(1000);
            Assert.False(File.Exists(marker), "the stranger's code ran");
            Assert.Equal("keep me", File.ReadAllText(victim));
            Assert.Equal(Enumerable.Range(0, 20).Select(x => x * x), await pool.MapAsync(TestFunctions.Square, Enumerable.Range(0, 20)).WaitAsync(Bound));
            Assert.Equal([worker], (await pool.GetStatusAsync()).Workers.Select(w => w.Pid!.Value));
        }
        finally
        {
            await app.Terminate();
        }
    }

    [Fact]
    public async Task Without_tls_a_member_that_downs_the_coordinator_must_fail_its_running_call_at_once_not_hang()
    {
        // actorpool.cluster.tls.enabled = off on loopback (the documented opt-out): a stranger can join, and a member may
        // down another. The registration challenge still keeps it from serving; the running call fails, saying why.
        var port = ClusterSpec.FreePort();
        var pool = new Pool(new PoolOptions
        {
            Processes = 1,
            Config = $"actorpool.cluster {{ enabled = on, secret = \"{Guid.NewGuid():N}\", min-workers = 0, local-workers = 1, tls.enabled = off }}\n" +
                     $"akka.remote.dot-netty.tcp {{ hostname = \"127.0.0.1\", port = {port} }}",
        });
        Pools.Add(pool);
        Assert.Equal([1], await pool.MapAsync(TestFunctions.Square, [1]).WaitAsync(Bound));
        var running = pool.MapAsync(TestFunctions.SlowPid, [60_000], chunkSize: 1);
        var said = await Hostile("join", "--tls", "plain", "--seed", $"akka.tcp://actorpool@127.0.0.1:{port}", "--secret", "a-guess");
        Assert.Contains("JOINED", said);
        var error = await Assert.ThrowsAnyAsync<Exception>(() => running.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.True(error is PoolBrokenException or ObjectDisposedException, error.ToString());
        // Downed, then removed: whichever the coordinator hears of first.
        Assert.Matches(error is PoolBrokenException ? "coordinator was (downed|removed from its cluster)" : "terminated", error.Message);
    }

    [Fact]
    public async Task A_stranger_must_not_join_a_cluster_pool_or_reach_its_coordinator()
    {
        var secret = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        var port = ClusterSpec.FreePort();
        var pool = new Pool(new PoolOptions
        {
            Processes = 1,
            Config = $$"""
                actorpool.cluster { enabled = on, secret = "{{secret}}", min-workers = 0, local-workers = 1 }
                akka.remote.dot-netty.tcp { hostname = "127.0.0.1", port = {{port}} }
                """,
        });
        Pools.Add(pool);
        Assert.Equal([1, 4], await pool.MapAsync(TestFunctions.Square, [1, 2]).WaitAsync(Bound));
        var seed = $"akka.ssl.tcp://actorpool@127.0.0.1:{port}";

        var victim = Victim();
        // The four attacks at once (a refused join waits 15 s for a membership that never comes).
        await Task.WhenAll(new[] { "plain", "stranger" }.SelectMany(tls => new[]
        {
            Task.Run(async () => Assert.DoesNotContain("JOINED", await Hostile("join", "--tls", tls, "--seed", seed, "--secret", "a-guess"))),
            Task.Run(async () => Assert.DoesNotContain("ANSWERED", await Hostile("akka", "--tls", tls, "--marker", Path.Combine(Dir, "pwned"),
                "--victim", victim, "--path", pool.CoordinatorPath))),
        }));
        Assert.Single(Akka.Cluster.Cluster.Get(pool.System).State.Members);
        Assert.False(File.Exists(Path.Combine(Dir, "pwned")));
        Assert.Equal(Enumerable.Range(0, 20).Select(x => x * x), await pool.MapAsync(TestFunctions.Square, Enumerable.Range(0, 20)).WaitAsync(Bound));
    }
}

/// <summary>A pool's process killed outright: its workers remove its spill folder.</summary>
[Collection("alone")]
public sealed class SecuritySpillSpec(ITestOutputHelper output) : HostileSpec(output)
{
    [Fact]
    public async Task A_pool_process_killed_outright_must_leave_no_spill_folder_behind()
    {
        using var program = new StartedProgram(HostileDll, "spill-and-wait");
        Assert.True(await Processes.WaitUntil(() => program.Stdout.Contains("SPILL "), TimeSpan.FromSeconds(90)), program.Stdout + program.Stderr);
        var line = program.Stdout.Split('\n').First(l => l.StartsWith("SPILL "));
        var folder = line.Split(' ')[1];
        Assert.True(Directory.GetFiles(folder).Length > 0, line);
        // The argument is spilled at the call, maybe before the worker's process is started on a busy machine.
        Assert.True(await Processes.WaitUntil(() => program.Children().Count > 0, TimeSpan.FromSeconds(60)), "the pool started no worker");
        var workers = program.Children();
        Processes.Kill9(program.Pid);
        // Its worker sees its data link and standard input close and its parent gone (whether it was still starting or
        // running the task), and removes the folder on the way out.
        if (!await Processes.WaitUntil(() => !Directory.Exists(folder), TimeSpan.FromSeconds(30)))
            Assert.Fail($"{folder} is still there ({string.Join(", ", Directory.GetFileSystemEntries(folder).Select(Path.GetFileName))}); " +
                        $"workers {string.Join(", ", workers)} alive: {string.Join(", ", workers.Select(Processes.IsAlive))}\n{program.Stderr}");
        foreach (var pid in workers)
            Assert.True(await Processes.WaitUntil(() => !Processes.IsAlive(pid), TimeSpan.FromSeconds(30)), $"worker {pid} outlived its pool");
    }
}
