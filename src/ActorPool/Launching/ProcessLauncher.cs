using System.Collections.Concurrent;
using ActorPool.Coordination;
using ActorPool.Protocol;
using ActorPool.Worker;
using Akka.Actor;
using Microsoft.Extensions.Logging;

namespace ActorPool.Launching;

/// <summary>
/// Worker processes for one pool, by its start method: <c>spawn</c> starts a fresh process per worker running the
/// worker host with the calling application's own dependency list (<c>dotnet exec --depsfile app.deps.json
/// --runtimeconfig app.runtimeconfig.json ActorPool.dll</c>), so it resolves the user's assemblies without running
/// the user's <c>Main</c>; <c>forkserver</c> takes a pre-started, pre-loaded one from the <see cref="ForkServer"/>.
/// Either way the pool's secret travels on the child's standard input, never on its command line.
/// </summary>
internal sealed class ProcessLauncher : IWorkerLauncher
{
    private readonly string _coordinatorPath;
    private readonly string _secret;
    private readonly bool _forwardOutput;
    private readonly int _maxFrameSize;
    private readonly string? _spillFolder;
    private readonly bool _dataLink;
    private readonly ForkServer? _server;
    private readonly ILogger _logger;
    private readonly Hosting.TlsIdentity? _tls;
    private readonly ConcurrentDictionary<string, WorkerProcess> _processes = new();
    private volatile bool _disposed;

    /// <summary>The queues and locks the pool's tasks use: new workers connect to them as they start.</summary>
    public string[] WarmOwners { get; set; } = [];

    // Spawned worker processes started before the pool's ActorSystem (they need nothing of it until their settings).
    private readonly ConcurrentQueue<WorkerProcess> _early = new();

    /// <summary>
    /// Spawned worker processes started now, for a launcher built later (<see cref="Launch"/> takes them first): a new
    /// pool's processes start while its ActorSystem does. Disposed before a launcher has <see cref="Early.Take"/>n them
    /// (the pool's constructor failed), they are ended.
    /// </summary>
    public sealed class Early : IDisposable
    {
        private readonly List<WorkerProcess> _processes = [];
        private bool _taken;

        public Early(int count)
        {
            try
            {
                for (var i = 1; i <= count; i++)
                    _processes.Add(WorkerProcess.Start($"w{i}", spare: false, []));
            }
            catch (Exception)
            {
                Dispose();
                throw;
            }
        }

        public IReadOnlyList<WorkerProcess> Take()
        {
            _taken = true;
            return _processes;
        }

        public void Dispose()
        {
            if (_taken)
                return;
            _taken = true;
            foreach (var process in _processes)
                process.Kill();
        }
    }

    public ProcessLauncher(string coordinatorPath, string secret, bool forwardOutput, int maxFrameSize, string? spillFolder,
        bool dataLink, ForkServer? server, ILogger logger, Hosting.TlsIdentity? tls, IEnumerable<WorkerProcess>? early = null)
    {
        foreach (var process in early ?? [])
            _early.Enqueue(process);
        _tls = tls;
        _coordinatorPath = coordinatorPath;
        _secret = secret;
        _forwardOutput = forwardOutput;
        _maxFrameSize = maxFrameSize;
        _spillFolder = spillFolder;
        _dataLink = dataLink;
        _server = server;
        _logger = logger;
    }

    public int Launch(string workerId, IActorRef coordinator)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var process = (_early.TryDequeue(out var early) ? early : null) ?? _server?.Take() ?? WorkerProcess.Start(workerId, spare: false, []);
        _processes[workerId] = process;
        process.Adopt(_forwardOutput, (code, errorTail) =>
        {
            _processes.TryRemove(workerId, out _);
            coordinator.TellLocal(new WorkerExited(workerId, code, errorTail));
        });
        var handshake = new WorkerHandshake(_coordinatorPath, workerId, _secret, Environment.ProcessId, _maxFrameSize, _spillFolder,
            _spillFolder is null || !_dataLink ? null : Path.Combine(_spillFolder, DataLinkListener.SocketName), WorkerHandshake.CallerEntryAssembly,
            Tls: _tls, StartMethod: _server is null ? "spawn" : "forkserver", Trust: ReferenceEquals(_tls, Hosting.ProcessTrust.Identity) ? null : Hosting.ProcessTrust.Identity,
            Warm: WarmOwners is { Length: > 0 } warm ? warm : null, RelayHost: Hosting.Runtime.StartedHostAddress);
        process.SendHandshake(handshake);
        if (_disposed)
            Kill(workerId);
        return process.Pid;
    }

    public void Kill(string workerId)
    {
        if (_processes.TryGetValue(workerId, out var process))
        {
            _logger.LogDebug("Killing worker {Worker} (pid {Pid}).", workerId, process.Pid);
            process.Kill();
        }
    }

    public void Dispose()
    {
        _disposed = true;
        foreach (var id in _processes.Keys)
            Kill(id);
        while (_early.TryDequeue(out var early))
            early.Kill();
    }
}
