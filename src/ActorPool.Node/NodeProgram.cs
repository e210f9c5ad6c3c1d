using System.Runtime.InteropServices;
using System.Runtime.Loader;
using ActorPool.Configuration;
using ActorPool.Hosting;
using ActorPool.Logging;
using ActorPool.Worker;
using Akka.Actor;
using Akka.Configuration;

namespace ActorPool.Node;

/// <summary>The node's command line, as parsed.</summary>
internal sealed record NodeOptions(FileInfo? Config, string[] SeedNodes, string? Hostname, int? Port, int? Workers, string? Role, FileInfo[] Assemblies);

/// <summary>Runs a standalone worker node: validates its settings, loads the user's code, joins the cluster, serves.</summary>
internal static class NodeProgram
{
    /// <summary>Exit codes: 0 left the cluster; 1 could not start; 2 bad options or configuration; 4 refused by the coordinator.</summary>
    public const int ExitOk = 0, ExitStartFailed = 1, ExitUsage = Shared.CommandLineErrors.ExitUsage;

    public static int Run(NodeOptions options)
    {
        Config config;
        string systemName;
        NodeSettings settings;
        try
        {
            (config, systemName, settings) = Configure(options);
            LoadAssemblies(options.Assemblies);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"actorpool-node: {e.Message}");
            Console.Error.WriteLine("Run with --help for usage.");
            return ExitUsage;
        }

        ActorSystem system;
        try
        {
            system = ClusterMember.Start(systemName, config, ConsoleLogging.CreateDefault());
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"actorpool-node: {e.Message}");
            return ExitUsage;
        }
        catch (ActorPoolException e)
        {
            Console.Error.WriteLine($"actorpool-node: {e.Message}"); // says what is wrong and what to set (a port in use, say)
            return ExitStartFailed;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"actorpool-node: cannot start the node's ActorSystem: {e.GetBaseException().Message}");
            return ExitStartFailed;
        }

        var exit = new WorkerNode.ExitCode();
        var cluster = Akka.Cluster.Cluster.Get(system);
        var joined = false;
        cluster.RegisterOnMemberUp(() => Volatile.Write(ref joined, true));
        // A node whose secret or certificate is not the cluster's is kept out by the TLS handshake: say so and exit,
        // rather than knock forever or look like a node that left.
        var refused = ClusterMember.WhenTlsRefused(system);
        _ = refused.ContinueWith(_ =>
        {
            if (Volatile.Read(ref joined))
                return;
            exit.Set(WorkerProgram.ExitRejected);
            Console.Error.WriteLine($"actorpool-node: the cluster refused this node: the TLS handshake with {string.Join(", ", cluster.Settings.SeedNodes)} failed. " +
                                    $"Its secret ({ClusterSettings.SecretVariable} or actorpool.cluster.secret) or its actorpool.cluster.tls certificate is not the cluster's.");
            system.Terminate();
        }, TaskScheduler.Default);
        var joining = cluster.Settings.SeedNodes.Count > 0 ? string.Join(", ", cluster.Settings.SeedNodes)
            : $"the members Akka.Discovery ({ClusterMember.DiscoveryMethod(config)}) finds for '{config.GetString("actorpool.cluster.discovery.service-name")}'";
        Console.Out.WriteLine($"ActorPool node {cluster.SelfAddress}: joining {joining} " +
                              $"with role {string.Join(", ", cluster.SelfRoles)} and {settings.Workers} worker(s).");
        var host = system.ActorOf(NodeHost.Props(settings, exit), "actorpool-node");
        // The node carries the Kubernetes API's discovery: its settings are there for discovery-method kubernetes-api.
        if (ClusterMember.DiscoveryMethod(config) == "kubernetes-api")
            Akka.Discovery.KubernetesApi.KubernetesDiscovery.Get(system);
        ClusterMember.Join(system);
        var signals = 0;

        // SIGTERM (a service manager) and Ctrl-C: leave the cluster; the coordinator runs elsewhere what is handed back.
        void Leave(PosixSignalContext context)
        {
            context.Cancel = true;
            Console.Out.WriteLine($"ActorPool node {cluster.SelfAddress}: {context.Signal} received.");
            if (Interlocked.Increment(ref signals) == 1)
                host.Tell(DrainNode.Instance);
            else
                CoordinatedShutdown.Get(system).Run(CoordinatedShutdown.ClrExitReason.Instance); // a second signal: leave now
        }
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Leave);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Leave);

        system.WhenTerminated.Wait();
        // Akka may stop the system itself after the failed handshake: wait a moment for the reason to be seen.
        if (!Volatile.Read(ref joined))
            refused.Wait(TimeSpan.FromMilliseconds(500));
        if (refused.IsCompleted && !Volatile.Read(ref joined))
            exit.Set(WorkerProgram.ExitRejected);
        Console.Out.WriteLine($"ActorPool node {cluster.SelfAddress}: stopped.");
        return exit.Value;
    }

    /// <summary>The node's ActorSystem configuration and settings; <see cref="ArgumentException"/> names what is wrong.</summary>
    internal static (Config Config, string SystemName, NodeSettings Settings) Configure(NodeOptions options)
    {
        var file = ReadConfigFile(options.Config);
        var merged = file.WithFallback(PoolSettings.Reference);
        var actorpool = merged.GetConfig("actorpool");
        var (systemName, coordinatorRole, workerRole, secret) = ClusterSettings.ReadShared(actorpool);

        var workers = options.Workers ?? PoolSettings.Read(() => actorpool.GetInt("node.workers"), "actorpool.node.workers");
        PoolSettings.Require(workers >= 0, options.Workers is null ? "actorpool.node.workers" : "--workers", workers, "must be 0 (one per CPU) or positive");
        if (workers == 0)
            workers = Environment.ProcessorCount;
        var port = options.Port ?? PoolSettings.Read(() => actorpool.GetInt("node.port"), "actorpool.node.port");
        PoolSettings.Require(port is >= 0 and <= 65535, options.Port is null ? "actorpool.node.port" : "--port", port, "must be between 0 and 65535");
        var role = options.Role ?? workerRole;
        PoolSettings.Require(role.Length > 0 && role.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'), "--role", $"\"{role}\"",
            "must be a non-empty name of ASCII letters, digits, '-' and '_'");
        if (options.Hostname is { } host && (host.Length == 0 || host.Any(char.IsWhiteSpace)))
            throw new ArgumentException($"--hostname \"{host}\" is not a host name or IP address.");

        var seeds = options.SeedNodes.SelectMany(s => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
        var fromFile = seeds.Count == 0;
        if (fromFile)
            seeds = PoolSettings.Read(() => merged.GetStringList("akka.cluster.seed-nodes")?.ToList() ?? [], "akka.cluster.seed-nodes");
        if (seeds.Count == 0 && ClusterMember.DiscoveryMethod(merged) is null)
            throw new ArgumentException(
                "No seed nodes: give --seed-nodes akka.tcp://actorpool@HOST:PORT (the coordinator's address), or akka.cluster.seed-nodes in the --config file " +
                "(or set actorpool.cluster.discovery.method, to find the members through Akka.Discovery).");
        foreach (var seed in seeds)
            ParseMemberAddress(seed, fromFile ? "akka.cluster.seed-nodes" : "--seed-nodes", systemName);

        var overrides = ConfigurationFactory.ParseString(
            $"akka.remote.dot-netty.tcp.port = {port}\n" +
            (options.Hostname is { } h ? $"akka.remote.dot-netty.tcp.hostname = \"{h}\"\n" : "") +
            (seeds.Count > 0 ? $"akka.cluster.seed-nodes = [{string.Join(", ", seeds.Select(s => $"\"{s}\""))}]\n" : "") +
            (options.Role is not null ? "akka.cluster.roles = []\n" : ""));
        var config = ClusterMember.Configure(overrides.WithFallback(file), role, coordinatorRole);
        var drain = PoolSettings.Read(() => actorpool.GetTimeSpan("node.drain-timeout"), "actorpool.node.drain-timeout");
        PoolSettings.Require(drain >= TimeSpan.Zero && drain <= TimeSpan.FromHours(24), "actorpool.node.drain-timeout", drain, "must be between 0s and 24h");
        var frame = PoolSettings.Read(() => config.GetByteSize("akka.remote.dot-netty.tcp.maximum-frame-size") ?? 128000, "akka.remote.dot-netty.tcp.maximum-frame-size");
        return (config, systemName, new NodeSettings(workers, secret, coordinatorRole, (int)Math.Min(frame, int.MaxValue), drain));
    }

    /// <summary>A cluster member's address given as <paramref name="name"/>; <see cref="ArgumentException"/> says what is wrong with it.</summary>
    internal static Address ParseMemberAddress(string value, string name, string systemName)
    {
        Address address;
        try
        {
            address = Address.Parse(value);
        }
        catch (Exception e) when (e is UriFormatException or ArgumentException or FormatException)
        {
            throw new ArgumentException($"{name}: '{value}' is not a member address; the form is akka.tcp://{systemName}@HOST:PORT.");
        }
        if (address.Host is null || address.Port is null or 0)
            throw new ArgumentException($"{name}: '{value}' lacks a host or port; the form is akka.tcp://{systemName}@HOST:PORT.");
        if (address.System != systemName)
            throw new ArgumentException(
                $"{name}: '{value}' names the ActorSystem '{address.System}', but members of this cluster are named '{systemName}' " +
                "(actorpool.cluster.system-name): use the same name on the coordinator and every node.");
        return address;
    }

    /// <summary>The --config file's HOCON (empty without one), checked for syntax and unknown actorpool.* keys.</summary>
    internal static Config ReadConfigFile(FileInfo? path)
    {
        if (path is null)
            return Config.Empty;
        string text;
        try
        {
            text = File.ReadAllText(path.FullName);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"--config: cannot read '{path.FullName}': {e.Message}");
        }
        var file = Hocon.Parse(text, $"--config '{path.FullName}'", path.DirectoryName);
        KnownKeys.Check(file, $"--config '{path.FullName}'");
        return file;
    }

    /// <summary>Loads the user's assemblies, and resolves what they reference from their folders.</summary>
    private static void LoadAssemblies(FileInfo[] assemblies)
    {
        var folders = new List<string>();
        foreach (var file in assemblies)
        {
            if (!file.Exists)
                throw new ArgumentException($"--assembly: '{file.FullName}' does not exist.");
            try
            {
                AssemblyLoadContext.Default.LoadFromAssemblyPath(file.FullName);
            }
            catch (Exception e) when (e is BadImageFormatException or FileLoadException)
            {
                throw new ArgumentException($"--assembly: '{file.FullName}' cannot be loaded as a .NET assembly: {e.Message}");
            }
            folders.Add(file.DirectoryName!);
        }
        if (folders.Count == 0)
            return;
        AssemblyLoadContext.Default.Resolving += (context, name) =>
        {
            foreach (var folder in folders)
            {
                var candidate = Path.Combine(folder, name.Name + ".dll");
                if (File.Exists(candidate))
                    return context.LoadFromAssemblyPath(candidate);
            }
            return null;
        };
    }
}
