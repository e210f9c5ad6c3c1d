using System.Diagnostics;
using ActorPool.IntegrationTests.Support;
using Xunit;

namespace ActorPool.IntegrationTests;

/// <summary>Tasks with time limits and cancellation, in the worker processes.</summary>
public static class DeadlineFunctions
{
    /// <summary>Waits <paramref name="ms"/> unless its token fires first; then writes <paramref name="marker"/> (if any) and stops.</summary>
    public static int Honouring((int Ms, string? Marker) x, CancellationToken token)
    {
        if (token.WaitHandle.WaitOne(x.Ms))
        {
            if (x.Marker is not null)
                File.WriteAllText(x.Marker, Environment.ProcessId.ToString());
            token.ThrowIfCancellationRequested();
        }
        return x.Ms;
    }

    /// <summary>Never returns, and ignores every token (a stuck task).</summary>
    public static int Forever(int _)
    {
        Thread.Sleep(Timeout.Infinite);
        return 0;
    }
}

[Collection("processes")]
public sealed class DeadlineSpec
{
    private static async Task<Pool> StartPool(TaskTimeouts? defaults = null)
    {
        var pool = new Pool(new PoolOptions { Processes = 2, TaskTimeouts = defaults });
        await pool.WaitForWorkersAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return pool;
    }

    private static async Task AssertUsable(Pool pool)
    {
        await pool.WaitForWorkersAsync().WaitAsync(TimeSpan.FromSeconds(60));
        var squares = await pool.MapAsync(TestFunctions.Square, Enumerable.Range(0, 20), chunkSize: 1).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(Enumerable.Range(0, 20).Select(x => x * x), squares);
    }

    [Fact]
    public async Task Soft_limit_must_cancel_the_tasks_token_and_fail_that_task_with_a_timeout_naming_it()
    {
        await using var pool = await StartPool();
        using var terminating = new Terminating(pool);
        var results = new List<int>();
        var e = await Assert.ThrowsAsync<TaskTimeoutException>(async () =>
        {
            await foreach (var r in pool.ImapAsync<(int, string?), int>(DeadlineFunctions.Honouring, [(50, null), (30_000, null), (50, null)],
                               timeouts: new TaskTimeouts(Soft: TimeSpan.FromMilliseconds(500))).WithCancellation(default))
                results.Add(r);
        }).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal([50], results); // the task before it
        Assert.Equal(1, e.TaskIndex);
        Assert.False(e.Hard);
        Assert.Equal(TimeSpan.FromMilliseconds(500), e.Limit);
        Assert.Contains("Task 1 ran past its soft limit of 0.5 s", e.Message);
        Assert.Contains("pid", e.Worker);
        await AssertUsable(pool);
    }

    [Fact]
    public async Task Hard_limit_must_stop_a_stuck_worker_and_fail_only_its_task_naming_the_task_pid_and_time()
    {
        await using var pool = await StartPool();
        using var terminating = new Terminating(pool);
        var workers = (await pool.GetStatusAsync()).Workers.Select(w => w.Pid!.Value).ToList(); // this pool's, not every child of this process
        Assert.All(workers, w => Assert.Contains(w, Processes.ChildrenOf(Environment.ProcessId)));
        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<TaskTimeoutException>(() => pool.MapAsync(DeadlineFunctions.Forever, [0], timeouts: new TaskTimeouts(Hard: TimeSpan.FromSeconds(1)))
            .WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
        Assert.True(e.Hard);
        Assert.Equal(0, e.TaskIndex);
        // How long it had run is what the watchdog saw (1 s, or more on a busy machine; "1 s" when it was 1.000 s).
        Assert.Matches(@"Task 0 ran past its hard limit of 1 s \(it had run \d+(\.\d+)? s\); the worker was stopped and is replaced in worker w\d+ \(pid \d+\)", e.Message);
        var pid = int.Parse(System.Text.RegularExpressions.Regex.Match(e.Worker, @"pid (\d+)").Groups[1].Value);
        Assert.Contains(pid, workers);
        Assert.True(await Processes.WaitUntil(() => !Processes.IsAlive(pid), TimeSpan.FromSeconds(10)), "the stuck worker still runs");

        // Other tasks of a call go on: the stuck one fails, the rest complete on the other workers.
        var mixed = pool.ImapUnorderedAsync(x => x == 3 ? DeadlineFunctions.Forever(x) : TestFunctions.Square(x), Enumerable.Range(0, 8),
            timeouts: new TaskTimeouts(Hard: TimeSpan.FromSeconds(1)));
        var seen = new List<int>();
        await Assert.ThrowsAsync<TaskTimeoutException>(async () =>
        {
            await foreach (var r in mixed)
                seen.Add(r);
        }).WaitAsync(TimeSpan.FromSeconds(30));
        await AssertUsable(pool);
    }

    [Fact]
    public async Task Pool_default_hard_limit_must_apply_to_calls_without_their_own()
    {
        await using var pool = await StartPool(new TaskTimeouts(Hard: TimeSpan.FromSeconds(1)));
        using var terminating = new Terminating(pool);
        var e = await Assert.ThrowsAsync<TaskTimeoutException>(() => pool.ApplyAsync(() => DeadlineFunctions.Forever(0)).WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(e.Hard);
        await AssertUsable(pool);
    }

    [Fact]
    public async Task Cancelling_a_call_must_end_it_within_a_second_and_fire_the_running_tasks_tokens_in_the_workers()
    {
        await using var pool = await StartPool();
        using var terminating = new Terminating(pool);
        var folder = Directory.CreateTempSubdirectory("actorpool-cancel-").FullName;
        try
        {
            var items = Enumerable.Range(0, 6).Select(i => (10_000, (string?)Path.Combine(folder, $"cancelled-{i}"))).ToList();
            using var cts = new CancellationTokenSource();
            var call = pool.MapAsync<(int, string?), int>(DeadlineFunctions.Honouring, items, chunkSize: 1, cancellationToken: cts.Token);
            await Task.Delay(1000);
            var clock = Stopwatch.StartNew();
            await cts.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"the call ended {clock.Elapsed} after the cancellation");

            // The two running tasks saw their tokens fire (they wrote their markers); the queued ones never ran.
            Assert.True(await Processes.WaitUntil(() => Directory.GetFiles(folder).Length == 2, TimeSpan.FromSeconds(5)),
                $"markers: {string.Join(", ", Directory.GetFiles(folder).Select(Path.GetFileName))}");
            await AssertUsable(pool);
            Assert.Equal(2, Directory.GetFiles(folder).Length);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void A_hard_limit_on_thread_workers_must_be_refused_with_the_reason()
    {
        var e = Assert.Throws<ArgumentException>(() => new Pool(new PoolOptions { StartMethod = "thread", TaskTimeouts = new TaskTimeouts(Hard: TimeSpan.FromSeconds(1)) }));
        Assert.Contains("thread workers share this process", e.Message);
    }
}
