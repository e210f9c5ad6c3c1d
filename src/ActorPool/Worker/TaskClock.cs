using System.Diagnostics;
using ActorPool.Protocol;

namespace ActorPool.Worker;

/// <summary>
/// A worker's view of the task it runs: its time limits and cancellation. The runner thread marks tasks begun and
/// ended; the watchdog finds a task past its hard limit; any thread may end a call (its running task's token fires,
/// its queued chunks are skipped).
/// </summary>
internal sealed class TaskClock
{
    /// <summary>What a hard-limit <see cref="TaskError"/> carries as its stack trace: it has none worth sending.</summary>
    public const string HardMarker = "actorpool:hard-time-limit";

    private readonly Lock _gate = new();
    private RunChunk? _chunk;
    private int _index = -1;
    private long _taskStarted;
    private Array? _results;
    private CancellationTokenSource? _task;
    private CancellationTokenSource? _call;
    private bool _abandoned;
    private ActivityContext? _traceParent;
    private Activity? _span;
    private readonly HashSet<long> _ended = [];
    private readonly Queue<long> _endedOrder = new();

    /// <summary>
    /// Whether this chunk's tasks need <see cref="BeginTask"/> / <see cref="EndTask"/>: a time limit, a trace or a duration
    /// listener. Without, the runner loops over them plainly (only the runner thread reads this).
    /// </summary>
    public bool TimesEachTask { get; private set; } = true;

    /// <summary>The running chunk's call token: it fires when the call ends (a task without its own token gets this one).</summary>
    public CancellationToken CallToken { get; private set; }

    /// <summary>The chunk about to run; false when its call has ended (skip it).</summary>
    public bool BeginChunk(RunChunk chunk)
    {
        lock (_gate)
        {
            if (_ended.Contains(chunk.Chunk.CallId))
                return false;
            _chunk = chunk;
            _call = new CancellationTokenSource();
            _traceParent = chunk.TraceParent is { } tp && ActivityContext.TryParse(tp, null, isRemote: true, out var parent) ? parent : null;
            TimesEachTask = chunk.SoftMs > 0 || chunk.HardMs > 0 || _traceParent is not null || Diagnostics.PoolMetrics.TaskDuration.Enabled;
            CallToken = _call.Token;
            return true;
        }
    }

    public void EndChunk()
    {
        lock (_gate)
        {
            _chunk = null;
            _call?.Dispose();
            _call = null;
        }
    }

    /// <summary>Task <paramref name="index"/> of the chunk starts; <paramref name="results"/> holds those before it. Its token.</summary>
    public CancellationToken BeginTask(int index, Array results)
    {
        CancellationToken token;
        (ActivityContext Parent, RunChunk Chunk)? traced = null;
        lock (_gate)
        {
            _index = index;
            _results = results;
            _taskStarted = Stopwatch.GetTimestamp();
            // A task's own token source only for a soft limit; otherwise the call's token serves (it fires when the call
            // ends): a map of a million tiny tasks allocates nothing per task.
            if (_chunk is { SoftMs: > 0 } chunk)
            {
                _task = _call is null ? new CancellationTokenSource() : CancellationTokenSource.CreateLinkedTokenSource(_call.Token);
                _task.CancelAfter(chunk.SoftMs);
                token = _task.Token;
            }
            else
            {
                token = _call?.Token ?? CancellationToken.None;
            }
            if (_traceParent is { } parent && _chunk is { } current)
                traced = (parent, current);
        }
        // Listeners (an exporter) run outside the lock: the watchdog and call cancellation must never wait on them.
        if (traced is { } t)
        {
            var span = Diagnostics.PoolTracing.StartTask(t.Parent, t.Chunk.Chunk.CallId, t.Chunk.FirstIndex + index, t.Chunk.Attempt);
            lock (_gate)
                _span = span;
        }
        return token;
    }

    /// <summary>
    /// The task ended with <paramref name="error"/>: a cancellation by the soft limit becomes the timeout error the
    /// caller sees (a <see cref="TaskTimeoutException"/>); anything else is returned as it is.
    /// </summary>
    public Exception Classify(Exception error)
    {
        error = ClassifyLocked(error);
        Activity? span;
        lock (_gate)
            span = _span;
        Diagnostics.PoolTracing.Fail(span, error);
        return error;
    }

    private Exception ClassifyLocked(Exception error)
    {
        lock (_gate)
        {
            if (error is OperationCanceledException && _chunk is { SoftMs: > 0 } chunk && _task is { IsCancellationRequested: true } &&
                _call is { IsCancellationRequested: false })
            {
                var ran = Stopwatch.GetElapsedTime(_taskStarted);
                error = new TaskTimeoutException(_index, $"ran past its soft limit of {Seconds(chunk.SoftMs)}: its token was cancelled and it stopped after {ran.TotalSeconds:0.###} s",
                    "", TimeSpan.FromMilliseconds(chunk.SoftMs), hard: false);
            }
            return error;
        }
    }

    public void EndTask()
    {
        Activity? span;
        var ran = TimeSpan.Zero;
        var measured = false;
        lock (_gate)
        {
            span = _span;
            _span = null;
            // The warm-up chunk (call 0) is no task of the user's.
            if (_chunk is { Chunk.CallId: not 0 } && Diagnostics.PoolMetrics.TaskDuration.Enabled)
                (ran, measured) = (Stopwatch.GetElapsedTime(_taskStarted), true);
            _index = -1;
            _results = null;
            _task?.Dispose();
            _task = null;
        }
        span?.Dispose();
        if (measured)
            Diagnostics.PoolMetrics.TaskDuration.Record(ran.TotalSeconds);
    }

    /// <summary>Any thread: the call ended (finished, failed or cancelled by its caller).</summary>
    public void CallEnded(long callId)
    {
        lock (_gate)
        {
            if (_ended.Add(callId))
            {
                _endedOrder.Enqueue(callId);
                if (_endedOrder.Count > 4096)
                    _ended.Remove(_endedOrder.Dequeue());
            }
            if (_chunk?.Chunk.CallId == callId)
                _call?.Cancel();
        }
    }

    /// <summary>
    /// The watchdog: the running task when it is past its hard limit (then this clock is abandoned: the task's thread
    /// is left to the process's end), else null.
    /// </summary>
    public (RunChunk Chunk, int Index, Array Results, TimeSpan Ran)? Overdue()
    {
        (RunChunk Chunk, int Index, Array Results, TimeSpan Ran) overdue;
        Activity? span;
        lock (_gate)
        {
            if (_abandoned || _chunk is not { HardMs: > 0 } chunk || _index < 0 || _results is null)
                return null;
            var ran = Stopwatch.GetElapsedTime(_taskStarted);
            if (ran.TotalMilliseconds < chunk.HardMs)
                return null;
            _abandoned = true;
            overdue = (chunk, _index, _results, ran);
            span = _span;
            _span = null;
        }
        // The task never ends by itself: its span ends here, failed, before the worker goes.
        if (span is not null)
        {
            Diagnostics.PoolTracing.Fail(span, new TaskTimeoutException(overdue.Chunk.FirstIndex + overdue.Index,
                $"ran past its hard limit of {Seconds(overdue.Chunk.HardMs)}", "", TimeSpan.FromMilliseconds(overdue.Chunk.HardMs), hard: true));
            span.Dispose();
        }
        if (Diagnostics.PoolMetrics.TaskDuration.Enabled)
            Diagnostics.PoolMetrics.TaskDuration.Record(overdue.Ran.TotalSeconds);
        return overdue;
    }

    /// <summary>A task of this worker ran past its hard limit: nothing the runner does any more is sent.</summary>
    public bool Abandoned
    {
        get { lock (_gate) return _abandoned; }
    }

    public static string Seconds(int ms) => ms % 1000 == 0 ? $"{ms / 1000} s" : $"{ms / 1000.0:0.###} s";
}
