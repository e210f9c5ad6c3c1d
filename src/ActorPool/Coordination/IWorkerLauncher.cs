using Akka.Actor;

namespace ActorPool.Coordination;

/// <summary>
/// Starts and ends worker processes for a coordinator (the start method). A started worker registers itself with
/// the coordinator; its exit is reported to the coordinator as <see cref="WorkerExited"/>.
/// </summary>
internal interface IWorkerLauncher : IDisposable
{
    /// <summary>Starts the worker <paramref name="workerId"/> and returns its process id. May block briefly.</summary>
    int Launch(string workerId, IActorRef coordinator);

    /// <summary>Ends the worker's process at once, if it is running. Never throws.</summary>
    void Kill(string workerId);
}
