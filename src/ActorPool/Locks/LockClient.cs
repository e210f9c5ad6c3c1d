using System.Collections.Concurrent;
using ActorPool.Hosting;
using Akka.Actor;

namespace ActorPool.Locks;

/// <summary>What an acquisition got: its fencing token, and whether the previous holder died holding the lock.</summary>
internal readonly record struct LockGrant(long Token, bool Abandoned);

/// <summary>
/// One process's side of one named lock, shared by every handle to it in the process. A mutex granted to this
/// process stays here (cached) after its release until the manager asks for it back, so locking again costs no
/// round trip; re-acquisitions are numbered here, above the manager's last token, and the manager continues above
/// the highest at the give-back. Waiters of this process are served in order, and none jumps ahead of another
/// process once that one waits. Whether the cached mutex is in use is reported to the manager (coalesced), so a
/// holder that dies is told apart from one that had it idle.
/// </summary>
internal sealed class LockClient
{
    private static readonly ConcurrentDictionary<(string Manager, LockSpec Spec), LockClient> Clients = new();

    private readonly LockSpec _spec;
    private readonly string _managerPath;
    private readonly Lazy<(IActorRef Manager, IActorRef Self)> _connection;
    private readonly Lock _gate = new();

    private bool _leased;
    private bool _inUse;
    private bool _revokePending;
    private long _lastToken;
    private int _held; // semaphore permits this process holds
    private readonly LinkedList<Waiter> _waiters = new();
    private long _request;
    private long _lastId;
    private bool _reportInFlight;
    private bool _reportedInUse;
    private long _reportSeq;

    private LockClient(string managerPath, LockSpec spec)
    {
        _managerPath = managerPath;
        _spec = spec;
        _connection = new Lazy<(IActorRef, IActorRef)>(Connect);
    }

    public static LockClient For(string managerPath, LockSpec spec) =>
        Clients.GetOrAdd((managerPath, spec), static key => new LockClient(key.Manager, key.Spec));

    private (IActorRef, IActorRef) Connect()
    {
        var system = Runtime.System;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            try
            {
                // The singleton starts once its one-member cluster is up: a moment after the first lock is made.
                var manager = system.ActorSelection(_managerPath).ResolveOne(TimeSpan.FromSeconds(2)).GetAwaiter().GetResult();
                return (manager, system.ActorOf(Props.Create(() => new ClientActor(this, manager))));
            }
            catch (Exception e) when (e is ActorNotFoundException or TimeoutException or AskTimeoutException)
            {
                if (DateTime.UtcNow > deadline)
                    throw new ActorPoolException(
                        $"The lock manager at {_managerPath} cannot be reached: the process that created the lock has ended, or this one cannot connect to it.", e);
                Thread.Sleep(50);
            }
        }
    }

    private IActorRef Manager => _connection.Value.Manager;

    private IActorRef Self => _connection.Value.Self;

    public Task<LockGrant> AcquireAsync(TimeSpan? timeout, CancellationToken ct)
    {
        _ = _connection.Value;
        Waiter waiter;
        lock (_gate)
        {
            if (_spec.Exclusive && _leased && !_inUse && !_revokePending && _waiters.Count == 0)
            {
                _inUse = true;
                ReportInUse();
                return Task.FromResult(new LockGrant(++_lastToken, false));
            }
            waiter = new Waiter(timeout == TimeSpan.Zero);
            _waiters.AddLast(waiter);
            if (_request == 0 && !(_spec.Exclusive && _leased))
                SendAcquire(wait: !waiter.NoWait);
        }
        return Wait(waiter, timeout, ct);
    }

    private Task<LockGrant> Wait(Waiter waiter, TimeSpan? timeout, CancellationToken ct) =>
        Waiting.ForAsync(waiter.Done.Task, waiter.NoWait, timeout, ct, () =>
        {
            lock (_gate)
            {
                if (!_waiters.Remove(waiter))
                    return false;
                if (_waiters.Count == 0 && _request != 0)
                {
                    Manager.Tell(new LCancel(_spec.Name, _request), Self);
                    _request = 0; // a grant already on its way is kept (cached) or given back
                }
                return true;
            }
        });

    private void SendAcquire(bool wait)
    {
        _request = ++_lastId;
        Manager.Tell(new LAcquire(_spec, _request, wait), Self);
    }

    // An RLock's owner in this process: a thread, and how many times it holds the lock.
    private int _ownerThread;
    private int _recursion;

    /// <summary>How many times the current thread holds this reentrant lock (0 if it does not).</summary>
    public int RecursionCount
    {
        get
        {
            lock (_gate)
                return _ownerThread == Environment.CurrentManagedThreadId ? _recursion : 0;
        }
    }

    /// <summary>An RLock's acquire: again from the owner thread, the count goes up at once; else as a mutex.</summary>
    public async Task<LockGrant> AcquireReentrantAsync(TimeSpan? timeout, CancellationToken ct)
    {
        var me = Environment.CurrentManagedThreadId;
        lock (_gate)
        {
            if (_ownerThread == me)
            {
                _recursion++;
                return new LockGrant(_lastToken, false);
            }
        }
        var grant = await AcquireAsync(timeout, ct).ConfigureAwait(false);
        lock (_gate)
        {
            _ownerThread = me;
            _recursion = 1;
        }
        return grant;
    }

    /// <summary>An RLock's release: only by the owner thread; the lock goes when the count reaches 0.</summary>
    public void ReleaseReentrant()
    {
        lock (_gate)
        {
            if (_ownerThread != Environment.CurrentManagedThreadId || _recursion == 0)
                throw new InvalidOperationException($"RLock '{_spec.Name}' can only be released by the thread that holds it (Python: 'cannot release un-acquired lock').");
            if (--_recursion > 0)
                return;
            _ownerThread = 0;
        }
        Release();
    }

    public void Release()
    {
        lock (_gate)
        {
            if (!_spec.Exclusive)
            {
                if (_held == 0)
                    throw new InvalidOperationException($"Semaphore '{_spec.Name}' was released more times than this process acquired it.");
                _held--;
                Manager.Tell(new LRelease(_spec.Name, 0), Self);
                return;
            }
            if (!_inUse)
                throw new InvalidOperationException($"Release of lock '{_spec.Name}', which is not held (Python's 'release unlocked lock').");
            _inUse = false;
            if (_revokePending)
                GiveBack();
            else if (_waiters.First is { } next)
            {
                _waiters.RemoveFirst();
                _inUse = true;
                next.Value.Done.TrySetResult(new LockGrant(++_lastToken, false));
            }
            ReportInUse();
        }
    }

    /// <summary>The cached mutex goes back to the manager; waiters of this process queue there again.</summary>
    private void GiveBack()
    {
        _leased = false;
        _revokePending = false;
        Manager.Tell(new LRelease(_spec.Name, _lastToken), Self);
        if (_waiters.Count > 0 && _request == 0)
            SendAcquire(wait: true);
    }

    private void OnGrant(LGrant m)
    {
        lock (_gate)
        {
            if (m.Id == _request)
                _request = 0;
            if (!_spec.Exclusive)
            {
                _held++;
                if (_waiters.First is { } w)
                {
                    _waiters.RemoveFirst();
                    w.Value.Done.TrySetResult(new LockGrant(m.Token, m.Abandoned));
                    if (_waiters.Count > 0 && _request == 0)
                        SendAcquire(wait: true);
                }
                else
                {
                    _held--; // nobody waits any more
                    Manager.Tell(new LRelease(_spec.Name, 0), Self);
                }
                return;
            }
            _leased = true;
            _lastToken = m.Token;
            _reportedInUse = true; // the manager counts a fresh grant as in use
            if (m.Revoke)
                _revokePending = true;
            if (_waiters.First is { } waiter)
            {
                _waiters.RemoveFirst();
                _inUse = true;
                waiter.Value.Done.TrySetResult(new LockGrant(m.Token, m.Abandoned));
            }
            else if (_revokePending)
            {
                GiveBack();
            }
            ReportInUse();
        }
    }

    private void OnBusy(LBusy m)
    {
        lock (_gate)
        {
            if (m.Id == _request)
                _request = 0;
            for (var node = _waiters.First; node is not null;)
            {
                var next = node.Next;
                if (node.Value.NoWait)
                {
                    _waiters.Remove(node);
                    node.Value.Done.TrySetException(new TimeoutException());
                }
                node = next;
            }
            if (_waiters.Count > 0 && _request == 0 && !(_spec.Exclusive && _leased))
                SendAcquire(wait: true);
        }
    }

    private void OnRefused(LRefused m)
    {
        lock (_gate)
        {
            if (m.Id == _request)
                _request = 0;
            foreach (var w in _waiters)
                w.Done.TrySetException(new InvalidOperationException(m.Reason));
            _waiters.Clear();
        }
    }

    private void OnRevoke()
    {
        lock (_gate)
        {
            if (!_spec.Exclusive || !_leased)
                return;
            if (_inUse)
                _revokePending = true;
            else
                GiveBack();
        }
    }

    /// <summary>Tells the manager whether the cached mutex is in use, one message at a time, the latest state only.</summary>
    private void ReportInUse()
    {
        if (!_spec.Exclusive || !_leased || _reportInFlight || _inUse == _reportedInUse)
            return;
        _reportInFlight = true;
        _reportedInUse = _inUse;
        Manager.Tell(new LInUse(_spec.Name, _inUse, ++_reportSeq), Self);
    }

    private void OnInUseAck()
    {
        lock (_gate)
        {
            _reportInFlight = false;
            ReportInUse();
        }
    }

    private sealed record Waiter(bool NoWait)
    {
        public TaskCompletionSource<LockGrant> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>This process's address for the manager: it forwards the manager's answers to the client.</summary>
    /// <summary>The manager's process has ended: nothing will grant, so nobody may keep waiting.</summary>
    private void OnManagerGone()
    {
        lock (_gate)
        {
            foreach (var w in _waiters)
                w.Done.TrySetException(new ActorPoolException(
                    $"The lock manager of '{_spec.Name}' is gone: the process that created the lock has ended."));
            _waiters.Clear();
        }
    }

    private sealed class ClientActor : ReceiveActor
    {
        public ClientActor(LockClient client, IActorRef manager)
        {
            Receive<Terminated>(_ => client.OnManagerGone());
            Context.Watch(manager);
            Receive<LGrant>(client.OnGrant);
            Receive<LBusy>(client.OnBusy);
            Receive<LRefused>(client.OnRefused);
            Receive<LRevoke>(_ => client.OnRevoke());
            Receive<LInUseAck>(_ => client.OnInUseAck());
        }
    }
}
