using ActorPool.IntegrationTests.Support;
using Xunit;

namespace ActorPool.IntegrationTests;

/// <summary>ActorQueue (Python's multiprocessing.Queue): its semantics in one process, and items crossing worker processes.</summary>
[Collection("processes")]
public sealed class ActorQueueSpec
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_queue_must_keep_pythons_semantics_in_one_process()
    {
        var q = new ActorQueue<string>();
        Assert.False(q.TryGet(out _)); // get_nowait on an empty queue: Empty
        await Assert.ThrowsAsync<QueueEmptyException>(() => q.GetAsync(TimeSpan.FromMilliseconds(50)));
        foreach (var s in new[] { "a", "b", "c" })
            await q.PutAsync(s);
        await q.FlushAsync().WaitAsync(Bound);
        Assert.Equal(3, q.Count);
        Assert.False(q.IsEmpty);
        Assert.False(q.IsFull);
        Assert.Equal(["a", "b", "c"], new[] { q.Get(), q.Get(), await q.GetAsync().WaitAsync(Bound) });

        // qsize() follows this process's own puts and gets at once, without a flush (it said 0 after Put).
        var counted = new ActorQueue<int>(maxSize: 3);
        counted.Put(1);
        Assert.Equal(1, counted.Count);
        counted.Put(2);
        counted.Put(3);
        Assert.True(counted.IsFull);
        Assert.Equal(1, counted.Get(Bound)); // the rest is prefetched here now: still in the queue as this process sees it
        Assert.Equal(2, counted.Count);
        counted.Get(Bound);
        counted.Get(Bound);
        Assert.True(counted.IsEmpty);

        // An item put after a get gave up is not lost: the next get has it.
        Assert.False(q.TryGet(out _, TimeSpan.FromMilliseconds(50)));
        q.Put("late");
        Assert.Equal("late", q.Get(Bound));

        Assert.Throws<ArgumentOutOfRangeException>(() => new ActorQueue<int>(-1));
        using var stream = new MemoryStream();
        var objects = new ActorQueue<object>();
        Assert.Throws<NotSendableException>(() => objects.Put(stream));
        objects.Put(42); // still usable
        Assert.Equal(42, objects.Get(Bound));
    }

    [Fact]
    public async Task No_wait_gets_and_puts_must_answer_at_once_whatever_this_process_has_in_flight()
    {
        // After a get, this process's prefetch waits at the queue for more; another thread may be blocked in Get, or
        // in Put on a full queue. A no-wait operation does not wait behind any of them (Python raises Empty or Full
        // at once). Generous bounds: the waits they must not do are 30 s each.
        var quick = TimeSpan.FromSeconds(10);
        var q = new ActorQueue<int>();
        q.Put(1);
        Assert.Equal(1, q.Get(Bound));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.False(q.TryGet(out _));
        Assert.Throws<QueueEmptyException>(() => q.Get(TimeSpan.Zero));
        Assert.True(clock.Elapsed < quick, $"no-wait gets took {clock.Elapsed}");

        var blocked = Task.Run(() => q.Get());
        await Task.Delay(300);
        clock.Restart();
        Assert.False(q.TryGet(out _));
        Assert.True(clock.Elapsed < quick, $"a no-wait get behind a blocked one took {clock.Elapsed}");
        q.Put(2);
        Assert.Equal(2, await blocked.WaitAsync(Bound)); // the blocked get still gets its item

        var bounded = new ActorQueue<int>(maxSize: 1);
        bounded.Put(1);
        var putter = Task.Run(() => bounded.Put(2)); // waits for room
        await Task.Delay(300);
        clock.Restart();
        Assert.False(bounded.TryPut(3));
        Assert.True(clock.Elapsed < quick, $"a no-wait put behind a waiting one took {clock.Elapsed}");
        Assert.Equal(1, bounded.Get(Bound));
        await putter.WaitAsync(Bound);
        Assert.Equal(2, bounded.Get(Bound));
    }

    [Fact]
    public async Task Every_put_must_arrive_when_the_putting_process_ends_right_after_it()
    {
        // Python joins a queue's feeder thread at exit. A process target that puts and returns, and a worker retired
        // right after its task put (max-tasks-per-child = 1), lost what was still buffered.
        var q = new ActorQueue<int>();
        var child = new ActorProcess(TestFunctions.PutAndReturn, q, 2000);
        child.Start();
        Assert.True(child.Join(Bound));
        Assert.Equal(0, child.ExitCode);
        var got = new List<int>();
        for (var i = 0; i < 2000; i++)
            got.Add(q.Get(Bound));
        Assert.Equal(Enumerable.Range(0, 2000), got);

        var pool = new Pool(new PoolOptions { Processes = 2, MaxTasksPerChild = 1 });
        using var _ = new Terminating(pool);
        var pids = await pool.MapAsync(((int First, int Count) x) => TestFunctions.PutMany(q, x.First, x.Count),
            Enumerable.Range(0, 6).Select(i => (i * 500, 500)), chunkSize: 1).WaitAsync(Bound);
        Assert.Equal(6, pids.Distinct().Count()); // each task in a worker of its own, retired right after it
        var fromWorkers = new List<int>();
        for (var i = 0; i < 3000; i++)
            fromWorkers.Add(q.Get(Bound));
        Assert.Equal(Enumerable.Range(0, 3000), fromWorkers.Order());
    }

    [Fact]
    public async Task A_consumer_that_pauses_must_get_one_producers_items_in_order()
    {
        // A consumer takes up to 256 items at a time and asks for more ahead of need; what it leaves unused for 100 ms
        // goes back to the front of the queue. A producer that goes on putting meanwhile: its items must still come
        // out in order, however the pauses fall (the consumer's pauses straddle the give-back time).
        var q = new ActorQueue<int>();
        const int n = 6_000;
        var producer = Task.Run(async () =>
        {
            for (var i = 0; i < n; i++)
            {
                q.Put(i);
                if (i % 97 == 0)
                    await q.FlushAsync();
                if (i % 500 == 0)
                    await Task.Delay(60);
            }
            await q.FlushAsync();
        });
        var random = new Random(7);
        var previous = -1;
        for (var i = 0; i < n; i++)
        {
            var item = await q.GetAsync(Bound);
            Assert.True(item == previous + 1, $"item {item} came after {previous}");
            previous = item;
            if (i % 211 == 0)
                await Task.Delay(90 + random.Next(30));
        }
        await producer.WaitAsync(Bound);
    }

    [Fact]
    public async Task A_bounded_queue_must_make_putters_wait_for_room_and_drop_nothing()
    {
        var q = new ActorQueue<int>(maxSize: 4);
        for (var i = 0; i < 4; i++)
            q.Put(i);
        await q.FlushAsync().WaitAsync(Bound);
        Assert.True(q.IsFull);
        Assert.False(q.TryPut(99)); // put_nowait: Full
        Assert.Throws<QueueFullException>(() => q.Put(99, TimeSpan.FromMilliseconds(50)));

        var waiting = q.PutAsync(4); // waits for room
        await Task.Delay(100);
        Assert.False(waiting.IsCompleted);
        Assert.Equal(0, q.Get(Bound));
        await waiting.WaitAsync(Bound);
        var rest = new List<int>();
        for (var i = 0; i < 4; i++)
            rest.Add(q.Get(Bound));
        Assert.Equal([1, 2, 3, 4], rest); // nothing dropped, nothing reordered, 99 never went in
        Assert.False(q.TryGet(out _));
    }

    [Fact]
    public async Task Completing_must_refuse_puts_and_let_getters_drain_then_end()
    {
        var q = new ActorQueue<int>();
        for (var i = 0; i < 5; i++)
            q.Put(i);
        await q.CompleteAsync().WaitAsync(Bound); // this process's puts go first
        Assert.True(q.IsCompleted);
        Assert.Throws<QueueCompletedException>(() => q.Put(5));
        Assert.Equal(0, q.Get(Bound));
        var rest = new List<int>();
        await foreach (var item in q.ReadAllAsync(new CancellationTokenSource(Bound).Token))
            rest.Add(item);
        Assert.Equal([1, 2, 3, 4], rest);
        await Assert.ThrowsAsync<QueueCompletedException>(() => q.GetAsync().WaitAsync(Bound));
        Assert.False(q.TryGet(out _));
    }

    [Fact]
    public async Task A_joinable_queue_must_count_unfinished_items_and_refuse_extra_task_done()
    {
        var q = new JoinableActorQueue<int>();
        q.Put(1);
        q.Put(2);
        var joined = q.JoinAsync();
        Assert.Equal(1, q.Get(Bound));
        q.TaskDone();
        await Task.Delay(100);
        Assert.False(joined.IsCompleted);
        Assert.Equal(2, q.Get(Bound));
        await q.TaskDoneAsync();
        await joined.WaitAsync(Bound);
        Assert.Contains("more times", Assert.Throws<InvalidOperationException>(q.TaskDone).Message);
    }

    [Fact]
    public async Task A_queue_given_to_the_initializer_must_be_usable_by_every_task()
    {
        var q = new ActorQueue<int>();
        var pool = new Pool(new PoolOptions { Processes = 2, Initializer = QueueWork.Init, InitArgs = [q] });
        using var terminating = new Terminating(pool);
        await pool.WaitForWorkersAsync().WaitAsync(Bound);
        var workers = (await pool.GetStatusAsync()).Workers.Select(w => w.Pid!.Value).ToList();
        var pids = await pool.MapAsync(QueueWork.PutSquare, Enumerable.Range(1, 10), chunkSize: 1).WaitAsync(Bound);
        Assert.DoesNotContain(Environment.ProcessId, pids);
        var got = new List<int>();
        for (var i = 0; i < 10; i++)
            got.Add(q.Get(Bound));
        Assert.Equal(Enumerable.Range(1, 10).Select(x => x * x).Order(), got.Order());
        // A queue of the pool's own process is reached over the workers' data links: they started no ActorSystem for
        // it (it took seconds the first time: its TLS connection) and still listen on no port.
        Assert.All(workers, pid => Assert.Empty(Processes.ListeningPorts(pid)));
    }

    [Fact]
    public async Task Items_must_cross_worker_processes_through_a_bounded_queue_none_lost_none_duplicated_order_kept_per_producer()
    {
        const int perProducer = 50_000, producers = 2;
        var q = new ActorQueue<long>(maxSize: 1_000);
        var pool = new Pool(3);
        using var terminating = new Terminating(pool);
        await pool.WaitForWorkersAsync().WaitAsync(Bound);

        // Two producer tasks and one consumer task, each in its own worker process.
        var outcomes = await pool.MapAsync(role => role < producers ? QueueWork.Produce(q, role, perProducer) : QueueWork.Consume(q, producers * perProducer),
            Enumerable.Range(0, producers + 1), chunkSize: 1).WaitAsync(TimeSpan.FromMinutes(3));

        var consumer = outcomes[producers];
        Assert.Equal(producers * perProducer, consumer.Count);
        Assert.Equal(producers * perProducer, consumer.Distinct);
        Assert.True(consumer.InOrder, "a producer's items came out of order");
        Assert.Equal(3, outcomes.Select(o => o.Pid).Distinct().Count());
        Assert.DoesNotContain(Environment.ProcessId, outcomes.Select(o => o.Pid));
        Assert.False(q.TryGet(out _)); // nothing left over, nothing duplicated
    }
}

/// <summary>What the queue test's worker tasks do (static, as user code would be).</summary>
public static class QueueWork
{
    /// <summary>Set in each worker by the pool's initializer (Python: a Queue handed to Pool(initializer=..., initargs=(q,))).</summary>
    public static ActorQueue<int>? Shared;

    public static void Init(ActorQueue<int> queue) => Shared = queue;

    public static int PutSquare(int x)
    {
        Shared!.Put(x * x);
        Shared.FlushAsync().Wait();
        return Environment.ProcessId;
    }

    public readonly record struct Outcome(int Pid, int Count, int Distinct, bool InOrder);

    public static Outcome Produce(ActorQueue<long> q, int producer, int count)
    {
        for (var i = 0; i < count; i++)
            q.Put(producer * 1_000_000_000L + i);
        q.FlushAsync().Wait();
        return new Outcome(Environment.ProcessId, count, count, true);
    }

    public static Outcome Consume(ActorQueue<long> q, int count)
    {
        var seen = new HashSet<long>();
        var last = new Dictionary<long, long>();
        var inOrder = true;
        for (var i = 0; i < count; i++)
        {
            var item = q.Get(TimeSpan.FromSeconds(60));
            seen.Add(item);
            var producer = item / 1_000_000_000L;
            var seq = item % 1_000_000_000L;
            if (last.TryGetValue(producer, out var previous) && seq != previous + 1)
                inOrder = false;
            last[producer] = seq;
        }
        return new Outcome(Environment.ProcessId, count, seen.Count, inOrder);
    }
}
