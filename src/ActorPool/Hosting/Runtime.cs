using ActorPool.Configuration;
using ActorPool.Logging;
using Akka.Actor;

namespace ActorPool.Hosting;

/// <summary>
/// The ActorSystem of this process that queues (and the handles passed to other processes) live in: in a pool's
/// spawned worker, the worker's own ActorSystem (asked to start at once if it has not yet); anywhere else, one
/// created on first use with remoting on 127.0.0.1 and an ephemeral port, for the life of the program.
/// </summary>
internal static class Runtime
{
    /// <summary>
    /// The process's host: a one-member Akka.Cluster (it joins itself) on 127.0.0.1, holding queues and, as a cluster
    /// singleton, the lock manager. Gossip is tuned for a member that is up in a few hundred milliseconds.
    /// </summary>
    private static readonly Lazy<ActorSystem> Host = new(() =>
    {
        var config = Akka.Configuration.ConfigurationFactory.ParseString("""
            akka.actor.provider = cluster
            akka.cluster {
              log-info = off
              periodic-tasks-initial-delay = 50ms
              gossip-interval = 200ms
              leader-actions-interval = 200ms
              min-nr-of-members = 1
              singleton.singleton-name = "singleton"
              split-brain-resolver.active-strategy = keep-oldest
              split-brain-resolver.keep-oldest.down-if-alone = off
            }
            """).WithFallback(PoolSettings.Reference);
        var (tls, setup) = ProcessTrust.Transport();
        var system = PoolActorSystem.Create("actorpool-host", tls.WithFallback(config), ConsoleLogging.CreateDefault(), setup);
        var cluster = Akka.Cluster.Cluster.Get(system);
        cluster.Join(cluster.SelfAddress);
        system.ActorOf(Akka.Cluster.Tools.Singleton.ClusterSingletonManager.Props(
            Locks.LockManager.Props(), PoisonPill.Instance,
            Akka.Cluster.Tools.Singleton.ClusterSingletonManagerSettings.Create(system)), LockManagerName);
        return system;
    });

    internal const string LockManagerName = "actorpool-locks";

    /// <summary>This process's host, if something started it (a queue or lock made here); else null.</summary>
    public static ActorSystem? StartedHost => Host.IsValueCreated ? Host.Value : null;

    /// <summary>The address of <see cref="StartedHost"/>, or empty.</summary>
    public static string StartedHostAddress => StartedHost is ExtendedActorSystem host ? host.Provider.DefaultAddress.ToString() : "";

    /// <summary>The full address of the lock manager of this process's host (started with it).</summary>
    public static string LockManagerPath
    {
        get
        {
            var host = (ExtendedActorSystem)Host.Value;
            return $"{host.Provider.DefaultAddress}/user/{LockManagerName}/singleton";
        }
    }

    private static Task<ActorSystem>? _worker;
    private static Action? _startWorkerSystem;

    /// <summary>Called by a spawned worker: its ActorSystem (once started) serves this process's handles.</summary>
    public static void UseWorkerSystem(Task<ActorSystem> system, Action startNow)
    {
        _startWorkerSystem = startNow;
        _worker = system;
    }

    /// <summary>
    /// A process that only uses handles made elsewhere (an <see cref="ActorProcess"/> child, say) talks to them from a
    /// plain remoting ActorSystem: no cluster to start.
    /// </summary>
    private static readonly Lazy<ActorSystem> Client = new(() =>
    {
        var (tls, setup) = ProcessTrust.Transport();
        return PoolActorSystem.Create("actorpool-client", tls.WithFallback(PoolSettings.Reference), ConsoleLogging.CreateDefault(), setup);
    });

    /// <summary>A spawned worker's ActorSystem, asked to start now. Blocks while it starts (never on an actor's thread).</summary>
    private static ActorSystem? WorkerSystem
    {
        get
        {
            if (_worker is not { } worker)
                return null;
            _startWorkerSystem?.Invoke();
            return worker.GetAwaiter().GetResult();
        }
    }

    /// <summary>Where this process's clients of queues and locks live: the worker's system, the host if there is one, else a plain one.</summary>
    public static ActorSystem System => WorkerSystem ?? (Host.IsValueCreated ? Host.Value : Client.Value);

    /// <summary>Where queues made in this process live: a worker's own system, else the host.</summary>
    public static ActorSystem QueueSystem => WorkerSystem ?? Host.Value;

    /// <summary>The full remote address of an actor of <paramref name="system"/>, for handles sent to other processes.</summary>
    public static string PathOf(ActorSystem system, IActorRef actor) =>
        actor.Path.ToStringWithAddress(((ExtendedActorSystem)system).Provider.DefaultAddress);
}
