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
    private readonly int _frameSize;
    private readonly Queue<WorkerProcess> _spares = new();
    private int _target;
    private bool _closed;
    private int _starting;

    private ForkServer(IReadOnlyList<string> preload, int frameSize)
    {
        _preload = preload;
        _frameSize = frameSize;
    }

    /// <summary>
    /// The server for <paramref name="preload"/>, keeping at least <paramref name="spares"/> processes ready. Its spares
    /// start their ActorSystem for the frame size of the pool that created the server (others restart it).
    /// </summary>
    public static ForkServer For(IReadOnlyList<string> preload, int spares, int frameSize = 0)
    {
        var key = string.Join(';', preload);
        ForkServer server;
        lock (Servers)
        {
            if (!Servers.TryGetValue(key, out server!))
                Servers[key] = server = new ForkServer(preload, frameSize);
        }
        server.Want(spares);
        return server;
    }

    /// <summary>
    /// Ends every server's waiting spares now and forgets the servers (the next forkserver pool starts a new one).
    /// Spares end with the program anyway; this is for hosts that must not leave processes behind earlier (tests).
    /// </summary>
    public static void ShutdownAll()
    {
        List<ForkServer> servers;
        lock (Servers)
        {
            servers = Servers.Values.ToList();
            Servers.Clear();
        }
        foreach (var server in servers)
        {
            lock (server._spares)
            {
                server._closed = true;
                server._target = 0;
                foreach (var spare in server._spares)
                    spare.Kill();
                server._spares.Clear();
            }
        }
    }

    /// <summary>How many spares have pre-loaded and wait now.</summary>
    public int Ready
    {
        get { lock (_spares) return _spares.Count(s => s.Preloaded.IsCompleted && !s.Exited.IsCompleted); }
    }

    /// <summary>Waits (bounded) until <paramref name="count"/> spares have pre-loaded; false if they did not in time.</summary>
    public async Task<bool> WhenReady(int count, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (Ready < count)
        {
            if (DateTime.UtcNow > deadline)
                return false;
            await Task.Delay(20).ConfigureAwait(false);
        }
        return true;
    }

    /// <summary>A ready spare if there is one (else one started now), and a replacement started in the background.</summary>
    public WorkerProcess Take()
    {
        WorkerProcess? spare = null;
        lock (_spares)
        {
            // The first spare that has pre-loaded, else the oldest still starting; dead ones are dropped.
            var alive = _spares.Where(s => !s.Exited.IsCompleted).ToList();
            spare = alive.FirstOrDefault(s => s.Preloaded.IsCompleted) ?? alive.FirstOrDefault();
            _spares.Clear();
            foreach (var s in alive)
                if (s != spare)
                    _spares.Enqueue(s);
        }
        Refill(RefillDelay);
        return spare ?? WorkerProcess.Start("spare", spare: true, _preload, _frameSize);
    }

    /// <summary>
    /// Replacements for taken spares start a little later, not while the pool that took them is starting (a
    /// starting .NET process takes a core for a few hundred milliseconds).
    /// </summary>
    private static readonly TimeSpan RefillDelay = TimeSpan.FromMilliseconds(300);

    private void Want(int spares)
    {
        lock (_spares)
            _target = Math.Max(_target, spares);
        Refill(TimeSpan.Zero);
    }

    private void Refill(TimeSpan delay)
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
            _ = Task.Run(async () =>
            {
                try
                {
                    await Task.Delay(delay).ConfigureAwait(false);
                    var spare = WorkerProcess.Start("spare", spare: true, _preload, _frameSize);
                    lock (_spares)
                    {
                        if (_closed)
                            spare.Kill();
                        else
                            _spares.Enqueue(spare);
                    }
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
