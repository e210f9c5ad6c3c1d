using ActorPool.Execution;
using ActorPool.Hosting;
using ActorPool.Queues;
using Akka.Actor;

namespace ActorPool;

/// <summary>
/// A queue whose items live in an actor: Python's <c>multiprocessing.Queue</c>, usable from any process of the
/// program. Pass it to a pool's tasks as an argument (or through the initializer) or to an <see cref="ActorProcess"/>;
/// every copy talks to the same queue. First in, first out, for getters and for putters.
/// </summary>
/// <remarks>
/// <para>A put returns once the item is buffered in this process (as Python's feeder thread does); buffered items are
/// sent in batches, in order. <see cref="FlushAsync"/> waits until this process's items have reached the queue.
/// A bounded queue (<c>maxSize</c> &gt; 0) makes a put wait for room (or fail with <see cref="QueueFullException"/>
/// after its timeout): nothing is ever dropped.</para>
/// <para>A get takes a batch of waiting items and keeps the rest for the next gets of this process (what it has not
/// used within 100 ms goes back to the front of the queue), so a consumer pays one round trip per batch, not per item.</para>
/// <para><see cref="Complete"/> ends the queue for everyone (a .NET channel's completion): later puts fail, getters drain
/// what is left and then see completion. A put in another process that crosses the completion is dropped, and that
/// process's next put fails. Python's <c>close()</c> is per process; there is no need for it here.</para>
/// <para>The queue lives in the process that created it, as long as that process runs.</para>
/// </remarks>
public class ActorQueue<T> : Hosting.IProcessHandle
{
    private readonly string _path;
    private readonly int _maxSize;

    /// <summary>A new queue (Python's <c>Queue(maxsize)</c>); <paramref name="maxSize"/> 0 means unbounded.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxSize"/> is negative.</exception>
    /// <exception cref="NotSendableException">Items of type <typeparamref name="T"/> cannot go to another process.</exception>
    public ActorQueue(int maxSize = 0) : this(maxSize, joinable: false)
    {
    }

    private protected ActorQueue(int maxSize, bool joinable)
    {
        if (maxSize < 0)
            throw new ArgumentOutOfRangeException(nameof(maxSize), maxSize, "maxSize must be 0 (unbounded) or positive.");
        Payload.CheckSendable(default(T), "the queue's item type");
        var system = Runtime.QueueSystem;
        var actor = system.ActorOf(QueueActor.Props(maxSize, joinable), $"actorpool-queue-{Guid.NewGuid():N}");
        _path = Runtime.PathOf(system, actor);
        _maxSize = maxSize;
    }

    /// <summary>The queue actor's full address (tests knock on it).</summary>
    internal string ActorPath => _path;

    string Hosting.IProcessHandle.OwnerPath => _path;

    // This process's client of the queue, found once per handle (a handle sent to another process finds its own there).
    [Hyperion.Ignore]
    private QueueClient<T>? _client;

    private protected QueueClient<T> Client => _client ??= QueueClient<T>.For(_path, _maxSize);

    /// <summary>At most this many items wait in the queue; 0: no bound.</summary>
    public int MaxSize => _maxSize;

    // ------------------------------------------------------------------ put

    /// <summary>Puts an item, waiting for room in a full bounded queue (Python's <c>put(item)</c>).</summary>
    /// <exception cref="NotSendableException">The item cannot go to another process; nothing was put.</exception>
    /// <exception cref="QueueCompletedException">The queue was completed.</exception>
    public Task PutAsync(T item, CancellationToken cancellationToken = default) => Put(item, null, cancellationToken);

    /// <summary>Puts an item, waiting at most <paramref name="timeout"/> for room (Python's <c>put(item, timeout=...)</c>).</summary>
    /// <exception cref="QueueFullException">No room within <paramref name="timeout"/>; nothing was put.</exception>
    public Task PutAsync(T item, TimeSpan timeout, CancellationToken cancellationToken = default) => Put(item, timeout, cancellationToken);

    /// <summary>Blocking form of <see cref="PutAsync(T, CancellationToken)"/>.</summary>
    public void Put(T item) => Put(item, null, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>Blocking form of <see cref="PutAsync(T, TimeSpan, CancellationToken)"/>; <see cref="TimeSpan.Zero"/> is Python's <c>put_nowait</c>.</summary>
    public void Put(T item, TimeSpan timeout) => Put(item, timeout, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>Puts an item if there is room within <paramref name="timeout"/> (default: now); false if not.</summary>
    public bool TryPut(T item, TimeSpan timeout = default)
    {
        try
        {
            Put(item, timeout);
            return true;
        }
        catch (QueueFullException)
        {
            return false;
        }
    }

    private protected virtual Task Put(T item, TimeSpan? timeout, CancellationToken ct)
    {
        timeout = Waiting.CheckTimeout(timeout);
        Payload.CheckSendable(item, "the item");
        return Client.PutAsync(item, timeout, ct);
    }

    /// <summary>Completes when every item put by this process so far has reached the queue.</summary>
    public Task FlushAsync(CancellationToken cancellationToken = default) => Client.FlushAsync(cancellationToken);

    // ------------------------------------------------------------------ get

    /// <summary>Takes the next item, waiting for one (Python's <c>get()</c>).</summary>
    /// <exception cref="QueueCompletedException">The queue was completed and every item taken.</exception>
    public Task<T> GetAsync(CancellationToken cancellationToken = default) => Client.GetAsync(null, cancellationToken);

    /// <summary>Takes the next item, waiting at most <paramref name="timeout"/> (Python's <c>get(timeout=...)</c>).</summary>
    /// <exception cref="QueueEmptyException">No item within <paramref name="timeout"/>.</exception>
    /// <exception cref="QueueCompletedException">The queue was completed and every item taken.</exception>
    public Task<T> GetAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        Client.GetAsync(Waiting.CheckTimeout(timeout), cancellationToken);

    /// <summary>Blocking form of <see cref="GetAsync(CancellationToken)"/>.</summary>
    public T Get() => GetAsync().GetAwaiter().GetResult();

    /// <summary>Blocking form of <see cref="GetAsync(TimeSpan, CancellationToken)"/>; <see cref="TimeSpan.Zero"/> is Python's <c>get_nowait</c>.</summary>
    public T Get(TimeSpan timeout) => GetAsync(timeout).GetAwaiter().GetResult();

    /// <summary>Takes the next item if one comes within <paramref name="timeout"/> (default: now); false if none (or the queue is completed and drained).</summary>
    public bool TryGet(out T item, TimeSpan timeout = default)
    {
        try
        {
            item = Get(timeout);
            return true;
        }
        catch (Exception e) when (e is QueueEmptyException or QueueCompletedException)
        {
            item = default!;
            return false;
        }
    }

    /// <summary>Every item, as it comes, until the queue is completed and drained (<c>await foreach</c>).</summary>
    public async IAsyncEnumerable<T> ReadAllAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (true)
        {
            T item;
            try
            {
                item = await Client.GetAsync(null, cancellationToken).ConfigureAwait(false);
            }
            catch (QueueCompletedException)
            {
                yield break;
            }
            yield return item;
        }
    }

    // ------------------------------------------------------------------ state

    /// <summary>
    /// Items in the queue now (Python's <c>qsize()</c>), as this process sees it: its own puts count at once (they are
    /// sent first) and the items it has prefetched for its gets count until they are taken. Like Python's, the figure
    /// is approximate while other processes put and get: theirs count once they reach the queue, and items on their way
    /// to a consumer are counted by neither side for that moment.
    /// </summary>
    public int Count
    {
        get
        {
            Client.FlushAsync(CancellationToken.None, waiting: false).Wait(AskTimeout);
            return Status().Count + Client.Prefetched;
        }
    }

    /// <summary><see cref="Count"/> is 0 (Python's <c>empty()</c>).</summary>
    public bool IsEmpty => Count == 0;

    /// <summary>A bounded queue holds <see cref="MaxSize"/> items (Python's <c>full()</c>).</summary>
    public bool IsFull => _maxSize > 0 && Count >= _maxSize;

    /// <summary><see cref="Complete"/> was called.</summary>
    public bool IsCompleted => Status().Completed;

    /// <summary>
    /// No more items may be put, by any process; getters drain what is left, then see completion. This process's
    /// own buffered puts reach the queue first.
    /// </summary>
    public void Complete() => CompleteAsync().GetAwaiter().GetResult();

    /// <inheritdoc cref="Complete"/>
    public async Task CompleteAsync(CancellationToken cancellationToken = default)
    {
        await FlushAsync(cancellationToken).ConfigureAwait(false);
        await Client.AskOwner<QStatus>(new QComplete(), AskTimeout, cancellationToken).ConfigureAwait(false);
        Client.Completed();
    }

    private protected static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(30);

    private protected QStatus Status()
    {
        var status = Client.AskOwner<QStatus>(new QGetStatus(), AskTimeout).GetAwaiter().GetResult();
        if (status.Completed)
            Client.Completed();
        return status;
    }

    /// <inheritdoc/>
    public override string ToString() => $"ActorQueue<{typeof(T).Name}>({_path})";
}

/// <summary>
/// Python's <c>JoinableQueue</c>: every item put counts as unfinished until a consumer calls <see cref="TaskDone"/>
/// for it; <see cref="Join"/> waits until none is. A put returns once its item has reached the queue, so a join
/// that follows it (in any process) counts it.
/// </summary>
public sealed class JoinableActorQueue<T> : ActorQueue<T>
{
    /// <summary>A new joinable queue; <paramref name="maxSize"/> 0 means unbounded.</summary>
    public JoinableActorQueue(int maxSize = 0) : base(maxSize, joinable: true)
    {
    }

    private protected override async Task Put(T item, TimeSpan? timeout, CancellationToken ct)
    {
        await base.Put(item, timeout, ct).ConfigureAwait(false);
        await FlushAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Marks one item taken from the queue as processed (Python's <c>task_done()</c>).</summary>
    /// <exception cref="InvalidOperationException">Called more times than items were put.</exception>
    public void TaskDone() => TaskDoneAsync().GetAwaiter().GetResult();

    /// <inheritdoc cref="TaskDone"/>
    public async Task TaskDoneAsync(CancellationToken cancellationToken = default)
    {
        var reply = await Client.AskOwner<QTaskDoneReply>(new QTaskDone(), AskTimeout, cancellationToken).ConfigureAwait(false);
        if (reply.Error is { } error)
            throw new InvalidOperationException(error);
    }

    /// <summary>Waits until every item put has been marked done (Python's <c>join()</c>).</summary>
    public void Join() => JoinAsync().GetAwaiter().GetResult();

    /// <inheritdoc cref="Join"/>
    public Task JoinAsync(CancellationToken cancellationToken = default) =>
        Client.AskOwner<QStatus>(new QJoin(), Timeout.InfiniteTimeSpan, cancellationToken);
}
