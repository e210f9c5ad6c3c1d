using Xunit;

namespace ActorPool.IntegrationTests.Conformance;

/// <summary>
/// CPython's <c>_TestSubclassingProcess</c> (processes only). ActorProcess is sealed: a target method stands in for an
/// overridden <c>run()</c>, and two queues for the Pipe's two ends.
/// </summary>
[Collection("processes")]
public sealed class CPythonSubclassingProcessSpec : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private readonly Scratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    // CPython: _TestSubclassingProcess.test_subclassing
    [Fact]
    public void A_long_running_child_must_serve_requests_until_told_to_stop()
    {
        var requests = new ActorQueue<string?>();
        var replies = new ActorQueue<string>();
        var upperCaser = _scratch.Started(new ActorProcess(ConformanceFunctions.UpperCase, requests, replies) { Daemon = true });
        string Submit(string s)
        {
            requests.Put(s);
            return replies.Get(Bound);
        }

        Assert.Equal("HELLO", Submit("hello"));
        Assert.Equal("WORLD", Submit("world"));
        requests.Put(null); // stop
        Assert.True(upperCaser.Join(Bound));
        Assert.Equal(0, upperCaser.ExitCode);
    }

    // CPython: _TestSubclassingProcess.test_stderr_flush
    [Fact]
    public void The_report_of_a_target_that_raises_must_be_written_whole_to_the_childs_standard_error()
    {
        // The child points its standard error at a file and never flushes it: the report must still be there at exit.
        var path = _scratch.Path("stderr.txt");
        var p = _scratch.Started(new ActorProcess(ConformanceFunctions.DivideByZeroWithStderrIn, path) { Name = "divider" });
        Assert.True(p.Join(Bound));
        Assert.Equal(1, p.ExitCode);
        var err = File.ReadAllText(path);
        Assert.Contains("Process divider:", err);
        Assert.Contains("System.DivideByZeroException", err);
        Assert.Contains(nameof(ConformanceFunctions.DivideByZeroWithStderrIn), err); // the whole stack trace
        Assert.Contains("ConformanceSupport.cs", err); // with its source file
    }

    // CPython: _TestSubclassingProcess.test_sys_exit
    [Fact]
    public void The_exit_code_a_target_exits_with_must_be_the_processs()
    {
        // Python's sys.exit(n) is Environment.Exit(n); sys.exit('reason') has no counterpart (an exit code is an int).
        var eight = _scratch.Started(new ActorProcess(ConformanceFunctions.Exit, 8) { Daemon = true });
        var zero = _scratch.Started(new ActorProcess(ConformanceFunctions.Exit, 0) { Daemon = true });
        Assert.True(eight.Join(Bound));
        Assert.True(zero.Join(Bound));
        Assert.Equal(8, eight.ExitCode);
        Assert.Equal(0, zero.ExitCode);
    }
}
