using ActorPool.Protocol;

namespace ActorPool.Locks;

/// <summary>
/// What a named lock is: a mutex (one holder; <see cref="Reentrant"/> for an RLock), a bounded semaphore of
/// <see cref="Permits"/> held by processes, or (<see cref="Counting"/>) a counting semaphore whose value starts at
/// <see cref="Permits"/> and that any process may release (Python's <c>Semaphore</c>).
/// </summary>
internal sealed record LockSpec(string Name, bool Exclusive, int Permits, bool Reentrant = false, bool Counting = false) : IPoolMessage;

// A process talks to the lock manager through one client actor: its identity as a holder, watched by the manager.

/// <summary>
/// The client asks for one permit of a lock; answered by <see cref="LGrant"/> (or <see cref="LRefused"/>) when it is its
/// turn. <paramref name="Wait"/> false: <see cref="LBusy"/> at once rather than waiting.
/// </summary>
internal sealed record LAcquire(LockSpec Lock, long Id, bool Wait) : IPoolMessage;

/// <summary>An <see cref="LAcquire"/> that would not wait found no free permit.</summary>
internal sealed record LBusy(string Name, long Id) : IPoolMessage;

/// <summary>
/// The permit is this process's. <paramref name="Token"/> is the fencing token, higher than any before it for this
/// lock. <paramref name="Abandoned"/>: the previous holder's process ended while holding it.
/// <paramref name="Revoke"/>: others wait, give it back after use (do not keep it cached).
/// </summary>
internal sealed record LGrant(string Name, long Id, long Token, bool Abandoned, bool Revoke) : IPoolMessage;

internal sealed record LRefused(string Name, long Id, string Reason) : IPoolMessage;

/// <summary>The client no longer waits for <see cref="LAcquire"/> <paramref name="Id"/>.</summary>
internal sealed record LCancel(string Name, long Id) : IPoolMessage;

/// <summary>
/// A permit goes back. <paramref name="LastToken"/>: the highest fencing token this process handed out for it (it
/// numbers re-acquisitions of a cached mutex itself).
/// </summary>
internal sealed record LRelease(string Name, long LastToken) : IPoolMessage;

/// <summary>Another process waits: give the cached mutex back (now if idle, else at its release).</summary>
internal sealed record LRevoke(string Name) : IPoolMessage;

/// <summary>Whether the process's cached mutex is in use now (an abandoned lock is one whose holder died in use).</summary>
internal sealed record LInUse(string Name, bool InUse, long Seq) : IPoolMessage;

internal sealed record LInUseAck(string Name, long Seq) : IPoolMessage;
