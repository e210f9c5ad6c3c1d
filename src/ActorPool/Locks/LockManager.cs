using Akka.Actor;
using Akka.Event;
using Akka.Remote;

namespace ActorPool.Locks;

/// <summary>
/// Holds every named lock of the program's cluster (it runs as a cluster singleton). Permits go to waiting processes
/// first come, first served, each with a fencing token higher than the last. A mutex stays with the process that
/// holds it (cached) until another process asks for it, so one process locking again and again pays no round trip.
/// A holder whose process ends (its connection drops, or death watch says so) loses its permits at once; the next
/// grant says the lock was abandoned when it was in use.
/// </summary>
internal sealed class LockManager : ReceiveActor
{
    private readonly Dictionary<string, LockState> _locks = new();
    private readonly HashSet<IActorRef> _watched = new();
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public LockManager()
    {
        Receive<LAcquire>(OnAcquire);
        Receive<LCancel>(m =>
        {
            if (_locks.TryGetValue(m.Name, out var l))
                l.Waiters.RemoveAll(w => w.Client.Equals(Sender) && w.Id == m.Id);
        });
        Receive<LRelease>(OnRelease);
        Receive<LInUse>(m =>
        {
            if (_locks.TryGetValue(m.Name, out var l) && l.Holders.ContainsKey(Sender))
                l.InUse[Sender] = m.InUse;
            Sender.Tell(new LInUseAck(m.Name, m.Seq));
        });
        Receive<Terminated>(m => OnClientGone(c => c.Equals(m.ActorRef)));
        Receive<DisassociatedEvent>(m => OnClientGone(c => c.Path.Address.Equals(m.RemoteAddress)));
    }

    public static Props Props() => Akka.Actor.Props.Create(() => new LockManager());

    protected override void PreStart() => Context.System.EventStream.Subscribe(Self, typeof(DisassociatedEvent));

    protected override void PostStop() => Context.System.EventStream.Unsubscribe(Self);

    private void OnAcquire(LAcquire m)
    {
        if (!_watched.Contains(Sender) && _watched.Add(Sender))
            Context.Watch(Sender);
        if (!_locks.TryGetValue(m.Lock.Name, out var l))
            _locks[m.Lock.Name] = l = new LockState(m.Lock);
        else if (l.Spec != m.Lock)
        {
            Sender.Tell(new LRefused(m.Lock.Name, m.Id,
                $"'{m.Lock.Name}' is already a {l.Spec.Describe()}; it cannot also be a {m.Lock.Describe()}."));
            return;
        }
        if (!m.Wait && (l.Waiters.Count > 0 || l.Free == 0))
        {
            Sender.Tell(new LBusy(m.Lock.Name, m.Id));
            return;
        }
        l.Waiters.Add((Sender, m.Id));
        Serve(l);
    }

    private void OnRelease(LRelease m)
    {
        if (_locks.TryGetValue(m.Name, out var counting) && counting.Spec.Counting)
        {
            counting.Value++; // any process may release a counting semaphore, held or not
            Serve(counting);
            return;
        }
        if (!_locks.TryGetValue(m.Name, out var l) || !l.Holders.TryGetValue(Sender, out var held))
            return; // a stale release (the process was taken for gone): nothing it holds
        if (held == 1)
        {
            l.Holders.Remove(Sender);
            l.InUse.Remove(Sender);
        }
        else
        {
            l.Holders[Sender] = held - 1;
        }
        l.Token = Math.Max(l.Token, m.LastToken);
        Serve(l);
    }

    private void Serve(LockState l)
    {
        while (l.Waiters.Count > 0 && l.Free > 0)
        {
            var (client, id) = l.Waiters[0];
            l.Waiters.RemoveAt(0);
            if (l.Spec.Counting)
            {
                l.Value--; // its value, not a holder's permit: nobody gets it back when the taker's process ends
                client.Tell(new LGrant(l.Spec.Name, id, ++l.Token, false, Revoke: false));
                continue;
            }
            l.Holders[client] = l.Holders.GetValueOrDefault(client) + 1;
            l.InUse[client] = true;
            var abandoned = l.Abandoned;
            l.Abandoned = false;
            client.Tell(new LGrant(l.Spec.Name, id, ++l.Token, abandoned, Revoke: l.Waiters.Count > 0));
        }
        // A mutex cached by a process while others wait: ask for it back.
        if (l.Spec.Exclusive && l.Waiters.Count > 0)
            foreach (var holder in l.Holders.Keys)
                holder.Tell(new LRevoke(l.Spec.Name));
    }

    private void OnClientGone(Func<IActorRef, bool> gone)
    {
        foreach (var client in _watched.Where(gone).ToList())
        {
            _watched.Remove(client);
            Context.Unwatch(client);
            foreach (var l in _locks.Values)
            {
                l.Waiters.RemoveAll(w => w.Client.Equals(client));
                if (!l.Holders.Remove(client))
                    continue;
                if (l.InUse.Remove(client, out var inUse) && inUse)
                {
                    l.Abandoned = true;
                    _log.Warning("Lock '{0}' was held by {1}, which is gone: released, and its next holder is told it was abandoned.", l.Spec.Name, client.Path.Address);
                }
                Serve(l);
            }
        }
    }

    private sealed class LockState(LockSpec spec)
    {
        public LockSpec Spec { get; } = spec;
        public long Token { get; set; }
        public bool Abandoned { get; set; }
        public Dictionary<IActorRef, int> Holders { get; } = new();
        public Dictionary<IActorRef, bool> InUse { get; } = new();
        public List<(IActorRef Client, long Id)> Waiters { get; } = new();

        /// <summary>A counting semaphore's value.</summary>
        public int Value { get; set; } = spec.Permits;

        public int Free => Spec.Counting ? Value : Spec.Permits - Holders.Values.Sum();
    }
}

internal static class LockSpecExtensions
{
    public static string Describe(this LockSpec spec) =>
        spec.Exclusive ? (spec.Reentrant ? "reentrant lock" : "lock")
        : spec.Counting ? $"semaphore of initial value {spec.Permits}" : $"bounded semaphore of {spec.Permits}";
}
