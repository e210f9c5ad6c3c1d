using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using ActorPool.Calls;
using ActorPool.Configuration;
using ActorPool.Coordination;
using ActorPool.Execution;
using ActorPool.Launching;
using ActorPool.Logging;
using ActorPool.Protocol;
using Akka.Actor;
using Microsoft.Extensions.Logging;

namespace ActorPool;

/// <summary>Lifecycle of a <see cref="Pool"/>: <c>Running → Closed → Terminated</c>, as Python's Pool.</summary>
public enum PoolState
{
    /// <summary>Accepts calls.</summary>
    Running,

    /// <summary><see cref="Pool.Close"/> was called: running calls finish, new calls are refused.</summary>
    Closed,

    /// <summary>Workers have exited (after <see cref="Pool.Join"/>, <see cref="Pool.Terminate"/> or disposal).</summary>
    Terminated,
}

/// <summary>
/// A pool of worker processes, the .NET counterpart of Python's <c>multiprocessing.Pool</c>. A coordinator actor
/// in this process dispatches tasks round-robin, with a small per-worker window, to worker actors that each live
/// in their own OS process, connected through Akka.Remote on 127.0.0.1. Functions travel by reference (static
/// methods, lambdas, closures whose captured values serialize); a worker that dies has its tasks retried.
/// </summary>
/// <remarks>
/// <para><c>await using var pool = new Pool(4);</c> drains on disposal: running calls finish, then workers exit.
/// Python's <c>with Pool() as p:</c> calls <c>terminate()</c> instead; call <see cref="Terminate"/> for that.</para>
/// <para>All operations are thread-safe; several calls may run at once and share the workers first come, first served.</para>
/// </remarks>
public sealed class Pool : IAsyncDisposable, IDisposable
{
    private readonly PoolSettings _settings;
    private readonly ActorSystem _system;
    private readonly IActorRef _coordinator;
    private readonly IWorkerLauncher _launcher;
    private readonly ILoggerFactory? _ownedLoggerFactory;
    private readonly string? _spillFolder;
    private readonly DataLinkListener? _dataLinks;
    private readonly object _gate = new();
    private readonly CancellationTokenSource _stopped = new();
    private volatile PoolState _state = PoolState.Running;
    private Task? _shutdown;

    /// <summary>Starts a pool of <paramref name="processes"/> worker processes (Python's <c>Pool(processes)</c>).</summary>
    public Pool(int processes) : this(new PoolOptions { Processes = processes })
    {
    }

    /// <summary>
    /// Starts a pool. Returns once the pool's ActorSystem runs; workers start in the background and calls made
    /// meanwhile wait for them (<see cref="WaitForWorkersAsync"/> waits explicitly).
    /// </summary>
    /// <exception cref="ArgumentException">An option or the HOCON is invalid; the message names it.</exception>
    public Pool(PoolOptions? options = null)
    {
        options ??= new PoolOptions();
        var userConfig = PoolSettings.ParseUserConfig(options.Config, "PoolOptions.Config");
        bool UserSets(string path) => !userConfig.IsEmpty && userConfig.HasPath(path);
        if (options.StartMethod is null && StartMethods.Explicit is { } programWide && !UserSets("actorpool.start-method"))
            options = options with { StartMethod = programWide };
        // In an application's ActorSystem, its HOCON may carry actorpool.* keys too (PoolOptions.Config wins).
        var config = userConfig.WithFallback(PoolSettings.Reference);
        if (options.ActorSystem?.Settings.Config is { } appConfig && appConfig.HasPath("actorpool"))
        {
            var appKeys = appConfig.GetValue("actorpool").AtKey("actorpool");
            KnownKeys.Check(appKeys, $"ActorSystem '{options.ActorSystem.Name}''s configuration");
            config = userConfig.WithFallback(appKeys).WithFallback(PoolSettings.Reference);
        }
        _settings = PoolSettings.Create(config, options);
        Payload.TakeSeenOwners();
        var initializer = PrepareInitializer(options);
        var thread = _settings.Method == StartMethodKind.Thread;
        // A spawned pool's processes need nothing of its ActorSystem until they are sent their settings: they start now,
        // while it starts (a new program's first pool: about 0.6 s of ActorSystem start-up, measured).
        using var early = _settings.Method == StartMethodKind.Spawn && _settings.Cluster is null ? new ProcessLauncher.Early(_settings.Processes) : null;

        // Thread pools without Akka settings or a logger of their own share one local ActorSystem, as threads share
        // a process: a new one costs little more than its coordinator.
        var cluster = _settings.Cluster;
        var sharesSystem = cluster is null && options.ActorSystem is null && thread && options.LoggerFactory is null && !UserSets("akka");
        _ownsSystem = options.ActorSystem is null && !sharesSystem;
        ILoggerFactory loggerFactory;
        // What the pool's worker processes speak to it: its ActorSystem's TLS identity (none in an application's own
        // ActorSystem: that one's remoting is the application's).
        Hosting.TlsIdentity? workerTls = null;
        if (sharesSystem)
        {
            (_system, loggerFactory) = SharedThreadSystem.Value;
        }
        else
        {
            _ownedLoggerFactory = options.LoggerFactory is null ? ConsoleLogging.CreateDefault() : null;
            loggerFactory = options.LoggerFactory ?? _ownedLoggerFactory!;
            if (options.ActorSystem is { } given)
            {
                CheckGivenSystem(given, _settings.Method, cluster);
                Hosting.PoolSerialization.Register(given);
                _system = given;
            }
            else if (cluster is not null)
            {
                config = Hosting.ClusterMember.Configure(userConfig, cluster.CoordinatorRole, cluster.CoordinatorRole);
                _system = Hosting.ClusterMember.Start(cluster.SystemName, config, loggerFactory);
                workerTls = Hosting.ClusterTls.Identity(config.GetConfig("actorpool"));
                Hosting.ClusterMember.Join(_system);
            }
            else
            {
                if (thread && !UserSets("akka.actor.provider"))
                {
                    config = LocalProvider.WithFallback(config); // workers in this process: no remoting to start
                    _system = PoolActorSystem.Create("actorpool", config, loggerFactory);
                }
                else
                {
                    // Only processes of this program's tree hold the key: nobody else's connection gets as far as Akka.
                    var (tls, setup) = Hosting.ProcessTrust.Transport();
                    _system = PoolActorSystem.Create("actorpool", tls.WithFallback(config), loggerFactory, setup);
                    workerTls = Hosting.ProcessTrust.Identity;
                }
            }
        }
        _system.WhenTerminated.ContinueWith(static (_, cts) => ((CancellationTokenSource)cts!).Cancel(), _stopped, TaskScheduler.Default);

        var secret = Convert.ToHexString(RandomNumberGenerator.GetBytes(32));
        // Node workers may be on other machines: a cluster pool sends everything inline, through Akka.Remote.
        _spillFolder = cluster is null ? Spill.CreateFolder() : null;
        var address = ((ExtendedActorSystem)_system).Provider.DefaultAddress;
        // Nodes find a cluster pool's coordinator by its well-known name.
        var coordinatorName = _ownsSystem || cluster is not null ? Coordinator.Name : $"{Coordinator.Name}-{Interlocked.Increment(ref _sharedPools)}";
        var coordinatorPath = $"{address}/user/{coordinatorName}";
        CoordinatorPath = coordinatorPath;
        _launcher = thread
            ? new ThreadLauncher(_system, coordinatorName, coordinatorPath, secret, _settings.MaxFrameSize, _spillFolder)
            : new ProcessLauncher(coordinatorPath, secret, _settings.ForwardWorkerOutput, _settings.MaxFrameSize, _spillFolder, _settings.DataLink,
                _settings.Method == StartMethodKind.Forkserver ? ForkServer.For(_settings.Preload, _settings.Processes, _settings.MaxFrameSize) : null,
                loggerFactory.CreateLogger("ActorPool.Launcher"), workerTls, early?.Take());
        try
        {
            WarmHandleHosts(); // the initializer's queues and locks: its workers connect to them as they start
            _coordinator = _system.ActorOf(Coordinator.Props(_settings, _launcher, secret, initializer), coordinatorName);
        }
        catch (InvalidActorNameException) when (cluster is not null)
        {
            _launcher.Dispose();
            throw new ArgumentException(
                $"ActorSystem '{_system.Name}' already runs a cluster pool. Worker nodes find a pool's coordinator by its name " +
                $"('{Coordinator.Name}'), so an ActorSystem hosts one cluster pool: reuse it, or dispose it first.", nameof(PoolOptions.ActorSystem));
        }
        _dataLinks = _spillFolder is null || !_settings.DataLink || thread ? null : DataLinkListener.Start(_spillFolder, secret, _coordinator, _settings.ForwardWorkerOutput);
        _ = Task.Run(() =>
        {
            try { Payload.WarmUp(); } catch (Exception) { /* only a speed-up */ }
        });
    }

    private static void CheckGivenSystem(ActorSystem given, StartMethodKind startMethod, ClusterSettings? cluster)
    {
        if (given.WhenTerminated.IsCompleted)
            throw new ArgumentException("PoolOptions.ActorSystem has been terminated.", nameof(PoolOptions.ActorSystem));
        if (cluster is not null)
        {
            if (((ExtendedActorSystem)given).Provider is not Akka.Cluster.ClusterActorRefProvider)
                throw new ArgumentException(
                    $"actorpool.cluster.enabled is on, but PoolOptions.ActorSystem '{given.Name}' is not a cluster member: " +
                    "configure akka.actor.provider = cluster (and its seed nodes), or turn actorpool.cluster.enabled off.", nameof(PoolOptions.ActorSystem));
            if (!Akka.Cluster.Cluster.Get(given).SelfRoles.Contains(cluster.CoordinatorRole))
                throw new ArgumentException(
                    $"PoolOptions.ActorSystem '{given.Name}' lacks the role '{cluster.CoordinatorRole}' that worker nodes look for: " +
                    "add it to akka.cluster.roles (or set actorpool.cluster.coordinator-role to one of its roles).", nameof(PoolOptions.ActorSystem));
            return;
        }
        if (startMethod != StartMethodKind.Thread && ((ExtendedActorSystem)given).Provider is not Akka.Remote.IRemoteActorRefProvider)
            throw new ArgumentException(
                $"PoolOptions.ActorSystem '{given.Name}' has no remoting (akka.actor.provider is local), so {startMethod.Name()} workers " +
                "in other processes cannot reach it: configure akka.actor.provider = remote (or cluster), or use StartMethod \"thread\".",
                nameof(PoolOptions.ActorSystem));
    }

    private static readonly Akka.Configuration.Config LocalProvider = Akka.Configuration.ConfigurationFactory.ParseString("akka.actor.provider = local");

    /// <summary>The local ActorSystem thread pools share (see the constructor); it lasts as long as the program.</summary>
    private static readonly Lazy<(ActorSystem System, ILoggerFactory Logging)> SharedThreadSystem = new(() =>
    {
        var logging = ConsoleLogging.CreateDefault();
        return (PoolActorSystem.Create("actorpool-threads", LocalProvider.WithFallback(PoolSettings.Reference), logging), logging);
    });

    private static int _sharedPools;
    private readonly bool _ownsSystem;

    /// <summary>
    /// Number of workers the pool keeps running: its worker processes; in a cluster pool, its local workers plus
    /// <c>actorpool.cluster.min-workers</c> (node workers may be more).
    /// </summary>
    public int Processes => _settings.Processes;

    /// <summary>The coordinator's view of the pool right now (tests look inside).</summary>
    internal Task<PoolCounts> CountsAsync() => _coordinator.AskLocal<PoolCounts>(GetCounts.Instance, TimeSpan.FromSeconds(10));

    /// <summary>
    /// What the pool is doing right now: per worker its process id, host, start method, state, the task it runs and for
    /// how long, tasks done and restarts; per running call its progress. <c>ToString()</c> prints it as a table. Answers
    /// while calls run (a stuck map shows which worker holds which task); Python's Pool has no counterpart.
    /// </summary>
    /// <exception cref="InvalidOperationException">The pool has been terminated.</exception>
    public async Task<PoolStatus> GetStatusAsync(CancellationToken cancellationToken = default)
    {
        if (_state == PoolState.Terminated)
            throw new InvalidOperationException("Pool not running (it is Terminated): it has no workers to report.");
        var status = await _coordinator.AskLocal<PoolStatus>(GetPoolStatus.Instance, TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
        return status with { State = _state };
    }

    /// <summary>Blocking form of <see cref="GetStatusAsync"/>.</summary>
    public PoolStatus GetStatus() => GetStatusAsync().GetAwaiter().GetResult();

    /// <summary>Where large arguments and results go as files while in flight (tests look inside).</summary>
    internal string? SpillFolder => _spillFolder;

    /// <summary>The coordinator's full address, as workers are told it (tests use it to knock without the secret).</summary>
    internal string CoordinatorPath { get; }

    /// <summary>The coordinator actor.</summary>
    internal IActorRef CoordinatorRef => _coordinator;

    /// <summary>The ActorSystem the coordinator runs in (tests look at its cluster).</summary>
    internal ActorSystem System => _system;

    /// <summary>Where the pool is in its lifecycle.</summary>
    public PoolState State => _state;

    /// <summary>
    /// Waits until every worker process has started, registered and run the initializer: the pool is warm.
    /// </summary>
    /// <exception cref="PoolBrokenException">Workers cannot start; the message carries their error output.</exception>
    public async Task WaitForWorkersAsync(CancellationToken cancellationToken = default)
    {
        var status = await _coordinator.AskLocal<PoolCounts>(WaitForWorkers.Instance, null, cancellationToken).ConfigureAwait(false);
        if (status.BrokenReason is not null)
            throw new PoolBrokenException(status.BrokenReason);
    }

    // ------------------------------------------------------------------ map

    /// <summary>
    /// Applies <paramref name="function"/> to every input in parallel and returns the results in input order
    /// (Python's <c>map</c> / <c>map_async</c>). The input is read in full first; chunk size defaults to Python's
    /// heuristic (inputs / (4 × processes), rounded up).
    /// </summary>
    /// <exception cref="NotSendableException">The function, a captured value or an argument cannot be sent; nothing was dispatched.</exception>
    /// <exception cref="TaskFailedException">A task raised; the first failing input's error (in input order).</exception>
    /// <exception cref="WorkerLostException">A task's worker died more often than the retry limit.</exception>
    /// <exception cref="TaskTimeoutException">A task ran past its hard limit (<paramref name="timeouts"/>, else the pool's).</exception>
    /// <remarks><paramref name="progress"/>, when given, gets the call's <see cref="PoolProgress"/>, throttled to <c>actorpool.progress-interval</c>.</remarks>
    public Task<IReadOnlyList<TResult>> MapAsync<T, TResult>(Func<T, TResult> function, IEnumerable<T> items,
        int? chunkSize = null, TaskTimeouts? timeouts = null, IProgress<PoolProgress>? progress = null, CancellationToken cancellationToken = default) =>
        MapCore<Func<T, TResult>, T, TResult>(function, static f => new MapFunction<T, TResult>(f), items, chunkSize, timeouts, progress, cancellationToken);

    /// <summary>
    /// <see cref="MapAsync{T,TResult}(Func{T,TResult},IEnumerable{T},int?,TaskTimeouts?,IProgress{PoolProgress}?,CancellationToken)"/> with a
    /// function that takes its task's <see cref="CancellationToken"/>: it fires at the soft time limit, and when the call
    /// is cancelled (<paramref name="cancellationToken"/>), in the worker process.
    /// </summary>
    /// <exception cref="TaskTimeoutException">A task ran past its soft limit and stopped, or past its hard limit.</exception>
    public Task<IReadOnlyList<TResult>> MapAsync<T, TResult>(Func<T, CancellationToken, TResult> function, IEnumerable<T> items,
        int? chunkSize = null, TaskTimeouts? timeouts = null, IProgress<PoolProgress>? progress = null, CancellationToken cancellationToken = default) =>
        MapCore<Func<T, CancellationToken, TResult>, T, TResult>(function, static f => new CancellableMapFunction<T, TResult>(f), items, chunkSize, timeouts, progress, cancellationToken);

    private async Task<IReadOnlyList<TResult>> MapCore<TDelegate, T, TResult>(TDelegate function, Func<TDelegate, TaskFunction> wrap, IEnumerable<T> items,
        int? chunkSize, TaskTimeouts? timeouts, IProgress<PoolProgress>? progress, CancellationToken cancellationToken) where TDelegate : Delegate
    {
        CheckRunning();
        ArgumentNullException.ThrowIfNull(function);
        ArgumentNullException.ThrowIfNull(items);
        var limits = Limits(timeouts);
        var input = items as IReadOnlyList<T> ?? items.ToList();
        var size = chunkSize ?? DefaultChunkSize(input.Count);
        CheckChunkSize(size);
        var fn = FunctionCache.Get(function, wrap, "task function");
        WarmHandleHosts();
        var chunks = new List<PreparedChunk>(); // every argument serialized before anything is dispatched
        try
        {
            chunks.AddRange(PrepareChunks(input, size));
        }
        catch
        {
            foreach (var c in chunks)
                Spill.Delete(c.Items);
            throw;
        }
        var results = new List<TResult>(input.Count);
        using var reporter = CallProgress.For(progress, input.Count, _settings.ProgressInterval);
        await foreach (var segment in PoolCall<TResult>.RunChunks(_coordinator, fn, chunks, _settings.MaxChunksInFlightPerCall, ordered: true, _stopped.Token, cancellationToken,
                           limits: limits, progress: reporter, totalTasks: input.Count).ConfigureAwait(false))
            results.AddRange(segment);
        return results;
    }

    /// <summary>Blocking form of <see cref="MapAsync{T,TResult}(Func{T,TResult},IEnumerable{T},int?,TaskTimeouts?,IProgress{PoolProgress}?,CancellationToken)"/>, for scripts.</summary>
    public IReadOnlyList<TResult> Map<T, TResult>(Func<T, TResult> function, IEnumerable<T> items, int? chunkSize = null) =>
        MapAsync(function, items, chunkSize).GetAwaiter().GetResult();

    /// <summary>
    /// <c>map</c> of a function that returns nothing (in Python, one that returns <c>None</c>: <c>p.map(mp_worker, data)</c>
    /// ports as <c>p.Map(MpWorker, data)</c>): completes when every task has run, in parallel as
    /// <see cref="MapAsync{T,TResult}(Func{T,TResult},IEnumerable{T},int?,TaskTimeouts?,IProgress{PoolProgress}?,CancellationToken)"/>
    /// does, with the same errors.
    /// </summary>
    public Task MapAsync<T>(Action<T> function, IEnumerable<T> items,
        int? chunkSize = null, TaskTimeouts? timeouts = null, IProgress<PoolProgress>? progress = null, CancellationToken cancellationToken = default) =>
        MapCore<Action<T>, T, bool>(function, static f => new ActionFunction<T>(f), items, chunkSize, timeouts, progress, cancellationToken);

    /// <summary>Blocking form of <see cref="MapAsync{T}(Action{T},IEnumerable{T},int?,TaskTimeouts?,IProgress{PoolProgress}?,CancellationToken)"/>.</summary>
    public void Map<T>(Action<T> function, IEnumerable<T> items, int? chunkSize = null) =>
        MapAsync(function, items, chunkSize).GetAwaiter().GetResult();

    /// <summary>Python's <c>starmap</c>: each input is a tuple of the function's arguments.</summary>
    public Task<IReadOnlyList<TResult>> StarMapAsync<T1, T2, TResult>(Func<T1, T2, TResult> function, IEnumerable<(T1, T2)> items,
        int? chunkSize = null, IProgress<PoolProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(function);
        FunctionCache.Check(function, "task function");
        return MapAsync<(T1, T2), TResult>(t => function(t.Item1, t.Item2), items, chunkSize, progress: progress, cancellationToken: cancellationToken);
    }

    /// <summary>Python's <c>starmap</c> for three-argument functions.</summary>
    public Task<IReadOnlyList<TResult>> StarMapAsync<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> function, IEnumerable<(T1, T2, T3)> items,
        int? chunkSize = null, IProgress<PoolProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(function);
        FunctionCache.Check(function, "task function");
        return MapAsync<(T1, T2, T3), TResult>(t => function(t.Item1, t.Item2, t.Item3), items, chunkSize, progress: progress, cancellationToken: cancellationToken);
    }

    /// <summary>Blocking form of <see cref="StarMapAsync{T1,T2,TResult}"/>.</summary>
    public IReadOnlyList<TResult> StarMap<T1, T2, TResult>(Func<T1, T2, TResult> function, IEnumerable<(T1, T2)> items, int? chunkSize = null) =>
        StarMapAsync(function, items, chunkSize).GetAwaiter().GetResult();

    /// <summary>Blocking form of <see cref="StarMapAsync{T1,T2,T3,TResult}"/>.</summary>
    public IReadOnlyList<TResult> StarMap<T1, T2, T3, TResult>(Func<T1, T2, T3, TResult> function, IEnumerable<(T1, T2, T3)> items, int? chunkSize = null) =>
        StarMapAsync(function, items, chunkSize).GetAwaiter().GetResult();

    // ------------------------------------------------------------------ paired batches

    /// <summary>
    /// Runs the inputs <paramref name="batchSize"/> at a time (2: the seed program's pairs): the items of a batch
    /// start together, each on its own worker, and every one of them finishes before the next batch starts.
    /// Results come back in input order. The pool is reused from batch to batch. A worker lost in the middle of a
    /// batch has its item retried on another worker, and the barrier still holds.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchSize"/> is below 1 or above <see cref="Processes"/>.</exception>
    /// <exception cref="NotSendableException">The function or an argument cannot be sent; nothing was dispatched.</exception>
    /// <exception cref="TaskFailedException">A task raised; the batch's running items finish, later batches do not start.</exception>
    /// <exception cref="WorkerLostException">An item's worker died more often than the retry limit.</exception>
    public async Task<IReadOnlyList<TResult>> MapPairedAsync<T, TResult>(Func<T, TResult> function, IEnumerable<T> items,
        int batchSize = 2, IProgress<PoolProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        CheckRunning();
        ArgumentNullException.ThrowIfNull(function);
        ArgumentNullException.ThrowIfNull(items);
        if (batchSize < 1 || batchSize > _settings.Processes)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize,
                batchSize < 1
                    ? "batchSize must be at least 1."
                    : $"A batch of {batchSize} runs its items at the same time on {batchSize} distinct workers, but this pool has " +
                      $"{_settings.Processes}: use a batchSize of at most {_settings.Processes}, or a pool with more processes.");
        var fn = FunctionCache.Get(function, static f => new MapFunction<T, TResult>(f), "task function");
        WarmHandleHosts();
        var input = items as IReadOnlyList<T> ?? items.ToList();
        var batches = new List<PreparedChunk[]>((input.Count + batchSize - 1) / batchSize);
        var results = new List<TResult>(input.Count);
        var started = 0;
        using var reporter = CallProgress.For(progress, input.Count, _settings.ProgressInterval);
        using var span = Diagnostics.PoolTracing.StartCall("map_paired", null, input.Count); // the batches' spans are its children
        try
        {
            for (var first = 0; first < input.Count; first += batchSize) // every argument serialized before anything runs
            {
                var batch = new PreparedChunk[Math.Min(batchSize, input.Count - first)];
                for (var j = 0; j < batch.Length; j++)
                    batch[j] = Prepare(j, first + j, [input[first + j]]);
                batches.Add(batch);
            }
            foreach (var batch in batches)
            {
                started++;
                await foreach (var segment in PoolCall<TResult>.RunChunks(_coordinator, fn, batch, batch.Length, ordered: true, _stopped.Token,
                                   cancellationToken, gangSize: batch.Length, progress: reporter, totalTasks: batch.Length, operation: "map_paired batch").ConfigureAwait(false))
                    results.AddRange(segment);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Diagnostics.PoolTracing.Fail(span, e);
            throw;
        }
        finally
        {
            foreach (var batch in batches.Skip(started))
                foreach (var chunk in batch)
                    Spill.Delete(chunk.Items);
        }
        return results;
    }

    /// <summary>Blocking form of <see cref="MapPairedAsync{T,TResult}"/>.</summary>
    public IReadOnlyList<TResult> MapPaired<T, TResult>(Func<T, TResult> function, IEnumerable<T> items, int batchSize = 2) =>
        MapPairedAsync(function, items, batchSize).GetAwaiter().GetResult();

    // ------------------------------------------------------------------ imap

    /// <summary>
    /// Lazy, ordered map (Python's <c>imap</c>): reads the input only as results are consumed, with a bounded
    /// number of chunks in flight (<c>actorpool.dispatch.max-chunks-in-flight-per-call</c>), so an endless input
    /// works. Yields results up to a failing input, then throws its error. Default chunk size 1, as Python's.
    /// </summary>
    /// <remarks><paramref name="progress"/>, when given, gets the call's <see cref="PoolProgress"/> (its total is known at once for a
    /// collection, else once the input is read to its end), throttled to <c>actorpool.progress-interval</c>.</remarks>
    public IAsyncEnumerable<TResult> ImapAsync<T, TResult>(Func<T, TResult> function, IEnumerable<T> items,
        int chunkSize = 1, TaskTimeouts? timeouts = null, IProgress<PoolProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Imap<Func<T, TResult>, T, TResult>(function, static f => new MapFunction<T, TResult>(f), items, chunkSize, ordered: true, timeouts, progress, cancellationToken);

    /// <summary>
    /// <see cref="ImapAsync{T,TResult}(Func{T,TResult},IEnumerable{T},int,TaskTimeouts?,IProgress{PoolProgress}?,CancellationToken)"/> with a function
    /// that takes its task's <see cref="CancellationToken"/> (soft time limit, call cancelled).
    /// </summary>
    public IAsyncEnumerable<TResult> ImapAsync<T, TResult>(Func<T, CancellationToken, TResult> function, IEnumerable<T> items,
        int chunkSize = 1, TaskTimeouts? timeouts = null, IProgress<PoolProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Imap<Func<T, CancellationToken, TResult>, T, TResult>(function, static f => new CancellableMapFunction<T, TResult>(f), items, chunkSize, ordered: true, timeouts, progress, cancellationToken);

    /// <summary>Like <see cref="ImapAsync{T,TResult}(Func{T,TResult},IEnumerable{T},int,TaskTimeouts?,IProgress{PoolProgress}?,CancellationToken)"/> but yields results as they complete (Python's <c>imap_unordered</c>).</summary>
    public IAsyncEnumerable<TResult> ImapUnorderedAsync<T, TResult>(Func<T, TResult> function, IEnumerable<T> items,
        int chunkSize = 1, TaskTimeouts? timeouts = null, IProgress<PoolProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Imap<Func<T, TResult>, T, TResult>(function, static f => new MapFunction<T, TResult>(f), items, chunkSize, ordered: false, timeouts, progress, cancellationToken);

    /// <summary>Blocking form of <see cref="ImapAsync{T,TResult}(Func{T,TResult},IEnumerable{T},int,TaskTimeouts?,IProgress{PoolProgress}?,CancellationToken)"/>.</summary>
    public IEnumerable<TResult> Imap<T, TResult>(Func<T, TResult> function, IEnumerable<T> items, int chunkSize = 1) =>
        ToBlocking(ImapAsync(function, items, chunkSize));

    /// <summary>Blocking form of <see cref="ImapUnorderedAsync{T,TResult}"/>.</summary>
    public IEnumerable<TResult> ImapUnordered<T, TResult>(Func<T, TResult> function, IEnumerable<T> items, int chunkSize = 1) =>
        ToBlocking(ImapUnorderedAsync(function, items, chunkSize));

    private IAsyncEnumerable<TResult> Imap<TDelegate, T, TResult>(TDelegate function, Func<TDelegate, TaskFunction> wrap, IEnumerable<T> items, int chunkSize, bool ordered,
        TaskTimeouts? timeouts, IProgress<PoolProgress>? progress, CancellationToken cancellationToken) where TDelegate : Delegate
    {
        // Checked at the call, not at the first MoveNext: a bad argument to imap is the caller's error now.
        CheckRunning();
        ArgumentNullException.ThrowIfNull(function);
        ArgumentNullException.ThrowIfNull(items);
        CheckChunkSize(chunkSize);
        var limits = Limits(timeouts);
        var fn = FunctionCache.Get(function, wrap, "task function");
        WarmHandleHosts();
        long? total = items.TryGetNonEnumeratedCount(out var count) ? count : null;
        var interval = _settings.ProgressInterval;
        return PoolCall<TResult>.Run(_coordinator, fn, PrepareChunks(items, chunkSize), _settings.MaxChunksInFlightPerCall, ordered, _stopped.Token, cancellationToken, limits,
            progress is null ? null : () => CallProgress.For(progress, total, interval), total, _settings.MaxBytesInFlightPerCall, 2 * _settings.Processes);
    }

    /// <summary>A call's time limits: its own, else the pool's (<see cref="PoolOptions.TaskTimeouts"/>, <c>actorpool.task.*</c>).</summary>
    private (int SoftMs, int HardMs) Limits(TaskTimeouts? timeouts)
    {
        if (timeouts is null)
            return (_settings.SoftTimeoutMs, _settings.HardTimeoutMs);
        var limits = timeouts.ToMilliseconds("timeouts");
        PoolSettings.CheckHardLimit(_settings.Method, limits.HardMs, "timeouts");
        return limits;
    }

    // ------------------------------------------------------------------ apply

    /// <summary>Runs <paramref name="function"/> once in a worker and returns its result (Python's <c>apply_async</c>).</summary>
    public Task<TResult> ApplyAsync<TResult>(Func<TResult> function, CancellationToken cancellationToken = default) =>
        ApplyAsync(function, null, cancellationToken);

    /// <summary>Runs <paramref name="function"/> once in a worker under <paramref name="timeouts"/>.</summary>
    /// <exception cref="TaskTimeoutException">The task ran past its hard limit.</exception>
    public Task<TResult> ApplyAsync<TResult>(Func<TResult> function, TaskTimeouts? timeouts, CancellationToken cancellationToken = default) =>
        ApplyCore<Func<TResult>, TResult>(function, static f => new MapFunction<byte, TResult>(_ => f()), timeouts, cancellationToken);

    /// <summary>
    /// Runs <paramref name="function"/> once in a worker with its task's <see cref="CancellationToken"/> (fired at the soft
    /// time limit and when the call is cancelled).
    /// </summary>
    /// <exception cref="TaskTimeoutException">The task ran past its soft limit and stopped, or past its hard limit.</exception>
    public Task<TResult> ApplyAsync<TResult>(Func<CancellationToken, TResult> function, TaskTimeouts? timeouts = null, CancellationToken cancellationToken = default) =>
        ApplyCore<Func<CancellationToken, TResult>, TResult>(function, static f => new CancellableMapFunction<byte, TResult>((_, token) => f(token)), timeouts, cancellationToken);

    private async Task<TResult> ApplyCore<TDelegate, TResult>(TDelegate function, Func<TDelegate, TaskFunction> wrap, TaskTimeouts? timeouts,
        CancellationToken cancellationToken) where TDelegate : Delegate
    {
        CheckRunning();
        ArgumentNullException.ThrowIfNull(function);
        var limits = Limits(timeouts);
        var fn = FunctionCache.Get(function, wrap, "task function");
        WarmHandleHosts();
        var chunk = new PreparedChunk(0, 0, 1, Blob.Of(UnitChunk));
        await foreach (var segment in PoolCall<TResult>.RunChunks(_coordinator, fn, [chunk], 1, ordered: true, _stopped.Token, cancellationToken, limits: limits,
                           totalTasks: 1, operation: "apply").ConfigureAwait(false))
            return segment[0];
        throw new InvalidOperationException("The task completed without a result.");
    }

    /// <summary>Runs <paramref name="function"/> with one argument in a worker (Python's <c>apply_async(f, (x,))</c>).</summary>
    public Task<TResult> ApplyAsync<T, TResult>(Func<T, TResult> function, T argument, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(function);
        FunctionCache.Check(function, "task function");
        Payload.SerializeItems([argument], 0);
        return ApplyAsync(() => function(argument), cancellationToken);
    }

    /// <summary>Runs <paramref name="function"/>, which returns nothing, once in a worker (Python's <c>apply_async</c> of a function returning <c>None</c>).</summary>
    public Task ApplyAsync(Action function, CancellationToken cancellationToken = default) =>
        ApplyCore<Action, bool>(function, static f => new ActionFunction<byte>(_ => f()), null, cancellationToken);

    /// <summary>Runs <paramref name="function"/>, which returns nothing, with one argument in a worker.</summary>
    public Task ApplyAsync<T>(Action<T> function, T argument, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(function);
        FunctionCache.Check(function, "task function");
        Payload.SerializeItems([argument], 0);
        return ApplyAsync(() => function(argument), cancellationToken);
    }

    /// <summary>Blocking form of <see cref="ApplyAsync(Action, CancellationToken)"/>.</summary>
    public void Apply(Action function) => ApplyAsync(function).GetAwaiter().GetResult();

    /// <summary>Blocking form of <see cref="ApplyAsync{T}(Action{T}, T, CancellationToken)"/>.</summary>
    public void Apply<T>(Action<T> function, T argument) => ApplyAsync(function, argument).GetAwaiter().GetResult();

    /// <summary>Blocking form of <see cref="ApplyAsync{TResult}(Func{TResult}, CancellationToken)"/> (Python's <c>apply</c>).</summary>
    public TResult Apply<TResult>(Func<TResult> function) => ApplyAsync(function).GetAwaiter().GetResult();

    /// <summary>Blocking form of <see cref="ApplyAsync{T,TResult}(Func{T,TResult}, T, CancellationToken)"/>.</summary>
    public TResult Apply<T, TResult>(Func<T, TResult> function, T argument) => ApplyAsync(function, argument).GetAwaiter().GetResult();

    private static readonly byte[] UnitChunk = Payload.Serialize(new byte[1]);

    // ------------------------------------------------------------------ lifecycle

    /// <summary>Refuses new calls; running calls finish (Python's <c>close()</c>). Then <see cref="Join"/>.</summary>
    public void Close()
    {
        lock (_gate)
        {
            if (_state == PoolState.Running)
                _state = PoolState.Closed;
        }
    }

    /// <summary>
    /// Waits for running calls to finish and every worker process to exit (Python's <c>join()</c>). Call
    /// <see cref="Close"/> or <see cref="Terminate"/> first.
    /// </summary>
    /// <exception cref="InvalidOperationException">The pool is still running.</exception>
    public Task JoinAsync()
    {
        lock (_gate)
        {
            if (_state == PoolState.Running)
                throw new InvalidOperationException("The pool is still running: call Close() (or Terminate()) before Join(), as in Python.");
            return _shutdown ??= DrainAndStopAsync();
        }
    }

    /// <summary>Blocking form of <see cref="JoinAsync"/>.</summary>
    public void Join() => JoinAsync().GetAwaiter().GetResult();

    /// <summary>
    /// Stops at once (Python's <c>terminate()</c>): outstanding calls fail with <see cref="ObjectDisposedException"/>
    /// and every worker process is killed.
    /// </summary>
    public void Terminate()
    {
        Task shutdown;
        lock (_gate)
        {
            if (_state == PoolState.Terminated)
                return;
            _state = PoolState.Closed;
            shutdown = _shutdown = TerminateAsync(_shutdown);
        }
        shutdown.GetAwaiter().GetResult();
    }

    /// <summary>Closes the pool, lets running calls finish, and waits for every worker to exit (drain, not terminate).</summary>
    public async ValueTask DisposeAsync()
    {
        Close();
        await JoinAsync().ConfigureAwait(false);
    }

    /// <summary>Blocking form of <see cref="DisposeAsync"/>.</summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private async Task DrainAndStopAsync()
    {
        try
        {
            await _coordinator.AskLocal<PoolCounts>(WaitForIdle.Instance).ConfigureAwait(false);
            await _coordinator.AskLocal<PoolCounts>(StopWorkers.Instance, _settings.WorkerShutdownTimeout * 3).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
        {
            // Workers that did not exit in time are killed below.
        }
        await StopSystemAsync().ConfigureAwait(false);
    }

    private async Task TerminateAsync(Task? previous)
    {
        try
        {
            await _coordinator.AskLocal<PoolCounts>(TerminateWorkers.Instance, TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AskTimeoutException or TaskCanceledException)
        {
        }
        await StopSystemAsync().ConfigureAwait(false);
        if (previous is not null)
            await previous.ConfigureAwait(false);
    }

    private async Task StopSystemAsync()
    {
        _launcher.Dispose();
        if (_ownsSystem && _settings.Cluster is not null)
        {
            // Leave the cluster first, so nodes see the coordinator go rather than wait to find it unreachable.
            await Akka.Actor.CoordinatedShutdown.Get(_system).Run(Akka.Actor.CoordinatedShutdown.ClusterLeavingReason.Instance).ConfigureAwait(false);
            await _system.WhenTerminated.ConfigureAwait(false);
        }
        else if (_ownsSystem)
        {
            await _system.Terminate().ConfigureAwait(false);
        }
        else
        {
            try
            {
                await _coordinator.GracefulStop(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
            }
            catch (Exception e) when (e is TaskCanceledException or AskTimeoutException)
            {
            }
            _stopped.Cancel();
        }
        _dataLinks?.Dispose();
        Spill.DeleteFolder(_spillFolder);
        _state = PoolState.Terminated;
        _ownedLoggerFactory?.Dispose();
    }

    private void CheckRunning()
    {
        if (_state != PoolState.Running)
            throw new InvalidOperationException($"Pool not running (it is {_state}): create a new Pool for more work.");
    }

    // ------------------------------------------------------------------ helpers

    private int DefaultChunkSize(int count)
    {
        // Python: chunksize, extra = divmod(len(iterable), len(self._pool) * 4); if extra: chunksize += 1
        var (size, extra) = Math.DivRem(count, _settings.Processes * 4);
        return Math.Max(1, extra > 0 ? size + 1 : size);
    }

    private static void CheckChunkSize(int size)
    {
        if (size < 1)
            throw new ArgumentOutOfRangeException("chunkSize", size, "chunkSize must be at least 1.");
    }

    private IEnumerable<PreparedChunk> PrepareChunks<T>(IEnumerable<T> items, int chunkSize)
    {
        var buffer = new List<T>(Math.Min(chunkSize, 4096));
        var index = 0;
        long first = 0;
        foreach (var item in items)
        {
            buffer.Add(item);
            if (buffer.Count == chunkSize)
            {
                yield return Prepare(index++, first, buffer);
                first += buffer.Count;
                buffer.Clear();
            }
        }
        if (buffer.Count > 0)
            yield return Prepare(index, first, buffer);
    }

    private PreparedChunk Prepare<T>(int index, long first, List<T> buffer)
    {
        var array = buffer.ToArray();
        var items = Payload.SerializeItems(array, (int)Math.Min(first, int.MaxValue), _spillFolder);
        WarmHandleHosts();
        var maxPayload = _settings.MaxPayloadBytes;
        if (!items.IsFile && items.Inline.Length > maxPayload)
            throw new NotSendableException(
                $"Arguments {first}..{first + array.Length - 1} serialize to {items.Inline.Length:N0} bytes, more than a message may carry " +
                $"({maxPayload:N0}; akka.remote.dot-netty.tcp.maximum-frame-size). Use a smaller chunkSize, or raise the frame size in PoolOptions.Config.");
        return new PreparedChunk(index, first, array.Length, items);
    }

    private readonly HashSet<string> _warmHosts = [];

    /// <summary>
    /// The hosts of the queues and locks this thread just found in a call's function or arguments (or the
    /// initializer's): new ones go to the coordinator, which has the spawned workers start their connection to them
    /// ahead of the tasks that use them.
    /// </summary>
    private void WarmHandleHosts()
    {
        if (Payload.TakeSeenOwners() is not { } owners)
            return;
        List<string>? fresh = null;
        lock (_warmHosts)
        {
            foreach (var owner in owners)
            {
                if (_warmHosts.Count < LinkWarm.MaxHosts && _warmHosts.Add(owner))
                    (fresh ??= []).Add(owner);
            }
        }
        if (fresh is null)
            return;
        if (_launcher is ProcessLauncher launcher)
            launcher.WarmOwners = [.. _warmHosts];
        _coordinator?.TellLocal(new WarmHosts([.. fresh]));
    }

    private static byte[] PrepareInitializer(PoolOptions options)
    {
        if (options.Initializer is null)
        {
            if (options.InitArgs is { Length: > 0 })
                throw new ArgumentException("InitArgs were given without an Initializer.", nameof(PoolOptions.InitArgs));
            return [];
        }
        var args = Payload.BindArguments(options.Initializer, options.InitArgs ?? [], "initializer", nameof(PoolOptions.InitArgs));
        Payload.SerializeItems(args, 0);
        return Payload.SerializeFunction(options.Initializer, new PoolInitializer(options.Initializer, args), "initializer");
    }

    private static IEnumerable<TResult> ToBlocking<TResult>(IAsyncEnumerable<TResult> source)
    {
        var e = source.GetAsyncEnumerator();
        try
        {
            while (e.MoveNextAsync().AsTask().GetAwaiter().GetResult())
                yield return e.Current;
        }
        finally
        {
            e.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }
}
