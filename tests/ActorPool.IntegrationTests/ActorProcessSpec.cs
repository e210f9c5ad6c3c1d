using ActorPool.IntegrationTests.Support;
using Xunit;

namespace ActorPool.IntegrationTests;

/// <summary>ActorProcess (Python's multiprocessing.Process) on real child processes, and the program-wide start method.</summary>
[Collection("alone")]
public sealed class ActorProcessSpec : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private readonly List<ActorProcess> _started = [];

    public void Dispose()
    {
        foreach (var p in _started.Where(p => p.IsAlive && p.StartMethod != "thread"))
            p.Kill();
        Launching.ForkServer.ShutdownAll();
        StartMethods.Reset();
    }

    private ActorProcess Started(ActorProcess p)
    {
        _started.Add(p);
        p.Start();
        return p;
    }

    [Theory]
    [InlineData("spawn")]
    [InlineData("forkserver")]
    public void A_process_must_run_its_target_in_another_process_and_report_how_it_ended(string startMethod)
    {
        var p = new ActorProcess(TestFunctions.Nap, 400) { StartMethod = startMethod };
        Assert.False(p.IsAlive);
        Assert.Null(p.Pid);
        Assert.StartsWith("Process-", p.Name);
        Started(p);
        Assert.NotNull(p.Pid);
        Assert.NotEqual(Environment.ProcessId, p.Pid);
        Assert.True(p.IsAlive);
        Assert.Null(p.ExitCode);
        Assert.True(p.Join(Bound));
        Assert.False(p.IsAlive);
        Assert.Equal(0, p.ExitCode);
        Assert.False(Processes.IsAlive(p.Pid!.Value));

        var exits = Started(new ActorProcess(() => Environment.Exit(7)) { StartMethod = startMethod });
        Assert.True(exits.Join(Bound));
        Assert.Equal(7, exits.ExitCode);
    }

    [Fact]
    public async Task A_target_that_raises_must_end_with_exit_code_1_and_report_it_as_Python_does()
    {
        var error = new StringWriter();
        var original = Console.Error;
        Console.SetError(TextWriter.Synchronized(error));
        try
        {
            var p = Started(new ActorProcess(TestFunctions.Fail, "no input file") { Name = "loader" });
            await p.JoinAsync().WaitAsync(Bound);
            Assert.Equal(1, p.ExitCode);
        }
        finally
        {
            Console.SetError(original);
        }
        var report = error.ToString();
        Assert.Contains("Process loader:", report);
        Assert.Contains("System.InvalidOperationException: no input file", report);
        Assert.Contains(nameof(TestFunctions.Fail), report); // its stack trace
    }

    [Theory]
    [InlineData("spawn")]
    [InlineData("forkserver")]
    public void A_child_must_wait_for_the_foreground_threads_its_target_started(string method)
    {
        // Python's child waits for its non-daemon threads; a .NET program waits for its foreground threads. The child
        // ended as soon as its target returned, and the thread's work was lost.
        var path = Path.Combine(Path.GetTempPath(), $"actorpool-thread-{Guid.NewGuid():N}.txt");
        try
        {
            var p = Started(StartMethods.GetContext(method).Process(TestFunctions.StartForegroundThread, path));
            Assert.True(p.Join(Bound));
            Assert.Equal(0, p.ExitCode);
            Assert.True(File.Exists(path), "the child ended before its foreground thread did");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Terminate_and_kill_must_end_the_process_with_the_signal_as_a_negative_exit_code()
    {
        var terminated = Started(new ActorProcess(TestFunctions.Nap, 30_000));
        var killed = Started(new ActorProcess(TestFunctions.Nap, 30_000));
        Assert.False(terminated.Join(TimeSpan.FromMilliseconds(200)));
        Assert.False(terminated.Join(TimeSpan.FromSeconds(-1))); // Python: a negative timeout does not wait (it threw)
        terminated.Terminate();
        killed.Kill();
        Assert.True(terminated.Join(Bound));
        Assert.True(killed.Join(Bound));
        Assert.Equal(-15, terminated.ExitCode);
        Assert.Equal(-9, killed.ExitCode);
        terminated.Kill(); // ended already: nothing happens
    }

    [Fact]
    public void Misuse_must_be_refused_with_a_clear_error()
    {
        Assert.Contains("takes 1 argument(s) but 2 were given", Assert.Throws<ArgumentException>(() => new ActorProcess(TestFunctions.Nap, 1, 2)).Message);
        using var stream = new MemoryStream();
        Assert.Throws<NotSendableException>(() => new ActorProcess(() => stream.WriteByte(1)));
        var p = new ActorProcess(TestFunctions.Nap, 10);
        Assert.Contains("call Start() before Join()", Assert.Throws<InvalidOperationException>(() => p.Join()).Message);
        Assert.Contains("Valid start methods: spawn, forkserver, thread", Assert.Throws<ArgumentException>(() => new ActorProcess(TestFunctions.Nap, 10) { StartMethod = "vfork" }.Start()).Message);
        Assert.Contains("takes 1 to 2 argument(s) but 0 were given", Assert.Throws<ArgumentException>(() => new ActorProcess(TestFunctions.NapTimes)).Message);
        var withDefault = Started(new ActorProcess(TestFunctions.NapTimes, 10)); // the optional argument takes its default
        Started(p);
        Assert.Contains("only once", Assert.Throws<InvalidOperationException>(p.Start).Message);
        Assert.True(withDefault.Join(Bound));
        Assert.Equal(0, withDefault.ExitCode);
        Assert.Throws<InvalidOperationException>(() => p.Daemon = true);
        Assert.True(p.Join(Bound));
    }

    [Fact]
    public void The_thread_start_method_must_run_the_target_on_a_thread_of_this_process()
    {
        var p = Started(StartMethods.GetContext("thread").Process(() => { Thread.Sleep(100); }));
        Assert.Equal("thread", p.StartMethod);
        Assert.Equal(Environment.ProcessId, p.Pid);
        Assert.Throws<NotSupportedException>(p.Terminate);
        Assert.True(p.Join(Bound));
        Assert.Equal(0, p.ExitCode);
        var failing = Started(new ActorProcess(TestFunctions.Fail, "in a thread") { StartMethod = "thread" });
        Assert.True(failing.Join(Bound));
        Assert.Equal(1, failing.ExitCode);
    }

    [Fact]
    public async Task The_start_method_must_be_set_once_per_program_unless_forced_and_be_used_by_new_pools_and_processes()
    {
        Assert.Equal(["spawn", "forkserver", "thread"], StartMethods.All);
        Assert.Equal("spawn", StartMethods.Current);
        Assert.Contains("Valid start methods", Assert.Throws<ArgumentException>(() => StartMethods.Set("posix_spawn")).Message);
        Assert.Contains("cannot be forked safely", Assert.Throws<ArgumentException>(() => StartMethods.GetContext("fork")).Message);

        StartMethods.Set("thread");
        Assert.Contains("already been set", Assert.Throws<InvalidOperationException>(() => StartMethods.Set("spawn")).Message);
        Assert.Equal("thread", StartMethods.Current);
        await using (var pool = new Pool(1))
        {
            using var _ = new Terminating(pool);
            Assert.Equal(Environment.ProcessId, await pool.ApplyAsync(() => Environment.ProcessId).WaitAsync(Bound));
        }
        // A pool's own option, or its own HOCON, beats the program-wide method.
        await using (var pool = new Pool(new PoolOptions { Processes = 1, Config = "actorpool.start-method = spawn" }))
        {
            using var _ = new Terminating(pool);
            Assert.NotEqual(Environment.ProcessId, await pool.ApplyAsync(() => Environment.ProcessId).WaitAsync(Bound));
        }
        var p = Started(new ActorProcess(TestFunctions.Nap, 10));
        Assert.Equal(Environment.ProcessId, p.Pid);
        Assert.True(p.Join(Bound));

        StartMethods.Set("spawn", force: true);
        await using (var pool = StartMethods.GetContext("thread").Pool(1))
        {
            using var _ = new Terminating(pool);
            Assert.Equal(Environment.ProcessId, await pool.ApplyAsync(() => Environment.ProcessId).WaitAsync(Bound));
        }
    }
}
