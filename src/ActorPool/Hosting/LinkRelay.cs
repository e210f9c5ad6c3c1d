using System.Collections.Concurrent;
using ActorPool.Execution;
using ActorPool.Locks;
using ActorPool.Protocol;
using ActorPool.Queues;
using Akka.Actor;

namespace ActorPool.Hosting;

/// <summary>
/// A spawned worker's end of the handle relay: its queue and lock clients whose owner is in the pool's own process
/// speak to it over the worker's data link (each client an id of its own), so the worker needs no ActorSystem and
/// no TLS association for them: a first use costs a round trip on the link. Owners elsewhere go through Akka.Remote.
/// </summary>
internal sealed class LinkRelayClient(DataLink link)
{
    private readonly DataLink _link = link;
    private readonly ConcurrentDictionary<int, Route> _routes = new();
    private int _lastId;
    private volatile string? _relayHost;

    /// <summary>This worker's relay (a spawned worker on a data link), or null.</summary>
    public static LinkRelayClient? Current { get; set; }

    /// <summary>The pool's process's host address: owners there are reached over the link (told by the pool).</summary>
    public void RelayTo(string host)
    {
        if (host.Length > 0 && Address.TryParse(host, out _))
            _relayHost = host;
    }

    /// <summary>Whether <paramref name="ownerPath"/> is reached over the link.</summary>
    public bool Relays(string ownerPath) =>
        _relayHost is { } host && ActorPath.TryParse(ownerPath, out var path) && path.Address.ToString() == host;

    /// <summary>A route to the owner over the link, once the pool's process has found it; null when it is not relayed.</summary>
    /// <exception cref="TimeoutException">The owner was not found within <paramref name="within"/>.</exception>
    /// <exception cref="ActorNotFoundException">The pool's process says there is no such owner.</exception>
    public IOwnerRoute? TryOpen(string ownerPath, RemoteClient client, TimeSpan within)
    {
        if (!Relays(ownerPath))
            return null;
        var route = Open(ownerPath, within, client.OnReply, client.OnOwnerGone);
        route.WaitOpened(within);
        return route;
    }

    private Route Open(string ownerPath, TimeSpan within, Action<object> onReply, Action onGone)
    {
        var route = new Route(this, Interlocked.Increment(ref _lastId), onReply, onGone);
        _routes[route.Id] = route;
        if (!_link.TrySend(new HandleOpen(route.Id, ownerPath, (int)Math.Clamp(within.TotalMilliseconds, 1, 600_000))))
            route.Gone("the pool's process is gone");
        route.OwnerPath = ownerPath;
        return route;
    }

    /// <summary>A frame of the relay from the pool's process (on the link's reader thread).</summary>
    public void OnFrame(object frame)
    {
        switch (frame)
        {
            case HandleOpened m when _routes.TryGetValue(m.Client, out var route):
                route.Opened();
                break;
            case HandleReply m when _routes.TryGetValue(m.Client, out var route):
                route.Reply(Payload.Deserialize(m.Message)!);
                break;
            case HandleGone m when _routes.TryRemove(m.Client, out var route):
                route.Gone(m.Reason);
                break;
        }
    }

    /// <summary>The link closed: every owner is out of reach.</summary>
    public void OnClosed()
    {
        foreach (var id in _routes.Keys)
        {
            if (_routes.TryRemove(id, out var route))
                route.Gone("the pool's process is gone");
        }
    }

    private sealed class Route(LinkRelayClient relay, int id, Action<object> onReply, Action onGone) : IOwnerRoute
    {
        private readonly TaskCompletionSource<bool> _opened = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private string? _goneReason;

        public int Id { get; } = id;

        public string OwnerPath { get; set; } = "";

        public void Opened() => _opened.TrySetResult(true);

        public void Reply(object message) => onReply(message);

        public void Gone(string reason)
        {
            _goneReason = reason;
            if (!_opened.TrySetException(new ActorNotFoundException($"{OwnerPath}: {reason}")))
                onGone();
        }

        public void WaitOpened(TimeSpan within)
        {
            if (!_opened.Task.Wait(within))
            {
                relay._routes.TryRemove(Id, out _);
                relay._link.TrySend(new HandleRelease(Id));
                throw new TimeoutException($"The pool's process did not find {OwnerPath} within {within.TotalSeconds:0.#} s.");
            }
            _opened.Task.GetAwaiter().GetResult();
        }

        public void Tell(object message)
        {
            if (_goneReason is null)
                relay._link.TrySend(new HandleTell(Id, Payload.Serialize(message)));
        }

        public async Task<TReply> Ask<TReply>(object message, TimeSpan timeout, CancellationToken cancellationToken)
        {
            // A one-shot client of its own: the answer is this request's, not the client's.
            var answer = new TaskCompletionSource<object>(TaskCreationOptions.RunContinuationsAsynchronously);
            var ask = relay.Open(OwnerPath, timeout == Timeout.InfiniteTimeSpan ? TimeSpan.FromMinutes(10) : timeout,
                m => answer.TrySetResult(m), () => answer.TrySetException(new ActorPoolException($"{OwnerPath} is gone: the process that owns it has ended.")));
            try
            {
                await ask._opened.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
                ask.Tell(message);
                var reply = await answer.Task.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
                return reply is TReply typed ? typed : throw new InvalidOperationException($"Unexpected answer {reply.GetType().Name} from {OwnerPath}.");
            }
            catch (TimeoutException e)
            {
                throw new AskTimeoutException($"No answer from {OwnerPath} within {timeout}: {e.Message}");
            }
            finally
            {
                if (relay._routes.TryRemove(ask.Id, out _))
                    relay._link.TrySend(new HandleRelease(ask.Id));
            }
        }
    }
}

/// <summary>
/// The pool's process's end of the handle relay, one per worker data link, called on the link's reader thread: each
/// of the worker's clients gets a <see cref="HandleProxy"/> in this process's host, which the owner sees as the
/// client (it watches it: when the link closes the proxies stop, and a lock their worker held is released as
/// abandoned). Only owners of this process's host are relayed, only the messages clients send, and at most
/// <see cref="MaxClients"/> at a time.
/// </summary>
internal sealed class HandleRelay(DataLink link)
{
    public const int MaxClients = 4096;

    private readonly Dictionary<int, IActorRef> _proxies = new();

    private static readonly HashSet<Type> ClientMessages =
    [
        typeof(QPut), typeof(QCreditRequest), typeof(QCreditCancel), typeof(QReturnCredits), typeof(QTake), typeof(QCancelTake),
        typeof(QReturnItems), typeof(QComplete), typeof(QGetStatus), typeof(QTaskDone), typeof(QJoin),
        typeof(LAcquire), typeof(LCancel), typeof(LRelease), typeof(LInUse),
    ];

    /// <summary>Whether <paramref name="frame"/> is the relay's (handled here), not the coordinator's.</summary>
    public static bool IsRelayFrame(object frame) => frame is HandleOpen or HandleTell or HandleRelease;

    public void OnFrame(object frame)
    {
        switch (frame)
        {
            case HandleOpen m:
                Open(m);
                break;
            case HandleTell m when _proxies.TryGetValue(m.Client, out var proxy):
                // Only what a client sends: anything else is dropped before it reaches an owner.
                if (Payload.Deserialize(m.Message) is { } message && ClientMessages.Contains(message.GetType()))
                    proxy.Tell(Local.Of(message));
                break;
            case HandleRelease m when _proxies.Remove(m.Client, out var proxy):
                proxy.Tell(PoisonPill.Instance);
                break;
        }
    }

    private void Open(HandleOpen m)
    {
        if (_proxies.ContainsKey(m.Client))
            return;
        if (Runtime.StartedHost is not { } host || !IsOwnerOf(host, m.Owner))
        {
            link.TrySend(new HandleGone(m.Client, "no queue or lock of the pool's process has that address"));
            return;
        }
        if (_proxies.Count >= MaxClients)
        {
            link.TrySend(new HandleGone(m.Client, $"a worker may have at most {MaxClients} queue and lock clients at once"));
            return;
        }
        var within = TimeSpan.FromMilliseconds(Math.Clamp(m.WithinMs, 1, 600_000));
        _proxies[m.Client] = host.ActorOf(Props.Create(() => new HandleProxy(link, m.Client, m.Owner, within)));
    }

    /// <summary>A queue's or the lock manager's path in <paramref name="host"/>: nothing else is relayed to.</summary>
    private static bool IsOwnerOf(ActorSystem host, string owner)
    {
        if (owner.Length > 512 || !ActorPath.TryParse(owner, out var path)
            || !path.Address.Equals(((ExtendedActorSystem)host).Provider.DefaultAddress))
            return false;
        var elements = path.Elements;
        return elements.Count switch
        {
            2 => elements[0] == "user" && elements[1].StartsWith("actorpool-queue-", StringComparison.Ordinal),
            3 => elements[0] == "user" && elements[1] == Runtime.LockManagerName && elements[2] == "singleton",
            _ => false,
        };
    }

    /// <summary>The link closed (the worker ended): its clients are gone, and their owners see it.</summary>
    public void OnClosed()
    {
        foreach (var proxy in _proxies.Values)
            proxy.Tell(PoisonPill.Instance);
        _proxies.Clear();
    }
}

/// <summary>
/// One worker client, as its owner sees it: finds the owner (again until <c>within</c>, as a singleton may still be
/// starting), then passes the client's messages to it and its answers back over the link; watches it.
/// </summary>
internal sealed class HandleProxy : ReceiveActor, IWithTimers
{
    private readonly string _ownerPath;
    private IActorRef? _owner;

    public ITimerScheduler Timers { get; set; } = null!;

    private sealed class Find
    {
        public static readonly Find Instance = new();
    }

    public HandleProxy(DataLink link, int client, string ownerPath, TimeSpan within)
    {
        _ownerPath = ownerPath;
        var deadline = DateTime.UtcNow + within;
        Receive<Local>(m => m.IsGenuine && _owner is not null, m => _owner!.Tell(m.Message, Self));
        Receive<ActorIdentity>(m =>
        {
            if (_owner is not null)
                return;
            if (m.Subject is { } owner && owner.Path.Address.HasLocalScope)
            {
                _owner = owner;
                Context.Watch(owner);
                Timers.CancelAll();
                link.TrySend(new HandleOpened(client));
            }
            else if (DateTime.UtcNow > deadline)
            {
                link.TrySend(new HandleGone(client, "not found"));
                Context.Stop(Self);
            }
        });
        Receive<Terminated>(m => m.ActorRef.Equals(_owner), _ =>
        {
            link.TrySend(new HandleGone(client, "the owner is gone"));
            Context.Stop(Self);
        });
        Receive<Find>(_ => Context.ActorSelection(ownerPath).Tell(new Identify(null), Self));
        // The owner's answers (only the owner's: the sender is checked) go back to the worker.
        ReceiveAny(m =>
        {
            if (_owner is not null && Sender.Equals(_owner))
                link.TrySend(new HandleReply(client, Payload.Serialize(m)));
        });
    }

    protected override void PreStart()
    {
        Context.ActorSelection(_ownerPath).Tell(new Identify(null), Self);
        Timers.StartPeriodicTimer("find", Find.Instance, TimeSpan.FromMilliseconds(50));
    }
}
