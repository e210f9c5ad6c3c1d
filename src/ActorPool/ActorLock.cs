using ActorPool.Hosting;
using ActorPool.Locks;

namespace ActorPool;

/// <summary>
/// A held lock or semaphore permit, for <c>using</c> / <c>await using</c>: disposing it releases. It carries the
/// grant's fencing token (higher than every earlier grant of the lock) and whether the previous holder's process
/// ended while holding it.
/// </summary>
public sealed class LockHolder : IDisposable, IAsyncDisposable
{
    private readonly Action _release;
    private int _released;

    internal LockHolder(long fencingToken, bool abandoned, Action release)
    {
        FencingToken = fencingToken;
        Abandoned = abandoned;
        _release = release;
    }

    /// <summary>Increases with every grant of the lock: pass it to a store that must refuse a stale holder's writes.</summary>
    public long FencingToken { get; }

    /// <summary>
    /// The previous holder's process ended while it held the lock (the counterpart of .NET's <c>AbandonedMutexException</c>):
    /// what it protected may be half-updated.
    /// </summary>
    public bool Abandoned { get; }

    /// <summary>Releases (once; later calls do nothing).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
            _release();
    }

    /// <inheritdoc cref="Dispose"/>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// What <see cref="ActorLock"/>, <see cref="ActorRLock"/>, <see cref="ActorSemaphore"/> and <see cref="ActorBoundedSemaphore"/> share: a named lock held by
/// the lock manager, a cluster-singleton actor of the process that created it, usable from every process it is
/// passed to (as a task's argument, through the initializer, or to an <see cref="ActorProcess"/>).
/// </summary>
public abstract class ActorLockBase : IProcessHandle
{
    private readonly string _managerPath;
    private readonly string _name;
    private readonly bool _exclusive;
    private readonly int _permits;

    private readonly bool _reentrant;
    private readonly bool _counting;

    private protected ActorLockBase(string? name, bool exclusive, int permits, bool reentrant = false, bool counting = false)
    {
        _reentrant = reentrant;
        _counting = counting;
        if (name is not null && string.IsNullOrWhiteSpace(name))
            throw new ArgumentException("A lock's name must not be blank (or pass null for a new anonymous lock).", nameof(name));
        _name = name ?? $"lock-{Guid.NewGuid():N}";
        _exclusive = exclusive;
        _permits = permits;
        _managerPath = Runtime.LockManagerPath;
    }

    string IProcessHandle.OwnerPath => _managerPath;

    /// <summary>The lock's name: the same name in the same program is the same lock.</summary>
    public string Name => _name;

    // This process's client of the lock, found once per handle (a handle sent to another process finds its own there).
    [Hyperion.Ignore]
    private LockClient? _client;

    private protected LockClient Client => _client ??= LockClient.For(_managerPath, new LockSpec(_name, _exclusive, _permits, _reentrant, _counting));

    /// <summary>Acquires (at most <paramref name="timeout"/>); on success records the grant's token and abandonment.</summary>
    private async Task<LockGrant?> TryAcquireAsync(TimeSpan? timeout, CancellationToken ct)
    {
        timeout = Waiting.CheckTimeout(timeout);
        LockGrant grant;
        try
        {
            grant = _reentrant
                ? await Client.AcquireReentrantAsync(timeout, ct).ConfigureAwait(false)
                : await Client.AcquireAsync(timeout, ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return null;
        }
        FencingToken = grant.Token;
        Abandoned = grant.Abandoned;
        return grant;
    }

    /// <summary>
    /// Python's <c>acquire(blocking=True, timeout=None)</c>; with <c>blocking: false</c> the timeout is ignored, as
    /// <c>multiprocessing</c>'s locks do: it answers at once.
    /// </summary>
    private protected bool AcquireBlocking(bool blocking, TimeSpan? timeout)
    {
        // The mutex this process holds idle (released, not asked back): taken here, with no task and no round trip.
        if (!_reentrant && Client.TryTakeLeased() is { } leased)
        {
            FencingToken = leased.Token;
            Abandoned = false;
            return true;
        }
        return TryAcquireAsync(blocking ? timeout : TimeSpan.Zero, CancellationToken.None).GetAwaiter().GetResult() is not null;
    }

    /// <summary>Acquires and returns the hold, released by <paramref name="release"/> when disposed.</summary>
    private protected async Task<LockHolder> HoldAsync(TimeSpan? timeout, CancellationToken ct, Action release)
    {
        if (await TryAcquireAsync(timeout, ct).ConfigureAwait(false) is not { } grant)
            throw new TimeoutException($"{this} was not acquired within {timeout}.");
        return new LockHolder(grant.Token, grant.Abandoned, release);
    }

    /// <summary>The fencing token of this process's latest grant of the lock.</summary>
    public long FencingToken { get; private set; }

    /// <summary>This process's latest grant found the lock abandoned (its previous holder's process ended holding it).</summary>
    public bool Abandoned { get; private set; }

    /// <inheritdoc/>
    public override string ToString() => $"{GetType().Name}('{_name}')";
}

/// <summary>
/// Python's <c>Lock</c> across processes: one holder at a time, waiters served first come, first served. Holding it
/// again from the same process after a release costs no round trip while no other process waits, and for up to 5 ms
/// after one asks (a hand-over is a round trip through the manager; the other process gets it then).
/// </summary>
public sealed class ActorLock : ActorLockBase
{
    /// <summary>A lock named <paramref name="name"/> (null: a new anonymous one), held by this process's lock manager.</summary>
    public ActorLock(string? name = null) : base(name, exclusive: true, permits: 1)
    {
    }

    /// <summary>
    /// Python's <c>acquire(blocking=True, timeout=None)</c>: true once held; false if <paramref name="blocking"/> is false and
    /// it is held elsewhere, or if <paramref name="timeout"/> passed first.
    /// </summary>
    public bool Acquire(bool blocking = true, TimeSpan? timeout = null) => AcquireBlocking(blocking, timeout);

    /// <summary>Waits for the lock (at most <paramref name="timeout"/>) and returns it held, to release by disposing.</summary>
    /// <exception cref="TimeoutException">Not acquired within <paramref name="timeout"/>.</exception>
    public Task<LockHolder> AcquireAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        HoldAsync(timeout, cancellationToken, Release);

    /// <summary>Blocking form of <see cref="AcquireAsync"/>, for <c>using (lk.Lock()) { ... }</c>.</summary>
    public LockHolder Lock(TimeSpan? timeout = null) => AcquireAsync(timeout).GetAwaiter().GetResult();

    /// <summary>Releases the lock (Python's <c>release()</c>).</summary>
    /// <exception cref="InvalidOperationException">It is not held by this process.</exception>
    public void Release() => Client.Release();
}

/// <summary>
/// Python's <c>RLock</c> across processes: the thread that holds it may acquire it again (a count), and only that thread
/// may release it.
/// </summary>
public sealed class ActorRLock : ActorLockBase
{
    /// <summary>A reentrant lock named <paramref name="name"/> (null: a new anonymous one).</summary>
    public ActorRLock(string? name = null) : base(name, exclusive: true, permits: 1, reentrant: true)
    {
    }

    /// <summary>How many times the current thread holds it without releasing (0 when this thread does not hold it).</summary>
    public int RecursionCount => Client.RecursionCount;

    /// <summary>Python's <c>acquire(blocking=True, timeout=None)</c>; again from the holder thread: the count goes up at once.</summary>
    public bool Acquire(bool blocking = true, TimeSpan? timeout = null) => AcquireBlocking(blocking, timeout);

    /// <summary>Acquires and returns it held, to release by disposing (on the same thread).</summary>
    /// <exception cref="TimeoutException">Not acquired within <paramref name="timeout"/>.</exception>
    public LockHolder Lock(TimeSpan? timeout = null) => HoldAsync(timeout, CancellationToken.None, Release).GetAwaiter().GetResult();

    /// <summary>Releases one level (Python's <c>release()</c>); the lock goes when the count reaches 0.</summary>
    /// <exception cref="InvalidOperationException">The current thread does not hold it (Python's RuntimeError).</exception>
    public void Release() => Client.ReleaseReentrant();
}

/// <summary>
/// Python's <c>Semaphore(value)</c> across processes: a counter that <see cref="Acquire"/> takes one from (waiting,
/// first come first served, while it is 0) and <see cref="Release"/> adds one to, from any process, whether or not
/// that process acquired it; the value may rise above where it started. <c>new ActorSemaphore(0)</c> is the usual
/// signal between processes: one waits in <c>Acquire</c>, another calls <c>Release</c>. Nothing is given back when a
/// process that acquired it ends (it holds nothing): for permits that come back, use <see cref="ActorBoundedSemaphore"/>.
/// </summary>
public sealed class ActorSemaphore : ActorLockBase
{
    /// <summary>A semaphore whose value starts at <paramref name="value"/> (0 or more), named <paramref name="name"/> (null: a new anonymous one).</summary>
    public ActorSemaphore(int value = 1, string? name = null) : base(name, exclusive: false, permits: CheckValue(value), counting: true)
    {
    }

    private static int CheckValue(int value) => value >= 0
        ? value
        : throw new ArgumentOutOfRangeException(nameof(value), value, "A semaphore's initial value must be 0 or more (Python: ValueError).");

    /// <summary>Python's <c>acquire(blocking=True, timeout=None)</c>: takes one from the value.</summary>
    public bool Acquire(bool blocking = true, TimeSpan? timeout = null) => AcquireBlocking(blocking, timeout);

    /// <summary>Waits to take one and returns it, released (one added back) by disposing.</summary>
    /// <exception cref="TimeoutException">None within <paramref name="timeout"/>.</exception>
    public Task<LockHolder> AcquireAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        HoldAsync(timeout, cancellationToken, Release);

    /// <summary>Adds one to the value (Python's <c>release()</c>), waking the first waiter of any process.</summary>
    public void Release() => Client.Release();
}

/// <summary>
/// Python's <c>BoundedSemaphore(n)</c> across processes: up to <c>n</c> permits held at once, waiters served first come,
/// first served; a process may release only what it acquired, and the permits of a process that ends come back.
/// </summary>
public sealed class ActorBoundedSemaphore : ActorLockBase
{
    /// <summary>A semaphore of <paramref name="permits"/> named <paramref name="name"/> (null: a new anonymous one).</summary>
    public ActorBoundedSemaphore(int permits, string? name = null) : base(name, exclusive: false, permits: CheckPermits(permits))
    {
    }

    private static int CheckPermits(int permits) => permits >= 1
        ? permits
        : throw new ArgumentOutOfRangeException(nameof(permits), permits, "A bounded semaphore needs at least 1 permit (for a signal that starts at 0, use ActorSemaphore(0)).");

    /// <summary>Python's <c>acquire(blocking=True, timeout=None)</c> for one permit.</summary>
    public bool Acquire(bool blocking = true, TimeSpan? timeout = null) => AcquireBlocking(blocking, timeout);

    /// <summary>Waits for a permit and returns it held, to release by disposing.</summary>
    /// <exception cref="TimeoutException">None within <paramref name="timeout"/>.</exception>
    public Task<LockHolder> AcquireAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        HoldAsync(timeout, cancellationToken, Release);

    /// <summary>Gives one permit back (Python's <c>release()</c>).</summary>
    /// <exception cref="InvalidOperationException">This process holds no permit (Python's BoundedSemaphore ValueError).</exception>
    public void Release() => Client.Release();
}
