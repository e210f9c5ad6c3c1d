using Akka.Actor;

namespace ActorPool.Protocol;

/// <summary>
/// A message from this process, and the proof that it is: a reference to an object only this process holds. Over
/// plain remoting a stranger can name any sender and pick any serializer, but no deserializer can produce this
/// reference (only another object), so <see cref="IsGenuine"/> tells a message made here from one that came over the
/// wire, whatever the sender's address says. The coordinator obeys calls, commands and launcher reports only so
/// wrapped; an in-process (thread) worker obeys its coordinator only so wrapped.
/// </summary>
internal sealed class Local
{
    private static readonly object Token = new();
    private readonly object _token;

    private Local(object message, object token)
    {
        Message = message;
        _token = token;
    }

    public object Message { get; }

    public bool IsGenuine => ReferenceEquals(_token, Token);

    public static Local Of(object message) => new(message, Token);
}

internal static class LocalMessages
{
    /// <summary>Tells <paramref name="to"/> (an actor of this process) <paramref name="message"/>, wrapped as <see cref="Local"/>.</summary>
    public static void TellLocal(this IActorRef to, object message) => to.Tell(Local.Of(message));

    /// <inheritdoc cref="TellLocal(IActorRef, object)"/>
    public static void TellLocal(this IActorRef to, object message, IActorRef sender) => to.Tell(Local.Of(message), sender);

    /// <summary>Asks <paramref name="to"/> (an actor of this process), the question wrapped as <see cref="Local"/>.</summary>
    public static Task<T> AskLocal<T>(this IActorRef to, object message, TimeSpan? timeout = null, CancellationToken ct = default) =>
        to.Ask<T>(Local.Of(message), timeout, ct);
}
