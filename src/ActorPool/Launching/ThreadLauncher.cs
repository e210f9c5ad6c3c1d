using System.Collections.Concurrent;
using ActorPool.Coordination;
using ActorPool.Protocol;
using ActorPool.Worker;
using Akka.Actor;

namespace ActorPool.Launching;

/// <summary>
/// The <c>thread</c> start method (Python's <c>multiprocessing.dummy</c> / <c>ThreadPool</c>): each worker is a worker
/// actor in the pool's own ActorSystem with its own task thread. No process starts and nothing is isolated: a task
/// that crashes the process crashes the caller. Work and results take the same path as with processes (arguments
/// and results are still serialized), so code moves between start methods unchanged. Worker names start with the
/// pool's coordinator's, unique per pool: several thread pools may share one ActorSystem.
/// </summary>
internal sealed class ThreadLauncher(ActorSystem system, string namePrefix, string coordinatorPath, string secret, int maxFrameSize, string? spillFolder) : IWorkerLauncher
{
    private readonly ConcurrentDictionary<string, IActorRef> _workers = new();

    public int Launch(string workerId, IActorRef coordinator)
    {
        var handshake = new WorkerHandshake(coordinatorPath, workerId, secret, Environment.ProcessId, maxFrameSize, spillFolder);
        Action stopped = () =>
        {
            _workers.TryRemove(workerId, out _);
            coordinator.TellLocal(new WorkerExited(workerId, 0, ""));
        };
        var worker = system.ActorOf(
            Props.Create(() => new WorkerActor(handshake, new WorkerNode.ExitCode(), true, stopped)), $"{namePrefix}-{workerId}");
        _workers[workerId] = worker;
        return Environment.ProcessId;
    }

    /// <summary>Stops the worker actor; a task running on its thread finishes unobserved (a thread cannot be killed).</summary>
    public void Kill(string workerId)
    {
        if (_workers.TryRemove(workerId, out var worker))
            system.Stop(worker);
    }

    public void Dispose()
    {
        foreach (var id in _workers.Keys)
            Kill(id);
    }
}
