using System.Diagnostics;
using Xunit;

namespace ActorPool.IntegrationTests.Conformance;

/// <summary>
/// CPython's <c>_TestQueue</c> (with JoinableQueue's <c>test_task_done</c>) on ActorQueue. CPython runs it with processes,
/// threads and a manager; an ActorQueue is the same object for all three, so the child processes here are spawned ones
/// and, where cheap, threads (the <c>thread</c> start method).
/// </summary>
[Collection("processes")]
public sealed class CPythonQueueSpec : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan Timeout1 = TimeSpan.FromMilliseconds(100);
    private readonly Scratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    // CPython: _TestQueue.test_put
    [Theory]
    [InlineData("spawn")]
    [InlineData("thread")]
    public async Task Put_must_fill_a_bounded_queue_then_raise_full_in_every_form_until_a_child_takes_the_items(string method)
    {
        const int maxSize = 6;
        var queue = new ActorQueue<int>(maxSize);
        Assert.True(queue.IsEmpty);
        Assert.False(queue.IsFull);

        queue.Put(1);                         // put(1)
        await queue.PutAsync(2);              // put(2, True)
        queue.Put(3, Bound);                  // put(3, True, timeout)
        Assert.True(queue.TryPut(4));         // put(4, False)
        queue.Put(5, TimeSpan.Zero);          // put(5, False, None)
        Assert.True(queue.TryPut(6));         // put_nowait(6)

        Assert.False(queue.IsEmpty);
        Assert.True(queue.IsFull);

        Assert.False(queue.TryPut(7));                                                           // put(7, False), put_nowait(7)
        Assert.Throws<QueueFullException>(() => queue.Put(7, TimeSpan.Zero));                     // put(7, False, None / TIMEOUT2)
        Assert.Throws<QueueFullException>(() => queue.Put(7, Timeout1));                          // put(7, True, TIMEOUT1)
        await Assert.ThrowsAsync<QueueFullException>(() => queue.PutAsync(7, Timeout1));          // put(7, True, timeout=TIMEOUT3)

        var child = _scratch.Started(new ActorProcess(ConformanceFunctions.Take, queue, maxSize) { Daemon = true, StartMethod = method });
        Assert.True(child.Join(Bound));
        Assert.Equal(0, child.ExitCode);
        Assert.True(queue.IsEmpty);
        Assert.False(queue.IsFull);
        Assert.False(queue.TryGet(out _)); // 7 never went in
    }

    // CPython: _TestQueue.test_get
    [Theory]
    [InlineData("spawn")]
    [InlineData("thread")]
    public async Task Get_must_take_a_childs_items_in_order_in_every_form_then_raise_empty(string method)
    {
        var queue = new ActorQueue<int>();
        Assert.True(queue.IsEmpty);
        var child = _scratch.Started(new ActorProcess(ConformanceFunctions.PutRange, queue, 2, 5) { Daemon = true, StartMethod = method });
        Assert.True(child.Join(Bound)); // the parent_can_continue event: what the child put has arrived when it has ended
        Assert.False(queue.IsEmpty);

        Assert.Equal(2, queue.Get());                        // get(True, None)
        Assert.Equal(3, await queue.GetAsync());             // get(True)
        Assert.Equal(4, queue.Get(TimeSpan.FromSeconds(1))); // get(timeout=1)
        Assert.True(queue.TryGet(out var five));             // get_nowait()
        Assert.Equal(5, five);
        Assert.True(queue.IsEmpty);

        Assert.False(queue.TryGet(out _));                                                      // get(False), get_nowait()
        Assert.Throws<QueueEmptyException>(() => queue.Get(TimeSpan.Zero));                     // get(False, None / TIMEOUT2)
        Assert.Throws<QueueEmptyException>(() => queue.Get(Timeout1));                          // get(True, TIMEOUT1)
        await Assert.ThrowsAsync<QueueEmptyException>(() => queue.GetAsync(Timeout1));          // get(timeout=TIMEOUT3)
        Assert.Equal(0, child.ExitCode);
    }

    // CPython: _TestQueue.test_fork
    [Fact]
    public async Task A_child_must_put_to_a_queue_this_process_has_put_to_and_the_items_keep_their_order()
    {
        var queue = new ActorQueue<int>();
        ConformanceFunctions.PutRange(queue, 0, 9);
        await queue.FlushAsync().WaitAsync(Bound); // CPython sleeps so that its feeder has sent them before the child starts
        var child = _scratch.Started(new ActorProcess(ConformanceFunctions.PutRange, queue, 10, 19) { Daemon = true });
        Assert.Equal(Enumerable.Range(0, 20), queue.Take(20, Bound));
        Assert.False(queue.TryGet(out _));
        Assert.True(child.Join(Bound));
        Assert.Equal(0, child.ExitCode);
    }

    // CPython: _TestQueue.test_qsize
    [Fact]
    public void Count_must_follow_puts_and_gets()
    {
        var q = new ActorQueue<int>();
        Assert.Equal(0, q.Count);
        q.Put(1);
        Assert.Equal(1, q.Count);
        q.Put(5);
        Assert.Equal(2, q.Count);
        q.Get(Bound);
        Assert.Equal(1, q.Count);
        q.Get(Bound);
        Assert.Equal(0, q.Count);
    }

    // CPython: _TestQueue.test_task_done
    [Fact]
    public async Task Join_must_return_once_every_item_put_is_marked_done_by_consumer_processes()
    {
        var queue = new JoinableActorQueue<int>();
        var processed = new ActorQueue<int>();
        var workers = Enumerable.Range(0, 2) // 4 in CPython
            .Select(_ => _scratch.Started(new ActorProcess(ConformanceFunctions.Consume, queue, processed) { Daemon = true }))
            .ToList();
        for (var i = 0; i < 10; i++)
            queue.Put(i);

        await Task.Run(queue.Join).WaitAsync(Bound); // join() returns
        // Each consumer noted an item before marking it done: all 10 have been processed when join returns.
        Assert.Equal(Enumerable.Range(0, 10), processed.Take(10, Bound).Order());
        Assert.False(processed.TryGet(out _));

        foreach (var _ in workers)
            queue.Put(-1); // None in CPython
        Assert.All(workers, p => Assert.True(p.Join(Bound)));
        Assert.All(workers, p => Assert.Equal(0, p.ExitCode));
    }

    // CPython: _TestQueue.test_no_import_lock_contention
    [Fact]
    public void A_queue_must_work_in_a_static_constructor()
    {
        // Python's import lock is held while a module's top-level code runs; .NET holds a type's initialization lock while
        // its static constructor runs. A queue made, put to and read there must not wait on anything that lock blocks.
        Assert.Equal("knock knock", QueueInTypeInitializer.Got);
    }

    // CPython: _TestQueue.test_timeout
    [Fact]
    public void A_get_with_a_timeout_must_wait_that_long_before_raising_empty()
    {
        var q = new ActorQueue<int>();
        var clock = Stopwatch.StartNew();
        Assert.Throws<QueueEmptyException>(() => q.Get(TimeSpan.FromMilliseconds(200)));
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(100), $"get(timeout=0.2) gave up after {clock.Elapsed}");
    }

    // CPython: _TestQueue.test_queue_feeder_donot_stop_onexc
    // CPython: _TestQueue.test_queue_feeder_on_queue_feeder_error
    [Fact]
    public void An_item_that_cannot_be_sent_must_be_refused_by_its_put_and_the_queue_must_go_on_with_a_right_size()
    {
        // Python's put succeeds and its feeder thread reports the pickling error (to a hook, then stderr); here the put
        // itself raises, naming the item, and nothing was put.
        var q = new ActorQueue<object>();
        var error = Assert.Throws<NotSendableException>(() => q.Put(new Unpicklable()));
        Assert.Contains("Owner is a System.Threading.Thread", error.Message); // what the hook is given: the error and the object
        q.Put(true);
        Assert.Equal(true, q.Get(Bound));

        var bounded = new ActorQueue<object>(maxSize: 1);
        Assert.Throws<NotSendableException>(() => bounded.Put(new Unpicklable()));
        bounded.Put(true);
        Assert.Equal(1, bounded.Count);
        Assert.Equal(true, bounded.Get(Bound));
        Assert.True(bounded.IsEmpty);
    }

    // CPython: _TestQueue.test_closed_queue_put_get_exceptions
    [Fact]
    public void A_completed_queue_must_refuse_puts_and_gets()
    {
        // Python's close() (this process puts no more) is Complete() here (nobody puts more).
        foreach (var q in new ActorQueue<string>[] { new(), new JoinableActorQueue<string>() })
        {
            q.Complete();
            Assert.Contains("is completed", Assert.Throws<QueueCompletedException>(() => q.Put("foo")).Message); // Python: 'is closed'
            Assert.Contains("is completed", Assert.Throws<QueueCompletedException>(() => q.Get()).Message);
        }
    }

    private static class QueueInTypeInitializer
    {
        public static readonly string Got;

        static QueueInTypeInitializer()
        {
            var q = new ActorQueue<string>();
            q.Put("knock knock");
            Got = q.Get(TimeSpan.FromSeconds(30)); // 3 s in CPython
        }
    }
}
