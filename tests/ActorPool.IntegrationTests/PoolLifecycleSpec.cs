using System.Diagnostics;
using ActorPool.IntegrationTests.Support;
using Xunit;

namespace ActorPool.IntegrationTests;

/// <summary>Initializer, maxtasksperchild, worker loss and the pool's lifecycle, each on a pool of its own.</summary>
[Collection("processes")]
public sealed class PoolLifecycleSpec : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    /// <summary>forkserver spares outlive their pools by design (until the program exits): end them with each test.</summary>
    public void Dispose() => Launching.ForkServer.ShutdownAll();

    [Fact]
    public async Task The_initializer_must_run_in_every_worker_before_its_tasks()
    {
        var pool = new Pool(new PoolOptions { Processes = 2, Initializer = TestFunctions.Init, InitArgs = ["hi", 2] });
        using var _ = new Terminating(pool);
        var greetings = await pool.MapAsync(_ => TestFunctions.Greeting, Enumerable.Range(0, 6), chunkSize: 1).WaitAsync(Bound);
        Assert.All(greetings, g => Assert.Equal("hihi", g));
        Assert.Null(TestFunctions.Greeting); // not in the caller
    }

    [Fact]
    public async Task Close_and_join_at_once_must_let_the_worker_start_and_run_its_initializer_once()
    {
        // Python: Pool(1, initializer) then close() and join() runs the initializer once and joins promptly (here the
        // starting worker was killed, its initializer never ran, and join took about 20 s).
        var marker = Path.Combine(Path.GetTempPath(), $"actorpool-init-{Guid.NewGuid():N}.txt");
        try
        {
            var pool = new Pool(new PoolOptions { Processes = 1, Initializer = TestFunctions.InitMarker, InitArgs = [marker] });
            using var _ = new Terminating(pool);
            pool.Close();
            await Task.Run(() => pool.Join()).WaitAsync(Bound);
            Assert.True(File.Exists(marker), "the initializer never ran");
            Assert.Single(File.ReadAllLines(marker));
        }
        finally
        {
            File.Delete(marker);
        }
    }

    [Fact]
    public async Task An_initializer_that_throws_must_break_the_pool_with_its_error_instead_of_hanging()
    {
        var pool = new Pool(new PoolOptions { Processes = 1, Initializer = TestFunctions.FailingInit });
        using var _ = new Terminating(pool);
        var error = await Assert.ThrowsAsync<PoolBrokenException>(() => pool.MapAsync(TestFunctions.Square, [1]).WaitAsync(Bound));
        Assert.Contains("InvalidOperationException", error.Message);
        Assert.Contains("no database here", error.Message);
    }

    [Fact]
    public void Initializer_arguments_must_match_its_parameters()
    {
        var error = Assert.Throws<ArgumentException>(() => new Pool(new PoolOptions { Processes = 1, Initializer = TestFunctions.Init, InitArgs = ["x"] }));
        Assert.Contains("takes 2 argument(s) but InitArgs has 1", error.Message);
    }

    [Theory]
    [InlineData("spawn")]
    [InlineData("forkserver")]
    public async Task Max_tasks_per_child_must_replace_workers_without_losing_a_task(string startMethod)
    {
        var pool = new Pool(new PoolOptions { Processes = 2, MaxTasksPerChild = 2, StartMethod = startMethod });
        using var _ = new Terminating(pool);
        var pids = await pool.MapAsync(TestFunctions.SlowPid, Enumerable.Repeat(20, 12), chunkSize: 1).WaitAsync(Bound);
        Assert.Equal(12, pids.Count);
        Assert.True(pids.Distinct().Count() >= 6, $"12 tasks at 2 per worker need 6 workers; saw {pids.Distinct().Count()}");
        Assert.All(pids.GroupBy(p => p), g => Assert.True(g.Count() <= 2));
    }

    [Theory]
    [InlineData("spawn")]
    [InlineData("forkserver")]
    public async Task A_killed_worker_must_be_noticed_and_replaced_and_its_task_retried(string startMethod)
    {
        var pool = new Pool(new PoolOptions { Processes = 2, StartMethod = startMethod });
        using var _ = new Terminating(pool);
        await pool.WaitForWorkersAsync().WaitAsync(Bound);

        var results = new List<int>();
        var killed = 0;
        using var cts = new CancellationTokenSource(Bound);
        await foreach (var pid in pool.ImapAsync(TestFunctions.SlowPid, Enumerable.Repeat(400, 8), cancellationToken: cts.Token))
        {
            results.Add(pid);
            if (killed == 0)
            {
                killed = pid; // that worker is now running its next task
                Processes.Kill9(pid);
            }
        }
        Assert.Equal(8, results.Count);
        Assert.False(Processes.IsAlive(killed));
        var after = await pool.MapAsync(TestFunctions.SlowPid, Enumerable.Repeat(100, 4), chunkSize: 1).WaitAsync(Bound);
        Assert.DoesNotContain(killed, after);
        Assert.Equal(2, after.Distinct().Count()); // replaced: two workers again
    }

    [Fact]
    public async Task A_stopped_worker_must_be_found_unresponsive_killed_and_its_task_run_elsewhere()
    {
        // A worker on its data link has no Akka.Remote association to watch it: the pool's pings do. SIGSTOP freezes
        // every thread of it (a frozen VM, a debugger, a swapped-out process look the same).
        var pool = new Pool(new PoolOptions { Processes = 2, Config = "actorpool.worker.unresponsive-timeout = 3s" });
        using var _ = new Terminating(pool);
        await pool.WaitForWorkersAsync().WaitAsync(Bound);
        var before = (await pool.GetStatusAsync()).Workers.Select(w => w.Pid!.Value).ToList();

        var running = pool.MapAsync(TestFunctions.SlowPid, Enumerable.Repeat(4000, 2), chunkSize: 1);
        Assert.True(await Processes.WaitUntil(() => pool.GetStatus().Workers.All(w => w.Task is not null), Bound), "the two tasks never ran");
        var frozen = before[0];
        Processes.Signal(frozen, "STOP");
        try
        {
            var pids = await running.WaitAsync(Bound);
            Assert.Equal(2, pids.Count);
            Assert.DoesNotContain(frozen, pids); // its task ran again on another worker
            Assert.True(await Processes.WaitUntil(() => !Processes.IsAlive(frozen), Bound), "the frozen worker was not killed");
            var after = await pool.MapAsync(TestFunctions.SlowPid, Enumerable.Repeat(100, 4), chunkSize: 1).WaitAsync(Bound);
            Assert.DoesNotContain(frozen, after);
            Assert.Equal(2, after.Distinct().Count()); // and replaced
        }
        finally
        {
            if (Processes.IsAlive(frozen))
                Processes.Signal(frozen, "CONT");
        }
    }

    [Theory]
    [InlineData("spawn")]
    [InlineData("forkserver")]
    public async Task A_worker_lost_in_the_middle_of_a_paired_batch_must_have_its_item_retried_and_the_barrier_must_hold(string startMethod)
    {
        var pool = new Pool(new PoolOptions { Processes = 2, StartMethod = startMethod });
        using var _ = new Terminating(pool);
        var marker = Path.Combine(Path.GetTempPath(), $"actorpool-test-{Guid.NewGuid():N}");
        try
        {
            // Item 1 kills its worker half-way on its first attempt; item 0 runs beside it meanwhile.
            var items = new[] { 200, 200, 150, 150, 100 }.Select((m, i) => (i, m, 1, marker));
            var spans = await pool.MapPairedAsync(TestFunctions.StampOrDieOnce, items).WaitAsync(Bound);

            Assert.True(File.Exists(marker), "the item never killed its worker");
            Assert.Equal([0, 1, 2, 3, 4], spans.Select(s => s.Item));
            var batches = spans.Chunk(2).ToList();
            for (var i = 1; i < batches.Count; i++)
                Assert.True(batches[i].Min(s => s.Start) >= batches[i - 1].Max(s => s.End), $"batch {i} started before batch {i - 1} had finished");
            foreach (var batch in batches.Skip(1).Where(b => b.Length == 2))
                Assert.NotEqual(batch[0].Worker, batch[1].Worker);
        }
        finally
        {
            File.Delete(marker);
        }
    }

    [Fact]
    public async Task A_worker_process_without_the_pools_secret_must_be_refused_and_the_pool_must_keep_working()
    {
        var pool = new Pool(2);
        using var _ = new Terminating(pool);
        await pool.WaitForWorkersAsync().WaitAsync(Bound);

        // A real worker host, pointed at the pool's coordinator and data link, presenting a secret of its own.
        var intruder = Launching.WorkerProcess.Start("intruder", spare: false, []);
        var exited = new TaskCompletionSource<(int Code, string Errors)>(TaskCreationOptions.RunContinuationsAsynchronously);
        intruder.Adopt(forwardOutput: false, (code, errors) => exited.TrySetResult((code, errors)));
        try
        {
            intruder.SendHandshake(new Worker.WorkerHandshake(pool.CoordinatorPath, "w-intruder", "not-the-secret", Environment.ProcessId,
                64 << 20, pool.SpillFolder, Path.Combine(pool.SpillFolder!, Coordination.DataLinkListener.SocketName)));
            var (code, errors) = await exited.Task.WaitAsync(Bound);
            Assert.Equal(Worker.WorkerProgram.ExitRejected, code);
            Assert.Contains("refused", errors);
            Assert.Contains("secret", errors);
        }
        finally
        {
            intruder.Kill();
        }
        var status = await pool.CountsAsync();
        Assert.Equal(2, status.ReadyWorkers); // the intruder never became one
        Assert.Equal([1, 4, 9], await pool.MapAsync(TestFunctions.Square, [1, 2, 3]).WaitAsync(Bound));
    }

    [Fact]
    public async Task A_task_whose_worker_dies_past_the_retry_limit_must_fail_naming_task_worker_and_exit_code()
    {
        var pool = new Pool(new PoolOptions { Processes = 1, MaxTaskRetries = 0 });
        using var _ = new Terminating(pool);
        var error = await Assert.ThrowsAsync<WorkerLostException>(() => pool.ApplyAsync(() =>
        {
            Process.GetCurrentProcess().Kill();
            return 0;
        }).WaitAsync(Bound));
        Assert.Equal(0, error.TaskIndex);
        Assert.Equal(137, error.ExitCode);
        Assert.Contains("SIGKILL", error.Message);
        Assert.Contains("pid", error.Message);
        Assert.Equal(4, await pool.ApplyAsync(() => 2 + 2).WaitAsync(Bound)); // replaced, usable
    }

    [Fact]
    public async Task A_thread_pool_must_run_tasks_on_its_own_threads_in_this_process_and_retire_them_by_max_tasks_per_child()
    {
        await using var pool = new Pool(new PoolOptions { Processes = 2, StartMethod = "thread", MaxTasksPerChild = 2 });
        using var _ = new Terminating(pool);
        var ran = await pool.MapAsync(TestFunctions.SlowPidAndThread, Enumerable.Repeat(20, 12), chunkSize: 1).WaitAsync(Bound);
        Assert.All(ran, r => Assert.Equal(Environment.ProcessId, r.Pid));
        Assert.True(ran.Select(r => r.Thread).Distinct().Count() >= 6, "12 tasks at 2 per worker need 6 worker threads");
        Assert.Equal(42, await pool.ApplyAsync(() => 42).WaitAsync(Bound));
        var error = await Assert.ThrowsAsync<TaskFailedException>(() => pool.MapAsync(TestFunctions.Divide, [1, 0]).WaitAsync(Bound));
        Assert.Equal(1, error.TaskIndex);
    }

    [Fact]
    public async Task A_forkserver_pool_must_take_workers_started_before_it_and_run_the_same_calls()
    {
        var options = new PoolOptions { Processes = 2, StartMethod = "forkserver" };
        await using (var first = new Pool(options))
        {
            using var _ = new Terminating(first);
            Assert.Equal([0, 1, 4], await first.MapAsync(TestFunctions.Square, [0, 1, 2]).WaitAsync(Bound));
        }
        var server = Launching.ForkServer.For([], 2);
        Assert.True(await Processes.WaitUntil(() => server.Ready >= 2, TimeSpan.FromSeconds(30)), "no spares were started");

        var created = DateTime.Now;
        await using var second = new Pool(options);
        using var __ = new Terminating(second);
        var pids = await second.MapAsync(TestFunctions.SlowPid, [300, 300], chunkSize: 1).WaitAsync(Bound);
        Assert.Equal(2, pids.Distinct().Count());
        foreach (var pid in pids)
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            Assert.True(process.StartTime < created, $"worker {pid} started at {process.StartTime:O}, after the pool ({created:O})");
        }
        Assert.Equal(42, await second.ApplyAsync(() => 42).WaitAsync(Bound));
        // A worker knows the method that started it, as Python's child does: what it starts uses the same one.
        Assert.Equal("forkserver", await second.ApplyAsync(() => StartMethods.Current).WaitAsync(Bound));
        await using var spawned = new Pool(new PoolOptions { Processes = 1, StartMethod = "spawn" });
        using var ___ = new Terminating(spawned);
        Assert.Equal("spawn", await spawned.ApplyAsync(() => StartMethods.Current).WaitAsync(Bound));
    }

    [Fact]
    public async Task With_the_data_link_off_work_and_results_must_travel_through_Akka_Remote_alone()
    {
        await using var pool = new Pool(new PoolOptions { Processes = 2, Config = "actorpool.dispatch.data-link = off" });
        using var _ = new Terminating(pool);
        Assert.Equal(Enumerable.Range(0, 500).Select(x => x * x), await pool.MapAsync(TestFunctions.Square, Enumerable.Range(0, 500), chunkSize: 1).WaitAsync(Bound));
        Assert.Equal(42, await pool.ApplyAsync(() => 42).WaitAsync(Bound));
        var big = Enumerable.Repeat((byte)7, 1 << 20).ToArray();
        Assert.Equal([1 << 20], await pool.MapAsync(b => b.Length, [big]).WaitAsync(Bound));
        Assert.False(File.Exists(Path.Combine(pool.SpillFolder!, "data.sock")));
    }

    [Fact]
    public async Task Dispose_must_drain_running_calls_and_then_end_every_worker()
    {
        var pool = new Pool(2);
        using var _ = new Terminating(pool);
        var pids = await pool.MapAsync(TestFunctions.SlowPid, [1, 1], chunkSize: 1).WaitAsync(Bound);
        var running = pool.MapAsync(TestFunctions.SlowPid, Enumerable.Repeat(200, 6), chunkSize: 1);
        await pool.DisposeAsync().AsTask().WaitAsync(Bound);
        Assert.Equal(6, (await running).Count);
        Assert.Equal(PoolState.Terminated, pool.State);
        Assert.True(await Processes.WaitUntil(() => pids.All(p => !Processes.IsAlive(p)), TimeSpan.FromSeconds(10)));
        Assert.False(Directory.Exists(pool.SpillFolder), "the pool's spill folder outlived it");
    }

    [Fact]
    public async Task Dispose_must_not_wait_forever_for_an_abandoned_imap()
    {
        var pool = new Pool(1);
        using var _ = new Terminating(pool);
        var abandoned = pool.ImapAsync(TestFunctions.Square, Enumerable.Range(0, 100_000)).GetAsyncEnumerator();
        Assert.True(await abandoned.MoveNextAsync().AsTask().WaitAsync(Bound));

        await pool.DisposeAsync().AsTask().WaitAsync(Bound); // neither read to the end nor disposed: not waited for
        var error = await Assert.ThrowsAsync<ObjectDisposedException>(async () =>
        {
            while (await abandoned.MoveNextAsync())
            {
            }
        });
        Assert.Contains("closed", error.Message);
    }

    [Fact]
    public async Task Close_join_and_terminate_must_follow_pythons_rules()
    {
        var pool = new Pool(1);
        using var _ = new Terminating(pool);
        Assert.Contains("Close()", Assert.Throws<InvalidOperationException>(() => pool.Join()).Message);
        var pid = await pool.ApplyAsync(() => Environment.ProcessId).WaitAsync(Bound);
        pool.Close();
        Assert.Contains("Pool not running", Assert.Throws<InvalidOperationException>(() => pool.Map(TestFunctions.Square, [1])).Message);
        pool.Terminate();
        Assert.Equal(PoolState.Terminated, pool.State);
        Assert.True(await Processes.WaitUntil(() => !Processes.IsAlive(pid), TimeSpan.FromSeconds(10)));
    }
}
