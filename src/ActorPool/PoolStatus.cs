using System.Globalization;
using System.Text;

namespace ActorPool;

/// <summary>What a worker is doing, in <see cref="WorkerStatus"/>.</summary>
public enum WorkerState
{
    /// <summary>Its process is starting, registering or running the pool's initializer.</summary>
    Starting,

    /// <summary>Ready, running nothing.</summary>
    Idle,

    /// <summary>Running a task (<see cref="WorkerStatus.Task"/>).</summary>
    Busy,

    /// <summary>Its node is leaving the cluster: it finishes what it holds and takes no new work.</summary>
    Draining,

    /// <summary>Leaving the pool (max-tasks-per-child reached, or the pool is closing); a replacement starts unless closing.</summary>
    Retiring,
}

/// <summary>The task a worker runs: the first input of its chunk, in its call, and for how long it has run.</summary>
/// <param name="CallId">The call (see <see cref="CallStatus.CallId"/>).</param>
/// <param name="FirstTask">Index, in the call's input, of the chunk's first item.</param>
/// <param name="Count">Items in the chunk.</param>
/// <param name="Attempt">1 for a first run; more when a lost worker's chunk runs again.</param>
/// <param name="RunningFor">Time since it was sent to the worker.</param>
public sealed record RunningTask(long CallId, long FirstTask, int Count, int Attempt, TimeSpan RunningFor)
{
    /// <inheritdoc />
    public override string ToString() =>
        (Count == 1 ? $"task {FirstTask}" : $"tasks {FirstTask}..{FirstTask + Count - 1}") + $" of call {CallId}" + (Attempt > 1 ? $" (attempt {Attempt})" : "");
}

/// <summary>One worker, as the coordinator sees it.</summary>
/// <param name="Id">The worker's id in this pool (w1, w2, …; a replacement gets a new one).</param>
/// <param name="Slot">Which of the pool's worker places it fills (1..processes); a replacement takes its predecessor's.
/// 0 for a node worker.</param>
/// <param name="Pid">Its process id (null while it is still being started).</param>
/// <param name="Host">The host its process runs on.</param>
/// <param name="StartMethod">spawn, forkserver or thread, or node for a worker of a standalone worker node.</param>
/// <param name="State">What it is doing.</param>
/// <param name="Task">The task it runs (the oldest, when it holds several), or null.</param>
/// <param name="HeldChunks">Chunks sent to it and not finished (running, and queued in the worker).</param>
/// <param name="TasksDone">Tasks (items) it has finished.</param>
/// <param name="Restarts">How many workers held its slot before it (crashes, kills, time limits, max-tasks-per-child).</param>
public sealed record WorkerStatus(string Id, int Slot, int? Pid, string Host, string StartMethod, WorkerState State, RunningTask? Task,
    int HeldChunks, long TasksDone, int Restarts);

/// <summary>One running call (a map, imap, apply, or one batch of a paired map), as the coordinator sees it.</summary>
/// <param name="CallId">The call's id (unique in the calling process).</param>
/// <param name="Completed">Tasks (items) that returned a result.</param>
/// <param name="Total">Tasks in the call, when known (a lazy imap's input may not have been read to its end).</param>
/// <param name="Failed">Tasks that raised, timed out, or were lost past the retry limit.</param>
/// <param name="Retried">Tasks queued again after their worker was lost.</param>
/// <param name="QueuedChunks">Chunks waiting for a worker.</param>
/// <param name="RunningChunks">Chunks held by workers.</param>
/// <param name="Elapsed">Time since the call started.</param>
public sealed record CallStatus(long CallId, long Completed, long? Total, long Failed, long Retried, int QueuedChunks, int RunningChunks, TimeSpan Elapsed);

/// <summary>
/// A snapshot of a pool (<see cref="Pool.GetStatus"/>, or the node program's <c>status</c> command against a running
/// coordinator): every worker with its process, state, current task and history, and every running call with its
/// progress. <see cref="ToString"/> prints it as a table.
/// </summary>
/// <param name="State">The pool's lifecycle state.</param>
/// <param name="StartMethod">The pool's start method.</param>
/// <param name="Processes">Workers the pool keeps.</param>
/// <param name="Coordinator">The coordinator's address.</param>
/// <param name="Workers">Every worker, started or starting, by slot.</param>
/// <param name="Calls">Every running call, oldest first.</param>
/// <param name="BrokenReason">Why the pool is broken, or null.</param>
/// <param name="TakenAt">When the snapshot was taken.</param>
public sealed record PoolStatus(PoolState State, string StartMethod, int Processes, string Coordinator, IReadOnlyList<WorkerStatus> Workers,
    IReadOnlyList<CallStatus> Calls, string? BrokenReason, DateTimeOffset TakenAt)
{
    /// <summary>The snapshot as a readable table: a line for the pool, one per worker, one per call.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"Pool {State.ToString().ToLowerInvariant()}, {StartMethod}, {Workers.Count(w => w.State is WorkerState.Idle or WorkerState.Busy)} of {Processes} worker(s) ready, {Calls.Count} call(s) running; coordinator {Coordinator}");
        sb.AppendLine();
        if (BrokenReason is not null)
            sb.AppendLine($"BROKEN: {BrokenReason}");
        var workers = new List<string[]> { new[] { "WORKER", "SLOT", "PID", "HOST", "START", "STATE", "TASK", "FOR", "HELD", "DONE", "RESTARTS" } };
        foreach (var w in Workers)
            workers.Add([w.Id, w.Slot == 0 ? "-" : w.Slot.ToString(CultureInfo.InvariantCulture), w.Pid?.ToString(CultureInfo.InvariantCulture) ?? "-", w.Host,
                w.StartMethod, w.State.ToString().ToLowerInvariant(), w.Task?.ToString() ?? "-", w.Task is { } t ? Seconds(t.RunningFor) : "-",
                w.HeldChunks.ToString(CultureInfo.InvariantCulture), w.TasksDone.ToString(CultureInfo.InvariantCulture), w.Restarts.ToString(CultureInfo.InvariantCulture)]);
        Table(sb, workers);
        if (Calls.Count > 0)
        {
            var calls = new List<string[]> { new[] { "CALL", "DONE", "TOTAL", "FAILED", "RETRIED", "QUEUED", "RUNNING", "ELAPSED" } };
            foreach (var c in Calls)
                calls.Add([c.CallId.ToString(CultureInfo.InvariantCulture), c.Completed.ToString(CultureInfo.InvariantCulture), c.Total?.ToString(CultureInfo.InvariantCulture) ?? "?",
                    c.Failed.ToString(CultureInfo.InvariantCulture), c.Retried.ToString(CultureInfo.InvariantCulture), c.QueuedChunks.ToString(CultureInfo.InvariantCulture),
                    c.RunningChunks.ToString(CultureInfo.InvariantCulture), Seconds(c.Elapsed)]);
            Table(sb, calls);
        }
        return sb.ToString();
    }

    private static string Seconds(TimeSpan t) => t.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + "s";

    private static void Table(StringBuilder sb, List<string[]> rows)
    {
        var widths = new int[rows[0].Length];
        foreach (var row in rows)
            for (var i = 0; i < row.Length; i++)
                widths[i] = Math.Max(widths[i], row[i].Length);
        foreach (var row in rows)
        {
            for (var i = 0; i < row.Length; i++)
                sb.Append(i == row.Length - 1 ? row[i] : row[i].PadRight(widths[i] + 2));
            sb.AppendLine();
        }
    }
}
