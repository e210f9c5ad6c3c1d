using System.Collections.Concurrent;
using ActorPool.Execution;
using ActorPool.Hosting;
using Akka.Actor;

namespace ActorPool.Queues;

/// <summary>
/// One process's side of one queue, shared by every handle to it in the process. Puts are buffered and sent in
/// batches by the thread pool (as Python's feeder thread does), at most <see cref="MaxBatchesInFlight"/> at once,
/// so a fast producer sends few large messages; a bounded queue's producer first reserves room (credits) and
/// gives back what it does not use. Gets take a batch and keep the rest for the next gets (prefetch), asking
/// for more before the batch runs out; what a consumer holds and does not use is given back.
/// </summary>
internal sealed class QueueClient<T> : RemoteClient, IPendingPuts
{
    private const int MaxBatchesInFlight = 4;
    private const int MaxBatch = 16_384;
    private const int Prefetch = 256;
    private static readonly TimeSpan IdleReturn = TimeSpan.FromMilliseconds(100);

    private static readonly ConcurrentDictionary<string, QueueClient<T>> Clients = new();

    private readonly int _maxSize;

    // Producer side.
    private List<T> _outgoing = [];
    private bool _flushScheduled;
    private int _inFlight;
    private readonly Queue<int> _inFlightItems = new(); // the size of each batch on its way, in order
    private Exception? _gone;
    private long _seq;
    private int _credits;
    private long _creditRequest;
    private long _creditProbe; // a no-wait request sent while a waiting one is out
    private long _lastRequestId;
    private readonly WaiterQueue<T, bool> _putWaiters;
    private readonly List<TaskCompletionSource> _flushWaiters = [];
    private string? _putError;
    private long _lastPut;

    // Consumer side.
    private readonly Queue<T> _buffer = new();
    private readonly WaiterQueue<bool, T> _getWaiters;
    private long _take;
    private long _takeProbe; // a no-wait take sent while a waiting one is out
    private bool _drained;
    private long _lastGet;
    private readonly Timer _idleTimer;

    private QueueClient(string path, int maxSize) : base(path, TimeSpan.FromSeconds(10))
    {
        _maxSize = maxSize;
        _putWaiters = new(Gate);
        _getWaiters = new(Gate);
        PendingPuts.Track(this);
        _idleTimer = new Timer(static c => ((QueueClient<T>)c!).OnIdle(), this, Timeout.Infinite, Timeout.Infinite);
    }

    public static QueueClient<T> For(string path, int maxSize) => Clients.GetOrAdd(path, static (p, m) => new QueueClient<T>(p, m), maxSize);

    protected override Exception Unreachable(Exception cause) => new ActorPoolException(
        $"The queue at {OwnerPath} cannot be reached: its process has ended, or the queue was created in a process this one cannot connect to.", cause);

    protected internal override void OnReply(object message)
    {
        switch (message)
        {
            case QItems m: OnItems(m); break;
            case QPutAck m: OnPutAck(m); break;
            case QCreditGrant m: OnCreditGrant(m); break;
        }
    }

    // ------------------------------------------------------------------ put

    public Task PutAsync(T item, TimeSpan? timeout, CancellationToken ct)
    {
        EnsureConnected();
        WaiterQueue<T, bool>.Waiter waiter;
        lock (Gate)
        {
            ThrowIfPutFailed();
            _lastPut = Environment.TickCount64;
            if (_maxSize == 0 || _credits > 0)
            {
                if (_maxSize > 0)
                {
                    _credits--;
                    // Ask for more room before this runs out, so a steady producer does not wait a round trip.
                    if (_credits < CreditBatch / 2 && _creditRequest == 0)
                        RequestCredits(wait: true);
                }
                _outgoing.Add(item);
                ScheduleFlush();
                return Task.CompletedTask;
            }
            waiter = _putWaiters.Add(item, noWait: timeout == TimeSpan.Zero);
            if (_creditRequest == 0)
                RequestCredits(wait: !waiter.NoWait);
            else if (waiter.NoWait && _creditProbe == 0)
            {
                // A waiting request is out (and may wait long): a no-wait put asks for itself, and gets its answer now.
                _creditProbe = ++_lastRequestId;
                Tell(new QCreditRequest(_creditProbe, Math.Max(_putWaiters.Count, CreditBatch), Wait: false));
            }
        }
        return WaitForRoom(waiter, timeout, ct);
    }

    private async Task WaitForRoom(WaiterQueue<T, bool>.Waiter waiter, TimeSpan? timeout, CancellationToken ct)
    {
        try
        {
            // Room that came as the wait ended counts: the item is in.
            await _putWaiters.WaitAsync(waiter, timeout, ct, last =>
            {
                if (last && _creditRequest != 0)
                {
                    Tell(new QCreditCancel(_creditRequest));
                    _creditRequest = 0; // a grant already on its way is kept, and given back if unused
                }
            }).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new QueueFullException($"The queue is full ({_maxSize} items) and no room came within {timeout}.");
        }
    }

    private void ThrowIfPutFailed()
    {
        if (_putError is { } error)
            throw new QueueCompletedException($"The queue is completed: no more items can be put ({error}).");
    }

    /// <summary>Room asked for at a time: an eighth of the queue, so several producers share it, at most 4,096.</summary>
    private int CreditBatch => Math.Clamp(_maxSize / 8, 1, 4096);

    private bool _creditRequestNoWait;

    private void RequestCredits(bool wait)
    {
        _creditRequest = ++_lastRequestId;
        _creditRequestNoWait = !wait;
        var want = Math.Max(_putWaiters.Count, CreditBatch);
        Tell(new QCreditRequest(_creditRequest, want, wait));
    }

    private void OnCreditGrant(QCreditGrant m)
    {
        lock (Gate)
        {
            // The answer to a no-wait request says what there is now: a no-wait put without room fails.
            var now = m.Id == _creditProbe || (m.Id == _creditRequest && _creditRequestNoWait);
            if (m.Id == _creditRequest)
                _creditRequest = 0;
            if (m.Id == _creditProbe)
                _creditProbe = 0;
            if (m.Completed)
            {
                _putError ??= "completed";
                _putWaiters.FailAll(new QueueCompletedException("The queue is completed: no more items can be put."));
                return;
            }
            _credits += m.Credits;
            while (_credits > 0 && _putWaiters.TryTake(out var waiter))
            {
                _credits--;
                _outgoing.Add(waiter.State);
                waiter.Done.TrySetResult(true);
            }
            ScheduleFlush();
            if (_putWaiters.Count > 0)
            {
                if (now || m.Credits == 0) // the queue was full for those that may not wait; the others wait for room
                    _putWaiters.FailNoWait(() => new QueueFullException($"The queue is full ({_maxSize} items)."));
                if (_putWaiters.Count > 0 && _creditRequest == 0)
                    RequestCredits(wait: true);
            }
            else if (_credits > 0)
            {
                _idleTimer.Change(IdleReturn, Timeout.InfiniteTimeSpan);
            }
        }
    }

    private void ScheduleFlush()
    {
        if (_flushScheduled || _outgoing.Count == 0 || _inFlight >= MaxBatchesInFlight)
            return;
        _flushScheduled = true;
        ThreadPool.UnsafeQueueUserWorkItem(static c => c.Flush(), this, preferLocal: false);
    }

    /// <summary>The one flusher of this client (so batches leave in order): sends while there is work and room in flight.</summary>
    private void Flush()
    {
        while (true)
        {
            List<T> batch;
            long seq;
            lock (Gate)
            {
                if (_outgoing.Count == 0 || _inFlight >= MaxBatchesInFlight)
                {
                    _flushScheduled = false;
                    return;
                }
                if (_outgoing.Count <= MaxBatch)
                {
                    batch = _outgoing;
                    _outgoing = [];
                }
                else
                {
                    batch = _outgoing.GetRange(0, MaxBatch);
                    _outgoing.RemoveRange(0, MaxBatch);
                }
                _inFlight++;
                _inFlightItems.Enqueue(batch.Count);
                seq = ++_seq;
            }
            Tell(new QPut(seq, Payload.Serialize(batch.ToArray()), batch.Count));
        }
    }

    private void OnPutAck(QPutAck m)
    {
        lock (Gate)
        {
            _inFlight--;
            _inFlightItems.TryDequeue(out _);
            if (m.Error is not null)
                _putError ??= m.Error;
            ScheduleFlush();
            if (_inFlight == 0 && _outgoing.Count == 0)
            {
                foreach (var w in _flushWaiters)
                    w.TrySetResult();
                _flushWaiters.Clear();
            }
        }
    }

    /// <summary>
    /// Completes when every item put in this process so far has reached the queue; with <paramref name="waiting"/>
    /// false, not counting puts still waiting for room (they may wait long).
    /// </summary>
    public Task FlushAsync(CancellationToken ct, bool waiting = true)
    {
        if (!IsConnected)
            return Task.CompletedTask;
        lock (Gate)
        {
            if (_inFlight == 0 && _outgoing.Count == 0 && (!waiting || _putWaiters.Count == 0))
                return Task.CompletedTask;
            if (_gone is { } gone)
                return Task.FromException(gone);
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _flushWaiters.Add(done);
            ScheduleFlush();
            return done.Task.WaitAsync(ct);
        }
    }

    public string QueuePath => OwnerPath;

    public int Unsent
    {
        get
        {
            lock (Gate)
                return _outgoing.Count + _inFlightItems.Sum() + _putWaiters.Count;
        }
    }

    /// <summary>Items this process took from the queue ahead of its gets (prefetch) and holds now.</summary>
    public int Prefetched
    {
        get
        {
            lock (Gate)
                return _buffer.Count;
        }
    }

    /// <summary>The queue is known to be completed: puts from now on fail here, without a round trip.</summary>
    public void Completed()
    {
        lock (Gate)
            _putError ??= "completed";
    }

    // ------------------------------------------------------------------ get

    public Task<T> GetAsync(TimeSpan? timeout, CancellationToken ct)
    {
        EnsureConnected();
        WaiterQueue<bool, T>.Waiter waiter;
        lock (Gate)
        {
            _lastGet = Environment.TickCount64;
            if (_buffer.TryDequeue(out var item))
            {
                // Ahead of need, but answered at once: a waiting take out while this process holds items would let
                // an idle give-back put them in front of later items already on their way here (out of order).
                if (_buffer.Count < Prefetch / 2 && _take == 0 && !_drained)
                    SendTake(wait: false);
                return Task.FromResult(item);
            }
            if (_drained)
                return Task.FromException<T>(new QueueCompletedException("The queue is completed and every item has been taken."));
            waiter = _getWaiters.Add(false, noWait: timeout == TimeSpan.Zero);
            if (_take == 0)
                SendTake(wait: !waiter.NoWait);
            else if (waiter.NoWait && _takeProbe == 0)
            {
                // A waiting take is out (this process's prefetch, or another thread's get): a no-wait get asks for
                // itself, and the queue answers at once.
                _takeProbe = ++_lastRequestId;
                Tell(new QTake(_takeProbe, -Prefetch));
            }
        }
        return WaitForItem(waiter, timeout, ct);
    }

    private async Task<T> WaitForItem(WaiterQueue<bool, T>.Waiter waiter, TimeSpan? timeout, CancellationToken ct)
    {
        try
        {
            return await _getWaiters.WaitAsync(waiter, timeout, ct, last =>
            {
                if (last && _take != 0)
                {
                    Tell(new QCancelTake(_take));
                    _take = 0; // items already on their way are kept, and given back if unused
                }
            }).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new QueueEmptyException($"The queue had no item within {timeout}.");
        }
    }

    private bool _takeNoWait;

    private void SendTake(bool wait)
    {
        _take = ++_lastRequestId;
        _takeNoWait = !wait;
        Tell(new QTake(_take, wait ? Prefetch : -Prefetch));
    }

    private void OnItems(QItems m)
    {
        var items = new List<T>(m.Count);
        foreach (var segment in m.Segments)
            items.AddRange((T[])Payload.Deserialize(segment)!);
        lock (Gate)
        {
            // The answer to a no-wait take says what there is now: a no-wait get that got nothing fails.
            var now = m.Id == _takeProbe || (m.Id == _take && _takeNoWait);
            if (m.Id == _take)
                _take = 0;
            if (m.Id == _takeProbe)
                _takeProbe = 0;
            foreach (var item in items)
                _buffer.Enqueue(item);
            if (m.Completed && _buffer.Count == 0)
                _drained = true;
            while (_buffer.Count > 0 && _getWaiters.TryTake(out var waiter))
                waiter.Done.TrySetResult(_buffer.Dequeue());
            if (_getWaiters.Count > 0)
            {
                if (_drained)
                {
                    _getWaiters.FailAll(new QueueCompletedException("The queue is completed and every item has been taken."));
                }
                else
                {
                    if (now || m.Count == 0) // the queue had nothing for those that may not wait; the others wait
                        _getWaiters.FailNoWait(() => new QueueEmptyException("The queue is empty."));
                    if (_getWaiters.Count > 0 && _take == 0)
                        SendTake(wait: true);
                }
            }
            if (_buffer.Count > 0)
                _idleTimer.Change(IdleReturn, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>Gives back what this process holds and does not use: prefetched items, and room it reserved.</summary>
    private void OnIdle()
    {
        T[]? unused = null;
        var credits = 0;
        lock (Gate)
        {
            var now = Environment.TickCount64;
            // Not while a take is out: what it brings is later than what would go back to the front.
            if (_buffer.Count > 0 && _getWaiters.Count == 0 && _take == 0 && _takeProbe == 0 && now - _lastGet >= IdleReturn.TotalMilliseconds)
            {
                unused = _buffer.ToArray();
                _buffer.Clear();
            }
            if (_credits > 0 && _putWaiters.Count == 0 && now - _lastPut >= IdleReturn.TotalMilliseconds)
            {
                credits = _credits;
                _credits = 0;
            }
            if ((_buffer.Count > 0 && unused is null) || (_credits > 0 && credits == 0))
                _idleTimer.Change(IdleReturn, Timeout.InfiniteTimeSpan);
            // Sent under the gate: a get that finds the buffer empty now sends its take after this, so the queue has
            // these back at its front before it serves that take (sent outside, the take could pass them, and the
            // items after them would come out first).
            if (unused is not null)
                Tell(new QReturnItems([Payload.Serialize(unused)], unused.Length));
            if (credits > 0)
                Tell(new QReturnCredits(credits));
        }
    }

    /// <summary>The queue's process has ended: nothing will answer, so nobody may keep waiting.</summary>
    protected internal override void OnOwnerGone()
    {
        var gone = new ActorPoolException($"The queue at {OwnerPath} is gone: the process that created it has ended.");
        lock (Gate)
        {
            _gone = gone;
            _putError ??= "the queue is gone";
            _putWaiters.FailAll(gone);
            _getWaiters.FailAll(gone);
            foreach (var w in _flushWaiters)
                w.TrySetException(gone);
            _flushWaiters.Clear();
            _drained = _buffer.Count == 0;
        }
    }
}
