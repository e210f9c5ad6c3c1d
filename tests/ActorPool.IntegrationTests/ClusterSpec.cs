using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using ActorPool.IntegrationTests.Support;
using Microsoft.Extensions.Logging;
using Xunit;

namespace ActorPool.IntegrationTests;

/// <summary>
/// A cluster pool served by standalone worker nodes started through the node's command line: real processes, a
/// real Akka.Cluster on 127.0.0.1.
/// </summary>
[Collection("cluster")]
public sealed class ClusterSpec : IDisposable
{
    private static readonly string NodeDll = Path.Combine(AppContext.BaseDirectory, "ActorPool.Node.dll");
    private static readonly string TestAssembly = typeof(TestFunctions).Assembly.Location;

    private readonly string _secret = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
    private readonly int _port = FreePort();
    private readonly string _nodeConfig = Path.Combine(Path.GetTempPath(), $"actorpool-node-{Guid.NewGuid():N}.conf");
    private readonly List<StartedProgram> _nodes = new();
    private readonly List<string> _files = new();
    private readonly List<Pool> _pools = new();

    /// <summary>A new self-signed certificate with its key, as a PKCS#12 file (password "pw"); its HOCON line.</summary>
    private string Certificate(string name)
    {
        using var key = System.Security.Cryptography.RSA.Create(2048);
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest($"CN={name}", key,
            System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var path = Path.Combine(Path.GetTempPath(), $"actorpool-{name}-{Guid.NewGuid():N}.pfx");
        File.WriteAllBytes(path, certificate.Export(System.Security.Cryptography.X509Certificates.X509ContentType.Pfx, "pw"));
        _files.Add(path);
        return $"\nactorpool.cluster.tls {{ certificate = \"{path}\", password = \"pw\" }}\n";
    }

    /// <summary>The nodes' file with <paramref name="extra"/> HOCON.</summary>
    private string NodeConfig(string extra)
    {
        var path = Path.Combine(Path.GetTempPath(), $"actorpool-node-{Guid.NewGuid():N}.conf");
        File.WriteAllText(path, File.ReadAllText(_nodeConfig) + extra);
        _files.Add(path);
        return path;
    }

    public ClusterSpec()
    {
        // The nodes' file: the same failure detection as the coordinator's (the cluster's leader, which may be any
        // member, applies its own split-brain settings). No secret in it: the nodes get theirs from the environment.
        File.WriteAllText(_nodeConfig, Timing + $"\nakka.cluster.seed-nodes = [\"{Seed}\"]\n");
    }

    private const string Timing = """
        akka.cluster.failure-detector.acceptable-heartbeat-pause = 2s
        akka.cluster.split-brain-resolver.stable-after = 3s
        """;

    private string Seed => $"akka.tcp://actorpool@127.0.0.1:{_port}";

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>A cluster pool (terminated when the test ends, however it ends).</summary>
    private Pool StartCoordinator(int minWorkers, ILoggerFactory? logging = null, string extra = "")
    {
        var pool = CreateCoordinator(minWorkers, logging, extra);
        _pools.Add(pool);
        return pool;
    }

    /// <summary>A coordinator and two one-worker nodes, all ready.</summary>
    private async Task<(Pool Pool, StartedProgram First, StartedProgram Second)> StartCoordinatorAndTwoNodesAsync()
    {
        var pool = StartCoordinator(minWorkers: 2);
        var first = StartNode(workers: 1);
        var second = StartNode(workers: 1);
        await pool.WaitForWorkersAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return (pool, first, second);
    }

    private Pool CreateCoordinator(int minWorkers, ILoggerFactory? logging, string extra) => new(new PoolOptions
    {
        LoggerFactory = logging,
        Config = Timing + extra + $$"""

            actorpool.cluster { enabled = on, secret = "{{_secret}}", min-workers = {{minWorkers}}, local-workers = 0 }
            akka.remote.dot-netty.tcp { hostname = "127.0.0.1", port = {{_port}} }
            akka.cluster.seed-nodes = ["{{Seed}}"]
            """,
    });

    /// <summary>A worker node, through its command line; the secret in ACTORPOOL_SECRET.</summary>
    private StartedProgram StartNode(int workers, string? secret = null, string? config = null)
    {
        var node = new StartedProgram(NodeDll, new Dictionary<string, string> { ["ACTORPOOL_SECRET"] = secret ?? _secret },
            "--config", config ?? _nodeConfig, "--workers", workers.ToString(), "--assembly", TestAssembly);
        _nodes.Add(node);
        return node;
    }

    public void Dispose()
    {
        foreach (var pool in _pools)
            pool.Terminate();
        foreach (var node in _nodes)
            node.Dispose();
        File.Delete(_nodeConfig);
        foreach (var file in _files)
            File.Delete(file);
    }

    [Fact]
    public async Task The_node_status_command_must_show_what_a_running_cluster_pool_does_and_follow_its_calls()
    {
        var (pool, first, second) = await StartCoordinatorAndTwoNodesAsync();
        var env = new Dictionary<string, string> { ["ACTORPOOL_SECRET"] = _secret };
        // Task 0 runs until the watchers below have seen it (not for a fixed time a busy machine may outlast).
        var gate = Path.Combine(Path.GetTempPath(), $"actorpool-gate-{Guid.NewGuid():N}");
        _files.Add(gate);
        var call = pool.MapAsync(TestFunctions.PidWhenOpen, [gate, "", ""], chunkSize: 1);
        Assert.True(await Processes.WaitUntil(() => pool.GetStatus().Calls is [{ Completed: 2 }], TimeSpan.FromSeconds(30)), pool.GetStatus().ToString());
        var callId = pool.GetStatus().Calls[0].CallId;

        // Once: the table, from another process, through the coordinator's address in the nodes' file.
        using (var once = new StartedProgram(NodeDll, env, "status", "--config", _nodeConfig))
        {
            Assert.Equal(0, await once.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            var table = once.Stdout;
            var busy = Assert.Single(table.Split('\n'), l => l.Contains(" busy "));
            Assert.Contains($"task 0 of call {callId}", busy);
            Assert.Contains(" node ", busy);
            Assert.True(busy.Contains($" {first.Pid} ") || busy.Contains($" {second.Pid} "), table); // the node process that runs it
            Assert.Contains("2 of 2 worker(s) ready, 1 call(s) running", table);
        }

        // Watching, output redirected: plain lines for the call, naming its long task, until the call ends; Ctrl-C ends the watch.
        // And in a terminal (script(1) gives it one): live bars instead of lines.
        using var terminal = StartedProgram.Start("script", ["-qfec", $"dotnet {NodeDll} status --coordinator {Seed} --watch --interval 0.2", "/dev/null"],
            new Dictionary<string, string?> { ["ACTORPOOL_SECRET"] = _secret, ["TERM"] = "xterm-256color" });
        using (var watching = new StartedProgram(NodeDll, env, "status", "--coordinator", Seed, "--watch", "--interval", "0.2"))
        {
            Assert.True(await Processes.WaitUntil(() => watching.Stdout.Contains($"call {callId}: 2/3 tasks done (67%)"), TimeSpan.FromSeconds(30)),
                watching.Stdout + watching.Stderr);
            Assert.Contains($"longest running: task 0 of call {callId} on ", watching.Stdout);
            Assert.Contains("workers: 1 busy, 1 idle", watching.Stdout);
            Assert.True(await Processes.WaitUntil(() => terminal.Stdout.Contains($"call {callId}: 2/3 tasks done"), TimeSpan.FromSeconds(30)),
                terminal.Stdout + terminal.Stderr);
            File.WriteAllText(gate, "open");
            await call.WaitAsync(TimeSpan.FromSeconds(60));
            Assert.True(await Processes.WaitUntil(() => watching.Stdout.Contains($"call {callId}: ended"), TimeSpan.FromSeconds(10)), watching.Stdout);
            using (var interrupt = System.Diagnostics.Process.Start("kill", ["-INT", watching.Pid.ToString()]))
                await interrupt.WaitForExitAsync();
            Assert.Equal(130, await watching.WaitForExitAsync(TimeSpan.FromSeconds(30))); // as any program ended by Ctrl-C
        }
        Assert.True(await Processes.WaitUntil(() => terminal.Stdout.Contains("\u2501") && terminal.Stdout.Contains($"call {callId}: 2/3 tasks done")
            && terminal.Stdout.Contains($"call {callId}: ended"), TimeSpan.FromSeconds(10)), terminal.Stdout + terminal.Stderr);
        Assert.DoesNotContain("(67%)", terminal.Stdout); // bars, not the plain lines

        // The wrong secret is refused (4), a coordinator that is not there is reported (1), a bad address is a usage error
        // (2): the three at once.
        using var wrong = new StartedProgram(NodeDll, new Dictionary<string, string> { ["ACTORPOOL_SECRET"] = "not-it" }, "status", "--coordinator", Seed);
        using var nobody = new StartedProgram(NodeDll, env, "status", "--coordinator", $"akka.tcp://actorpool@127.0.0.1:{FreePort()}", "--timeout", "2");
        using var bad = new StartedProgram(NodeDll, env, "status", "--coordinator", "localhost:4053");
        Assert.Equal(4, await wrong.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains("refused this client's TLS handshake", wrong.Stderr);
        Assert.Equal(1, await nobody.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains("no coordinator answered", nobody.Stderr);
        Assert.Equal(2, await bad.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains("--coordinator: 'localhost:4053'", bad.Stderr);
        Assert.Contains("the form is akka.tcp://actorpool@HOST:PORT", bad.Stderr);
    }

    [Fact]
    public async Task Cluster_pool_must_use_every_node_take_one_joining_mid_run_and_lose_nothing_when_one_is_killed()
    {
        var (pool, first, second) = await StartCoordinatorAndTwoNodesAsync();

        // 150 tasks of 200 ms on 2-3 workers: long enough for a node to join and another to be killed mid-run.
        var inputs = Enumerable.Range(0, 150).ToArray();
        var results = new ConcurrentQueue<(int Item, int Pid)>();
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var run = Task.Run(async () =>
        {
            var i = 0;
            await foreach (var pid in pool.ImapAsync(static (int x) => TestFunctions.SlowPid(200), inputs, chunkSize: 1, cancellationToken: bound.Token))
                results.Enqueue((inputs[i++], pid));
        });

        Assert.True(await Processes.WaitUntil(() => results.Count >= 6, TimeSpan.FromSeconds(60)), $"no progress\n{first.Stderr}\n{second.Stderr}");
        var third = StartNode(workers: 1);
        Assert.True(await Processes.WaitUntil(() => results.Any(r => r.Pid == third.Pid), TimeSpan.FromSeconds(60)),
            $"the third node never received work\n{third.Stdout}\n{third.Stderr}");
        var atKill = results.Count;
        Assert.True(atKill < inputs.Length - 20, "the map was nearly done before a node could be killed mid-run: make it longer");
        Processes.Kill9(first.Pid);

        await run.WaitAsync(TimeSpan.FromSeconds(120));
        Assert.Equal(inputs, results.Select(r => r.Item).ToArray()); // every result, once, in order
        var pids = results.Select(r => r.Pid).ToHashSet();
        Assert.Contains(first.Pid, pids);
        Assert.Contains(second.Pid, pids);
        Assert.Contains(third.Pid, pids);
        // Past what it held when it died, the killed node ran nothing more.
        Assert.DoesNotContain(first.Pid, results.Skip(atKill + 10).Select(r => r.Pid));

        // The pool goes on with the nodes it has.
        var squares = await pool.MapAsync(TestFunctions.Square, Enumerable.Range(0, 20)).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(Enumerable.Range(0, 20).Select(x => x * x), squares);
    }

    /// <summary>Members found through Akka.Discovery's config method: the remoting addresses of <paramref name="ports"/>.</summary>
    private static string Discovery(int[] ports) => $$"""

        actorpool.cluster.discovery { method = config, service-name = "actorpool-test" }
        akka.discovery.config.services.actorpool-test.endpoints = [{{string.Join(", ", ports.Select(p => $"\"127.0.0.1:{p}\""))}}]
        """;

    [Fact]
    public async Task Discovery_must_form_the_cluster_without_seed_nodes_whatever_member_starts_first()
    {
        int[] ports = [FreePort(), FreePort(), FreePort()];
        // The nodes first, with no seed nodes at all: they join the first member of the list once it answers, the
        // coordinator, whose port sorts first here only by chance (any first member forms the cluster).
        var file = Path.Combine(Path.GetTempPath(), $"actorpool-node-{Guid.NewGuid():N}.conf");
        File.WriteAllText(file, Timing + Discovery(ports));
        _files.Add(file);
        var nodes = new List<StartedProgram>();
        for (var i = 1; i <= 2; i++)
        {
            var node = new StartedProgram(NodeDll, new Dictionary<string, string> { ["ACTORPOOL_SECRET"] = _secret },
                "--config", file, "--workers", "1", "--port", ports[i].ToString(), "--assembly", TestAssembly);
            _nodes.Add(node);
            nodes.Add(node);
        }
        var pool = new Pool(new PoolOptions
        {
            Config = Timing + Discovery(ports) + $$"""

                actorpool.cluster { enabled = on, secret = "{{_secret}}", min-workers = 2, local-workers = 0 }
                akka.remote.dot-netty.tcp { hostname = "127.0.0.1", port = {{ports[0]}} }
                """,
        });
        _pools.Add(pool);
        await pool.WaitForWorkersAsync().WaitAsync(TimeSpan.FromSeconds(90));
        var pids = await pool.MapAsync(TestFunctions.SlowPid, Enumerable.Repeat(300, 8), chunkSize: 1).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(nodes.Select(n => n.Pid).Order(), pids.Distinct().Order());
        Assert.Contains("the members Akka.Discovery (config) finds for 'actorpool-test'", nodes[0].Stdout);
    }

    [Fact]
    public void Discovery_without_a_service_name_or_with_seed_nodes_too_must_be_refused_naming_the_key()
    {
        var missing = Assert.Throws<ArgumentOutOfRangeException>(() => new Pool(new PoolOptions
        {
            Config = $$"""actorpool.cluster { enabled = on, secret = "{{_secret}}", discovery { method = config, service-name = "" } }""",
        }));
        Assert.Contains("actorpool.cluster.discovery.service-name", missing.Message);
        var both = Assert.Throws<ArgumentException>(() => new Pool(new PoolOptions
        {
            Config = Discovery([1]) + $$"""

                actorpool.cluster { enabled = on, secret = "{{_secret}}" }
                akka.cluster.seed-nodes = ["{{Seed}}"]
                """,
        }));
        Assert.Contains("members find each other one way", both.Message);
    }

    [Fact]
    public async Task Node_sent_SIGTERM_must_finish_its_running_task_then_leave_while_the_map_completes()
    {
        var (pool, leaving, staying) = await StartCoordinatorAndTwoNodesAsync();

        var map = pool.MapAsync(TestFunctions.SlowPid, Enumerable.Repeat(1500, 8), chunkSize: 1);
        Assert.True(await Processes.WaitUntil(() => leaving.Stdout.Contains("serving"), TimeSpan.FromSeconds(30)));
        await Task.Delay(500); // both nodes are running a 1.5 s task
        using (var term = System.Diagnostics.Process.Start("kill", ["-TERM", leaving.Pid.ToString()]))
            await term.WaitForExitAsync();

        Assert.Equal(0, await leaving.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("drained; leaving the cluster", leaving.Stdout); // its task finished; none was cut short
        var pids = await map.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(8, pids.Count);
        Assert.Contains(leaving.Pid, pids);
        Assert.Equal(staying.Pid, pids[^1]);
    }

    [Fact]
    public async Task Tls_cluster_must_take_a_node_holding_its_certificate_and_keep_out_others()
    {
        var shared = Certificate("actorpool-cluster");
        var pool = StartCoordinator(minWorkers: 1, extra: shared);
        var member = StartNode(workers: 1, config: NodeConfig(shared));
        await pool.WaitForWorkersAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(member.Pid, await pool.ApplyAsync(() => Environment.ProcessId).WaitAsync(TimeSpan.FromSeconds(60)));

        // The right secret is not enough: a node with another certificate, or with none, never connects.
        var stranger = StartNode(workers: 1, config: NodeConfig(Certificate("stranger")));
        var plain = StartNode(workers: 1);
        // And the certificate is not enough: a node holding it but not the secret joins, yet its workers never register
        // (the coordinator's proof of the secret does not check out, so the node sends nothing that proves or reveals one).
        var noSecret = StartNode(workers: 1, secret: "not-the-secret", config: NodeConfig(shared));
        Assert.True(await Processes.WaitUntil(() => noSecret.Stderr.Contains("does not hold this worker's secret"), TimeSpan.FromSeconds(30)),
            noSecret.Stdout + noSecret.Stderr);
        // Each is told so and exits with 4 (refused), not 0 (left), having never served in all its life (a node with the
        // certificate is serving within about 2 s).
        Assert.Equal(4, await stranger.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(4, await plain.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.DoesNotContain("serving", stranger.Stdout);
        Assert.DoesNotContain("serving", plain.Stdout);
        var status = await pool.CountsAsync();
        Assert.Equal(1, status.ReadyWorkers);
        Assert.Equal(1, status.RegisteredWorkers);
        Assert.Equal(Enumerable.Range(0, 10).Select(x => x * x), await pool.MapAsync(TestFunctions.Square, Enumerable.Range(0, 10)).WaitAsync(TimeSpan.FromSeconds(60)));
    }

    [Fact]
    public async Task Node_with_the_wrong_secret_must_be_kept_out_by_tls_and_logged_while_the_pool_keeps_working()
    {
        var log = new LogCapture();
        var pool = StartCoordinator(minWorkers: 1, log);
        var good = StartNode(workers: 1);
        await pool.WaitForWorkersAsync().WaitAsync(TimeSpan.FromSeconds(60));

        var intruder = StartNode(workers: 2, secret: "not-the-secret");
        var exit = await intruder.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.True(exit == 4, $"exit {exit}\n{intruder.Stdout}\n{intruder.Stderr}");
        // Its key, derived from another secret, fails the TLS handshake: it never joins, and nothing it sent was read.
        Assert.Contains("the cluster refused this node", intruder.Stderr);
        Assert.Contains(log.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("Refused a connection") && e.Message.Contains("TLS handshake failed"));
        Assert.Equal(2, Akka.Cluster.Cluster.Get(pool.System).State.Members.Count);

        var pids = await pool.MapAsync(TestFunctions.SlowPid, Enumerable.Repeat(20, 10)).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.All(pids, pid => Assert.Equal(good.Pid, pid));
        Assert.Equal(1, (await pool.CountsAsync()).ReadyWorkers);
    }

    /// <summary>The README's local cluster, as typed there: two nodes and the demo as coordinator, all with hocon/three-node-local.conf.</summary>
    [Fact]
    public async Task Readme_local_cluster_must_run_the_seed_example_on_two_nodes()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "hocon", "three-node-local.conf")))
            dir = dir.Parent;
        Assert.NotNull(dir);
        var file = Path.Combine(dir.FullName, "hocon", "three-node-local.conf");
        var demoDll = Path.Combine(AppContext.BaseDirectory, "ActorPool.Demo.dll");
        var noSecret = new Dictionary<string, string> { ["ACTORPOOL_SECRET"] = "" }; // the file's
        var nodes = Enumerable.Range(0, 2).Select(_ =>
        {
            var node = new StartedProgram(NodeDll, noSecret, "--config", file, "--assembly", demoDll);
            _nodes.Add(node);
            return node;
        }).ToList();
        using var demo = new StartedProgram(demoDll, noSecret, "--config", file, "--unit", "0.05");
        _nodes.Add(demo);
        var exit = await demo.WaitForExitAsync(TimeSpan.FromSeconds(90));
        Assert.True(exit == 0, $"exit {exit}\n{demo.Stdout}\n{demo.Stderr}");
        Assert.Contains("Completed 8 tasks: a b c d e f g h", demo.Stdout);

        // Each node ran some of the seed's items (their output is theirs), and leaves once the coordinator has gone.
        foreach (var node in nodes)
        {
            Assert.Equal(0, await node.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            Assert.Matches(@"Process [a-h]\tDONE", node.Stdout);
        }
        Assert.Equal(8, nodes.Sum(n => System.Text.RegularExpressions.Regex.Matches(n.Stdout, @"Process [a-h]\tDONE").Count));
    }

    [Theory]
    [InlineData("--workers -1", "--workers = -1 is invalid")]
    [InlineData("--seed-nodes not-an-address", "is not a member address")]
    [InlineData("--seed-nodes akka.tcp://other@127.0.0.1:4053", "names the ActorSystem 'other'")]
    [InlineData("--port 70000", "--port = 70000 is invalid")]
    [InlineData("--no-such-option", "--no-such-option")]
    [InlineData("--config /nonexistent/actorpool.conf", "cannot read")]
    public async Task Node_must_exit_with_code_2_naming_a_bad_command_line(string args, string expected)
    {
        using var node = new StartedProgram(NodeDll, new Dictionary<string, string> { ["ACTORPOOL_SECRET"] = "s" },
            [.. args.Split(' '), "--seed-nodes", "akka.tcp://actorpool@127.0.0.1:1"]);
        var exit = await node.WaitForExitAsync(TimeSpan.FromSeconds(30));
        Assert.True(exit == 2, $"exit {exit}\n{node.Stdout}\n{node.Stderr}");
        Assert.Contains(expected, node.Stderr);
    }

    [Fact]
    public async Task Cert_create_must_write_a_certificate_with_its_key_readable_by_its_owner_only_and_print_its_thumbprint()
    {
        var file = Path.Combine(Path.GetTempPath(), $"actorpool-cert-{Guid.NewGuid():N}.p12");
        _files.Add(file);
        using (var create = new StartedProgram(NodeDll, "cert", "create", "--out", file, "--subject", "test cluster"))
        {
            Assert.Equal(0, await create.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            using var certificate = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12FromFile(file, "");
            Assert.True(certificate.HasPrivateKey);
            Assert.Equal("CN=test cluster", certificate.Subject);
            Assert.Contains($"Thumbprint: {certificate.Thumbprint}", create.Stdout);
            if (!OperatingSystem.IsWindows())
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }
        using (var again = new StartedProgram(NodeDll, "cert", "create", "--out", file))
        {
            Assert.Equal(2, await again.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains("give --force to replace it", again.Stderr);
        }
    }

    [Fact]
    public async Task Node_must_exit_with_code_2_on_bad_hocon_an_unusable_certificate_or_no_secret()
    {
        var bad = Path.Combine(Path.GetTempPath(), $"actorpool-bad-{Guid.NewGuid():N}.conf");
        File.WriteAllText(bad, "actorpool { node { workers = [1, 2 }"); // Akka's own parser would loop on it
        try
        {
            using var badHocon = new StartedProgram(NodeDll, "--config", bad, "--seed-nodes", Seed);
            Assert.Equal(2, await badHocon.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            Assert.Contains("is not valid HOCON", badHocon.Stderr);
        }
        finally
        {
            File.Delete(bad);
        }

        using var noCertificate = new StartedProgram(NodeDll, new Dictionary<string, string> { ["ACTORPOOL_SECRET"] = "s" },
            "--config", NodeConfig("\nactorpool.cluster.tls.certificate = \"/nonexistent/cluster.pfx\"\n"));
        Assert.Equal(2, await noCertificate.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("actorpool.cluster.tls.certificate: cannot load '/nonexistent/cluster.pfx'", noCertificate.Stderr);

        using var noSecret = new StartedProgram(NodeDll, new Dictionary<string, string> { ["ACTORPOOL_SECRET"] = "" }, "--seed-nodes", Seed);
        Assert.Equal(2, await noSecret.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("ACTORPOOL_SECRET", noSecret.Stderr);
    }
}
