using ActorPool.Execution;
using Akka.Actor;

namespace ActorPool.Queues;

/// <summary>
/// Holds a queue's items (segments of serialized items, in arrival order) and serves the processes that use it:
/// consumers take items in batches (first come, first served), producers of a bounded queue reserve room first
/// (credits, first come, first served) so a full queue makes them wait instead of dropping anything. Each
/// process's client actor is watched: room it reserved is freed when it is gone.
/// </summary>
internal sealed class QueueActor : ReceiveActor
{
    private readonly int _maxSize;
    private readonly bool _joinable;
    private readonly LinkedList<Segment> _segments = new();
    private int _count;
    private bool _completed;
    private long _unfinished;

    private int _reserved;
    private readonly Dictionary<IActorRef, int> _reservedBy = new();
    private readonly LinkedList<(IActorRef Client, QCreditRequest Request)> _creditWaiters = new();
    private readonly LinkedList<(IActorRef Client, QTake Take)> _takers = new();
    private readonly List<IActorRef> _joiners = new();
    private readonly HashSet<IActorRef> _watched = new();

    public QueueActor(int maxSize, bool joinable)
    {
        _maxSize = maxSize;
        _joinable = joinable;

        Receive<QPut>(OnPut);
        Receive<QCreditRequest>(OnCreditRequest);
        Receive<QCreditCancel>(m => Remove(_creditWaiters, w => w.Client.Equals(Sender) && w.Request.Id == m.Id));
        Receive<QReturnCredits>(m =>
        {
            Unreserve(Sender, m.Credits);
            ServeCredits();
        });
        Receive<QTake>(OnTake);
        Receive<QCancelTake>(m => Remove(_takers, t => t.Client.Equals(Sender) && t.Take.Id == m.Id));
        Receive<QReturnItems>(OnReturnItems);
        Receive<QComplete>(_ =>
        {
            _completed = true;
            ServeTakers();
            foreach (var (client, request) in _creditWaiters)
                client.Tell(new QCreditGrant(request.Id, 0, Completed: true));
            _creditWaiters.Clear();
            Sender.Tell(Status());
        });
        Receive<QGetStatus>(_ => Sender.Tell(Status()));
        Receive<QTaskDone>(_ => OnTaskDone());
        Receive<QJoin>(_ =>
        {
            if (_unfinished == 0)
                Sender.Tell(Status());
            else
                _joiners.Add(Sender);
        });
        Receive<Terminated>(m => OnClientGone(m.ActorRef));
    }

    public static Props Props(int maxSize, bool joinable) => Akka.Actor.Props.Create(() => new QueueActor(maxSize, joinable));

    private QStatus Status() => new(_count, _completed, _unfinished);

    private void Watch(IActorRef client)
    {
        if (!client.IsNobody() && _watched.Add(client))
            Context.Watch(client);
    }

    // ------------------------------------------------------------------ producers

    private void OnPut(QPut m)
    {
        Watch(Sender);
        if (_completed)
        {
            Sender.Tell(new QPutAck(m.Seq, "the queue was completed before these items reached it"));
            return;
        }
        _segments.AddLast(new Segment(m.Items, m.Count));
        _count += m.Count;
        if (_joinable)
            _unfinished += m.Count;
        if (_maxSize > 0)
            Unreserve(Sender, m.Count);
        Sender.Tell(new QPutAck(m.Seq, null));
        ServeTakers();
    }

    private int Room => _maxSize - _count - _reserved;

    private void OnCreditRequest(QCreditRequest m)
    {
        Watch(Sender);
        if (_completed)
        {
            Sender.Tell(new QCreditGrant(m.Id, 0, Completed: true));
            return;
        }
        if (_creditWaiters.Count == 0 && Room > 0)
            Grant(Sender, m);
        else if (m.Wait)
            _creditWaiters.AddLast((Sender, m));
        else
            Sender.Tell(new QCreditGrant(m.Id, 0, Completed: false));
    }

    private void Grant(IActorRef client, QCreditRequest m)
    {
        var n = Math.Min(m.Want, Room);
        _reserved += n;
        _reservedBy[client] = _reservedBy.GetValueOrDefault(client) + n;
        client.Tell(new QCreditGrant(m.Id, n, Completed: false));
    }

    private void ServeCredits()
    {
        while (_creditWaiters.First is { } node && Room > 0)
        {
            _creditWaiters.RemoveFirst();
            Grant(node.Value.Client, node.Value.Request);
        }
    }

    private void Unreserve(IActorRef client, int n)
    {
        if (!_reservedBy.TryGetValue(client, out var held))
            return;
        n = Math.Min(n, held);
        _reserved -= n;
        if (held == n)
            _reservedBy.Remove(client);
        else
            _reservedBy[client] = held - n;
    }

    // ------------------------------------------------------------------ consumers

    private void OnTake(QTake m)
    {
        Watch(Sender);
        if (_takers.Count == 0 && (_count > 0 || _completed))
            Send(Sender, m);
        else if (m.Max > 0)
            _takers.AddLast((Sender, m));
        else
            Sender.Tell(new QItems(m.Id, [], 0, _completed)); // no wait: nothing now
    }

    private void ServeTakers()
    {
        while (_takers.First is { } node && (_count > 0 || _completed))
        {
            _takers.RemoveFirst();
            Send(node.Value.Client, node.Value.Take);
        }
    }

    /// <summary>Up to the take's maximum (|Max|; a negative Max asks without waiting), whole segments where they fit.</summary>
    private void Send(IActorRef client, QTake take)
    {
        var max = Math.Abs(take.Max);
        var parts = new List<byte[]>();
        var n = 0;
        while (n < max && _segments.First is { } node)
        {
            var segment = node.Value;
            var need = max - n;
            if (segment.Remaining <= need)
            {
                n += segment.Remaining;
                parts.Add(segment.Rest());
                _segments.RemoveFirst();
            }
            else
            {
                parts.Add(segment.Split(need));
                n += need;
            }
        }
        _count -= n;
        client.Tell(new QItems(take.Id, parts.ToArray(), n, _completed && _count == 0));
        if (n > 0)
            ServeCredits();
    }

    private void OnReturnItems(QReturnItems m)
    {
        for (var i = m.Segments.Length - 1; i >= 0; i--)
            _segments.AddFirst(new Segment(m.Segments[i], -1));
        _count += m.Count;
        ServeTakers();
    }

    private void OnTaskDone()
    {
        if (!_joinable)
        {
            Sender.Tell(new QTaskDoneReply("the queue is not joinable"));
            return;
        }
        if (_unfinished == 0)
        {
            Sender.Tell(new QTaskDoneReply("TaskDone() was called more times than there were items put (Python's ValueError)"));
            return;
        }
        _unfinished--;
        Sender.Tell(new QTaskDoneReply(null));
        if (_unfinished == 0)
        {
            foreach (var joiner in _joiners)
                joiner.Tell(Status());
            _joiners.Clear();
        }
    }

    private void OnClientGone(IActorRef client)
    {
        _watched.Remove(client);
        if (_reservedBy.Remove(client, out var held))
            _reserved -= held;
        Remove(_creditWaiters, w => w.Client.Equals(client));
        Remove(_takers, t => t.Client.Equals(client));
        ServeCredits();
    }

    private static void Remove<TItem>(LinkedList<TItem> list, Func<TItem, bool> match)
    {
        for (var node = list.First; node is not null;)
        {
            var next = node.Next;
            if (match(node.Value))
                list.Remove(node);
            node = next;
        }
    }

    /// <summary>One producer's batch: its bytes as they came, rebuilt into an array only when a take splits it.</summary>
    private sealed class Segment
    {
        private byte[]? _bytes;
        private Array? _items;
        private int _offset;

        /// <param name="bytes">A serialized T[].</param>
        /// <param name="count">Items in <paramref name="bytes"/>; -1: not known (items given back), read from them.</param>
        public Segment(byte[] bytes, int count)
        {
            _bytes = bytes;
            if (count < 0)
            {
                _items = (Array)Payload.Deserialize(bytes)!;
                count = _items.Length;
            }
            Remaining = count;
        }

        public int Remaining { get; private set; }

        public byte[] Rest()
        {
            if (_bytes is { } whole && _offset == 0)
                return whole;
            return Slice(Remaining);
        }

        public byte[] Split(int k) => Slice(k);

        private byte[] Slice(int k)
        {
            _items ??= (Array)Payload.Deserialize(_bytes!)!;
            _bytes = null;
            var part = Array.CreateInstance(_items.GetType().GetElementType()!, k);
            Array.Copy(_items, _offset, part, 0, k);
            _offset += k;
            Remaining -= k;
            return Payload.Serialize(part);
        }
    }
}
