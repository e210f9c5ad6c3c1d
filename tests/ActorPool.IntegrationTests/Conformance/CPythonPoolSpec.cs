using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using ActorPool.IntegrationTests.Support;
using Xunit;

namespace ActorPool.IntegrationTests.Conformance;

/// <summary>
/// CPython's <c>_TestPool</c>: the tests that use its shared pool (<c>cls.pool</c>), run against one warm pool per start
/// method (CPython has processes, threads and a manager). The tests that make pools of their own are in
/// <see cref="CPythonPoolLifecycleSpec"/>.
/// </summary>
public abstract class CPythonPoolSpec<TFixture>(TFixture fixture) : IClassFixture<TFixture> where TFixture : PoolFixture
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan Timeout1 = TimeSpan.FromMilliseconds(100);
    private Pool Pool => fixture.Pool;

    private static IEnumerable<int> Squares(int n) => Enumerable.Range(0, n).Select(x => x * x);

    // CPython: _TestPool.test_apply
    [Fact]
    public void Apply_must_return_the_functions_result()
    {
        Assert.Equal(25, Pool.Apply(ConformanceFunctions.Sqr, 5));
        Assert.Equal(9, Pool.Apply(() => ConformanceFunctions.SqrAfter(x: 3, millis: 0))); // Python: apply(sqr, (), {'x': 3})
    }

    // CPython: _TestPool.test_map
    [Fact]
    public void Map_must_return_the_results_in_input_order_with_any_chunk_size()
    {
        Assert.Equal(Squares(10), Pool.Map(ConformanceFunctions.Sqr, Enumerable.Range(0, 10)));
        Assert.Equal(Squares(100), Pool.Map(ConformanceFunctions.Sqr, Enumerable.Range(0, 100), chunkSize: 20));
    }

    // CPython: _TestPool.test_starmap
    // CPython: _TestPool.test_starmap_async
    [Fact]
    public async Task StarMap_must_spread_each_tuple_over_the_functions_arguments()
    {
        static (int, int)[] Pairs(int n) => Enumerable.Range(0, n).Zip(Enumerable.Range(0, n).Reverse()).ToArray();
        static IEnumerable<int> Products(int n) => Pairs(n).Select(t => t.Item1 * t.Item2);
        Assert.Equal(Products(10), Pool.StarMap<int, int, int>(ConformanceFunctions.Mul, Pairs(10)));
        Assert.Equal(Products(100), Pool.StarMap<int, int, int>(ConformanceFunctions.Mul, Pairs(100), chunkSize: 20));
        Assert.Equal(Products(100), await Pool.StarMapAsync<int, int, int>(ConformanceFunctions.Mul, Pairs(100)).WaitAsync(Bound));
    }

    // CPython: _TestPool.test_map_async
    [Fact]
    public async Task MapAsync_must_complete_with_the_results()
    {
        Assert.Equal(Squares(10), await Pool.MapAsync(ConformanceFunctions.Sqr, Enumerable.Range(0, 10)).WaitAsync(Bound));
    }

    // CPython: _TestPool.test_map_async_callbacks
    [Fact]
    public async Task A_continuation_must_get_the_results_once_or_the_error_once()
    {
        // Python's callback and error_callback are a continuation of the call's task.
        var calls = new ConcurrentQueue<object>();
        void Record(Task<IReadOnlyList<int>> t) => calls.Enqueue(t.IsFaulted ? t.Exception!.InnerException! : t.Result);
        await Pool.MapAsync((string s) => int.Parse(s, CultureInfo.InvariantCulture), ["1"]).ContinueWith(Record).WaitAsync(Bound);
        Assert.Single(calls);
        Assert.Equal([1], (IReadOnlyList<int>)calls.ToArray()[0]);
        await Pool.MapAsync((string s) => int.Parse(s, CultureInfo.InvariantCulture), ["a"]).ContinueWith(Record).WaitAsync(Bound);
        Assert.Equal(2, calls.Count);
        var error = Assert.IsType<TaskFailedException>(calls.ToArray()[1]);
        Assert.Equal("System.FormatException", error.RemoteType); // Python: a ValueError instance
    }

    // CPython: _TestPool.test_map_unplicklable
    [Fact]
    public async Task Map_of_arguments_that_cannot_be_sent_must_raise_at_once_and_leave_the_pool_usable()
    {
        // Under every start method, the thread one included: arguments are serialized for threads too.
        var unpicklable = new Unpicklable();
        await Assert.ThrowsAsync<NotSendableException>(() => Pool.MapAsync((Unpicklable a) => 1, Enumerable.Repeat(unpicklable, 10)).WaitAsync(Bound));
        Assert.Equal([4], Pool.Map(ConformanceFunctions.Sqr, [2]));
    }

    // CPython: _TestPool.test_map_chunksize
    [Fact]
    public async Task Map_of_nothing_with_a_chunk_size_must_complete()
    {
        Assert.Empty(await Pool.MapAsync(ConformanceFunctions.Sqr, Array.Empty<int>(), chunkSize: 1).WaitAsync(Bound));
    }

    // CPython: _TestPool.test_map_handle_iterable_exception
    [Fact]
    public async Task Map_must_raise_the_inputs_own_error_every_time()
    {
        for (var i = 0; i < 2; i++) // again: it is reentrant
            await Assert.ThrowsAsync<SayWhenException>(() => Pool.MapAsync(ConformanceFunctions.Sqr, ConformanceFunctions.ExceptionThrowingGenerator(1, -1), 1).WaitAsync(Bound));
        await Assert.ThrowsAsync<SayWhenException>(() => Pool.MapAsync(ConformanceFunctions.Sqr, ConformanceFunctions.ExceptionThrowingGenerator(10, 3), 1).WaitAsync(Bound));
        for (var i = 0; i < 2; i++)
            await Assert.ThrowsAsync<SayWhenException>(() => Pool.MapAsync(ConformanceFunctions.Sqr, new SpecialIterable(), 1).WaitAsync(Bound));
        Assert.Equal([9], Pool.Map(ConformanceFunctions.Sqr, [3]));
    }

    // CPython: _TestPool.test_async
    [Fact]
    public async Task ApplyAsync_must_complete_with_the_result()
    {
        Assert.Equal(49, await Pool.ApplyAsync(() => ConformanceFunctions.SqrAfter(7, 100)).WaitAsync(Bound));
    }

    // CPython: _TestPool.test_async_timeout
    [Fact]
    public async Task Waiting_for_a_result_with_a_timeout_must_time_out_while_the_task_goes_on()
    {
        // Python's res.get(timeout) is Task.WaitAsync(timeout): TimeoutException, and the task is not stopped.
        var gate = Path.Combine(Path.GetTempPath(), $"actorpool-gate-{Guid.NewGuid():N}");
        try
        {
            var res = Pool.ApplyAsync(() => ConformanceFunctions.SqrWhenOpen(6, gate));
            await Assert.ThrowsAsync<TimeoutException>(() => res.WaitAsync(Timeout1));
            File.WriteAllText(gate, "");
            Assert.Equal(36, await res.WaitAsync(Bound));
        }
        finally
        {
            File.WriteAllText(gate, ""); // a task still waiting ends
            await Task.Delay(100);
            File.Delete(gate);
        }
    }

    // CPython: _TestPool.test_imap
    [Fact]
    public async Task Imap_must_yield_the_results_in_order_then_end()
    {
        Assert.Equal(Squares(10), Pool.Imap(ConformanceFunctions.Sqr, Enumerable.Range(0, 10)));

        using (var it = Pool.Imap(ConformanceFunctions.Sqr, Enumerable.Range(0, 10)).GetEnumerator())
        {
            for (var i = 0; i < 10; i++)
            {
                Assert.True(it.MoveNext());
                Assert.Equal(i * i, it.Current);
            }
            Assert.False(it.MoveNext()); // StopIteration
        }

        await using var e = Pool.ImapAsync(ConformanceFunctions.Sqr, Enumerable.Range(0, 1000), chunkSize: 100).GetAsyncEnumerator();
        for (var i = 0; i < 1000; i++)
        {
            Assert.True(await e.MoveNextAsync().AsTask().WaitAsync(Bound));
            Assert.Equal(i * i, e.Current);
        }
        Assert.False(await e.MoveNextAsync().AsTask().WaitAsync(Bound));
    }

    // CPython: _TestPool.test_imap_handle_iterable_exception
    [Fact]
    public async Task Imap_must_yield_the_results_before_the_inputs_error_then_raise_it()
    {
        async Task Expect(IEnumerable<int> input, int chunkSize, int resultsBefore)
        {
            await using var it = Pool.ImapAsync(ConformanceFunctions.Sqr, input, chunkSize).GetAsyncEnumerator();
            for (var i = 0; i < resultsBefore; i++)
            {
                Assert.True(await it.MoveNextAsync().AsTask().WaitAsync(Bound));
                Assert.Equal(i * i, it.Current);
            }
            await Assert.ThrowsAsync<SayWhenException>(() => it.MoveNextAsync().AsTask().WaitAsync(Bound));
        }

        await Expect(ConformanceFunctions.ExceptionThrowingGenerator(1, -1), 1, 0);
        await Expect(ConformanceFunctions.ExceptionThrowingGenerator(1, -1), 1, 0); // reentrant
        await Expect(ConformanceFunctions.ExceptionThrowingGenerator(10, 3), 1, 3);
        // The error surfaces at the start of the broken chunk's results.
        await Expect(ConformanceFunctions.ExceptionThrowingGenerator(20, 7), 2, 6);
        await Expect(ConformanceFunctions.ExceptionThrowingGenerator(20, 7), 4, 4);
    }

    // CPython: _TestPool.test_imap_unordered
    [Fact]
    public async Task Imap_unordered_must_yield_every_result_once()
    {
        Assert.Equal(Squares(10), Pool.ImapUnordered(ConformanceFunctions.Sqr, Enumerable.Range(0, 10)).Order());
        Assert.Equal(Squares(1000), (await Pool.ImapUnorderedAsync(ConformanceFunctions.Sqr, Enumerable.Range(0, 1000), chunkSize: 100).ToListAsync().AsTask().WaitAsync(Bound)).Order());
    }

    // CPython: _TestPool.test_imap_unordered_handle_iterable_exception
    [Fact]
    public async Task Imap_unordered_must_yield_only_expected_results_once_before_the_inputs_error()
    {
        for (var i = 0; i < 2; i++)
        {
            await using var first = Pool.ImapUnorderedAsync(ConformanceFunctions.Sqr, ConformanceFunctions.ExceptionThrowingGenerator(1, -1)).GetAsyncEnumerator();
            await Assert.ThrowsAsync<SayWhenException>(() => first.MoveNextAsync().AsTask().WaitAsync(Bound));
        }

        foreach (var (total, when, chunkSize) in new[] { (10, 3, 1), (20, 7, 2) })
        {
            var expected = Squares(total).ToList();
            await Assert.ThrowsAsync<SayWhenException>(async () =>
            {
                await foreach (var value in Pool.ImapUnorderedAsync(ConformanceFunctions.Sqr, ConformanceFunctions.ExceptionThrowingGenerator(total, when), chunkSize)
                                   .WithCancellation(new CancellationTokenSource(Bound).Token))
                    Assert.True(expected.Remove(value), $"{value} was not expected, or came twice");
            });
        }
    }

    // CPython: _TestPool.test_traceback
    [Fact]
    public async Task A_task_error_must_carry_the_remote_type_message_and_stack_while_an_input_error_stays_local()
    {
        var error = await Assert.ThrowsAsync<TaskFailedException>(() => Pool.ApplyAsync(ConformanceFunctions.RaiseRuntimeError123).WaitAsync(Bound));
        Assert.Equal("System.InvalidOperationException", error.RemoteType); // Python: type(exc) is RuntimeError
        Assert.Equal("123", error.RemoteMessage);                           // exc.args == (123,)
        Assert.Contains(nameof(ConformanceFunctions.RaiseRuntimeError123), error.RemoteStackTrace); // the remote traceback
        Assert.Contains("ConformanceSupport.cs", error.RemoteStackTrace);
        Assert.Contains(error.RemoteStackTrace, error.ToString());          // and what an unhandled-exception report prints

        // An error of the input itself is raised as it is, not as a remote one.
        var local = await Assert.ThrowsAsync<SayWhenException>(() => Pool.MapAsync(ConformanceFunctions.Sqr, ConformanceFunctions.ExceptionThrowingGenerator(1, -1), 1).WaitAsync(Bound));
        Assert.Null(local.InnerException);
    }

    // CPython: _TestPool.test_wrapped_exception
    [Fact]
    public async Task A_task_error_must_be_reported_the_same_way_under_every_start_method()
    {
        // Issue #20980 was the thread pool wrapping errors differently; here every start method raises TaskFailedException.
        var error = await Assert.ThrowsAsync<TaskFailedException>(() => Pool.ApplyAsync(ConformanceFunctions.RaiseRuntimeErrorFoo).WaitAsync(Bound));
        Assert.Equal("System.InvalidOperationException", error.RemoteType);
        Assert.Equal("foo", error.RemoteMessage);
    }

    // CPython: _TestPool.test_release_task_refs
    [Fact]
    public async Task The_pool_must_not_keep_a_calls_arguments_or_results()
    {
        var refs = MapAndForget();
        // Map has returned; the call's last bookkeeping may still run on another thread for a moment on a busy machine
        // (seen once with 20 of 20 alive right after the return). Not kept means gone soon after, not at that instant.
        await Processes.WaitUntil(() =>
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            return refs.All(r => !r.IsAlive);
        }, TimeSpan.FromSeconds(10));
        Assert.All(refs, r => Assert.False(r.IsAlive, "an argument or a result of a finished call is still referenced"));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private List<WeakReference> MapAndForget()
    {
        var objs = Enumerable.Range(0, 10).Select(i => new CountedObject { Id = i }).ToList();
        var results = Pool.Map(ConformanceFunctions.Identity, objs);
        Assert.Equal(objs.Select(o => o.Id), results.Select(r => r.Id)); // copies came back
        return [.. objs.Select(o => new WeakReference(o)), .. results.Select(r => new WeakReference(r))];
    }
}

[Collection("processes")]
public sealed class SpawnCPythonPoolSpec(SpawnPoolFixture fixture) : CPythonPoolSpec<SpawnPoolFixture>(fixture);

[Collection("processes")]
public sealed class ForkServerCPythonPoolSpec(ForkServerPoolFixture fixture) : CPythonPoolSpec<ForkServerPoolFixture>(fixture);

[Collection("processes")]
public sealed class ThreadCPythonPoolSpec(ThreadPoolFixture fixture) : CPythonPoolSpec<ThreadPoolFixture>(fixture);

/// <summary>CPython's <c>_TestPool</c> tests that make pools of their own: sizes, terminate, empty calls, <c>with</c>, no fail-fast.</summary>
[Collection("processes")]
public sealed class CPythonPoolLifecycleSpec : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private readonly Scratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    private static Pool Make(string method, int processes) => StartMethods.GetContext(method).Pool(processes);

    // CPython: _TestPool.test_make_pool
    [Theory]
    [InlineData("spawn")]
    [InlineData("thread")]
    public async Task A_pool_must_refuse_a_size_below_1_and_have_the_workers_it_was_given(string method)
    {
        Assert.ThrowsAny<ArgumentException>(() => Make(method, -1)); // Python: ValueError
        Assert.ThrowsAny<ArgumentException>(() => Make(method, 0));
        var p = Make(method, 3);
        using var _ = new Terminating(p);
        await p.WaitForWorkersAsync().WaitAsync(Bound);
        Assert.Equal(3, p.Processes);
        var workers = (await p.GetStatusAsync().WaitAsync(Bound)).Workers;
        Assert.Equal(3, workers.Count); // len(p._pool) == 3
        if (method != "thread")
            Assert.Equal(3, workers.Select(w => w.Pid).Distinct().Count());
        p.Close();
        await p.JoinAsync().WaitAsync(Bound);
    }

    // CPython: _TestPool.test_terminate
    [Theory]
    [InlineData("spawn")]
    [InlineData("thread")]
    public async Task Terminate_must_end_a_pool_busy_with_endless_tasks_at_once(string method)
    {
        var gate = _scratch.Path("never-until-the-end");
        var p = Make(method, 2);
        using var _ = new Terminating(p);
        try
        {
            await p.WaitForWorkersAsync().WaitAsync(Bound);
            var pids = (await p.GetStatusAsync().WaitAsync(Bound)).Workers.Select(w => w.Pid!.Value).ToList();
            var result = p.MapAsync(TestFunctions.PidWhenOpen, Enumerable.Repeat(gate, 10_000), chunkSize: 1);
            Assert.True(await Processes.WaitUntil(() => p.GetStatus().Workers.All(w => w.Task is not null), Bound), "the tasks never ran");
            await Task.Run(p.Terminate).WaitAsync(Bound);
            await p.JoinAsync().WaitAsync(Bound);
            Assert.Equal(PoolState.Terminated, p.State);
            await Assert.ThrowsAsync<ObjectDisposedException>(() => result.WaitAsync(Bound));
            if (method != "thread")
                Assert.True(await Processes.WaitUntil(() => pids.All(pid => !Processes.IsAlive(pid)), Bound), "a worker outlived terminate()");
        }
        finally
        {
            _scratch.Open("never-until-the-end"); // thread workers cannot be stopped: let their tasks end
        }
    }

    // CPython: _TestPool.test_empty_iterable
    [Theory]
    [InlineData("spawn")]
    [InlineData("thread")]
    public async Task Calls_over_nothing_must_return_nothing_and_let_the_pool_join(string method)
    {
        var p = Make(method, 1);
        using var _ = new Terminating(p);
        Assert.Empty(p.Map(ConformanceFunctions.Sqr, Array.Empty<int>()));
        Assert.Empty(p.Imap(ConformanceFunctions.Sqr, Array.Empty<int>()));
        Assert.Empty(p.ImapUnordered(ConformanceFunctions.Sqr, Array.Empty<int>()));
        Assert.Empty(await p.MapAsync(ConformanceFunctions.Sqr, Array.Empty<int>()).WaitAsync(Bound));
        p.Close();
        await p.JoinAsync().WaitAsync(Bound); // Issue 12157: join hung after an empty map
        Assert.Equal(PoolState.Terminated, p.State);
    }

    // CPython: _TestPool.test_context
    // CPython: _TestPool.test_enter
    [Theory]
    [InlineData("spawn")]
    [InlineData("thread")]
    public async Task A_pool_in_a_using_block_must_serve_it_then_drain_and_refuse_calls(string method)
    {
        var p = Make(method, 2);
        using var _ = new Terminating(p);
        Task<IReadOnlyList<int>> slow;
        await using (p)
        {
            Assert.Equal(Enumerable.Range(0, 10).Select(x => x * x), await p.MapAsync(ConformanceFunctions.Sqr, Enumerable.Range(0, 10)).WaitAsync(Bound));
            slow = p.MapAsync(x => ConformanceFunctions.SqrAfter(x, 200), Enumerable.Range(0, 4), chunkSize: 1);
        }
        // Python's `with` terminates the pool; `await using` drains it: the call still running when it ended finished.
        Assert.Equal([0, 1, 4, 9], await slow.WaitAsync(Bound));
        Assert.Equal(PoolState.Terminated, p.State);
        await Assert.ThrowsAsync<InvalidOperationException>(() => p.MapAsync(ConformanceFunctions.Sqr, Enumerable.Range(0, 10)));

        // bpo-35477: a pool that is no longer running cannot be used again. C#'s using has no entry step to refuse it:
        // disposing it again is harmless, and a call in the block is refused.
        await using (p)
            await Assert.ThrowsAsync<InvalidOperationException>(() => p.ApplyAsync(() => 1));
    }

    // CPython: _TestPool.test_map_no_failfast
    [Theory]
    [InlineData("spawn")]
    [InlineData("thread")]
    public async Task Close_and_join_after_a_failed_map_must_wait_for_its_running_tasks_without_deadlock(string method)
    {
        var p = Make(method, 2);
        using var _ = new Terminating(p);
        await p.WaitForWorkersAsync().WaitAsync(Bound);
        var error = await Assert.ThrowsAsync<TaskFailedException>(() => p.MapAsync(ConformanceFunctions.RaiseLargeError, [(0, _scratch.Folder), (1, _scratch.Folder)]).WaitAsync(Bound));
        Assert.Equal(0, error.TaskIndex);
        Assert.Equal(1 << 20, error.RemoteMessage.Length); // the 1 MiB error came back whole
        p.Close();
        await p.JoinAsync().WaitAsync(Bound);
        Assert.True(File.Exists(_scratch.Path("1.finished")), "join returned before the map's other running task had finished");
    }
}
