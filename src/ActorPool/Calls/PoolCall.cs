using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using ActorPool.Coordination;
using ActorPool.Execution;
using ActorPool.Protocol;
using Akka.Actor;

namespace ActorPool.Calls;

/// <summary>A chunk of inputs, serialized in the caller (so a bad argument fails here, naming it).</summary>
internal sealed record PreparedChunk(int Index, long FirstIndex, int Count, Blob Items);

/// <summary>Call ids, unique per process across every result type.</summary>
internal static class CallIds
{
    private static long _last;

    public static long Next() => Interlocked.Increment(ref _last);
}

/// <summary>
/// The caller's side of one call: feeds chunks to the coordinator with at most a fixed number outstanding
/// (submitted and not yet consumed), receives outcomes through <see cref="ICallSink"/> and yields results in
/// input order or as they arrive. Bounded memory whatever the input's length.
/// </summary>
internal sealed class PoolCall<TResult> : ICallSink
{
    private readonly IActorRef _coordinator;
    private readonly SemaphoreSlim _slots;
    private readonly Channel<Outcome> _outcomes = Channel.CreateUnbounded<Outcome>(new UnboundedChannelOptions { SingleReader = true });

    /// <summary>Arguments of this call held in spill files, by chunk index, until their chunk's outcome is read.</summary>
    private readonly ConcurrentDictionary<int, Blob> _spilled = new();

    public long Id { get; } = CallIds.Next();

    /// <summary>The caller's progress reporter, when it gave one.</summary>
    private readonly CallProgress? _progress;

    /// <summary>Inputs submitted so far: the total once the input is read to its end.</summary>
    private long _submittedTasks;

    /// <summary>
    /// The bytes of arguments submitted and of results received that the caller has not consumed yet, and the bound the
    /// feeder keeps them under (0: none): chunks of large items are bounded by their size, not only by their number.
    /// <see cref="_minChunks"/> chunks always go, however large (two per worker: fewer would leave workers idle).
    /// </summary>
    private readonly long _maxBytes;

    private readonly int _minChunks;

    private long _heldBytes;
    private readonly ConcurrentDictionary<int, long> _chunkBytes = new();
    private TaskCompletionSource? _bytesFreed;
    private readonly Lock _bytesGate = new();

    private PoolCall(IActorRef coordinator, int maxOutstanding, CallProgress? progress, long maxBytes, int minChunks)
    {
        _minChunks = Math.Max(1, minChunks);
        _coordinator = coordinator;
        _slots = new SemaphoreSlim(maxOutstanding, maxOutstanding);
        _progress = progress;
        _maxBytes = maxBytes;
    }

    private static long SizeOf(Blob? blob)
    {
        if (blob is null)
            return 0;
        if (blob.File is not { } file)
            return blob.Inline.Length;
        try
        {
            return new FileInfo(file).Length; // in the spill folder: memory too (/dev/shm)
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    /// <summary>Waits until <paramref name="bytes"/> more fit under the bound (or nothing is held), then holds them.</summary>
    private async Task HoldBytesAsync(int index, long bytes, CancellationToken ct)
    {
        if (_maxBytes <= 0)
            return;
        while (true)
        {
            Task wait;
            lock (_bytesGate)
            {
                if (_chunkBytes.Count < _minChunks || _heldBytes + bytes <= _maxBytes)
                {
                    _heldBytes += bytes;
                    _chunkBytes[index] = bytes;
                    return;
                }
                wait = (_bytesFreed ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            }
            await wait.WaitAsync(ct).ConfigureAwait(false);
        }
    }

    /// <summary>A chunk's results arrived: they are held until the caller consumes them.</summary>
    private void HoldResults(int index, Blob? results)
    {
        if (_maxBytes <= 0)
            return;
        var bytes = SizeOf(results);
        if (bytes == 0)
            return;
        lock (_bytesGate)
        {
            _heldBytes += bytes;
            _chunkBytes[index] = _chunkBytes.GetValueOrDefault(index) + bytes;
        }
    }

    /// <summary>The caller consumed chunk <paramref name="index"/>: its bytes are free.</summary>
    private void ReleaseBytes(int index)
    {
        if (_maxBytes <= 0 || !_chunkBytes.TryRemove(index, out var bytes))
            return;
        TaskCompletionSource? freed;
        lock (_bytesGate)
        {
            _heldBytes -= bytes;
            freed = _bytesFreed;
            _bytesFreed = null;
        }
        freed?.TrySetResult();
    }

    /// <summary>
    /// One chunk's outcome, or (<see cref="Final"/>) the end of the input — with <see cref="Error"/> when reading or
    /// serializing the input failed, raised after the results before it — or (<see cref="Fatal"/>) a failure of the
    /// whole call, raised at once.
    /// </summary>
    private readonly record struct Outcome(int Index, Blob? Results, int Completed, Exception? Error, bool Final, int TotalChunks, bool Fatal = false);

    /// <summary>
    /// Runs a call: results one by one, in input order (<paramref name="ordered"/>) or as they complete. The progress
    /// reporter, made when enumeration starts, gets its last report when the enumeration ends.
    /// </summary>
    public static async IAsyncEnumerable<TResult> Run(
        IActorRef coordinator, SerializedFunction function, IEnumerable<PreparedChunk> chunks, int maxOutstanding, bool ordered,
        CancellationToken poolStopped, [EnumeratorCancellation] CancellationToken cancellationToken, (int SoftMs, int HardMs) limits = default,
        Func<CallProgress?>? progress = null, long? totalTasks = null, long maxBytes = 0, int minChunks = 1)
    {
        using var reporter = progress?.Invoke();
        await foreach (var segment in RunChunks(coordinator, function, chunks, maxOutstanding, ordered, poolStopped, cancellationToken, limits: limits,
                           progress: reporter, totalTasks: totalTasks, operation: ordered ? "imap" : "imap_unordered", maxBytes: maxBytes, minChunks: minChunks).ConfigureAwait(false))
            for (var i = 0; i < segment.Count; i++)
                yield return segment[i];
    }

    /// <summary>
    /// Runs a call: the results of each chunk at once, chunk by chunk (the fast path of map: no per-result step).
    /// A failed chunk yields the results before the failing input, then throws. <paramref name="progress"/> counts the
    /// call's outcomes as they arrive; its owner ends it (a paired operation runs several of these calls under one).
    /// <paramref name="maxBytes"/> bounds the arguments and results held for a lazy input (0: only the chunk count does),
    /// beyond <paramref name="minChunks"/> chunks.
    /// </summary>
    public static async IAsyncEnumerable<ArraySegment<TResult>> RunChunks(
        IActorRef coordinator, SerializedFunction function, IEnumerable<PreparedChunk> chunks, int maxOutstanding, bool ordered,
        CancellationToken poolStopped, [EnumeratorCancellation] CancellationToken cancellationToken, int gangSize = 0, (int SoftMs, int HardMs) limits = default,
        CallProgress? progress = null, long? totalTasks = null, string operation = "map", long maxBytes = 0, int minChunks = 1)
    {
        var call = new PoolCall<TResult>(coordinator, maxOutstanding, progress, maxBytes, minChunks);
        // The call's span: its context goes with every chunk, so the tasks' spans in the workers are its children.
        using var span = Diagnostics.PoolTracing.StartCall(operation, call.Id, totalTasks);
        Exception? failure = null;
        using var feedCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // A pool whose ActorSystem is gone answers nothing: fail the call instead of waiting.
        using var stopped = poolStopped.Register(static c => ((ICallSink)c!).CallFailed(
            new ObjectDisposedException(nameof(Pool), "The pool was terminated while this call was running.")), call);
        coordinator.TellLocal(new StartCall(call.Id, function, call, gangSize, limits.SoftMs, limits.HardMs, totalTasks, Diagnostics.PoolTracing.TraceParent(span)));
        // Chunks already in memory (map, apply) go out from this thread while slots last; a feeder task takes the
        // rest, and any lazy input (imap), so the caller's own enumerator never runs on the consumer's thread.
        var feeder = chunks is IReadOnlyList<PreparedChunk> list && list.Count <= maxOutstanding
            ? call.SubmitAll(list)
            : Task.Run(() => call.FeedAsync(chunks, feedCts.Token), CancellationToken.None);
        var pending = ordered ? new Dictionary<int, Outcome>() : null;
        try
        {
            var next = 0;
            var total = -1;
            Exception? inputError = null;
            while (total < 0 || next < total)
            {
                Outcome o;
                if (pending is not null && pending.Remove(next, out var ready))
                {
                    o = ready;
                }
                else
                {
                    o = await call._outcomes.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                    if (o.Fatal)
                        throw failure = o.Error!;
                    if (o.Final)
                    {
                        inputError = o.Error;
                        total = o.TotalChunks;
                        continue;
                    }
                    if (pending is not null && o.Index != next)
                    {
                        pending[o.Index] = o;
                        continue;
                    }
                }

                if (call._spilled.TryRemove(o.Index, out var arguments))
                    Spill.Delete(arguments);
                TResult[] results;
                try
                {
                    // Completed < 0: the whole chunk ran.
                    results = o.Completed != 0 ? (TResult[])Spill.Unpack(o.Results!)! : [];
                }
                finally
                {
                    Spill.Delete(o.Results);
                }
                var n = o.Completed < 0 ? results.Length : Math.Min(o.Completed, results.Length);
                if (n > 0)
                    yield return new ArraySegment<TResult>(results, 0, n);
                if (o.Error is not null)
                    throw failure = o.Error;
                next++;
                call.ReleaseBytes(o.Index);
                call._slots.Release();
            }
            if (inputError is not null)
                throw failure = inputError;
        }
        finally
        {
            if (failure is not null)
                Diagnostics.PoolTracing.Fail(span, failure);
            feedCts.Cancel();
            coordinator.TellLocal(new EndCall(call.Id));
            call.DropSpilled(pending);
            try
            {
                // The feeder may be inside the caller's own enumerator, which no token can interrupt: do not
                // wait on it for long (its late chunks are dropped, the call having ended).
                await feeder.WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or TimeoutException)
            {
            }
        }
    }

    /// <summary>Deletes the spill files of a call that has ended: its arguments and results nobody will read.</summary>
    private void DropSpilled(Dictionary<int, Outcome>? unread)
    {
        foreach (var index in _spilled.Keys)
            if (_spilled.TryRemove(index, out var blob))
                Spill.Delete(blob);
        while (_outcomes.Reader.TryRead(out var o))
            Spill.Delete(o.Results);
        foreach (var o in unread?.Values ?? Enumerable.Empty<Outcome>())
            Spill.Delete(o.Results);
    }

    private void Submit(PreparedChunk chunk)
    {
        if (chunk.Items.IsFile)
            _spilled[chunk.Index] = chunk.Items;
        _submittedTasks += chunk.Count;
        _coordinator.TellLocal(new SubmitChunk(new ChunkId(Id, chunk.Index), chunk.Items, chunk.FirstIndex, chunk.Count));
    }

    private Task SubmitAll(IReadOnlyList<PreparedChunk> chunks)
    {
        foreach (var chunk in chunks)
        {
            _slots.Wait(0);
            Submit(chunk);
        }
        _progress?.SetTotal(_submittedTasks);
        _outcomes.Writer.TryWrite(new Outcome(-1, null, 0, null, Final: true, TotalChunks: chunks.Count));
        return Task.CompletedTask;
    }

    private async Task FeedAsync(IEnumerable<PreparedChunk> chunks, CancellationToken ct)
    {
        var count = 0;
        try
        {
            foreach (var chunk in chunks)
            {
                try
                {
                    await _slots.WaitAsync(ct).ConfigureAwait(false);
                    await HoldBytesAsync(chunk.Index, SizeOf(chunk.Items), ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    Spill.Delete(chunk.Items);
                    throw;
                }
                Submit(chunk);
                count++;
            }
            _progress?.SetTotal(_submittedTasks);
            _coordinator.TellLocal(new InputEnded(Id, _submittedTasks));
            _outcomes.Writer.TryWrite(new Outcome(-1, null, 0, null, Final: true, TotalChunks: count));
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            // The input itself failed (its enumerator threw, or an argument cannot be sent): fail the call with it.
            _outcomes.Writer.TryWrite(new Outcome(-1, null, 0, e, Final: true, TotalChunks: count));
        }
    }

    void ICallSink.ChunkCompleted(int index, int count, Blob results)
    {
        _progress?.AddCompleted(count);
        HoldResults(index, results);
        _outcomes.Writer.TryWrite(new Outcome(index, results, -1, null, false, 0));
    }

    void ICallSink.ChunkFailed(int index, Blob partialResults, int completed, Exception error)
    {
        _progress?.AddFailed(completed);
        HoldResults(index, partialResults);
        _outcomes.Writer.TryWrite(new Outcome(index, partialResults, completed, error, false, 0));
    }

    void ICallSink.ChunkRetried(int index, int count) => _progress?.AddRetried(count);

    void ICallSink.CallFailed(Exception error) =>
        _outcomes.Writer.TryWrite(new Outcome(-1, null, 0, error, Final: true, 0, Fatal: true));
}
