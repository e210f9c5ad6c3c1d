using ActorPool.Execution;
using ActorPool.Protocol;

namespace ActorPool.Coordination;

/// <summary>
/// Where the coordinator delivers a call's outcomes. Implemented by the caller-side call object; methods are
/// called from the coordinator's thread and must only hand the data over (they never block).
/// </summary>
internal interface ICallSink
{
    /// <summary>All <paramref name="count"/> items of the chunk ran; <paramref name="results"/> is a serialized <c>TResult[]</c>.</summary>
    void ChunkCompleted(int index, int count, Blob results);

    /// <summary>The chunk's worker was lost and its <paramref name="count"/> items are queued again.</summary>
    void ChunkRetried(int index, int count);

    /// <summary>
    /// The first <paramref name="completed"/> items ran (their results in <paramref name="partialResults"/>), then
    /// the chunk failed with <paramref name="error"/> (<see cref="TaskFailedException"/> or <see cref="WorkerLostException"/>).
    /// </summary>
    void ChunkFailed(int index, Blob partialResults, int completed, Exception error);

    /// <summary>The whole call failed (broken or terminated pool). No further outcome follows.</summary>
    void CallFailed(Exception error);
}

// ---------------------------------------------------------------- caller -> coordinator (local only)

/// <summary>
/// A new call; its chunks follow as <see cref="SubmitChunk"/>. <paramref name="GangSize"/> &gt; 0 makes the call one
/// group of that many chunks (a paired batch): dispatched together, each to its own idle worker, once all are in.
/// </summary>
internal sealed record StartCall(long CallId, Execution.SerializedFunction Function, ICallSink Sink, int GangSize = 0, int SoftMs = 0, int HardMs = 0, long? TotalTasks = null, string? TraceParent = null);

/// <summary>A lazy call's input has been read to its end: it has <paramref name="TotalTasks"/> tasks (for status).</summary>
internal sealed record InputEnded(long CallId, long TotalTasks);

/// <summary>One chunk of a call: a serialized <c>T[]</c> of <paramref name="Count"/> inputs, the first at <paramref name="FirstIndex"/>.</summary>
internal sealed record SubmitChunk(ChunkId Chunk, Blob Items, long FirstIndex, int Count);

/// <summary>The caller no longer wants the call's outcomes (consumed, failed or cancelled): drop what is queued.</summary>
internal sealed record EndCall(long CallId);

/// <summary>Reply <see cref="PoolCounts"/> once every worker is ready (or at once if the pool is broken).</summary>
internal sealed class WaitForWorkers
{
    public static WaitForWorkers Instance { get; } = new();
    private WaitForWorkers() { }
}

/// <summary>Reply <see cref="PoolCounts"/> once no call is active.</summary>
internal sealed class WaitForIdle
{
    public static WaitForIdle Instance { get; } = new();
    private WaitForIdle() { }
}

/// <summary>Retire every worker (no replacements); reply <see cref="PoolCounts"/> when all have exited.</summary>
internal sealed class StopWorkers
{
    public static StopWorkers Instance { get; } = new();
    private StopWorkers() { }
}

/// <summary>Fail every call, kill every worker now; reply <see cref="PoolCounts"/>.</summary>
internal sealed class TerminateWorkers
{
    public static TerminateWorkers Instance { get; } = new();
    private TerminateWorkers() { }
}

/// <summary>Reply <see cref="PoolCounts"/> at once.</summary>
internal sealed class GetCounts
{
    public static GetCounts Instance { get; } = new();
    private GetCounts() { }
}

/// <summary>Reply <see cref="ActorPool.PoolStatus"/> at once (the user's <c>GetStatus</c>).</summary>
internal sealed class GetPoolStatus
{
    public static GetPoolStatus Instance { get; } = new();
    private GetPoolStatus() { }
}

/// <summary>
/// A snapshot of the pool for waiters. <see cref="RegisteredWorkers"/>: workers registered through Akka.Remote (and
/// death-watched), which a spawned worker does in the background once it works over its data link.
/// </summary>
internal sealed record PoolCounts(int ReadyWorkers, int LiveWorkers, int ActiveCalls, string? BrokenReason, int RegisteredWorkers = 0);

// ---------------------------------------------------------------- launcher -> coordinator

/// <summary>A spawned worker process started.</summary>
internal sealed record WorkerLaunched(string WorkerId, int Pid);

/// <summary>A worker process could not be started at all.</summary>
internal sealed record WorkerLaunchFailed(string WorkerId, string Reason);

/// <summary>A spawned worker process exited; <paramref name="ErrorTail"/> is the end of its error output.</summary>
internal sealed record WorkerExited(string WorkerId, int ExitCode, string ErrorTail);

/// <summary>A spawned worker was not ready within actorpool.worker.startup-timeout.</summary>
internal sealed record WorkerStartupTimedOut(string WorkerId);

/// <summary>A worker connected its data link (see <see cref="DataLinkListener"/>).</summary>
internal sealed record DataLinkOpened(string WorkerId, DataLink Link);

/// <summary>A connection to the data link did not present the pool's secret and was closed.</summary>
internal sealed record DataLinkRefused(string? WorkerId);

/// <summary>A message a worker sent on its data link.</summary>
internal sealed record FromWorker(string WorkerId, object Message);

/// <summary>The pool's tasks use queues or locks of these hosts: its spawned workers connect to them ahead of use.</summary>
internal sealed record WarmHosts(string[] Hosts);
