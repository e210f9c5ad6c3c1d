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
internal sealed class LockClient : RemoteClient
{
    private static readonly ConcurrentDictionary<(string Manager, LockSpec Spec), LockClient> Clients = new();

    private readonly LockSpec _spec;

    private bool _leased;
    private bool _inUse;
    private bool _revokePending;

    // How long this process may go on taking the mutex after another process asked for it: a hand-over costs a round
    // trip through the manager, so under contention the mutex moves between processes at most every HoldWindow, not at
    // every release. The unfairness is bounded, where a POSIX semaphore's
    // (multiprocessing.Lock's) is not; waiters of one process are still served in order.
    private static readonly long HoldWindow = System.Diagnostics.Stopwatch.Frequency / 200; // 5 ms
    private long _revokedAt;
    private Timer? _holdTimer;
    private bool _holdArmed;

    /// <summary>No other process waits for the mutex, or it asked less than <see cref="HoldWindow"/> ago (under the gate).</summary>
    private bool Holding => !_revokePending || System.Diagnostics.Stopwatch.GetTimestamp() - _revokedAt < HoldWindow;

    private void MarkRevoked()
    {
        if (!_revokePending)
            _revokedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        _revokePending = true;
    }

    /// <summary>At the end of the hold window: the mutex, idle, goes back (one in use goes back at its release).</summary>
    private void ArmGiveBack()
    {
        if (_holdArmed)
            return; // once per request of the other process's: a timer change at every release would cost more than the release
        _holdArmed = true;
        var left = (_revokedAt + HoldWindow - System.Diagnostics.Stopwatch.GetTimestamp()) * 1000.0 / System.Diagnostics.Stopwatch.Frequency;
        _holdTimer ??= new Timer(static c => ((LockClient)c!).GiveBackIfIdle(), this, Timeout.Infinite, Timeout.Infinite);
        _holdTimer.Change(TimeSpan.FromMilliseconds(Math.Max(1, Math.Ceiling(left))), Timeout.InfiniteTimeSpan);
    }

    private void GiveBackIfIdle()
    {
        lock (Gate)
        {
            _holdArmed = false;
            if (_leased && _revokePending && !_inUse)
                GiveBack();
        }
    }
    private long _lastToken;
    private int _held; // semaphore permits this process holds
    private readonly WaiterQueue<bool, LockGrant> _waiters;
    private long _request;
    private long _lastId;
    private bool _reportInFlight;
    private bool _reportedInUse;
    private long _reportSeq;

    // The singleton starts once its one-member cluster is up: a moment after the first lock is made.
    private LockClient(string managerPath, LockSpec spec) : base(managerPath, TimeSpan.FromSeconds(20))
    {
        _spec = spec;
        _waiters = new(Gate);
    }

    public static LockClient For(string managerPath, LockSpec spec) =>
        Clients.GetOrAdd((managerPath, spec), static key => new LockClient(key.Manager, key.Spec));

    protected override Exception Unreachable(Exception cause) => new ActorPoolException(
        $"The lock manager at {OwnerPath} cannot be reached: the process that created the lock has ended, or this one cannot connect to it.", cause);

    protected internal override void OnReply(object message)
    {
        switch (message)
        {
            case LGrant m: OnGrant(m); break;
            case LBusy m: OnBusy(m); break;
            case LRefused m: OnRefused(m); break;
            case LRevoke: OnRevoke(); break;
            case LInUseAck: OnInUseAck(); break;
        }
    }

    /// <summary>The mutex leased here and idle, nobody of this process waiting for it: taken now; else null (acquire as usual).</summary>
    public LockGrant? TryTakeLeased()
    {
        lock (Gate)
        {
            if (!_spec.Exclusive || !_leased || _inUse || !Holding || _waiters.Count > 0)
                return null;
            _inUse = true;
            ReportInUse();
            return new LockGrant(++_lastToken, false);
        }
    }

    public Task<LockGrant> AcquireAsync(TimeSpan? timeout, CancellationToken ct)
    {
        EnsureConnected();
        WaiterQueue<bool, LockGrant>.Waiter waiter;
        lock (Gate)
        {
            if (_spec.Exclusive && _leased && !_inUse && Holding && _waiters.Count == 0)
            {
                _inUse = true;
                ReportInUse();
                return Task.FromResult(new LockGrant(++_lastToken, false));
            }
            // Not now, known here: the lock is this process's and in use (or going back), or others of this process
            // wait ahead. A no-wait acquire fails at once, as Python's acquire(False) does, without a round trip.
            if (timeout == TimeSpan.Zero && (_waiters.Count > 0 || (_spec.Exclusive && _leased)))
                return Task.FromException<LockGrant>(new TimeoutException());
            waiter = _waiters.Add(false, noWait: timeout == TimeSpan.Zero);
            if (_request == 0 && !(_spec.Exclusive && _leased))
                SendAcquire(wait: !waiter.NoWait);
        }
        return Wait(waiter, timeout, ct);
    }

    private Task<LockGrant> Wait(WaiterQueue<bool, LockGrant>.Waiter waiter, TimeSpan? timeout, CancellationToken ct) =>
        _waiters.WaitAsync(waiter, timeout, ct, last =>
        {
            if (last && _request != 0)
            {
                Tell(new LCancel(_spec.Name, _request));
                _request = 0; // a grant already on its way is kept (cached) or given back
            }
        });

    private void SendAcquire(bool wait)
    {
        _request = ++_lastId;
        Tell(new LAcquire(_spec, _request, wait));
    }

    // An RLock's owner in this process: a thread, and how many times it holds the lock.
    private int _ownerThread;
    private int _recursion;

    /// <summary>How many times the current thread holds this reentrant lock (0 if it does not).</summary>
    public int RecursionCount
    {
        get
        {
            lock (Gate)
                return _ownerThread == Environment.CurrentManagedThreadId ? _recursion : 0;
        }
    }

    /// <summary>An RLock's acquire: again from the owner thread, the count goes up at once; else as a mutex.</summary>
    public async Task<LockGrant> AcquireReentrantAsync(TimeSpan? timeout, CancellationToken ct)
    {
        var me = Environment.CurrentManagedThreadId;
        lock (Gate)
        {
            if (_ownerThread == me)
            {
                _recursion++;
                return new LockGrant(_lastToken, false);
            }
        }
        var grant = await AcquireAsync(timeout, ct).ConfigureAwait(false);
        lock (Gate)
        {
            _ownerThread = me;
            _recursion = 1;
        }
        return grant;
    }

    /// <summary>An RLock's release: only by the owner thread; the lock goes when the count reaches 0.</summary>
    public void ReleaseReentrant()
    {
        lock (Gate)
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
        EnsureConnected(); // a process may release a counting semaphore it never acquired
        lock (Gate)
        {
            if (!_spec.Exclusive)
            {
                if (_spec.Counting)
                {
                    Tell(new LRelease(_spec.Name, 0)); // any process may raise a counting semaphore's value
                    return;
                }
                if (_held == 0)
                    throw new InvalidOperationException($"Bounded semaphore '{_spec.Name}' was released more times than this process acquired it (Python's ValueError).");
                _held--;
                Tell(new LRelease(_spec.Name, 0));
                return;
            }
            if (!_inUse)
                throw new InvalidOperationException($"Release of lock '{_spec.Name}', which is not held (Python's 'release unlocked lock').");
            _inUse = false;
            if (!Holding)
                GiveBack();
            else if (_waiters.Count > 0)
            {
                _inUse = true;
                _waiters.TryServe(new LockGrant(++_lastToken, false));
            }
            else if (_revokePending)
                ArmGiveBack();
            ReportInUse();
        }
    }

    /// <summary>The cached mutex goes back to the manager; waiters of this process queue there again.</summary>
    private void GiveBack()
    {
        _leased = false;
        _revokePending = false;
        _holdArmed = false;
        Tell(new LRelease(_spec.Name, _lastToken));
        if (_waiters.Count > 0 && _request == 0)
            SendAcquire(wait: true);
    }

    private void OnGrant(LGrant m)
    {
        lock (Gate)
        {
            if (m.Id == _request)
                _request = 0;
            if (!_spec.Exclusive)
            {
                _held++;
                if (_waiters.TryServe(new LockGrant(m.Token, m.Abandoned)))
                {
                    if (_waiters.Count > 0 && _request == 0)
                        SendAcquire(wait: true);
                }
                else
                {
                    _held--; // nobody waits any more
                    Tell(new LRelease(_spec.Name, 0));
                }
                return;
            }
            _leased = true;
            _lastToken = m.Token;
            _reportedInUse = true; // the manager counts a fresh grant as in use
            if (m.Revoke)
                MarkRevoked();
            if (_waiters.Count > 0)
            {
                _inUse = true;
                _waiters.TryServe(new LockGrant(m.Token, m.Abandoned));
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
        lock (Gate)
        {
            if (m.Id == _request)
                _request = 0;
            _waiters.FailNoWait(static () => new TimeoutException());
            if (_waiters.Count > 0 && _request == 0 && !(_spec.Exclusive && _leased))
                SendAcquire(wait: true);
        }
    }

    private void OnRefused(LRefused m)
    {
        lock (Gate)
        {
            if (m.Id == _request)
                _request = 0;
            _waiters.FailAll(new InvalidOperationException(m.Reason));
        }
    }

    private void OnRevoke()
    {
        lock (Gate)
        {
            if (!_spec.Exclusive || !_leased)
                return;
            if (_inUse)
                MarkRevoked();
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
        Tell(new LInUse(_spec.Name, _inUse, ++_reportSeq));
    }

    private void OnInUseAck()
    {
        lock (Gate)
        {
            _reportInFlight = false;
            ReportInUse();
        }
    }

    /// <summary>The manager's process has ended: nothing will grant, so nobody may keep waiting.</summary>
    protected internal override void OnOwnerGone()
    {
        lock (Gate)
            _waiters.FailAll(new ActorPoolException($"The lock manager of '{_spec.Name}' is gone: the process that created the lock has ended."));
    }
}
