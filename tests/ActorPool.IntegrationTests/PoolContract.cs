using ActorPool.IntegrationTests.Support;
using Xunit;

namespace ActorPool.IntegrationTests;

/// <summary>
/// What every pool does, whatever its start method: one contract, run against each (below). One warm 2-worker
/// pool per start method is shared by these tests.
/// </summary>
public abstract class PoolContract<TFixture>(TFixture fixture) : IClassFixture<TFixture> where TFixture : PoolFixture
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private Pool Pool => fixture.Pool;

    /// <summary>Workers are threads of this process (the thread start method), not processes of their own.</summary>
    private bool InProcess => fixture.StartMethod == "thread";

    [Fact]
    public async Task Map_must_return_results_in_input_order_from_static_methods_lambdas_and_closures()
    {
        var offset = 7;
        Assert.Equal(Enumerable.Range(0, 100).Select(x => x * x), await Pool.MapAsync(TestFunctions.Square, Enumerable.Range(0, 100)).WaitAsync(Bound));
        Assert.Equal(Enumerable.Range(0, 100).Select(x => x + offset), await Pool.MapAsync(x => x + offset, Enumerable.Range(0, 100), chunkSize: 3).WaitAsync(Bound));
        Assert.Equal(["a1", "b2"], Pool.StarMap((string s, int n) => s + n, [("a", 1), ("b", 2)]));
        Assert.Equal([6], await Pool.StarMapAsync((int a, int b, int c) => a + b + c, [(1, 2, 3)]).WaitAsync(Bound));
        Assert.Empty(await Pool.MapAsync(TestFunctions.Square, Array.Empty<int>()).WaitAsync(Bound));
    }

    [Fact]
    public async Task Concurrent_calls_must_each_get_their_own_results()
    {
        var squares = Pool.MapAsync(TestFunctions.Square, Enumerable.Range(0, 300), chunkSize: 1);
        var names = Pool.MapAsync(x => $"#{x}", Enumerable.Range(0, 300), chunkSize: 1);
        var doubles = Pool.ImapUnorderedAsync(x => x * 2.0, Enumerable.Range(0, 300)).ToListAsync().AsTask();
        await Task.WhenAll(squares, names, doubles).WaitAsync(Bound);
        Assert.Equal(Enumerable.Range(0, 300).Select(x => x * x), await squares);
        Assert.Equal(Enumerable.Range(0, 300).Select(x => $"#{x}"), await names);
        Assert.Equal(Enumerable.Range(0, 300).Select(x => x * 2.0), (await doubles).Order());
    }

    [Fact]
    public async Task An_input_that_throws_must_fail_the_call_after_the_results_before_it()
    {
        IEnumerable<int> Broken()
        {
            yield return 1;
            yield return 2;
            throw new FormatException("bad record 3");
        }

        var seen = new List<int>();
        var error = await Assert.ThrowsAsync<FormatException>(async () =>
        {
            await foreach (var r in Pool.ImapAsync(TestFunctions.Square, Broken()))
                seen.Add(r);
        });
        Assert.Equal("bad record 3", error.Message);
        Assert.Equal([1, 4], seen);
    }

    [Fact]
    public async Task Tasks_must_run_on_the_pools_workers_processes_of_their_own_unless_the_method_is_thread()
    {
        var ran = await Pool.MapAsync(TestFunctions.SlowPidAndThread, Enumerable.Repeat(100, 8), chunkSize: 1).WaitAsync(Bound);
        Assert.Equal(2, ran.Distinct().Count());
        if (InProcess)
        {
            Assert.All(ran, r => Assert.Equal(Environment.ProcessId, r.Pid));
            Assert.Equal(Environment.ProcessId, Pool.Apply(() => Environment.ProcessId));
        }
        else
        {
            Assert.DoesNotContain(Environment.ProcessId, ran.Select(r => r.Pid));
            Assert.NotEqual(Environment.ProcessId, Pool.Apply(() => Environment.ProcessId));
        }
        Assert.Equal(81, await Pool.ApplyAsync(TestFunctions.Square, 9).WaitAsync(Bound));
    }

    [Fact]
    public async Task Imap_unordered_must_yield_every_result_once()
    {
        var results = new List<int>();
        await foreach (var r in Pool.ImapUnorderedAsync(TestFunctions.Square, Enumerable.Range(0, 500)).WithCancellation(new CancellationTokenSource(Bound).Token))
            results.Add(r);
        Assert.Equal(Enumerable.Range(0, 500).Select(x => x * x).Order(), results.Order());
        Assert.Equal(Enumerable.Range(0, 50).Select(x => x * x), Pool.Imap(TestFunctions.Square, Enumerable.Range(0, 50), chunkSize: 4));
    }

    [Fact]
    public async Task Imap_must_read_an_endless_input_lazily_with_a_bounded_number_in_flight()
    {
        var pulled = 0;
        IEnumerable<int> Naturals()
        {
            for (var i = 0; ; i++)
            {
                Interlocked.Increment(ref pulled);
                yield return i;
            }
        }

        var taken = new List<int>();
        using var cts = new CancellationTokenSource(Bound);
        await foreach (var r in Pool.ImapAsync(TestFunctions.Square, Naturals(), cancellationToken: cts.Token))
        {
            taken.Add(r);
            if (taken.Count == 1000)
                break;
        }
        Assert.Equal(Enumerable.Range(0, 1000).Select(x => x * x), taken);
        // max-chunks-in-flight-per-call for 2 workers is max(64, 2 * 2 * 256) = 1024, one item per chunk.
        Assert.InRange(Volatile.Read(ref pulled), 1000, 1000 + 1024 + 1);
    }

    [Fact]
    public async Task Imap_of_large_items_must_hold_a_bounded_number_of_bytes_not_only_of_chunks()
    {
        const int size = 256 * 1024, count = 64;
        var pulled = 0;
        IEnumerable<byte[]> Blocks()
        {
            for (var i = 0; i < count; i++)
            {
                Interlocked.Increment(ref pulled);
                var block = new byte[size];
                block[0] = (byte)i;
                yield return block;
            }
        }

        using var cts = new CancellationTokenSource(Bound);
        var consumed = 0;
        await foreach (var block in Pool.ImapAsync((byte[] b) => b, Blocks(), cancellationToken: cts.Token))
        {
            Assert.Equal((size, (byte)consumed), (block.Length, block[0]));
            if (++consumed == 3)
            {
                // The caller stops reading: the call may hold max-bytes-in-flight-per-call (1 MiB: two of these chunks,
                // arguments and results) or two chunks per worker, whichever is more, and the feeder one chunk it read.
                await Task.Delay(TimeSpan.FromSeconds(1.5), cts.Token);
                Assert.InRange(Volatile.Read(ref pulled), consumed, consumed + 2 * 2 + 2);
            }
        }
        Assert.Equal(count, consumed);
    }

    [Fact]
    public async Task A_task_exception_must_reach_the_caller_with_remote_type_message_and_stack_trace()
    {
        var error = await Assert.ThrowsAsync<TaskFailedException>(() => Pool.MapAsync(TestFunctions.Divide, [5, 4, 0, 2], chunkSize: 1).WaitAsync(Bound));
        Assert.Equal("System.DivideByZeroException", error.RemoteType);
        Assert.Equal(2, error.TaskIndex);
        Assert.Contains("Attempted to divide by zero", error.RemoteMessage);
        Assert.Contains(nameof(TestFunctions.Divide), error.RemoteStackTrace);
        Assert.Contains(InProcess ? "w" : "pid", error.Worker);

        // imap yields up to the failing input, then raises.
        var yielded = new List<int>();
        await Assert.ThrowsAsync<TaskFailedException>(async () =>
        {
            await foreach (var r in Pool.ImapAsync(TestFunctions.Divide, [5, 4, 0, 2], chunkSize: 3))
                yielded.Add(r);
        });
        Assert.Equal([20, 25], yielded);

        Assert.Equal([50], await Pool.MapAsync(TestFunctions.Divide, [2]).WaitAsync(Bound)); // still usable
    }

    [Fact]
    public async Task What_cannot_be_sent_must_fail_at_the_call_naming_it_and_leave_the_pool_usable()
    {
        var path = Path.GetTempFileName();
        try
        {
            await using var file = File.OpenRead(path);
            var error = Assert.Throws<NotSendableException>(() => Pool.Map(x => x + file.Length, [1, 2]));
            Assert.Contains("file", error.Message);
            Assert.Contains("FileStream", error.Message);

            var argError = await Assert.ThrowsAsync<NotSendableException>(() => Pool.MapAsync(s => s.ToString(), new object[] { 1, Task.CompletedTask }));
            Assert.Contains("Argument 1", argError.Message);
        }
        finally
        {
            File.Delete(path);
        }
        Assert.Equal([4], Pool.Map(TestFunctions.Square, [2]));
    }

    [Fact]
    public async Task Cancelling_a_call_must_end_it_promptly_and_leave_the_pool_usable()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var started = DateTime.UtcNow;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Pool.MapAsync(TestFunctions.SlowPid, Enumerable.Repeat(200, 40), chunkSize: 1, cancellationToken: cts.Token));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(5));
        Assert.Equal([9], await Pool.MapAsync(TestFunctions.Square, [3]).WaitAsync(Bound));
    }

    [Fact]
    public async Task Large_arguments_and_results_must_travel_whole_and_leave_no_spill_files_behind()
    {
        var arrays = Enumerable.Range(0, 6).Select(i => Enumerable.Repeat((byte)i, (3 << 20) + i).ToArray()).ToArray();
        // 6 arrays of 3 MiB in chunks of 2: arguments and results (the arrays reversed) both well past the inline limit.
        var reversed = await Pool.MapAsync(TestFunctions.Reverse, arrays, chunkSize: 2).WaitAsync(Bound);
        for (var i = 0; i < arrays.Length; i++)
        {
            var expected = arrays[i].ToArray();
            Array.Reverse(expected);
            Assert.True(expected.AsSpan().SequenceEqual(reversed[i]), $"array {i} came back wrong"); // not Assert.Equal: it compares 3 MiB element by element, for seconds
        }
        Assert.Equal(arrays.Select(a => a.Length), await Pool.MapAsync(a => a.Length, arrays, chunkSize: 1).WaitAsync(Bound));
        Assert.NotNull(Pool.SpillFolder);
        var left = Directory.EnumerateFileSystemEntries(Pool.SpillFolder!).Select(Path.GetFileName).ToList();
        Assert.Equal(InProcess ? [] : ["data.sock"], left); // the data link's socket (processes only), and no payload file
    }

    [Fact]
    public async Task A_function_that_returns_nothing_must_map_and_apply_as_written()
    {
        // Python: p.map(mp_worker, data) with a worker that returns None. A void method group picks the Action overloads.
        var folder = Directory.CreateTempSubdirectory("actorpool-void-").FullName;
        try
        {
            var paths = Enumerable.Range(0, 6).Select(i => Path.Combine(folder, $"{i}.txt")).ToList();
            Pool.Map(TestFunctions.Touch, paths, chunkSize: 1);
            Assert.All(paths, p => Assert.True(File.Exists(p), p));
            await Pool.MapAsync(TestFunctions.Touch, [Path.Combine(folder, "async.txt")]).WaitAsync(Bound);
            Pool.Apply(TestFunctions.Touch, Path.Combine(folder, "apply.txt"));
            Assert.True(File.Exists(Path.Combine(folder, "async.txt")) && File.Exists(Path.Combine(folder, "apply.txt")));
            var error = await Assert.ThrowsAsync<TaskFailedException>(() => Pool.MapAsync(TestFunctions.Fail, ["no input file"]).WaitAsync(Bound));
            Assert.Contains("no input file", error.Message);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Every_ready_worker_must_be_watched_over_its_channel()
    {
        await Pool.WaitForWorkersAsync().WaitAsync(Bound);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        var status = await Pool.CountsAsync();
        while (status.RegisteredWorkers < Pool.Processes && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
            status = await Pool.CountsAsync();
        }
        Assert.Equal(Pool.Processes, status.RegisteredWorkers);
        Assert.Equal(Pool.Processes, status.ReadyWorkers);
    }

    // ------------------------------------------------------------------ paired batches

    [Fact]
    public async Task Paired_batches_must_overlap_on_distinct_workers_with_a_barrier_between_batches_and_results_in_order()
    {
        // Both workers have run the function once: on a busy machine loading it the first time can take longer than a
        // short item, and the pair would not overlap for that reason alone.
        await Pool.MapPairedAsync(TestFunctions.Stamp, [(0, 0), (1, 0)], batchSize: 2).WaitAsync(Bound);
        // Durations differ inside each batch, so a missing barrier would let the short item's successor start early.
        int[] millis = [500, 1200, 1000, 400, 450, 900]; // at least 0.4 s: a busy machine may start one of a pair that much later
        var spans = await Pool.MapPairedAsync(TestFunctions.Stamp, millis.Select((m, i) => (i, m)), batchSize: 2).WaitAsync(Bound);

        Assert.Equal(Enumerable.Range(0, millis.Length), spans.Select(s => s.Item));
        var batches = spans.Chunk(2).ToList();
        foreach (var batch in batches)
        {
            Assert.NotEqual(batch[0].Worker, batch[1].Worker);
            // Overlap: both were running at one moment (each started before the other ended).
            Assert.True(batch.Max(s => s.Start) < batch.Min(s => s.End), $"items {batch[0].Item} and {batch[1].Item} did not run at the same time");
        }
        for (var i = 1; i < batches.Count; i++)
            Assert.True(batches[i].Min(s => s.Start) >= batches[i - 1].Max(s => s.End),
                $"batch {i} started before batch {i - 1} had finished");
    }

    [Fact]
    public async Task A_batch_larger_than_the_pool_must_be_refused_clearly_and_leave_the_pool_usable()
    {
        var error = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Pool.MapPairedAsync(TestFunctions.Square, [1, 2, 3], batchSize: 3));
        Assert.Equal("batchSize", error.ParamName);
        Assert.Contains("3 distinct workers", error.Message);
        Assert.Contains("has 2", error.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Pool.MapPaired(TestFunctions.Square, [1], batchSize: 0));
        Assert.Equal([1, 4, 9], Pool.MapPaired(TestFunctions.Square, [1, 2, 3])); // an odd count: the last batch has one item
    }

    [Fact]
    public async Task A_failing_item_must_fail_the_paired_call_and_start_no_later_batch()
    {
        var error = await Assert.ThrowsAsync<TaskFailedException>(() => Pool.MapPairedAsync(TestFunctions.Divide, [1, 0, 2, 4]).WaitAsync(Bound));
        Assert.Equal(1, error.TaskIndex);
        Assert.Equal([100, 50], await Pool.MapPairedAsync(TestFunctions.Divide, [1, 2]).WaitAsync(Bound));
    }
}

[Collection("processes")]
public sealed class SpawnPoolContract(SpawnPoolFixture fixture) : PoolContract<SpawnPoolFixture>(fixture);

[Collection("processes")]
public sealed class ForkServerPoolContract(ForkServerPoolFixture fixture) : PoolContract<ForkServerPoolFixture>(fixture);

[Collection("processes")]
public sealed class ThreadPoolContract(ThreadPoolFixture fixture) : PoolContract<ThreadPoolFixture>(fixture);
