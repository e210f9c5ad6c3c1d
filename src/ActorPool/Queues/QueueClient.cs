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
internal sealed class QueueClient<T>
{
    private const int MaxBatchesInFlight = 4;
    private const int MaxBatch = 16_384;
    private const int Prefetch = 256;
    private static readonly TimeSpan IdleReturn = TimeSpan.FromMilliseconds(100);

    private static readonly ConcurrentDictionary<string, QueueClient<T>> Clients = new();

    private readonly string _path;
    private readonly int _maxSize;
    private readonly Lock _gate = new();
    private readonly Lazy<(IActorRef Queue, IActorRef Self)> _connection;

    // Producer side.
    private List<T> _outgoing = [];
    private bool _flushScheduled;
    private int _inFlight;
    private long _seq;
    private int _credits;
    private long _creditRequest;
    private long _lastRequestId;
    private readonly LinkedList<PutWaiter> _putWaiters = new();
    private readonly List<TaskCompletionSource> _flushWaiters = [];
    private string? _putError;
    private long _lastPut;

    // Consumer side.
    private readonly Queue<T> _buffer = new();
    private readonly LinkedList<GetWaiter> _getWaiters = new();
    private long _take;
    private bool _drained;
    private long _lastGet;
    private readonly Timer _idleTimer;

    private QueueClient(string path, int maxSize)
    {
        _path = path;
        _maxSize = maxSize;
        _connection = new Lazy<(IActorRef, IActorRef)>(Connect);
        _idleTimer = new Timer(static c => ((QueueClient<T>)c!).OnIdle(), this, Timeout.Infinite, Timeout.Infinite);
    }

    public static QueueClient<T> For(string path, int maxSize) => Clients.GetOrAdd(path, static (p, m) => new QueueClient<T>(p, m), maxSize);

    private (IActorRef, IActorRef) Connect()
    {
        var system = Runtime.System;
        IActorRef queue;
        try
        {
            queue = system.ActorSelection(_path).ResolveOne(TimeSpan.FromSeconds(10)).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is ActorNotFoundException or TimeoutException or AskTimeoutException)
        {
            throw new ActorPoolException(
                $"The queue at {_path} cannot be reached: its process has ended, or the queue was created in a process this one cannot connect to.", e);
        }
        var self = system.ActorOf(Props.Create(() => new ClientActor(this, queue)));
        return (queue, self);
    }

    public IActorRef Queue => _connection.Value.Queue;

    private IActorRef Self => _connection.Value.Self;

    // ------------------------------------------------------------------ put

    public Task PutAsync(T item, TimeSpan? timeout, CancellationToken ct)
    {
        _ = _connection.Value;
        PutWaiter waiter;
        lock (_gate)
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
            waiter = new PutWaiter(item, timeout == TimeSpan.Zero);
            _putWaiters.AddLast(waiter);
            if (_creditRequest == 0)
                RequestCredits(wait: !waiter.NoWait);
        }
        return WaitForRoom(waiter, timeout, ct);
    }

    private async Task WaitForRoom(PutWaiter waiter, TimeSpan? timeout, CancellationToken ct)
    {
        try
        {
            await Waiting.ForAsync(waiter.Done.Task, waiter.NoWait, timeout, ct, () =>
            {
                lock (_gate)
                {
                    if (!_putWaiters.Remove(waiter))
                        return false; // room came as the wait ended: the item is in
                    if (_putWaiters.Count == 0 && _creditRequest != 0)
                    {
                        Queue.Tell(new QCreditCancel(_creditRequest), Self);
                        _creditRequest = 0; // a grant already on its way is kept, and given back if unused
                    }
                    return true;
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

    private void RequestCredits(bool wait)
    {
        _creditRequest = ++_lastRequestId;
        var want = Math.Max(_putWaiters.Count, CreditBatch);
        Queue.Tell(new QCreditRequest(_creditRequest, want, wait), Self);
    }

    private void OnCreditGrant(QCreditGrant m)
    {
        lock (_gate)
        {
            if (m.Id == _creditRequest)
                _creditRequest = 0;
            if (m.Completed)
            {
                _putError ??= "completed";
                foreach (var w in _putWaiters)
                    w.Done.TrySetException(new QueueCompletedException("The queue is completed: no more items can be put."));
                _putWaiters.Clear();
                return;
            }
            _credits += m.Credits;
            while (_credits > 0 && _putWaiters.First is { } node)
            {
                _putWaiters.RemoveFirst();
                _credits--;
                _outgoing.Add(node.Value.Item);
                node.Value.Done.TrySetResult(true);
            }
            ScheduleFlush();
            if (_putWaiters.Count > 0)
            {
                if (m.Credits == 0)
                {
                    // A no-wait request found the queue full: those fail, the others wait for room.
                    for (var node = _putWaiters.First; node is not null;)
                    {
                        var next = node.Next;
                        if (node.Value.NoWait)
                        {
                            _putWaiters.Remove(node);
                            node.Value.Done.TrySetException(new QueueFullException($"The queue is full ({_maxSize} items)."));
                        }
                        node = next;
                    }
                }
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
            lock (_gate)
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
                seq = ++_seq;
            }
            Queue.Tell(new QPut(seq, Payload.Serialize(batch.ToArray()), batch.Count), Self);
        }
    }

    private void OnPutAck(QPutAck m)
    {
        lock (_gate)
        {
            _inFlight--;
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

    /// <summary>Completes when every item put in this process so far has reached the queue.</summary>
    public Task FlushAsync(CancellationToken ct)
    {
        if (!_connection.IsValueCreated)
            return Task.CompletedTask;
        lock (_gate)
        {
            if (_inFlight == 0 && _outgoing.Count == 0 && _putWaiters.Count == 0)
                return Task.CompletedTask;
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _flushWaiters.Add(done);
            ScheduleFlush();
            return done.Task.WaitAsync(ct);
        }
    }

    /// <summary>The queue is known to be completed: puts from now on fail here, without a round trip.</summary>
    public void Completed()
    {
        lock (_gate)
            _putError ??= "completed";
    }

    // ------------------------------------------------------------------ get

    public Task<T> GetAsync(TimeSpan? timeout, CancellationToken ct)
    {
        _ = _connection.Value;
        GetWaiter waiter;
        lock (_gate)
        {
            _lastGet = Environment.TickCount64;
            if (_buffer.TryDequeue(out var item))
            {
                if (_buffer.Count < Prefetch / 2 && _take == 0 && !_drained)
                    SendTake(wait: true);
                return Task.FromResult(item);
            }
            if (_drained)
                return Task.FromException<T>(new QueueCompletedException("The queue is completed and every item has been taken."));
            waiter = new GetWaiter(timeout == TimeSpan.Zero);
            _getWaiters.AddLast(waiter);
            if (_take == 0)
                SendTake(wait: !waiter.NoWait);
        }
        return WaitForItem(waiter, timeout, ct);
    }

    private async Task<T> WaitForItem(GetWaiter waiter, TimeSpan? timeout, CancellationToken ct)
    {
        try
        {
            return await Waiting.ForAsync(waiter.Done.Task, waiter.NoWait, timeout, ct, () =>
            {
                lock (_gate)
                {
                    if (!_getWaiters.Remove(waiter))
                        return false;
                    if (_getWaiters.Count == 0 && _take != 0)
                    {
                        Queue.Tell(new QCancelTake(_take), Self);
                        _take = 0; // items already on their way are kept, and given back if unused
                    }
                    return true;
                }
            }).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new QueueEmptyException($"The queue had no item within {timeout}.");
        }
    }

    private void SendTake(bool wait)
    {
        _take = ++_lastRequestId;
        Queue.Tell(new QTake(_take, wait ? Prefetch : -Prefetch), Self);
    }

    private void OnItems(QItems m)
    {
        var items = new List<T>(m.Count);
        foreach (var segment in m.Segments)
            items.AddRange((T[])Payload.Deserialize(segment)!);
        lock (_gate)
        {
            if (m.Id == _take)
                _take = 0;
            foreach (var item in items)
                _buffer.Enqueue(item);
            if (m.Completed && _buffer.Count == 0)
                _drained = true;
            while (_getWaiters.First is { } node && _buffer.Count > 0)
            {
                _getWaiters.RemoveFirst();
                node.Value.Done.TrySetResult(_buffer.Dequeue());
            }
            if (_getWaiters.Count > 0)
            {
                if (_drained)
                {
                    foreach (var w in _getWaiters)
                        w.Done.TrySetException(new QueueCompletedException("The queue is completed and every item has been taken."));
                    _getWaiters.Clear();
                }
                else
                {
                    if (m.Count == 0)
                    {
                        // A no-wait take found the queue empty: those fail, the others wait.
                        for (var node = _getWaiters.First; node is not null;)
                        {
                            var next = node.Next;
                            if (node.Value.NoWait)
                            {
                                _getWaiters.Remove(node);
                                node.Value.Done.TrySetException(new QueueEmptyException("The queue is empty."));
                            }
                            node = next;
                        }
                    }
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
        lock (_gate)
        {
            var now = Environment.TickCount64;
            if (_buffer.Count > 0 && _getWaiters.Count == 0 && now - _lastGet >= IdleReturn.TotalMilliseconds)
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
        }
        if (unused is not null)
            Queue.Tell(new QReturnItems([Payload.Serialize(unused)], unused.Length), Self);
        if (credits > 0)
            Queue.Tell(new QReturnCredits(credits), Self);
    }

    private sealed record PutWaiter(T Item, bool NoWait)
    {
        public TaskCompletionSource<bool> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed record GetWaiter(bool NoWait)
    {
        public TaskCompletionSource<T> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>This process's address for the queue: it forwards the queue's answers to the client.</summary>
    private sealed class ClientActor : ReceiveActor
    {
        public ClientActor(QueueClient<T> client, IActorRef queue)
        {
            Receive<QItems>(client.OnItems);
            Receive<QPutAck>(client.OnPutAck);
            Receive<QCreditGrant>(client.OnCreditGrant);
            Receive<Terminated>(_ => client.OnQueueGone());
            Context.Watch(queue);
        }
    }

    /// <summary>The queue's process has ended: nothing will answer, so nobody may keep waiting.</summary>
    private void OnQueueGone()
    {
        var gone = new ActorPoolException($"The queue at {_path} is gone: the process that created it has ended.");
        lock (_gate)
        {
            _putError ??= "the queue is gone";
            foreach (var w in _putWaiters)
                w.Done.TrySetException(gone);
            _putWaiters.Clear();
            foreach (var w in _getWaiters)
                w.Done.TrySetException(gone);
            _getWaiters.Clear();
            foreach (var w in _flushWaiters)
                w.TrySetException(gone);
            _flushWaiters.Clear();
            _drained = _buffer.Count == 0;
        }
    }
}
