namespace ActorPool.Launching;

/// <summary>
/// The <c>forkserver</c> start method's server: spare worker processes, started ahead and pre-loaded, waiting for
/// a pool to hand them their settings. A .NET runtime cannot be forked, so where Python's forkserver forks a
/// pre-loaded process on demand, this one keeps pre-loaded processes ready and starts new ones in the background
/// as they are taken. One per process and preload list; its spares end with this process (their standard input
/// closes).
/// </summary>
internal sealed class ForkServer
{
    private static readonly Dictionary<string, ForkServer> Servers = new();

    private readonly IReadOnlyList<string> _preload;
    private readonly Queue<WorkerProcess> _spares = new();
    private int _target;
    private int _starting;

    private ForkServer(IReadOnlyList<string> preload) => _preload = preload;

    /// <summary>The server for <paramref name="preload"/>, keeping at least <paramref name="spares"/> processes ready.</summary>
    public static ForkServer For(IReadOnlyList<string> preload, int spares)
    {
        var key = string.Join(';', preload);
        ForkServer server;
        lock (Servers)
        {
            if (!Servers.TryGetValue(key, out server!))
                Servers[key] = server = new ForkServer(preload);
        }
        server.Want(spares);
        return server;
    }

    /// <summary>How many spares are ready now.</summary>
    public int Ready
    {
        get { lock (_spares) return _spares.Count; }
    }

    /// <summary>A ready spare if there is one (else one started now), and a replacement started in the background.</summary>
    public WorkerProcess Take()
    {
        WorkerProcess? spare = null;
        lock (_spares)
        {
            while (_spares.Count > 0 && spare is null)
            {
                var candidate = _spares.Dequeue();
                if (!candidate.Exited.IsCompleted)
                    spare = candidate;
            }
        }
        Refill();
        return spare ?? WorkerProcess.Start("spare", spare: true, _preload);
    }

    private void Want(int spares)
    {
        lock (_spares)
            _target = Math.Max(_target, spares);
        Refill();
    }

    private void Refill()
    {
        int missing;
        lock (_spares)
        {
            missing = _target - _spares.Count - _starting;
            if (missing <= 0)
                return;
            _starting += missing;
        }
        for (var i = 0; i < missing; i++)
        {
            _ = Task.Run(() =>
            {
                try
                {
                    var spare = WorkerProcess.Start("spare", spare: true, _preload);
                    lock (_spares)
                        _spares.Enqueue(spare);
                    // One that dies unused is skipped by Take, not replaced here: a host that cannot start must
                    // not turn into a loop of starts.
                }
                catch (Exception)
                {
                    // Starting failed (the host is missing, say): the pool that takes one reports it.
                }
                finally
                {
                    lock (_spares)
                        _starting--;
                }
            });
        }
    }
}
