using System.Diagnostics;
using ActorPool.IntegrationTests.Support;
using Xunit;

namespace ActorPool.IntegrationTests;

/// <summary>Progress reports and the pool's status, during real calls on spawned worker processes.</summary>
[Collection("processes")]
public sealed class ObservabilitySpec
{
    /// <summary>Records every report on the thread that makes it (Progress&lt;T&gt; would post them to a context).</summary>
    private sealed class Recorder : IProgress<PoolProgress>
    {
        private readonly List<PoolProgress> _reports = new();

        public IReadOnlyList<PoolProgress> Reports
        {
            get { lock (_reports) return _reports.ToList(); }
        }

        public void Report(PoolProgress value)
        {
            lock (_reports) _reports.Add(value);
        }
    }

    private static void AssertWellFormed(IReadOnlyList<PoolProgress> reports, TimeSpan elapsed)
    {
        Assert.NotEmpty(reports);
        Assert.True(reports[^1].IsFinal, "the last report is the final one");
        Assert.Single(reports, r => r.IsFinal);
        for (var i = 1; i < reports.Count; i++)
        {
            Assert.True(reports[i].Completed >= reports[i - 1].Completed, $"completed went back at report {i}");
            Assert.True(reports[i].Elapsed >= reports[i - 1].Elapsed, $"elapsed went back at report {i}");
        }
        // Throttled to the default 100 ms: a first report at once, then at most one per interval, then the final one.
        var most = (int)(elapsed.TotalMilliseconds / 100) + 2;
        Assert.True(reports.Count <= most, $"{reports.Count} reports in {elapsed.TotalMilliseconds:0} ms (at most {most})");
    }

    [Fact]
    public async Task Map_imap_and_paired_calls_must_report_throttled_progress_and_a_final_report()
    {
        await using var pool = new Pool(new PoolOptions { Processes = 2 });
        using var terminating = new Terminating(pool);
        await pool.WaitForWorkersAsync().WaitAsync(TimeSpan.FromSeconds(60));

        // A map of 20,000 items in 2,000 chunks: a handful of reports, not one per chunk.
        var map = new Recorder();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var squares = await pool.MapAsync(TestFunctions.Square, Enumerable.Range(0, 20_000), chunkSize: 10, progress: map).WaitAsync(TimeSpan.FromSeconds(60));
        var reports = map.Reports;
        AssertWellFormed(reports, clock.Elapsed);
        Assert.Equal(20_000, squares.Count);
        Assert.All(reports, r => Assert.Equal(20_000, r.Total));
        Assert.Equal(new PoolProgress(20_000, 20_000, 0, 0, reports[^1].Elapsed, IsFinal: true), reports[^1]);
        Assert.Equal(1.0, reports[^1].Fraction);

        // A lazy imap input: the total is unknown until the input has been read; a failing task is counted.
        var imap = new Recorder();
        clock.Restart();
        await Assert.ThrowsAsync<TaskFailedException>(async () =>
        {
            await foreach (var _ in pool.ImapAsync(TestFunctions.Divide, Lazy(), progress: imap).WithCancellation(CancellationToken.None))
            {
            }
        }).WaitAsync(TimeSpan.FromSeconds(60));
        reports = imap.Reports;
        AssertWellFormed(reports, clock.Elapsed);
        Assert.Null(reports[0].Total);
        Assert.Null(reports[0].Fraction);
        Assert.Equal(1, reports[^1].Failed);
        Assert.Equal(6, reports[^1].Total);

        // Paired batches: one progress over every batch.
        var paired = new Recorder();
        clock.Restart();
        await pool.MapPairedAsync(TestFunctions.SlowPid, Enumerable.Repeat(150, 6), progress: paired).WaitAsync(TimeSpan.FromSeconds(60));
        reports = paired.Reports;
        AssertWellFormed(reports, clock.Elapsed);
        Assert.Equal(6, reports[^1].Completed);
        Assert.All(reports, r => Assert.Equal(6, r.Total));
        Assert.Contains(reports, r => r.Completed is > 0 and < 6); // seen between the batches, not only at the end

        static IEnumerable<int> Lazy()
        {
            foreach (var x in new[] { 5, 4, 3, 2, 1 })
                yield return x;
            yield return 0; // 100 / 0
        }
    }

    [Fact]
    public async Task Status_must_name_the_worker_that_runs_a_long_task_and_count_a_restart()
    {
        await using var pool = new Pool(new PoolOptions { Processes = 2 });
        using var terminating = new Terminating(pool);
        await pool.WaitForWorkersAsync().WaitAsync(TimeSpan.FromSeconds(60));
        var idle = await pool.GetStatusAsync();
        Assert.Equal(2, idle.Workers.Count);
        Assert.All(idle.Workers, w => Assert.Equal(WorkerState.Idle, w.State));
        Assert.Equal([1, 2], idle.Workers.Select(w => w.Slot));
        Assert.Empty(idle.Calls);

        // One long task and two short ones: the long one holds one worker while the other finishes the rest.
        var progress = new Recorder();
        var call = pool.MapAsync(TestFunctions.SlowPid, [4000, 50, 50], chunkSize: 1, progress: progress);
        PoolStatus status = idle;
        Assert.True(await Processes.WaitUntil(() =>
        {
            status = pool.GetStatus();
            return status.Calls is [{ Completed: 2 }] && status.Workers.Any(w => w.Task is { RunningFor.TotalMilliseconds: > 500 });
        }, TimeSpan.FromSeconds(30)), status.ToString());
        var busy = Assert.Single(status.Workers, w => w.State == WorkerState.Busy);
        Assert.NotNull(busy.Pid);
        Assert.Contains(busy.Pid!.Value, Processes.ChildrenOf(Environment.ProcessId));
        Assert.Equal("spawn", busy.StartMethod);
        Assert.Equal(0, busy.Task!.FirstTask);
        Assert.Equal(status.Calls[0].CallId, busy.Task.CallId);
        Assert.Equal((3L, 2L, 0, 1), (status.Calls[0].Total!.Value, status.Calls[0].Completed, status.Calls[0].QueuedChunks, status.Calls[0].RunningChunks));
        var table = status.ToString();
        Assert.Contains($"{busy.Id} ", table);
        Assert.Contains($" {busy.Pid} ", table);
        Assert.Contains($"task 0 of call {busy.Task.CallId}", table);

        // Kill the busy worker: its slot is refilled (one restart), its task runs again and the call completes.
        Processes.Kill9(busy.Pid.Value);
        var results = await call.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(3, results.Count);
        Assert.Equal(1, progress.Reports[^1].Retried);
        Assert.True(await Processes.WaitUntil(() => pool.GetStatus().Workers.Count(w => w.State == WorkerState.Idle) == 2, TimeSpan.FromSeconds(30)));
        var after = await pool.GetStatusAsync();
        var refilled = Assert.Single(after.Workers, w => w.Slot == busy.Slot);
        Assert.NotEqual(busy.Id, refilled.Id);
        Assert.Equal(1, refilled.Restarts);
        Assert.Equal(3, after.Workers.Sum(w => w.TasksDone)); // the other worker ran the short tasks, the replacement the retried one
    }
}

/// <summary>Traces: the caller's span of a call and its tasks' spans in the worker processes make one trace.</summary>
[Collection("alone")]
public sealed class TracingSpec : IDisposable
{
    private readonly List<Activity> _stopped = new();
    private readonly ActivityListener _listener;
    private readonly string _folder = Directory.CreateTempSubdirectory("actorpool-trace-").FullName;

    public TracingSpec()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == "ActorPool",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a => { lock (_stopped) _stopped.Add(a); },
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public void Dispose()
    {
        _listener.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    private sealed record Span(string TraceId, string SpanId, string ParentId, string Name, int Pid, string Status, long Task);

    [Fact]
    public async Task A_map_must_be_one_trace_from_the_caller_to_the_tasks_in_the_worker_processes()
    {
        await using var pool = new Pool(new PoolOptions { Processes = 2, Initializer = TestFunctions.TraceToFile, InitArgs = [_folder] });
        using var terminating = new Terminating(pool);
        await pool.WaitForWorkersAsync().WaitAsync(TimeSpan.FromSeconds(60));

        await pool.MapAsync(TestFunctions.SlowPid, Enumerable.Repeat(100, 6), chunkSize: 1).WaitAsync(TimeSpan.FromSeconds(60));
        await Assert.ThrowsAsync<TaskFailedException>(() => pool.MapAsync(TestFunctions.Divide, [1, 0], chunkSize: 1)).WaitAsync(TimeSpan.FromSeconds(60));

        Activity[] calls;
        lock (_stopped) calls = _stopped.Where(a => a.DisplayName == "ActorPool map").ToArray();
        Assert.Equal(2, calls.Length);
        var (map, failing) = (calls[0], calls[1]);
        Assert.Equal(ActivityKind.Client, map.Kind);
        Assert.Equal(6L, map.GetTagItem("actorpool.tasks"));
        Assert.Equal(ActivityStatusCode.Unset, map.Status);
        Assert.Equal(ActivityStatusCode.Error, failing.Status);

        // The workers write a span when it ends, after they send the result: wait for the last lines.
        List<Span> tasks = [];
        Assert.True(await Processes.WaitUntil(() =>
        {
            tasks = Directory.GetFiles(_folder, "*.spans").SelectMany(File.ReadAllLines).Select(Parse).Where(s => s.Name == "ActorPool_task").ToList();
            return tasks.Count(s => s.TraceId == failing.TraceId.ToString()) == 2 && tasks.Count(s => s.TraceId == map.TraceId.ToString()) == 6;
        }, TimeSpan.FromSeconds(20)), string.Join("\n", tasks));
        var mapTasks = tasks.Where(s => s.TraceId == map.TraceId.ToString()).ToList();
        Assert.All(mapTasks, s => Assert.Equal(map.SpanId.ToString(), s.ParentId));
        Assert.Equal(Enumerable.Range(0, 6).Select(i => (long)i), mapTasks.Select(s => s.Task).Order());
        var pids = mapTasks.Select(s => s.Pid).Distinct().ToList();
        Assert.Equal(2, pids.Count); // both worker processes ran tasks of the one trace
        Assert.DoesNotContain(Environment.ProcessId, pids);
        Assert.All(pids, pid => Assert.Contains(pid, Processes.ChildrenOf(Environment.ProcessId)));
        var failedTask = Assert.Single(tasks, s => s.TraceId == failing.TraceId.ToString() && s.Status == "Error");
        Assert.Equal(1, failedTask.Task);
    }

    [Fact]
    public async Task A_task_stopped_by_its_hard_limit_must_end_its_span_failed_before_its_worker_goes()
    {
        await using var pool = new Pool(new PoolOptions { Processes = 1, Initializer = TestFunctions.TraceToFile, InitArgs = [_folder] });
        using var terminating = new Terminating(pool);
        await pool.WaitForWorkersAsync().WaitAsync(TimeSpan.FromSeconds(60));
        await Assert.ThrowsAsync<TaskTimeoutException>(() => pool.MapAsync(DeadlineFunctions.Forever, [0],
            timeouts: new TaskTimeouts(Hard: TimeSpan.FromSeconds(1)))).WaitAsync(TimeSpan.FromSeconds(60));
        Activity map;
        lock (_stopped) map = _stopped.Single(a => a.DisplayName == "ActorPool map");
        Assert.Equal(ActivityStatusCode.Error, map.Status);
        var spans = Directory.GetFiles(_folder, "*.spans").SelectMany(File.ReadAllLines).Select(Parse).ToList();
        var task = Assert.Single(spans, s => s.TraceId == map.TraceId.ToString());
        Assert.Equal(("ActorPool_task", "Error", 0L, map.SpanId.ToString()), (task.Name, task.Status, task.Task, task.ParentId));
    }

    private static Span Parse(string line)
    {
        var f = line.Split(' ');
        return new Span(f[0], f[1], f[2], f[3], int.Parse(f[4]), f[5], long.Parse(f[6]));
    }
}
