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
    private static readonly Lazy<ActorSystem> Host = new(() =>
        PoolActorSystem.Create("actorpool-host", PoolSettings.Reference, ConsoleLogging.CreateDefault()));

    private static Task<ActorSystem>? _worker;
    private static Action? _startWorkerSystem;
    private static bool _workerSystemWanted;

    /// <summary>A task has asked for the worker's ActorSystem (perhaps before the worker could be told).</summary>
    public static bool WorkerSystemWanted => Volatile.Read(ref _workerSystemWanted);

    /// <summary>Called by a spawned worker: its ActorSystem (once started) serves this process's handles.</summary>
    public static void UseWorkerSystem(Task<ActorSystem> system, Action startNow)
    {
        _startWorkerSystem = startNow;
        _worker = system;
    }

    /// <summary>This process's ActorSystem for queues. Blocks while a worker's starts (never on an actor's thread).</summary>
    public static ActorSystem System
    {
        get
        {
            if (_worker is { } worker)
            {
                Volatile.Write(ref _workerSystemWanted, true);
                _startWorkerSystem?.Invoke();
                return worker.GetAwaiter().GetResult();
            }
            return Host.Value;
        }
    }

    /// <summary>The full remote address of an actor of <see cref="System"/>, for handles sent to other processes.</summary>
    public static string PathOf(IActorRef actor)
    {
        var system = (ExtendedActorSystem)System;
        return actor.Path.ToStringWithAddress(system.Provider.DefaultAddress);
    }
}
