using System.Runtime.CompilerServices;
using ActorPool.IntegrationTests.Support;
using Xunit;

namespace ActorPool.IntegrationTests.Conformance;

/// <summary>
/// CPython's <c>_TestProcess</c> (Lib/test/_test_multiprocessing.py, 3.11.7), run on ActorProcess. CPython runs the class
/// with real processes and with threads (<c>multiprocessing.dummy</c>); here <c>spawn</c> and <c>forkserver</c> are the
/// processes and the <c>thread</c> start method is the threads. See docs/conformance.md for the tests with no counterpart.
/// </summary>
[Collection("processes")]
public sealed class CPythonProcessSpec : IDisposable, IClassFixture<ForkServerSpares>
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private readonly Scratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    // CPython: _TestProcess.test_daemon_argument
    [Fact]
    public void Daemon_must_default_to_false_and_take_what_it_is_given()
    {
        // Python: the default is the current process's daemon flag, which is False in a main program.
        Assert.False(new ActorProcess(ConformanceFunctions.Mark, "unused").Daemon);
        Assert.True(new ActorProcess(ConformanceFunctions.Mark, "unused") { Daemon = true }.Daemon);
        Assert.False(new ActorProcess(ConformanceFunctions.Mark, "unused") { Daemon = false }.Daemon);
    }

    // CPython: _TestProcess.test_process
    // CPython: _TestProcess.test_process_mainthread_native_id
    [Theory]
    [InlineData("spawn")]
    [InlineData("forkserver")]
    [InlineData("thread")]
    public void A_process_must_report_its_state_before_during_and_after_its_run_and_pass_its_arguments(string method)
    {
        var q = new ActorQueue<CallReport>(1);
        var gate = _scratch.Path("go");
        // Python's kwargs: C# names them in a lambda (the args of an ActorProcess are positional).
        var p = new ActorProcess(() => ReportWhenOpen(q, gate)) { Name = "SomeProcess", Daemon = true, StartMethod = method };
        Assert.False(p.IsAlive);
        Assert.True(p.Daemon);
        Assert.Null(p.ExitCode);
        Assert.Equal("SomeProcess", p.Name);

        _scratch.Started(p);
        Assert.Null(p.ExitCode);
        Assert.True(p.IsAlive);

        _scratch.Open("go");
        var report = q.Get(Bound);
        Assert.Equal((1, 2, 23, 2.54), (report.A, report.B, report.Hello, report.Bye));
        Assert.Equal(p.Pid, report.Pid);
        if (method == "thread")
            Assert.Equal(Environment.ProcessId, report.Pid);
        else
            Assert.NotEqual(Environment.ProcessId, report.Pid);
        // test_process_mainthread_native_id: the child's thread is not this process's main thread.
        Assert.NotEqual(Environment.ProcessId, report.NativeThread);

        Assert.True(p.Join(Bound));
        Assert.Equal(0, p.ExitCode);
        Assert.False(p.IsAlive);
    }

    private static void ReportWhenOpen(ActorQueue<CallReport> q, string gate)
    {
        ConformanceFunctions.WaitForFile(gate);
        ConformanceFunctions.Report(q, 1, 2, hello: 23, bye: 2.54);
    }

    // CPython: _TestProcess.test_args_argument
    [Theory]
    [InlineData("spawn")]
    [InlineData("thread")]
    public void Arguments_must_arrive_as_given_whether_passed_one_by_one_or_as_an_array(string method)
    {
        // Python: args as a tuple or a list; C#: the params form or an explicit object?[].
        object?[] cases = [1, "str", new[] { 1 }, ValueTuple.Create(1)];
        var runs = new List<(object? Expected, ActorQueue<object?> Queue, ActorProcess Process)>();
        for (var i = 0; i < cases.Length; i++)
        {
            // Threads are cheap: both forms for every value. Processes: the two values that are sequences, one form each.
            if (method != "thread" && cases[i] is int or string)
                continue;
            foreach (var asArray in method == "thread" ? [false, true] : new[] { cases[i] is int[] })
            {
                var q = new ActorQueue<object?>(1);
                var p = asArray
                    ? new ActorProcess(ConformanceFunctions.PutArgument, new object?[] { q, cases[i] }) { Daemon = true, StartMethod = method }
                    : new ActorProcess(ConformanceFunctions.PutArgument, q, cases[i]) { Daemon = true, StartMethod = method };
                runs.Add((cases[i], q, _scratch.Started(p)));
            }
        }
        foreach (var (expected, q, p) in runs)
        {
            Assert.Equal(expected, q.Get(Bound));
            Assert.True(p.Join(Bound));
            Assert.Equal(0, p.ExitCode);
        }
    }

    // CPython: _TestProcess.test_terminate
    // CPython: _TestProcess.test_kill
    [Theory]
    [InlineData("spawn")]
    [InlineData("forkserver")]
    public void Terminate_and_kill_must_end_a_sleeping_child_with_minus_the_signal(string method)
    {
        var terminated = _scratch.Started(new ActorProcess(TestFunctions.Nap, 100_000) { Daemon = true, StartMethod = method });
        var killed = _scratch.Started(new ActorProcess(TestFunctions.Nap, 100_000) { Daemon = true, StartMethod = method });
        foreach (var p in new[] { terminated, killed })
        {
            Assert.True(p.IsAlive);
            Assert.Null(p.ExitCode);
            Assert.False(p.Join(TimeSpan.Zero)); // join(0): returns, still alive
            Assert.True(p.IsAlive);
            Assert.False(p.Join(TimeSpan.FromSeconds(-1))); // join(-1): the same
            Assert.True(p.IsAlive);
        }
        terminated.Terminate();
        killed.Kill();
        Assert.True(terminated.Join(Bound));
        Assert.True(killed.Join(Bound));
        Assert.False(terminated.IsAlive);
        Assert.False(killed.IsAlive);
        Assert.Equal(-15, terminated.ExitCode);
        Assert.Equal(-9, killed.ExitCode);
        Assert.True(terminated.Join()); // joining again returns at once
    }

    // CPython: _TestProcess.test_cpu_count
    [Fact]
    public void The_cpu_count_must_be_at_least_1_and_size_a_default_pool()
    {
        Assert.True(Environment.ProcessorCount >= 1);
        var pool = new Pool(new PoolOptions { StartMethod = "thread" });
        using var _ = new Terminating(pool);
        Assert.Equal(Environment.ProcessorCount, pool.Processes); // Pool() has cpu_count() workers in Python too
    }

    // CPython: _TestProcess.test_recursion
    [Theory]
    [InlineData("spawn")]
    [InlineData("thread")]
    public void Processes_must_start_processes_of_their_own_to_any_depth(string method)
    {
        // CPython's children send their ids through a Pipe; here they append them to a file, one writer at a time.
        var log = _scratch.Path("ids");
        ConformanceFunctions.Recurse(log, "", method);
        Assert.Equal(["[]", "[0]", "[00]", "[01]", "[1]", "[10]", "[11]"], File.ReadAllLines(log));
    }

    // CPython: _TestProcess.test_sentinel
    [Fact]
    public async Task JoinAsync_must_be_a_waitable_that_completes_only_when_the_child_ends()
    {
        // Python's sentinel (a handle for connection.wait) is ActorProcess.JoinAsync(): a Task, for Task.WhenAny.
        var p = new ActorProcess(ConformanceFunctions.WaitForFile, _scratch.Path("event")) { Daemon = true };
        Assert.Throws<InvalidOperationException>(() => { _ = p.JoinAsync(); }); // Python: ValueError before start
        _scratch.Started(p);
        var sentinel = p.JoinAsync();
        Assert.False(sentinel.IsCompleted); // wait([sentinel], timeout=0) is false while the child waits
        Assert.NotSame(sentinel, await Task.WhenAny(sentinel, Task.Delay(200)).WaitAsync(Bound));
        _scratch.Open("event");
        await sentinel.WaitAsync(Bound);
        Assert.Equal(0, p.ExitCode);
    }

    // CPython: _TestProcess.test_many_processes
    [Fact]
    public void Many_processes_must_each_exit_0_or_be_terminated_at_once_after_starting()
    {
        const int n = 5; // as many as CPython starts under spawn
        var quick = Enumerable.Range(0, n).Select(_ => _scratch.Started(new ActorProcess(TestFunctions.Nap, 10))).ToList();
        Assert.All(quick, p => Assert.True(p.Join(Bound)));
        Assert.All(quick, p => Assert.Equal(0, p.ExitCode));

        var sleepers = Enumerable.Range(0, n).Select(_ => _scratch.Started(new ActorProcess(TestFunctions.Nap, 100_000))).ToList();
        Thread.Sleep(1); // let the children start...
        foreach (var p in sleepers)
            p.Terminate();
        Assert.All(sleepers, p => Assert.True(p.Join(Bound)));
        Assert.All(sleepers, p => Assert.Equal(-15, p.ExitCode));
    }

    // CPython: _TestProcess.test_lose_target_ref
    [Theory]
    [InlineData("spawn")]
    [InlineData("thread")]
    public void A_started_process_must_not_keep_its_target_alive(string method)
    {
        var q = new ActorQueue<int>();
        var (p, target) = StartCallable(q, method);
        Assert.True(p.Join(Bound));
        for (var i = 0; i < 3 && target.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        Assert.False(target.IsAlive, "the process object still holds its target (a DummyCallable) after it ran");
        Assert.Equal(5, q.Get(Bound));
        Assert.Equal(0, p.ExitCode);
        GC.KeepAlive(p);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private (ActorProcess, WeakReference) StartCallable(ActorQueue<int> q, string method)
    {
        var c = new DummyCallable();
        var p = new ActorProcess(c.Call, q, c) { StartMethod = method };
        _scratch.Started(p);
        return (p, new WeakReference(c));
    }

    // CPython: _TestProcess.test_child_fd_inflation
    [Fact]
    public async Task Children_must_not_inherit_each_others_descriptors()
    {
        // Each child is started while the earlier ones run: a descriptor leaked to later children would raise their count.
        const int n = 3; // 5 in CPython
        var reports = Enumerable.Range(0, n).Select(i => _scratch.Path($"fds-{i}")).ToList();
        var started = reports
            .Select(report => _scratch.Started(new ActorProcess(ConformanceFunctions.ReportDescriptors, report, _scratch.Path("done")) { Daemon = true }))
            .ToList();
        try
        {
            Assert.True(await Processes.WaitUntil(() => reports.All(File.Exists), Bound), "a child did not report");
            var counts = reports.Select(File.ReadAllText).ToList();
            Assert.True(counts.Distinct().Count() == 1, $"descriptor counts differ: {string.Join(", ", counts)}");
        }
        finally
        {
            _scratch.Open("done");
        }
        Assert.All(started, p => Assert.True(p.Join(Bound)));
    }

    // CPython: _TestProcess.test_wait_for_threads
    [Theory]
    [InlineData("spawn")]
    [InlineData("forkserver")]
    public void A_child_must_wait_for_its_foreground_threads_and_not_its_background_ones(string method)
    {
        var evt = _scratch.Path("event");
        var p = _scratch.Started(new ActorProcess(ConformanceFunctions.StartThreads, evt) { StartMethod = method });
        Assert.True(p.Join(Bound));
        Assert.Equal(0, p.ExitCode);
        // Set by the foreground thread after 0.5 s; a child that had waited 20 s for the background one would have cleared it.
        Assert.True(File.Exists(evt), "the child did not wait for its foreground thread, or waited for its background one");
    }

    // CPython: _TestProcess.test_error_on_stdio_flush_2
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_child_that_breaks_its_own_standard_streams_must_still_exit_0(bool close)
    {
        var evt = _scratch.Path("event");
        var p = _scratch.Started(new ActorProcess(ConformanceFunctions.BreakOwnStreamsAndMark, evt, close));
        Assert.True(p.Join(Bound));
        Assert.True(File.Exists(evt));
        Assert.Equal(0, p.ExitCode);
    }

    // CPython: _TestProcess.test_forkserver_sigint
    // CPython: _TestProcess.test_forkserver_sigkill
    [Theory]
    [InlineData("INT")]
    [InlineData("KILL")]
    public async Task New_processes_must_still_start_after_the_forkservers_waiting_processes_are_signalled(string signal)
    {
        // Python's forkserver is one process that forks the children, and it is restarted when it dies. Here the
        // forkserver is a set of waiting pre-started processes; they are what the signal hits.
        var server = Launching.ForkServer.For(Configuration.PoolSettings.DefaultPreload, 1);
        Assert.True(await server.WhenReady(1, Bound), "no spare was started");
        var first = _scratch.Started(new ActorProcess(ConformanceFunctions.SqrAndMark, 3, _scratch.Path("first"), 500) { StartMethod = "forkserver" });
        Assert.True(await server.WhenReady(1, Bound), "the taken spare was not replaced");

        var spares = ConformanceFunctions.SparePids(server);
        Assert.NotEmpty(spares);
        foreach (var pid in spares)
            Processes.Signal(pid, signal);
        // No waiting for the server to see them die (CPython sleeps for it): a spare killed a moment before it is
        // handed the target may still take the handshake, and is replaced by a new process then.

        var second = _scratch.Started(new ActorProcess(ConformanceFunctions.SqrAndMark, 4, _scratch.Path("second"), 0) { StartMethod = "forkserver" });
        Assert.True(second.Join(Bound));
        Assert.Equal(0, second.ExitCode);
        Assert.True(File.Exists(_scratch.Path("second")));

        Assert.True(first.Join(Bound));
        Assert.Equal(0, first.ExitCode); // the one in flight when the spares were signalled
        Assert.True(File.Exists(_scratch.Path("first")));
    }
}

/// <summary>
/// The <c>_TestProcess</c> test that replaces this process's <c>Console.Out</c> and <c>Error</c>: alone, as every pool of
/// this process writes its log there.
/// </summary>
[Collection("alone")]
public sealed class CPythonProcessConsoleSpec : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private readonly Scratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    // CPython: _TestProcess.test_error_on_stdio_flush_1
    [Fact]
    public void A_child_must_run_while_this_process_has_broken_standard_streams()
    {
        var (stdout, stderr) = (Console.Out, Console.Error);
        try
        {
            foreach (var (name, broken) in new[] { ("closed", ConformanceFunctions.Closed()), ("null", TextWriter.Null) })
            {
                Console.SetOut(broken);
                Console.SetError(broken);
                // The child prints: its output is copied to this process's (broken) console.
                var evt = _scratch.Path($"event-{name}");
                var p = _scratch.Started(new ActorProcess(ConformanceFunctions.PrintAndMark, evt));
                Assert.True(p.Join(Bound));
                Assert.True(File.Exists(evt));
                Assert.Equal(0, p.ExitCode);
            }
        }
        finally
        {
            Console.SetOut(stdout);
            Console.SetError(stderr);
        }
        // This process's console still works afterwards (the copying did not end with the broken writers).
        var after = _scratch.Path("after");
        var last = _scratch.Started(new ActorProcess(ConformanceFunctions.PrintAndMark, after));
        Assert.True(last.Join(Bound));
        Assert.Equal(0, last.ExitCode);
    }
}
