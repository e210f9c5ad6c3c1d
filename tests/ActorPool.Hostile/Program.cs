using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ActorPool.Coordination;
using ActorPool.Execution;
using ActorPool.Protocol;
using Akka.Actor;
using Akka.Configuration;
using Akka.Remote.Transport.DotNetty;

// A hostile peer: another local user (or any process without the pool's key) that knows ActorPool's protocol and tries
// what an attacker would. Every line it prints is one attempt and what came of it; "ANSWERED" or "CONNECTED" is a
// breach the tests look for. Modes:
//   akka   --tls plain|stranger --path ACTOR_PATH ... --marker FILE --victim FILE   forged protocol messages over Akka.Remote
//   raw    --to HOST:PORT --connections N                                            garbage, huge frame headers, floods
//   unix   --socket PATH                                                             the pool's data link, as a stranger
//   join   --tls plain|stranger --seed ADDRESS --secret S                            join a cluster as a coordinator-role member
//   spill-and-wait                                                                   (not an attack) a pool killed with data in its spill folder
namespace ActorPool.Hostile;

internal static class Program
{
    private static int Main(string[] args)
    {
        string Arg(string name, string fallback = "") => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        IEnumerable<string> All(string name) => args.Select((a, i) => (a, i)).Where(p => p.a == name && p.i + 1 < args.Length).Select(p => args[p.i + 1]);
        Console.Out.WriteLine($"hostile: uid {Uid()}, mode {args.FirstOrDefault()}");
        try
        {
            return args.FirstOrDefault() switch
            {
                "akka" => Forge(Arg("--tls", "plain"), All("--path").ToList(), Arg("--marker"), Arg("--victim"), Arg("--coordinator")),
                "raw" => Raw(Arg("--to"), int.Parse(Arg("--connections", "50"))),
                "unix" => Unix(Arg("--socket")),
                "spill-and-wait" => SpillAndWait(),
                "join" => Join(Arg("--tls", "plain"), Arg("--seed"), Arg("--secret", "guess")),
                _ => Usage(),
            };
        }
        finally
        {
            Console.Out.Flush();
        }
    }

    private static int Usage()
    {
        Console.Error.WriteLine("usage: akka|raw|unix|join ... (see Program.cs)");
        return 2;
    }

    private static string Uid() => File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("Uid:"))?.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1] ?? "?";

    /// <summary>An ActorSystem of the attacker's: plain TCP, or TLS with a certificate of its own (not the pool's).</summary>
    private static ActorSystem System(string tls, string name = "hostile", string extra = "")
    {
        var config = ConfigurationFactory.ParseString(extra + "\nakka.remote.dot-netty.tcp.hostname = \"127.0.0.1\"\nakka.remote.dot-netty.tcp.port = 0\nakka.loglevel = ERROR\nakka.stdout-loglevel = OFF")
            .WithFallback(Configuration.PoolSettings.Reference);
        if (tls != "stranger")
            return ActorSystem.Create(name, config);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=stranger", key, HashAlgorithmName.SHA256);
        using var made = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var cert = X509CertificateLoader.LoadPkcs12(made.Export(X509ContentType.Pkcs12), null);
        // It accepts any server certificate: it only wants in.
        var setup = new DotNettySslSetup(cert, true, true, (_, _, _, _, _) => true);
        return ActorSystem.Create(name, BootstrapSetup.Create()
            .WithConfig(ConfigurationFactory.ParseString("akka.remote.dot-netty.tcp.enable-ssl = true").WithFallback(config)).And(setup));
    }

    private static string Scheme(string path, string tls) =>
        tls == "stranger" ? path.Replace("akka.tcp://", "akka.ssl.tcp://") : path.Replace("akka.ssl.tcp://", "akka.tcp://");

    private static int Forge(string tls, List<string> paths, string marker, string victim, string coordinator)
    {
        using var system = System(tls);
        // A sender that claims to be the pool's coordinator (a remote sender's path is whatever it says).
        // Asked for its identity first, where the coordinator answers strangers (its uid makes the claim complete).
        IActorRef? sender = ActorRefs.NoSender;
        if (coordinator.Length > 0)
        {
            try
            {
                sender = system.ActorSelection(Scheme(coordinator, tls)).ResolveOne(TimeSpan.FromSeconds(5)).GetAwaiter().GetResult();
                Console.Out.WriteLine($"ANSWERED Identify at {coordinator}");
            }
            catch (ActorNotFoundException)
            {
                sender = ((ExtendedActorSystem)system).Provider.ResolveActorRef(Scheme(coordinator, tls));
            }
        }
        // Code execution: a task function that is a framework method (File.Create), its "item" the marker file.
        Func<string, FileStream> create = File.Create;
        var function = Payload.Serialize(new MapFunction<string, FileStream>(create));
        var items = Blob.Of(Payload.Serialize(new[] { marker }));
        var run = new RunChunk(new ChunkId(1, 0), 1, function, 0, items);
        var forgedResult = new ChunkDone(new ChunkId(1, 0), 1, new Blob([], victim), 1, null, 1);
        object[] oneWay =
        [
            run, new RunChunks([run with { Chunk = new ChunkId(2, 0) }]), new WorkerAccepted([]), new WorkerRejected("forged"),
            Retire.Instance, new ForgetCall(1), forgedResult, new ChunksDone([forgedResult]), new WorkerReady("w1"),
            new WorkerInitFailed("w1", new TaskError("Forged", "forged initializer error", "")), new WorkerDraining("w1"),
            new RegisterWorker("w1", 1, "127.0.0.1", system.DeadLetters, "00", "00", "guess"),
            StopWorkers.Instance, TerminateWorkers.Instance, new WorkerExited("w1", 1, "forged"),
        ];
        object[] asks = [GetCounts.Instance, GetPoolStatus.Instance, new StatusRequest("00"), WaitForWorkers.Instance];
        var breaches = 0;
        var targets = paths.Select(raw => (Path: Scheme(raw, tls), Selection: system.ActorSelection(Scheme(raw, tls)))).ToList();
        foreach (var (_, target) in targets)
        {
            foreach (var m in oneWay)
                target.Tell(m, sender);
        }
        // Every path asked everything at once, each waited for a few seconds.
        var replies = targets.SelectMany(t => asks.Select(m => (t.Path, m, reply: t.Selection.Ask<object>(m, TimeSpan.FromSeconds(4))))).ToList();
        foreach (var (path, m, reply) in replies)
        {
            try
            {
                var answer = reply.GetAwaiter().GetResult();
                Console.Out.WriteLine($"ANSWERED {m.GetType().Name} at {path}: {answer.GetType().Name}");
                breaches++;
            }
            catch (Exception e) when (e is AskTimeoutException or TimeoutException)
            {
                Console.Out.WriteLine($"refused {m.GetType().Name} at {path}: no answer");
            }
        }
        // 20,000 messages a target cannot use, to each: a flood for its log.
        foreach (var (_, target) in targets)
        {
            for (var i = 0; i < 20_000; i++)
                target.Tell(new WorkerReady("flood"), sender);
        }
        Thread.Sleep(2000); // let what was sent go out before the system stops
        Console.Out.WriteLine($"sent to {paths.Count} path(s) over {tls}; breaches: {breaches}");
        return 0;
    }

    private static int Raw(string to, int connections)
    {
        var colon = to.LastIndexOf(':');
        var (host, port) = (to[..colon], int.Parse(to[(colon + 1)..]));
        var connected = 0;
        Span<byte> header = stackalloc byte[4];
        for (var i = 0; i < connections; i++)
        {
            try
            {
                using var client = new TcpClient();
                client.Connect(host, port);
                connected++;
                using var stream = client.GetStream();
                stream.WriteTimeout = 2000;
                // A frame that claims almost 2 GiB, then garbage; then a burst of small garbage frames.
                BinaryPrimitives.WriteInt32BigEndian(header, 0x7FFFFFF0);
                stream.Write(header);
                stream.Write(RandomNumberGenerator.GetBytes(64));
                for (var k = 0; k < 400; k++)
                {
                    BinaryPrimitives.WriteInt32BigEndian(header, 16);
                    stream.Write(header);
                    stream.Write(RandomNumberGenerator.GetBytes(16));
                }
            }
            catch (Exception e) when (e is SocketException or IOException)
            {
                // Closed on us: what a peer without the key should get.
            }
        }
        Console.Out.WriteLine($"raw: {connected} of {connections} connection(s) opened to {to} and fed garbage");
        return 0;
    }

    private static int Unix(string path)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException e)
        {
            Console.Out.WriteLine($"refused: the data link at {path}: {e.SocketErrorCode}");
            return 0;
        }
        Console.Out.WriteLine($"CONNECTED to the data link at {path}");
        Span<byte> header = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(header, 0x7FFFFFF0);
        try
        {
            socket.Send(header);
            socket.Send(new byte[1024]);
            Thread.Sleep(500);
        }
        catch (SocketException)
        {
        }
        return 0;
    }

    /// <summary>
    /// Not an attack: a pool's process that a test kills with SIGKILL while a large argument sits in its spill folder
    /// (its workers must remove the folder on their way out).
    /// </summary>
    private static int SpillAndWait()
    {
        using var pool = new Pool(1);
        var call = pool.MapAsync(static (byte[] b) => { Thread.Sleep(120_000); return b.Length; }, [new byte[1 << 20]]);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && Directory.GetFiles(pool.SpillFolder!).Length == 0)
            Thread.Sleep(50);
        Console.Out.WriteLine($"SPILL {pool.SpillFolder} {Directory.GetFiles(pool.SpillFolder!).Length}");
        Console.Out.Flush();
        call.Wait(TimeSpan.FromMinutes(3));
        return 0;
    }

    private static int Join(string tls, string seed, string secret)
    {
        Environment.SetEnvironmentVariable("ACTORPOOL_SECRET", secret);
        var extra = """
            akka.actor.provider = cluster
            akka.cluster.roles = ["actorpool-coordinator", "actorpool-worker"]
            akka.cluster.seed-node-timeout = 2s
            akka.cluster.retry-unsuccessful-join-after = 1s
            """;
        using var system = System(tls, "actorpool", extra);
        var cluster = global::Akka.Cluster.Cluster.Get(system);
        var up = new ManualResetEventSlim();
        cluster.RegisterOnMemberUp(up.Set);
        cluster.JoinSeedNodes([Address.Parse(Scheme(seed, tls))]);
        if (up.Wait(TimeSpan.FromSeconds(15)))
        {
            Console.Out.WriteLine($"JOINED the cluster at {seed}");
            // What a member may do: down the coordinator.
            cluster.Down(Address.Parse(Scheme(seed, tls)));
            Thread.Sleep(2000);
        }
        else
        {
            Console.Out.WriteLine($"refused: never joined the cluster at {seed} over {tls}");
        }
        return 0;
    }
}
