using ActorPool.IntegrationTests.Support;
using Xunit;

namespace ActorPool.IntegrationTests.Conformance;

/// <summary>CPython's <c>_TestPoolWorkerLifetime</c> (processes only): maxtasksperchild, and a pool left open at exit.</summary>
[Collection("processes")]
public sealed class CPythonPoolWorkerLifetimeSpec : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private readonly Scratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    // CPython: _TestPoolWorkerLifetime.test_pool_worker_lifetime
    // CPython: _TestPoolWorkerLifetime.test_pool_worker_lifetime_early_close
    [Fact]
    public async Task Workers_with_a_task_limit_must_be_replaced_and_a_close_before_the_tasks_are_done_must_join()
    {
        // CPython uses Pool(3, maxtasksperchild=10) with 100 tasks, then Pool(3, maxtasksperchild=1) with 6 tasks closed at once.
        var p = new Pool(new PoolOptions { Processes = 2, MaxTasksPerChild = 2 });
        using var _ = new Terminating(p);
        await p.WaitForWorkersAsync().WaitAsync(Bound);
        var original = (await p.GetStatusAsync().WaitAsync(Bound)).Workers.Select(w => w.Pid).ToList();
        Assert.Equal(2, original.Count);
        Assert.DoesNotContain(null, original); // every worker has its pid (issue #7805)

        var results = Enumerable.Range(0, 8).Select(i => p.ApplyAsync(() => (Square: ConformanceFunctions.SqrAfter(i, 100), Pid: Environment.ProcessId))).ToList();
        p.Close(); // before the tasks are done (issue #10332)
        await p.JoinAsync().WaitAsync(Bound);

        var done = await Task.WhenAll(results).WaitAsync(Bound);
        Assert.Equal(Enumerable.Range(0, 8).Select(i => i * i), done.Select(d => d.Square));
        var pids = done.Select(d => d.Pid).ToList();
        Assert.All(pids.GroupBy(pid => pid), g => Assert.True(g.Count() <= 2, $"worker {g.Key} ran {g.Count()} tasks, past its limit of 2"));
        Assert.Contains(pids, pid => !original.Contains(pid)); // workers were replaced
    }

    // CPython: _TestPoolWorkerLifetime.test_pool_maxtasksperchild_invalid
    [Fact]
    public void A_task_limit_below_1_must_be_refused()
    {
        foreach (var value in new[] { 0, -1 }) // CPython also tries 0.5 and "12", which C#'s int? does not accept
        {
            var error = Assert.ThrowsAny<ArgumentException>(() => new Pool(new PoolOptions { Processes = 3, MaxTasksPerChild = value }));
            Assert.Contains("MaxTasksPerChild", error.Message);
        }
    }

    // CPython: _TestPoolWorkerLifetime.test_worker_finalization_via_atexit_handler_of_multiprocessing
    [Fact]
    public async Task A_process_that_ends_with_its_pool_still_open_must_exit_0_and_leave_no_worker()
    {
        // CPython runs a script holding a Pool in a global; here a child process's target does, and returns.
        var pids = _scratch.Path("pids");
        var child = _scratch.Started(new ActorProcess(ConformanceFunctions.MapAndLeaveThePoolOpen, pids));
        Assert.True(child.Join(Bound), "the process did not end with its pool open");
        Assert.Equal(0, child.ExitCode);
        var workers = File.ReadAllText(pids).Split(' ').Select(int.Parse).ToList();
        Assert.Single(workers);
        Assert.True(await Processes.WaitUntil(() => workers.All(w => !Processes.IsAlive(w)), Bound), "the pool's worker outlived its process");
    }
}
