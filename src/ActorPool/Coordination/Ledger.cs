using System.Diagnostics;
using ActorPool.Execution;
using ActorPool.Protocol;

namespace ActorPool.Coordination;

/// <summary>
/// What the pool has in flight, and who runs what: the open calls, their chunks, the queue of chunks waiting for a
/// worker, the ready workers in round-robin order, each call's window, groups (paired batches), retries and
/// exactly-once results. Plain C#: the coordinator actor owns one and calls it from its own thread; nothing here
/// sends a message or knows a transport (chunks go out through the <c>deliver</c> callback of <see cref="Dispatch"/>).
/// <code>
///  Open ─ Submit ─▶ pending FIFO ─ Dispatch (window per worker, groups all at once) ─▶ worker.Running
///                       ▲                                                              │
///                       └── Lost: re-queued at the front (attempts ≤ retries), else ◀──┤
///                           WorkerLostException                                        │
///  sink ◀── Complete: the first result for a chunk from the worker that holds it ◀─────┘ (others dropped)
/// </code>
/// </summary>
internal sealed class Ledger(int maxTaskRetries, int maxWindow, int maxTasksPerChild)
{
    private readonly Dictionary<long, CallEntry> _calls = new();
    private readonly Dictionary<ChunkId, ChunkEntry> _chunks = new();
    private readonly LinkedList<ChunkId> _pending = new();
    private readonly List<WorkerHandle> _ready = new();
    private int _next;
    private readonly Dictionary<WorkerHandle, List<RunChunk>> _outgoing = new();
    private readonly List<WorkerHandle> _staged = new();
    private int _idleHint;

    public int ActiveCalls => _calls.Count;
    public int Queued => _pending.Count;
    public int Running => _chunks.Count - _pending.Count;
    public int ReadyWorkers => _ready.Count;

    /// <summary>No chunk is queued or running (calls may still be open, waiting for input).</summary>
    public bool HoldsNoChunk => _chunks.Count == 0;

    /// <summary>When a chunk was last submitted or answered (Stopwatch timestamp).</summary>
    public long LastProgress { get; private set; } = Stopwatch.GetTimestamp();

    public bool IsOpen(long callId) => _calls.ContainsKey(callId);

    // ------------------------------------------------------------------ calls

    public void Open(StartCall m) =>
        _calls[m.CallId] = new CallEntry(m.CallId, m.Function, m.Sink, m.GangSize) { SoftMs = m.SoftMs, HardMs = m.HardMs, Total = m.TotalTasks, TraceParent = m.TraceParent };

    /// <summary>A lazy call's input ended: its size, for status.</summary>
    public void SetTotal(long callId, long total)
    {
        if (_calls.TryGetValue(callId, out var call))
            call.Total = total;
    }

    /// <summary>Queues a chunk; false when its call is not open (ended or failed) or the chunk is known already.</summary>
    public bool Submit(SubmitChunk m)
    {
        if (!_calls.TryGetValue(m.Chunk.CallId, out var call) || _chunks.ContainsKey(m.Chunk))
            return false;
        LastProgress = Stopwatch.GetTimestamp();
        _chunks[m.Chunk] = new ChunkEntry(m.Chunk, m.Items, m.FirstIndex, m.Count, call);
        call.Submitted++;
        Diagnostics.PoolMetrics.TasksSubmitted.Add(m.Count);
        _pending.AddLast(m.Chunk);
        return true;
    }

    /// <summary>
    /// Closes a call: what is queued is dropped, what runs finishes and its result is dropped. Returns the ids of the
    /// workers that were sent its function (they may forget it), or null when the call was not open.
    /// </summary>
    public IReadOnlyCollection<string>? End(long callId)
    {
        if (!_calls.Remove(callId, out var call))
            return null;
        for (var node = _pending.First; node is not null;)
        {
            var next = node.Next;
            if (node.Value.CallId == callId)
                _pending.Remove(node);
            node = next;
        }
        foreach (var id in _chunks.Keys.Where(k => k.CallId == callId).ToList())
            _chunks.Remove(id);
        return call.KnownBy;
    }

    /// <summary>Fails every open call with <paramref name="error"/> and forgets them.</summary>
    public void FailAll(Exception error)
    {
        foreach (var call in _calls.Values)
            call.Sink.CallFailed(error);
        _calls.Clear();
        _chunks.Clear();
        _pending.Clear();
    }

    // ------------------------------------------------------------------ workers

    /// <summary>A worker is ready: it takes work from the next dispatch on, last in the round-robin order.</summary>
    public void AddReady(WorkerHandle worker)
    {
        if (!_ready.Contains(worker))
        {
            _ready.Add(worker);
            _idleHint++;
        }
    }

    /// <summary>A worker takes no new work (draining, retiring, gone); what it runs stays its own until <see cref="Lost"/>.</summary>
    public void RemoveReady(WorkerHandle worker)
    {
        _ready.Remove(worker);
        _outgoing.Remove(worker);
        if (_next > _ready.Count)
            _next = 0;
    }

    /// <summary>
    /// A worker is gone: each chunk it held runs again (at the front of the queue) while its attempts are within the
    /// retry limit, else fails with <see cref="WorkerLostException"/>.
    /// </summary>
    public (int Requeued, int Failed) Lost(WorkerHandle worker, int? exitCode)
    {
        RemoveReady(worker);
        var requeued = 0;
        var failed = 0;
        foreach (var id in worker.Running)
        {
            if (!_chunks.TryGetValue(id, out var chunk) || chunk.Worker != worker)
                continue;
            chunk.Worker = null;
            if (chunk.Attempts > maxTaskRetries)
            {
                _chunks.Remove(id);
                chunk.Call.Sink.ChunkFailed(id.Index, Blob.Of([]), 0, new WorkerLostException(chunk.FirstIndex, worker.Describe(), exitCode, chunk.Attempts));
                Diagnostics.PoolMetrics.TasksFailed.Add(1);
                chunk.Call.Failed++;
                failed++;
            }
            else
            {
                _pending.AddFirst(id);
                Diagnostics.PoolMetrics.TasksRetried.Add(chunk.Count);
                chunk.Call.Sink.ChunkRetried(id.Index, chunk.Count);
                chunk.Call.Retried += chunk.Count;
                requeued++;
            }
        }
        worker.Running.Clear();
        return (requeued, failed);
    }

    // ------------------------------------------------------------------ dispatch

    /// <summary>
    /// Hands out queued chunks, first come first served, round-robin over the ready workers, a worker getting one only
    /// while it holds fewer than the call's window; a group starts only as a whole. Each worker's chunks of this
    /// round go to <paramref name="deliver"/> as one message (<see cref="RunChunk"/> or <see cref="RunChunks"/>).
    /// </summary>
    public void Dispatch(Action<WorkerHandle, object> deliver)
    {
        while (_pending.First is { } node && _ready.Count > 0)
        {
            var chunk = _chunks[node.Value];
            if (chunk.Call is { GangSize: > 0, GangStarted: false })
            {
                if (!TryStartGang(chunk.Call))
                    break; // what queued behind the group waits with it
                continue;
            }
            var worker = NextWorkerWithCredit(chunk.Call);
            if (worker is null)
                break;
            _pending.RemoveFirst();
            Stage(chunk, worker);
        }
        // Only the workers given something this round: the cost of a round does not grow with the pool.
        foreach (var worker in _staged)
        {
            var batch = _outgoing[worker];
            deliver(worker, batch.Count == 1 ? batch[0] : new RunChunks(batch.ToArray()));
            batch.Clear();
        }
        _staged.Clear();
    }

    /// <summary>
    /// Starts a group (paired batch) when all its chunks are in and as many workers are idle: every chunk goes out in
    /// this round, each to a different worker. A chunk retried later (its worker died) goes to an idle worker, which
    /// cannot be one running another chunk of the group; the caller's barrier does the rest.
    /// </summary>
    private bool TryStartGang(CallEntry call)
    {
        if (call.Submitted < call.GangSize)
            return false;
        var idle = new List<WorkerHandle>(call.GangSize);
        for (var k = 0; k < _ready.Count && idle.Count < call.GangSize; k++)
        {
            var w = _ready[(_next + k) % _ready.Count];
            if (w.Running.Count == 0 && !w.AtTaskLimit(maxTasksPerChild))
                idle.Add(w);
        }
        if (idle.Count < call.GangSize)
            return false;
        _next = (_ready.IndexOf(idle[^1]) + 1) % _ready.Count;
        call.GangStarted = true;
        var i = 0;
        for (var node = _pending.First; node is not null;)
        {
            var next = node.Next;
            if (node.Value.CallId == call.Id)
            {
                _pending.Remove(node);
                Stage(_chunks[node.Value], idle[i++]);
            }
            node = next;
        }
        return true;
    }

    private WorkerHandle? NextWorkerWithCredit(CallEntry call)
    {
        // An idle worker first: with a window above 1, round-robin alone would queue the chunk behind a worker that
        // runs a long task while another has nothing. The hint (idle workers seen since the last scan) keeps a
        // saturated pool from scanning for one each time.
        if (call.Window > 1 && _idleHint > 0)
        {
            for (var k = 0; k < _ready.Count; k++)
            {
                var i = (_next + k) % _ready.Count;
                var w = _ready[i];
                if (w.Running.Count == 0 && !w.AtTaskLimit(maxTasksPerChild))
                {
                    _idleHint--;
                    _next = i + 1;
                    return w;
                }
            }
            _idleHint = 0;
        }
        for (var k = 0; k < _ready.Count; k++)
        {
            var i = (_next + k) % _ready.Count;
            var w = _ready[i];
            if (w.Running.Count < call.Window && !w.AtTaskLimit(maxTasksPerChild))
            {
                _next = i + 1;
                return w;
            }
        }
        return null;
    }

    private void Stage(ChunkEntry chunk, WorkerHandle worker)
    {
        if (!_outgoing.TryGetValue(worker, out var batch))
            _outgoing[worker] = batch = [];
        if (batch.Count == 0)
            _staged.Add(worker);
        chunk.Attempts++;
        chunk.Worker = worker;
        chunk.DispatchedAt = Stopwatch.GetTimestamp();
        chunk.DispatchedToIdle = worker.Running.Count == 0;
        worker.Running.Add(chunk.Id);
        worker.TasksAssigned++;
        var function = chunk.Call.KnownBy.Add(worker.Id) ? chunk.Call.Function.Bytes : [];
        Diagnostics.PoolMetrics.BytesSent.Add(chunk.Items.Inline.Length + function.Length);
        batch.Add(new RunChunk(chunk.Id, chunk.Attempts, function, chunk.Call.Function.SharedKey, chunk.Items, chunk.Call.SoftMs, chunk.Call.HardMs,
            chunk.Call.TraceParent, chunk.FirstIndex));
    }

    // ------------------------------------------------------------------ results

    /// <summary>
    /// A chunk's result. It reaches the call's sink only when it is the first for the chunk and comes from the worker
    /// that holds it (a retried chunk's old worker, a duplicate, or an ended call's result is dropped, its spill file
    /// deleted). Returns true when the chunk was outstanding at <paramref name="worker"/> (the worker finished a task).
    /// </summary>
    public bool Complete(WorkerHandle? worker, ChunkDone m)
    {
        LastProgress = Stopwatch.GetTimestamp();
        if (worker is null || !worker.Running.Remove(m.Chunk))
        {
            Spill.Delete(m.Results);
            return false;
        }
        if (worker.Running.Count == 0)
            _idleHint++;
        if (_chunks.Remove(m.Chunk, out var chunk) && chunk.Worker == worker)
        {
            chunk.Call.Measure(chunk, m.ElapsedTicks, maxWindow);
            Diagnostics.PoolMetrics.ChunkDuration.Record((double)m.ElapsedTicks / Stopwatch.Frequency);
            var done = m.Error is null ? chunk.Count : m.Completed;
            worker.ItemsDone += done;
            chunk.Call.Completed += done;
            if (m.Error is null)
            {
                Diagnostics.PoolMetrics.TasksCompleted.Add(chunk.Count);
                chunk.Call.Sink.ChunkCompleted(chunk.Id.Index, chunk.Count, m.Results);
            }
            else
            {
                Diagnostics.PoolMetrics.TasksCompleted.Add(m.Completed);
                Diagnostics.PoolMetrics.TasksFailed.Add(1);
                chunk.Call.Failed++;
                chunk.Call.Sink.ChunkFailed(chunk.Id.Index, m.Results, m.Completed, TaskError(chunk, m, worker));
            }
        }
        else
        {
            Spill.Delete(m.Results); // the call ended, or the chunk belongs to a newer attempt elsewhere
            if (chunk is not null)
                _chunks[m.Chunk] = chunk;
        }
        worker.TasksDone++;
        return true;
    }

    private static Exception TaskError(ChunkEntry chunk, ChunkDone m, WorkerHandle worker)
    {
        var task = chunk.FirstIndex + m.Completed;
        if (m.Error!.Type == typeof(TaskTimeoutException).FullName)
        {
            var hard = m.Error.StackTrace == Worker.TaskClock.HardMarker;
            var limit = TimeSpan.FromMilliseconds(hard ? chunk.Call.HardMs : chunk.Call.SoftMs);
            return new TaskTimeoutException(task, $"Task {task} {m.Error.Message} in worker {worker.Describe()}.", worker.Describe(), limit, hard);
        }
        return new TaskFailedException(task, m.Error.Type, m.Error.Message, m.Error.StackTrace, worker.Describe());
    }

    // ------------------------------------------------------------------ status

    /// <summary>The oldest chunk <paramref name="worker"/> runs, for status; null when it runs none.</summary>
    public RunningTask? OldestOn(WorkerHandle worker, long now)
    {
        var oldest = worker.Running.Select(id => _chunks.GetValueOrDefault(id)).Where(c => c is not null && c.Worker == worker).MinBy(c => c!.DispatchedAt);
        return oldest is null ? null
            : new RunningTask(oldest.Id.CallId, oldest.FirstIndex, oldest.Count, oldest.Attempts, Stopwatch.GetElapsedTime(oldest.DispatchedAt, now));
    }

    /// <summary>The open calls but <paramref name="hidden"/> (the warm-up), oldest first, for status.</summary>
    public IReadOnlyList<CallStatus> Calls(long now, long hidden)
    {
        var queued = _pending.GroupBy(id => id.CallId).ToDictionary(g => g.Key, g => g.Count());
        return _calls.Values.Where(c => c.Id != hidden).OrderBy(c => c.StartedAt).Select(c =>
        {
            var running = _chunks.Values.Count(x => x.Call == c && x.Worker is not null);
            return new CallStatus(c.Id, c.Completed, c.Total, c.Failed, c.Retried, queued.GetValueOrDefault(c.Id), running, Stopwatch.GetElapsedTime(c.StartedAt, now));
        }).ToList();
    }

    // ------------------------------------------------------------------ entries

    private sealed class CallEntry(long id, SerializedFunction function, ICallSink sink, int gangSize)
    {
        public long Id { get; } = id;

        /// <summary>&gt; 0: the call is one group of this many chunks, started together on distinct workers.</summary>
        public int GangSize { get; } = gangSize;
        public bool GangStarted { get; set; }

        /// <summary>Each task's time limits in milliseconds (0: none).</summary>
        public int SoftMs { get; init; }
        public int HardMs { get; init; }

        /// <summary>The caller's span of the call (W3C traceparent), sent with each chunk; null when not traced.</summary>
        public string? TraceParent { get; init; }
        public int Submitted { get; set; }

        /// <summary>For status: tasks in the call when known, and its outcomes so far.</summary>
        public long? Total { get; set; }
        public long Completed { get; set; }
        public long Failed { get; set; }
        public long Retried { get; set; }
        public long StartedAt { get; } = Stopwatch.GetTimestamp();
        public SerializedFunction Function { get; } = function;
        public ICallSink Sink { get; } = sink;

        /// <summary>The workers that were sent the function (a worker gets it with its first chunk of the call).</summary>
        public HashSet<string> KnownBy { get; } = new();

        /// <summary>Chunks one worker may hold for this call; grows only while tasks are far shorter than a round trip.</summary>
        public int Window { get; private set; } = 1;

        private double _execTicks = -1;
        private double _overheadTicks = -1;

        public void Measure(ChunkEntry chunk, long execTicks, int maxWindow)
        {
            if (GangSize > 0)
                return; // a group's chunks each need an idle worker: its window stays 1
            _execTicks = _execTicks < 0 ? execTicks : 0.8 * _execTicks + 0.2 * execTicks;
            if (chunk.DispatchedToIdle)
            {
                var overhead = Math.Max(0, Stopwatch.GetTimestamp() - chunk.DispatchedAt - execTicks);
                _overheadTicks = _overheadTicks < 0 ? overhead : 0.8 * _overheadTicks + 0.2 * overhead;
            }
            if (_overheadTicks >= 0)
                Window = (int)Math.Clamp(1 + Math.Floor(_overheadTicks / Math.Max(1, _execTicks)), 1, maxWindow);
        }
    }

    private sealed class ChunkEntry(ChunkId id, Blob items, long firstIndex, int count, CallEntry call)
    {
        public ChunkId Id { get; } = id;
        public Blob Items { get; } = items;
        public long FirstIndex { get; } = firstIndex;
        public int Count { get; } = count;
        public CallEntry Call { get; } = call;
        public int Attempts { get; set; }
        public WorkerHandle? Worker { get; set; }
        public long DispatchedAt { get; set; }
        public bool DispatchedToIdle { get; set; }
    }
}
