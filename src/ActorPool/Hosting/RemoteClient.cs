using Akka.Actor;

namespace ActorPool.Hosting;

/// <summary>
/// What the queue and lock clients share: one process's connection to the actor that holds a queue's or a lock's
/// state, made once on first use; a local actor that receives the owner's answers for the client and watches the
/// owner; and, when the owner is gone, <see cref="OnOwnerGone"/> so that every waiter fails instead of waiting.
/// The waiters themselves are <see cref="WaiterQueue{TState,TResult}"/>s guarded by <see cref="Gate"/>.
/// </summary>
internal abstract class RemoteClient
{
    private readonly Lazy<IOwnerRoute> _route;
    private readonly TimeSpan _connectWithin;

    /// <summary>Guards the subclass's state and its waiter queues; the owner's answers are handled under it too.</summary>
    protected readonly Lock Gate = new();

    protected RemoteClient(string ownerPath, TimeSpan connectWithin)
    {
        OwnerPath = ownerPath;
        _connectWithin = connectWithin;
        _route = new Lazy<IOwnerRoute>(Connect);
    }

    /// <summary>The owner's actor path (for messages).</summary>
    protected string OwnerPath { get; }

    protected bool IsConnected => _route.IsValueCreated;

    /// <summary>Connects now if not yet (outside <see cref="Gate"/>: connecting waits on the network).</summary>
    protected void EnsureConnected() => _ = _route.Value;

    /// <summary>Tells the owner, as this client.</summary>
    protected void Tell(object message) => _route.Value.Tell(message);

    /// <summary>Asks the owner once (its answer goes to this request, not to <see cref="OnReply"/>).</summary>
    public Task<TReply> AskOwner<TReply>(object message, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        _route.Value.Ask<TReply>(message, timeout, cancellationToken);

    /// <summary>The error when the owner cannot be found within the connect time.</summary>
    protected abstract Exception Unreachable(Exception cause);

    /// <summary>An answer of the owner's (on the client actor's thread, or the data link's reader).</summary>
    protected internal abstract void OnReply(object message);

    /// <summary>The owner is gone (its process ended, or its node left): fail every waiter, refuse what comes.</summary>
    protected internal abstract void OnOwnerGone();

    /// <summary>
    /// Over the worker's data link when the owner is in its pool's process (no ActorSystem here at all), else through
    /// this process's ActorSystem.
    /// </summary>
    private IOwnerRoute Connect()
    {
        try
        {
            return LinkRelayClient.Current?.TryOpen(OwnerPath, this, _connectWithin) ?? ActorRoute.Connect(Runtime.System, OwnerPath, this, _connectWithin);
        }
        catch (Exception e) when (e is ActorNotFoundException or TimeoutException or AskTimeoutException)
        {
            throw Unreachable(e);
        }
    }
}

/// <summary>How a client reaches its owner: Akka.Remote (or in-process), or a worker's data link.</summary>
internal interface IOwnerRoute
{
    void Tell(object message);

    Task<TReply> Ask<TReply>(object message, TimeSpan timeout, CancellationToken cancellationToken);
}

/// <summary>The owner's actor, and a local actor for its answers that watches it.</summary>
internal sealed class ActorRoute : IOwnerRoute
{
    private readonly IActorRef _owner;
    private readonly IActorRef _self;

    private ActorRoute(IActorRef owner, IActorRef self)
    {
        _owner = owner;
        _self = self;
    }

    public static ActorRoute Connect(ActorSystem system, string ownerPath, RemoteClient client, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            try
            {
                // A cluster singleton starts a moment after its cluster is up: ask again, a few seconds at a time.
                var owner = system.ActorSelection(ownerPath).ResolveOne(left < TimeSpan.FromSeconds(2) ? TimeSpan.FromSeconds(2) : left / 2)
                    .GetAwaiter().GetResult();
                return new ActorRoute(owner, system.ActorOf(Props.Create(() => new ClientActor(client, owner))));
            }
            catch (Exception e) when (e is ActorNotFoundException or TimeoutException or AskTimeoutException)
            {
                if (DateTime.UtcNow + TimeSpan.FromMilliseconds(50) > deadline)
                    throw;
                Thread.Sleep(50);
            }
        }
    }

    public void Tell(object message) => _owner.Tell(message, _self);

    public Task<TReply> Ask<TReply>(object message, TimeSpan timeout, CancellationToken cancellationToken) =>
        _owner.Ask<TReply>(message, timeout, cancellationToken);

    /// <summary>The client's address for the owner: hands its answers to the client and watches it.</summary>
    private sealed class ClientActor : ReceiveActor
    {
        public ClientActor(RemoteClient client, IActorRef owner)
        {
            Receive<Terminated>(m => m.ActorRef.Equals(owner), _ => client.OnOwnerGone());
            ReceiveAny(client.OnReply);
            Context.Watch(owner);
        }
    }
}

/// <summary>
/// The waiters of one operation of a client (puts waiting for room, gets for an item, acquisitions for the lock), in
/// order of arrival, each with what it brings (<typeparamref name="TState"/>) and whether it may wait at all. Every
/// method is called under the client's gate; a waiter's answer is set here, and its continuation runs elsewhere.
/// </summary>
internal sealed class WaiterQueue<TState, TResult>(Lock gate)
{
    private readonly LinkedList<Waiter> _waiters = new();

    public sealed class Waiter(TState state, bool noWait)
    {
        public TState State { get; } = state;

        /// <summary>A no-wait operation (timeout zero): it is answered at once, or it fails.</summary>
        public bool NoWait { get; } = noWait;

        public TaskCompletionSource<TResult> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public int Count => _waiters.Count;

    public Waiter Add(TState state, bool noWait)
    {
        var waiter = new Waiter(state, noWait);
        _waiters.AddLast(waiter);
        return waiter;
    }

    /// <summary>Takes the first waiter out (to serve it).</summary>
    public bool TryTake(out Waiter waiter)
    {
        if (_waiters.First is { } first)
        {
            _waiters.RemoveFirst();
            waiter = first.Value;
            return true;
        }
        waiter = null!;
        return false;
    }

    /// <summary>Serves the first waiter with <paramref name="result"/>; false when none waits.</summary>
    public bool TryServe(TResult result)
    {
        if (!TryTake(out var waiter))
            return false;
        waiter.Done.TrySetResult(result);
        return true;
    }

    /// <summary>Fails every waiter that may not wait (the owner said: not now); the others go on waiting.</summary>
    public void FailNoWait(Func<Exception> error)
    {
        for (var node = _waiters.First; node is not null;)
        {
            var next = node.Next;
            if (node.Value.NoWait)
            {
                _waiters.Remove(node);
                node.Value.Done.TrySetException(error());
            }
            node = next;
        }
    }

    public void FailAll(Exception error)
    {
        foreach (var waiter in _waiters)
            waiter.Done.TrySetException(error);
        _waiters.Clear();
    }

    /// <summary>
    /// Waits for <paramref name="waiter"/>'s answer, within <paramref name="timeout"/> (null: no bound; a no-wait
    /// waiter's owner answers at once, bounded in case it is gone) and until <paramref name="ct"/>. On timeout or
    /// cancellation the waiter is withdrawn, unless it was served meanwhile (then that answer is the result);
    /// <paramref name="withdrawn"/> runs under the gate after it was, with whether it was the last one waiting.
    /// </summary>
    public Task<TResult> WaitAsync(Waiter waiter, TimeSpan? timeout, CancellationToken ct, Action<bool>? withdrawn = null) =>
        Waiting.ForAsync(waiter.Done.Task, waiter.NoWait, timeout, ct, () =>
        {
            lock (gate)
            {
                if (!_waiters.Remove(waiter))
                    return false;
                withdrawn?.Invoke(_waiters.Count == 0);
                return true;
            }
        });
}
