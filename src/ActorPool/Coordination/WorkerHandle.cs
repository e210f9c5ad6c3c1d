using ActorPool.Protocol;
using Akka.Actor;

namespace ActorPool.Coordination;

/// <summary>
/// Where a worker is in its life. Transitions, all in <see cref="WorkerHandle"/>:
/// <code>
///  Launching ──attach (data link or registration)──▶ Linked ──WorkerReady──▶ Warming ──warm-up answered──▶ Ready
///      └──────────────┴─────────────────┴────────────────────┴──▶ Draining (its node leaves: no new work)
///      └──────────────┴─────────────────┴────────────────────┴──────┴──▶ Retiring (task limit, pool closing)
///  any ──exit, loss, removal──▶ Gone
/// </code>
/// </summary>
internal enum WorkerPhase
{
    Launching,
    Linked,
    Warming,
    Ready,
    Draining,
    Retiring,
    Gone,
}

/// <summary>
/// The coordinator's record of one worker: its phase, how to reach it, and what it holds. Two facts outlive the phase
/// they were learnt in: whether it was ever ready (a worker lost before that is a start failure, not a loss) and
/// whether its warm-up is still out (a worker drained or retired while warming up still has its answer recognised).
/// </summary>
internal sealed class WorkerHandle(string id)
{
    public string Id { get; } = id;
    public WorkerPhase Phase { get; private set; } = WorkerPhase.Launching;

    /// <summary>It answered its warm-up once: it started, whatever came after.</summary>
    public bool WasReady { get; private set; }

    /// <summary>Its warm-up chunk is out and unanswered.</summary>
    public bool WarmUpOutstanding { get; private set; }

    /// <summary>It was killed for not being ready within the start-up timeout.</summary>
    public bool StartTimedOut { get; private set; }

    public int? Pid { get; set; }
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>Its worker actor, once registered through Akka.Remote (death watch both ways).</summary>
    public IActorRef? Ref => _remote?.Target;

    /// <summary>Its data link, once connected.</summary>
    public DataLink? Link { get; private set; }

    private RemoteChannel? _remote;

    /// <summary>
    /// Sends to the worker over its preferred channel: the data link while it is open, else Akka.Remote. False when
    /// neither can take it (the worker is gone; its exit or death watch says so).
    /// </summary>
    public bool Send(object message) =>
        Link?.TrySend(message) == true || _remote?.TrySend(message) == true;

    public bool IsLinked => Ref is not null || Link is not null;

    /// <summary>When its data link last carried anything from it (Stopwatch timestamp): what the pool's pings watch.</summary>
    public long LastHeard { get; private set; } = System.Diagnostics.Stopwatch.GetTimestamp();

    public void Heard(long now) => LastHeard = now;

    /// <summary>It was killed for answering no ping within the unresponsive timeout.</summary>
    public bool Unresponsive { get; private set; }

    public void MarkUnresponsive() => Unresponsive = true;

    /// <summary>Not started by this pool (a node's worker, or one that registered on its own).</summary>
    public bool External { get; init; }

    /// <summary>A worker node's worker: the cluster member it runs on.</summary>
    public Address? Node { get; init; }

    /// <summary>It takes no new work: its node leaves, or it retires.</summary>
    public bool Leaving => Phase is WorkerPhase.Draining or WorkerPhase.Retiring;

    public HashSet<ChunkId> Running { get; } = new();
    public int TasksAssigned { get; set; }
    public int TasksDone { get; set; }

    /// <summary>Items (not chunks) it finished, for status.</summary>
    public long ItemsDone { get; set; }

    /// <summary>The pool's worker place it fills (1..processes; 0 for a node worker) and how many held it before.</summary>
    public int Slot { get; init; }
    public int Restarts { get; init; }

    public bool AtTaskLimit(int max) => max > 0 && TasksAssigned >= max;

    public string Describe() => Pid is { } pid ? $"{Id} (pid {pid})" : Id;

    public void Attach(DataLink link)
    {
        Link = link;
        LastHeard = System.Diagnostics.Stopwatch.GetTimestamp();
        Linked();
    }

    /// <summary>Its registration through Akka.Remote: <paramref name="coordinator"/> is who the worker hears from.</summary>
    public void Attach(IActorRef worker, IActorRef coordinator)
    {
        _remote = new RemoteChannel(worker, coordinator);
        Linked();
    }

    private void Linked()
    {
        if (Phase == WorkerPhase.Launching)
            Phase = WorkerPhase.Linked;
    }

    /// <summary>WorkerReady: send the warm-up now? Only once, to a linked worker that has not been ready.</summary>
    public bool BeginWarmUp()
    {
        if (!IsLinked || WasReady || WarmUpOutstanding || Phase == WorkerPhase.Gone)
            return false;
        WarmUpOutstanding = true;
        if (Phase is WorkerPhase.Launching or WorkerPhase.Linked)
            Phase = WorkerPhase.Warming;
        return true;
    }

    /// <summary>The warm-up's answer: false when none was out. A warming worker is then ready; a leaving one stays leaving.</summary>
    public bool EndWarmUp()
    {
        if (!WarmUpOutstanding)
            return false;
        WarmUpOutstanding = false;
        WasReady = true;
        if (Phase == WorkerPhase.Warming)
            Phase = WorkerPhase.Ready;
        return true;
    }

    /// <summary>Its node leaves: false when it was leaving (or gone) already.</summary>
    public bool Drain()
    {
        if (Leaving || Phase == WorkerPhase.Gone)
            return false;
        Phase = WorkerPhase.Draining;
        return true;
    }

    /// <summary>It retires (task limit, pool closing): false when it was retiring (or gone) already.</summary>
    public bool Retire()
    {
        if (Phase is WorkerPhase.Retiring or WorkerPhase.Gone)
            return false;
        Phase = WorkerPhase.Retiring;
        return true;
    }

    public void MarkStartTimedOut() => StartTimedOut = true;

    public void Gone() => Phase = WorkerPhase.Gone;

    /// <summary>The public state status shows.</summary>
    public ActorPool.WorkerState State => Phase switch
    {
        WorkerPhase.Retiring => ActorPool.WorkerState.Retiring,
        WorkerPhase.Draining => ActorPool.WorkerState.Draining,
        WorkerPhase.Ready => Running.Count > 0 ? ActorPool.WorkerState.Busy : ActorPool.WorkerState.Idle,
        _ => ActorPool.WorkerState.Starting,
    };
}
