using Akka.Configuration;

namespace ActorPool.Configuration;

/// <summary>The validated settings of one pool: <c>actorpool.*</c> HOCON overlaid with <see cref="PoolOptions"/>.</summary>
internal sealed record PoolSettings
{
    public static readonly string[] StartMethods = ["spawn", "forkserver", "thread"];

    /// <summary>
    /// Workers the pool expects: its spawned workers, plus <see cref="ClusterSettings.MinWorkers"/> node workers in a
    /// cluster pool (at least 1). Sizes chunks and paired batches, and is what <c>WaitForWorkersAsync</c> waits for.
    /// </summary>
    public required int Processes { get; init; }

    /// <summary>Worker processes the pool starts itself (with its start method): <see cref="Processes"/> unless clustered.</summary>
    public required int LocalWorkers { get; init; }

    /// <summary>The cluster pool's settings (<c>actorpool.cluster</c>); null when it is off.</summary>
    public ClusterSettings? Cluster { get; init; }
    public required StartMethodKind Method { get; init; }

    /// <summary>The start method's name, as status and messages show it.</summary>
    public string StartMethod => Method.Name();
    public required int MaxTaskRetries { get; init; }
    public required int MaxTasksPerChild { get; init; }
    public required int MaxWindow { get; init; }
    public required int MaxChunksInFlightPerCall { get; init; }

    /// <summary>The bytes of arguments and results a lazy call (imap) holds at most (one chunk always goes).</summary>
    public required long MaxBytesInFlightPerCall { get; init; }
    public required bool DataLink { get; init; }

    /// <summary>Default time limits of each task in milliseconds (0: none).</summary>
    public int SoftTimeoutMs { get; init; }
    public int HardTimeoutMs { get; init; }

    /// <summary>Assemblies forkserver spares load before they are taken (actorpool.forkserver.preload).</summary>
    public IReadOnlyList<string> Preload { get; init; } = [];
    public required TimeSpan WorkerStartupTimeout { get; init; }

    /// <summary>A worker on its data link that answers no ping for this long is killed (its process is stopped or frozen).</summary>
    public TimeSpan WorkerUnresponsiveTimeout { get; init; } = TimeSpan.FromSeconds(20);
    public required int MaxConsecutiveStartFailures { get; init; }
    public required TimeSpan WorkerShutdownTimeout { get; init; }
    public required bool ForwardWorkerOutput { get; init; }

    /// <summary>actorpool.progress-interval: the least time between two progress reports of a call.</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>akka.remote.dot-netty.tcp.maximum-frame-size: the largest message remoting carries.</summary>
    public required int MaxFrameSize { get; init; }

    /// <summary>The largest serialized chunk of arguments or results: the frame size less room for the envelope.</summary>
    public int MaxPayloadBytes => MaxFrameSize - 64 * 1024;

    /// <summary>The embedded reference.conf, parsed on first use (about 8 ms: a spawned worker that starts no ActorSystem never does).</summary>
    public static Config Reference => ReferenceConfig.Value;

    private static class ReferenceConfig
    {
        public static readonly Config Value = LoadReference();
    }

    private static Config LoadReference()
    {
        using var stream = typeof(PoolSettings).Assembly.GetManifestResourceStream("ActorPool.reference.conf")
            ?? throw new InvalidOperationException("ActorPool.reference.conf is not embedded in the ActorPool assembly.");
        using var reader = new StreamReader(stream);
        return ConfigurationFactory.ParseString(reader.ReadToEnd());
    }

    /// <summary>Parses user HOCON, naming the problem when it is malformed.</summary>
    public static Config ParseUserConfig(string? hocon, string origin)
    {
        if (string.IsNullOrWhiteSpace(hocon))
            return Config.Empty;
        var config = Hocon.Parse(hocon, origin);
        KnownKeys.Check(config, origin);
        return config;
    }

    public static PoolSettings Create(Config config, PoolOptions options)
    {
        var c = config.GetConfig("actorpool") ?? throw new ArgumentException("The configuration has no 'actorpool' section.");

        var cluster = ClusterSettings.Create(c);
        int processes, local;
        if (cluster is null)
        {
            processes = options.Processes ?? Read(() => c.GetInt("processes"), "actorpool.processes");
            if (options.Processes is null && processes == 0)
                processes = Environment.ProcessorCount;
            Require(processes >= 1, options.Processes is null ? "actorpool.processes" : "Processes", processes, "must be at least 1 (0 in HOCON means one per CPU)");
            local = processes;
        }
        else
        {
            // A cluster pool's own processes are actorpool.cluster.local-workers (Processes, when given, sets them).
            local = options.Processes ?? cluster.LocalWorkers;
            Require(local >= 0, options.Processes is null ? "actorpool.cluster.local-workers" : "Processes", local, "must be 0 (node workers only) or positive in a cluster pool");
            processes = local + cluster.MinWorkers;
            Require(processes >= 1, "actorpool.cluster.min-workers", cluster.MinWorkers,
                "must be at least 1 when the pool starts no local workers (actorpool.cluster.local-workers = 0): the pool needs a worker to wait for");
        }

        var startMethod = ParseStartMethod(options.StartMethod ?? Read(() => c.GetString("start-method"), "actorpool.start-method"));

        var retries = options.MaxTaskRetries ?? Read(() => c.GetInt("max-task-retries"), "actorpool.max-task-retries");
        Require(retries is >= 0 and <= 100, options.MaxTaskRetries is null ? "actorpool.max-task-retries" : "MaxTaskRetries", retries, "must be between 0 and 100");

        int maxTasks;
        if (options.MaxTasksPerChild is { } m)
        {
            Require(m >= 1, "MaxTasksPerChild", m, "must be a positive number, or null for no limit (as Python's maxtasksperchild=None)");
            maxTasks = m;
        }
        else
        {
            maxTasks = Read(() => c.GetInt("max-tasks-per-child"), "actorpool.max-tasks-per-child");
            Require(maxTasks >= 0, "actorpool.max-tasks-per-child", maxTasks, "must be 0 (never) or positive");
        }

        var window = Read(() => c.GetInt("dispatch.max-window"), "actorpool.dispatch.max-window");
        Require(window is >= 1 and <= 1024, "actorpool.dispatch.max-window", window, "must be between 1 and 1024");

        var inFlight = Read(() => c.GetInt("dispatch.max-chunks-in-flight-per-call"), "actorpool.dispatch.max-chunks-in-flight-per-call");
        Require(inFlight >= 0, "actorpool.dispatch.max-chunks-in-flight-per-call", inFlight, "must be 0 (automatic) or positive");
        if (inFlight == 0)
            inFlight = Math.Max(64, 2 * processes * window);

        var inFlightBytes = Read(() => c.GetByteSize("dispatch.max-bytes-in-flight-per-call") ?? 0, "actorpool.dispatch.max-bytes-in-flight-per-call");
        Require(inFlightBytes >= 1 << 16, "actorpool.dispatch.max-bytes-in-flight-per-call", inFlightBytes, "must be at least 64KiB");

        var dataLink = Read(() => c.GetBoolean("dispatch.data-link"), "actorpool.dispatch.data-link");

        int soft, hard;
        if (options.TaskTimeouts is { } timeouts)
        {
            (soft, hard) = timeouts.ToMilliseconds(nameof(PoolOptions.TaskTimeouts));
        }
        else
        {
            soft = Milliseconds(Read(() => c.GetTimeSpan("task.soft-timeout"), "actorpool.task.soft-timeout"), "actorpool.task.soft-timeout");
            hard = Milliseconds(Read(() => c.GetTimeSpan("task.hard-timeout"), "actorpool.task.hard-timeout"), "actorpool.task.hard-timeout");
        }
        CheckHardLimit(startMethod, hard, options.TaskTimeouts is null ? "actorpool.task.hard-timeout" : nameof(PoolOptions.TaskTimeouts));
        var preload = Read(() => c.GetStringList("forkserver.preload") ?? [], "actorpool.forkserver.preload");
        foreach (var name in preload)
            Require(!string.IsNullOrWhiteSpace(name) && !name.StartsWith('-'), "actorpool.forkserver.preload", name, "must list assembly names");

        var startup = Read(() => c.GetTimeSpan("worker.startup-timeout"), "actorpool.worker.startup-timeout");
        Require(startup >= TimeSpan.FromSeconds(1) && startup <= TimeSpan.FromMinutes(10), "actorpool.worker.startup-timeout", startup, "must be between 1s and 10m");

        var failures = Read(() => c.GetInt("worker.max-consecutive-start-failures"), "actorpool.worker.max-consecutive-start-failures");
        Require(failures is >= 1 and <= 100, "actorpool.worker.max-consecutive-start-failures", failures, "must be between 1 and 100");

        var shutdown = Read(() => c.GetTimeSpan("worker.shutdown-timeout"), "actorpool.worker.shutdown-timeout");
        Require(shutdown >= TimeSpan.Zero && shutdown <= TimeSpan.FromMinutes(10), "actorpool.worker.shutdown-timeout", shutdown, "must be between 0s and 10m");

        var unresponsive = Read(() => c.GetTimeSpan("worker.unresponsive-timeout"), "actorpool.worker.unresponsive-timeout");
        Require(unresponsive >= TimeSpan.FromSeconds(2) && unresponsive <= TimeSpan.FromMinutes(10), "actorpool.worker.unresponsive-timeout", unresponsive, "must be between 2s and 10m");

        var progress = Read(() => c.GetTimeSpan("progress-interval"), "actorpool.progress-interval");
        Require(progress >= TimeSpan.FromMilliseconds(10) && progress <= TimeSpan.FromMinutes(1), "actorpool.progress-interval", progress, "must be between 10ms and 1m");

        var frame = Read(() => config.GetByteSize("akka.remote.dot-netty.tcp.maximum-frame-size") ?? 128000, "akka.remote.dot-netty.tcp.maximum-frame-size");
        Require(frame is >= 256 * 1024 and <= int.MaxValue, "akka.remote.dot-netty.tcp.maximum-frame-size", frame, "must be between 256 KiB and 2 GiB");

        return new PoolSettings
        {
            MaxFrameSize = (int)frame,
            Processes = processes,
            LocalWorkers = local,
            Cluster = cluster,
            Method = startMethod,
            MaxTaskRetries = retries,
            MaxTasksPerChild = maxTasks,
            MaxWindow = window,
            MaxChunksInFlightPerCall = inFlight,
            MaxBytesInFlightPerCall = inFlightBytes,
            DataLink = dataLink,
            SoftTimeoutMs = soft,
            HardTimeoutMs = hard,
            Preload = preload.ToArray(),
            WorkerStartupTimeout = startup,
            MaxConsecutiveStartFailures = failures,
            WorkerShutdownTimeout = shutdown,
            WorkerUnresponsiveTimeout = unresponsive,
            ForwardWorkerOutput = options.ForwardWorkerOutput ?? true,
            ProgressInterval = progress,
        };
    }

    /// <summary>reference.conf's <c>actorpool.forkserver.preload</c> (what spares for process objects load).</summary>
    public static IReadOnlyList<string> DefaultPreload => Reference.GetStringList("actorpool.forkserver.preload")?.ToArray() ?? [];

    /// <summary>reference.conf's <c>actorpool.start-method</c>.</summary>
    public static string DefaultStartMethod => Reference.GetString("actorpool.start-method") ?? "spawn";

    public static void ValidateStartMethod(string name) => ParseStartMethod(name);

    /// <summary>The start method a name means.</summary>
    /// <exception cref="ArgumentException">An unknown name (the message lists the valid ones), or <c>fork</c> (it says why and what to use).</exception>
    public static StartMethodKind ParseStartMethod(string name)
    {
        if (name == "fork")
            throw new ArgumentException(
                "Start method 'fork' is not supported: a running .NET runtime cannot be forked safely (its threads, " +
                "including the garbage collector's and Akka's, would not exist in the child, which can deadlock; " +
                "Python warns of the same with threads). Use 'spawn', 'forkserver' for workers that start in milliseconds, or 'thread' for workers inside this process.", nameof(PoolOptions.StartMethod));
        return name switch
        {
            "spawn" => StartMethodKind.Spawn,
            "forkserver" => StartMethodKind.Forkserver,
            "thread" => StartMethodKind.Thread,
            _ => throw new ArgumentException(
                $"Unknown start method '{name}'. Valid start methods: {string.Join(", ", StartMethods)}.", nameof(PoolOptions.StartMethod)),
        };
    }

    /// <summary>A hard time limit stops a worker: thread workers cannot be stopped, so it is refused for them.</summary>
    public static void CheckHardLimit(StartMethodKind startMethod, int hardMs, string name)
    {
        if (hardMs > 0 && startMethod == StartMethodKind.Thread)
            throw new ArgumentException(
                "A hard time limit stops the worker whose task overran; thread workers share this process, so their task thread " +
                "would only be abandoned. Use the soft limit (a CancellationToken) with the thread start method, or spawn/forkserver.", name);
    }

    private static int Milliseconds(TimeSpan value, string key)
    {
        Require(value >= TimeSpan.Zero && value <= TimeSpan.FromDays(24), key, value, "must be 0s (no limit) or a duration up to 24 days");
        return (int)Math.Ceiling(value.TotalMilliseconds);
    }

    internal static T Read<T>(Func<T> read, string key)
    {
        try
        {
            return read();
        }
        catch (Exception e)
        {
            throw new ArgumentException($"{key} has an invalid value: {e.Message}", key, e);
        }
    }

    internal static void Require(bool ok, string name, object value, string rule)
    {
        if (!ok)
            throw new ArgumentOutOfRangeException(name, value, $"{name} = {value} is invalid: it {rule}.");
    }
}
