using ActorPool.Coordination;
using ActorPool.Execution;
using ActorPool.Protocol;
using Xunit;

namespace ActorPool.Tests.Coordination;

/// <summary>
/// The ledger alone, no actor and no transport: which chunk goes to which worker and when, what a lost worker's
/// chunks become, and that each chunk's result reaches its call once.
/// </summary>
public class LedgerSpec
{
    private static readonly SerializedFunction Fn = new([9], 0);
    private static readonly long Long = System.Diagnostics.Stopwatch.Frequency; // a task of 1 s: the window stays 1

    private readonly List<(WorkerHandle Worker, RunChunk Run)> _sent = new();

    private void Dispatch(Ledger ledger) =>
        ledger.Dispatch((w, m) =>
        {
            switch (m)
            {
                case RunChunk one: _sent.Add((w, one)); break;
                case RunChunks many: _sent.AddRange(many.Chunks.Select(r => (w, r))); break;
                default: throw new InvalidOperationException($"unexpected {m}");
            }
        });

    private static WorkerHandle Ready(Ledger ledger, string id)
    {
        var w = new WorkerHandle(id) { Slot = 1 };
        ledger.AddReady(w);
        return w;
    }

    private static Sink Open(Ledger ledger, long call, int chunks, int gang = 0)
    {
        var sink = new Sink();
        ledger.Open(new StartCall(call, Fn, sink, gang));
        for (var i = 0; i < chunks; i++)
            Assert.True(ledger.Submit(new SubmitChunk(new ChunkId(call, i), Blob.Of([(byte)i]), i * 10, 10)));
        return sink;
    }

    private static ChunkDone Done(RunChunk run, TaskError? error = null, int completed = 10) =>
        new(run.Chunk, run.Attempt, Blob.Of([1]), completed, error, Long);

    [Fact]
    public void With_its_window_open_a_call_must_give_the_next_chunk_to_an_idle_worker_not_queue_it_behind_a_running_task()
    {
        var ledger = new Ledger(maxTaskRetries: 1, maxWindow: 32, maxTasksPerChild: 0);
        var a = Ready(ledger, "a");
        var b = Ready(ledger, "b");
        Open(ledger, 1, 4);
        Dispatch(ledger);
        Assert.Equal([("a", 0), ("b", 1)], _sent.Select(x => (x.Worker.Id, x.Run.Chunk.Index)));

        // b's task took no time against its round trip: the call's window opens. a still runs task 0 (a long one).
        Thread.Sleep(5);
        Assert.True(ledger.Complete(b, new ChunkDone(_sent[1].Run.Chunk, _sent[1].Run.Attempt, Blob.Of([1]), 10, null, 1)));
        _sent.Clear();
        Dispatch(ledger);

        Assert.Equal(("b", 2), (_sent[0].Worker.Id, _sent[0].Run.Chunk.Index));
    }

    [Fact]
    public void Chunks_go_round_robin_one_per_worker_and_the_rest_wait_for_a_free_worker()
    {
        var ledger = new Ledger(maxTaskRetries: 1, maxWindow: 32, maxTasksPerChild: 0);
        var a = Ready(ledger, "a");
        var b = Ready(ledger, "b");
        Open(ledger, 1, 5);
        Dispatch(ledger);

        Assert.Equal([("a", 0), ("b", 1)], _sent.Select(x => (x.Worker.Id, x.Run.Chunk.Index)));
        Assert.Equal(3, ledger.Queued);
        Assert.Equal(2, ledger.Running);
        Assert.Equal([9], _sent[0].Run.Function); // a worker's first chunk of a call carries the function
        Assert.Equal(0, _sent[0].Run.FirstIndex);
        Assert.Equal(10, _sent[1].Run.FirstIndex);

        Assert.True(ledger.Complete(b, Done(_sent[1].Run)));
        _sent.Clear();
        Dispatch(ledger);
        var next = Assert.Single(_sent);
        Assert.Equal(("b", 2), (next.Worker.Id, next.Run.Chunk.Index));
        Assert.Empty(next.Run.Function); // b has it already
        Assert.Single(a.Running);
    }

    [Fact]
    public void A_call_queued_behind_another_waits_its_turn()
    {
        var ledger = new Ledger(1, 32, 0);
        var a = Ready(ledger, "a");
        Open(ledger, 1, 2);
        Open(ledger, 2, 1);
        var order = new List<ChunkId>();
        for (var round = 0; round < 3; round++)
        {
            _sent.Clear();
            Dispatch(ledger);
            var run = Assert.Single(_sent).Run;
            order.Add(run.Chunk);
            ledger.Complete(a, Done(run));
        }
        Assert.Equal([new ChunkId(1, 0), new ChunkId(1, 1), new ChunkId(2, 0)], order);
    }

    [Fact]
    public void A_result_reaches_its_call_once_and_a_stranger_or_a_duplicate_is_dropped()
    {
        var ledger = new Ledger(1, 32, 0);
        var a = Ready(ledger, "a");
        var stranger = new WorkerHandle("x");
        var sink = Open(ledger, 1, 1);
        Dispatch(ledger);
        var run = _sent[0].Run;

        Assert.False(ledger.Complete(stranger, Done(run)));
        Assert.False(ledger.Complete(null, Done(run)));
        Assert.Empty(sink.Completed);

        Assert.True(ledger.Complete(a, Done(run)));
        Assert.False(ledger.Complete(a, Done(run)));
        Assert.Equal([0], sink.Completed);
        Assert.Equal(1, a.TasksDone);
        Assert.Equal(10, a.ItemsDone);
        Assert.True(ledger.HoldsNoChunk);
    }

    [Fact]
    public void A_lost_workers_chunk_runs_again_first_elsewhere_and_its_late_result_is_dropped()
    {
        var ledger = new Ledger(maxTaskRetries: 1, 32, 0);
        var a = Ready(ledger, "a");
        var b = Ready(ledger, "b");
        var sink = Open(ledger, 1, 3);
        Dispatch(ledger);
        var onA = _sent.Single(x => x.Worker == a).Run;

        Assert.Equal((1, 0), ledger.Lost(a, exitCode: 137));
        Assert.Equal([0], sink.Retried);
        Assert.Equal(1, ledger.ReadyWorkers);
        Assert.True(ledger.Complete(b, Done(_sent.Single(x => x.Worker == b).Run)));
        _sent.Clear();
        Dispatch(ledger);
        var retry = Assert.Single(_sent);
        Assert.Equal((b, onA.Chunk, 2), (retry.Worker, retry.Run.Chunk, retry.Run.Attempt)); // at the front, not behind chunk 2

        Assert.False(ledger.Complete(a, Done(onA))); // the lost worker's answer after all: not outstanding there
        Assert.DoesNotContain(0, sink.Completed);
        Assert.True(ledger.Complete(b, Done(retry.Run)));
        Assert.Contains(0, sink.Completed);
    }

    [Fact]
    public void A_chunk_past_the_retry_limit_fails_naming_the_worker_and_its_exit()
    {
        var ledger = new Ledger(maxTaskRetries: 0, 32, 0);
        var a = Ready(ledger, "a");
        a.Pid = 4242;
        var sink = Open(ledger, 1, 1);
        Dispatch(ledger);

        Assert.Equal((0, 1), ledger.Lost(a, exitCode: 137));
        var error = Assert.IsType<WorkerLostException>(Assert.Single(sink.Failed));
        Assert.Contains("4242", error.Message);
        Assert.Contains("137", error.Message);
        Assert.True(ledger.HoldsNoChunk);
    }

    [Fact]
    public void A_task_error_becomes_TaskFailedException_with_its_index_and_the_partial_results()
    {
        var ledger = new Ledger(1, 32, 0);
        var a = Ready(ledger, "a");
        var sink = Open(ledger, 1, 2);
        Dispatch(ledger);
        var error = new TaskError("System.DivideByZeroException", "boom", "at Fn()");
        Assert.True(ledger.Complete(a, Done(_sent[0].Run, error, completed: 3)));

        var failed = Assert.IsType<TaskFailedException>(Assert.Single(sink.Failed));
        Assert.Equal(3, failed.TaskIndex);
        Assert.Equal("System.DivideByZeroException", failed.RemoteType);
        Assert.Equal(3, sink.PartialCompleted);
    }

    [Fact]
    public void A_group_starts_only_when_all_its_chunks_are_in_and_as_many_workers_are_idle_each_on_its_own()
    {
        var ledger = new Ledger(1, 32, 0);
        var a = Ready(ledger, "a");
        var b = Ready(ledger, "b");
        Ready(ledger, "c");
        Open(ledger, 1, 1); // a plain call keeps a busy
        Dispatch(ledger);
        var plain = Assert.Single(_sent);
        Assert.Equal(a, plain.Worker);

        var sink = new Sink();
        ledger.Open(new StartCall(2, Fn, sink, GangSize: 3));
        for (var i = 0; i < 2; i++)
            ledger.Submit(new SubmitChunk(new ChunkId(2, i), Blob.Of([1]), i, 1));
        _sent.Clear();
        Dispatch(ledger);
        Assert.Empty(_sent); // two of three in

        ledger.Submit(new SubmitChunk(new ChunkId(2, 2), Blob.Of([1]), 2, 1));
        Dispatch(ledger);
        Assert.Empty(_sent); // all in, but only two workers idle

        ledger.Complete(a, Done(plain.Run));
        Dispatch(ledger);
        Assert.Equal(3, _sent.Count);
        Assert.Equal(3, _sent.Select(x => x.Worker).Distinct().Count());
        Assert.All(_sent, x => Assert.Equal(2, x.Run.Chunk.CallId));
        _ = b;
    }

    [Fact]
    public void Ending_a_call_drops_what_is_queued_and_names_the_workers_that_hold_its_function()
    {
        var ledger = new Ledger(1, 32, 0);
        var a = Ready(ledger, "a");
        var sink = Open(ledger, 1, 4);
        Dispatch(ledger);

        var knownBy = ledger.End(1);
        Assert.Equal(["a"], knownBy!);
        Assert.Equal(0, ledger.Queued);
        Assert.Equal(0, ledger.ActiveCalls);
        Assert.Null(ledger.End(1));
        Assert.False(ledger.Submit(new SubmitChunk(new ChunkId(1, 9), Blob.Of([1]), 90, 1)));

        Assert.True(ledger.Complete(a, Done(_sent[0].Run))); // it ran: the worker counts it, the call does not see it
        Assert.Empty(sink.Completed);
        Assert.Equal(1, a.TasksDone);
    }

    [Fact]
    public void A_worker_at_its_task_limit_or_no_longer_ready_gets_nothing_more()
    {
        var ledger = new Ledger(1, 32, maxTasksPerChild: 1);
        var a = Ready(ledger, "a");
        var b = Ready(ledger, "b");
        Open(ledger, 1, 3);
        Dispatch(ledger);
        ledger.Complete(a, Done(_sent.Single(x => x.Worker == a).Run));
        ledger.RemoveReady(b);
        ledger.Complete(b, Done(_sent.Single(x => x.Worker == b).Run)); // a worker taken out still reports what it ran
        _sent.Clear();
        Dispatch(ledger);
        Assert.Empty(_sent);
        Assert.Equal(1, ledger.Queued);

        var c = Ready(ledger, "c");
        Dispatch(ledger);
        Assert.Equal(c, Assert.Single(_sent).Worker);
    }

    [Fact]
    public void The_window_widens_only_while_tasks_are_far_shorter_than_the_round_trip()
    {
        var ledger = new Ledger(1, maxWindow: 8, 0);
        var a = Ready(ledger, "a");
        Open(ledger, 1, 200);
        for (var round = 0; round < 20; round++)
        {
            _sent.Clear();
            Dispatch(ledger);
            Thread.Sleep(2); // the round trip: far longer than the task below
            foreach (var (w, run) in _sent)
                ledger.Complete(w, new ChunkDone(run.Chunk, run.Attempt, Blob.Of([1]), 10, null, ElapsedTicks: 1));
        }
        _sent.Clear();
        Dispatch(ledger);
        Assert.InRange(_sent.Count, 2, 8);
        Assert.All(_sent, x => Assert.Equal(a, x.Worker));
    }

    [Fact]
    public void Failing_every_call_tells_each_sink_and_forgets_them()
    {
        var ledger = new Ledger(1, 32, 0);
        Ready(ledger, "a");
        var one = Open(ledger, 1, 2);
        var two = Open(ledger, 2, 2);
        Dispatch(ledger);
        ledger.FailAll(new PoolBrokenException("test"));
        Assert.IsType<PoolBrokenException>(one.CallError);
        Assert.IsType<PoolBrokenException>(two.CallError);
        Assert.Equal(0, ledger.ActiveCalls);
        Assert.True(ledger.HoldsNoChunk);
    }

    [Fact]
    public void Status_shows_each_calls_queue_and_each_workers_oldest_chunk()
    {
        var ledger = new Ledger(1, 32, 0);
        var a = Ready(ledger, "a");
        Open(ledger, 1, 3);
        Dispatch(ledger);
        var now = System.Diagnostics.Stopwatch.GetTimestamp();
        var call = Assert.Single(ledger.Calls(now, hidden: 0));
        Assert.Equal((1L, 2, 1), (call.CallId, call.QueuedChunks, call.RunningChunks));
        var task = ledger.OldestOn(a, now)!;
        Assert.Equal((1L, 0L, 10, 1), (task.CallId, task.FirstTask, task.Count, task.Attempt));
        Assert.Empty(ledger.Calls(now, hidden: 1));
        Assert.Null(ledger.OldestOn(new WorkerHandle("idle"), now));
    }

    private sealed class Sink : ICallSink
    {
        public List<int> Completed { get; } = new();
        public List<int> Retried { get; } = new();
        public List<Exception> Failed { get; } = new();
        public int PartialCompleted { get; private set; }
        public Exception? CallError { get; private set; }

        public void ChunkCompleted(int index, int count, Blob results) => Completed.Add(index);
        public void ChunkRetried(int index, int count) => Retried.Add(index);

        public void ChunkFailed(int index, Blob partialResults, int completed, Exception error)
        {
            PartialCompleted = completed;
            Failed.Add(error);
        }

        public void CallFailed(Exception error) => CallError = error;
    }
}
