using Xunit;

namespace ActorPool.IntegrationTests.Conformance;

/// <summary>CPython's <c>TestSimpleQueue</c>: ActorPool has no SimpleQueue yet; these run on ActorQueue, which does what they check.</summary>
[Collection("processes")]
public sealed class CPythonSimpleQueueSpec
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    // CPython: TestSimpleQueue.test_empty
    [Fact]
    public void Empty_must_be_right_in_a_child_and_in_the_parent()
    {
        var queue = new ActorQueue<bool>();
        Assert.True(queue.IsEmpty);
        var proc = new ActorProcess(ConformanceFunctions.PutEmptiness, queue) { Daemon = true };
        try
        {
            proc.Start();
            Assert.True(proc.Join(Bound));
            Assert.Equal(0, proc.ExitCode);
        }
        finally
        {
            if (proc.IsAlive)
                proc.Kill();
        }
        Assert.False(queue.IsEmpty);
        Assert.True(queue.Get(Bound));  // the child saw it empty,
        Assert.False(queue.Get(Bound)); // then not: its own first put counted at once (issue 30301)
        Assert.True(queue.IsEmpty);
    }

    // CPython: TestSimpleQueue.test_close
    // CPython: TestSimpleQueue.test_closed
    [Fact]
    public void Completing_twice_must_not_fail_and_the_queue_must_say_it_is_completed()
    {
        var queue = new ActorQueue<int>();
        queue.Complete();
        queue.Complete(); // closing a queue twice does not fail
        Assert.True(queue.IsCompleted); // in CPython: its private _reader and _writer are closed
    }
}
