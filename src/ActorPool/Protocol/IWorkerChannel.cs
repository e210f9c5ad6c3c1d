using Akka.Actor;

namespace ActorPool.Protocol;

/// <summary>
/// One transport between a coordinator and one of its workers, the same from either end: messages go out through
/// <see cref="TrySend"/>, and what comes in is handed on with the peer it was proven to come from (the data link's
/// secret in its first frame; Akka.Remote's mutual TLS and the registration's challenge-response), never with a name
/// the message itself claims. Two implementations: <see cref="DataLink"/> (the 0700 Unix socket of a spawned worker)
/// and <see cref="RemoteChannel"/> (Akka.Remote, for node workers and for death watch).
/// </summary>
internal interface IWorkerChannel
{
    /// <summary>Sends one message; false when the channel is closed (the other end is gone).</summary>
    bool TrySend(object message);
}

/// <summary>
/// Akka.Remote as a channel: told to <paramref name="to"/> as <paramref name="from"/> (the receiver checks who sent it).
/// To an actor of this process (a thread worker, or its coordinator) the message goes wrapped as <see cref="Local"/>: a
/// sender address proves nothing over plain remoting, that wrapper does.
/// </summary>
internal sealed class RemoteChannel(IActorRef to, IActorRef from) : IWorkerChannel
{
    private readonly bool _local = to.Path.Address.HasLocalScope;

    public IActorRef Target => to;

    public bool TrySend(object message)
    {
        if (to.IsNobody())
            return false;
        to.Tell(_local ? Local.Of(message) : message, from);
        return true;
    }
}
