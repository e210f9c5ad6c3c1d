using Akka.Actor;

namespace ActorPool;

/// <summary>
/// ActorPool as an Akka extension of an application's own ActorSystem: <c>system.ActorPool().CreatePool(options)</c>
/// runs the pool's coordinator in that system. Pools still running when the system terminates are terminated
/// with it (their workers are killed).
/// </summary>
public sealed class ActorPoolExtension : IExtension
{
    private readonly ActorSystem _system;
    private readonly List<Pool> _pools = [];

    internal ActorPoolExtension(ActorSystem system)
    {
        _system = system;
        system.WhenTerminated.ContinueWith(_ =>
        {
            List<Pool> pools;
            lock (_pools)
                pools = _pools.ToList();
            foreach (var pool in pools)
                pool.Terminate();
        }, TaskScheduler.Default);
    }

    /// <summary>A pool whose coordinator runs in this extension's ActorSystem (<see cref="PoolOptions.ActorSystem"/> is set to it).</summary>
    /// <exception cref="ArgumentException">An option is invalid, or the system has no remoting for process workers.</exception>
    public Pool CreatePool(PoolOptions? options = null)
    {
        var pool = new Pool((options ?? new PoolOptions()) with { ActorSystem = _system });
        lock (_pools)
        {
            _pools.RemoveAll(p => p.State == PoolState.Terminated);
            _pools.Add(pool);
        }
        return pool;
    }

    /// <summary>The pool an Akka.Hosting application runs in this system (ActorPool.Hosting's <c>WithActorPool</c>); null if none.</summary>
    public Pool? Hosted { get; private set; }

    private readonly Lock _hosting = new();

    /// <summary>
    /// The system's hosted pool: the one made already, else one made now with <paramref name="options"/>. Whichever
    /// asks first makes it: the host starting its actors, or a service that takes <see cref="Pool"/> in its
    /// constructor (resolved before the host starts them).
    /// </summary>
    internal Pool GetOrCreateHostedPool(Func<PoolOptions> options)
    {
        lock (_hosting)
        {
            if (Hosted is { } hosted)
                return hosted;
            var pool = CreatePool(options());
            lock (_pools)
                Hosted = pool;
            return pool;
        }
    }

    /// <summary>A pool of <paramref name="processes"/> workers in this extension's ActorSystem.</summary>
    public Pool CreatePool(int processes) => CreatePool(new PoolOptions { Processes = processes });
}

/// <summary>Creates the <see cref="ActorPoolExtension"/> of an ActorSystem (one per system).</summary>
public sealed class ActorPoolExtensionProvider : ExtensionIdProvider<ActorPoolExtension>
{
    /// <inheritdoc/>
    public override ActorPoolExtension CreateExtension(ExtendedActorSystem system) => new(system);
}

/// <summary><c>system.ActorPool()</c>.</summary>
public static class ActorSystemActorPoolExtensions
{
    /// <summary>The ActorPool extension of <paramref name="system"/>.</summary>
    public static ActorPoolExtension ActorPool(this ActorSystem system) => system.WithExtension<ActorPoolExtension, ActorPoolExtensionProvider>();
}
