namespace ActorPool.Hosting;

/// <summary>
/// A handle that other processes use through its owner actor (a queue's actor, the lock manager): sent to a worker,
/// the worker talks to that owner's ActorSystem.
/// </summary>
internal interface IProcessHandle
{
    /// <summary>The owner actor's full address.</summary>
    string OwnerPath { get; }
}
