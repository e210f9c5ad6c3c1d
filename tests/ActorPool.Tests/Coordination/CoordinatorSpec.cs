using System.Collections.Concurrent;
using ActorPool.Configuration;
using ActorPool.Coordination;
using ActorPool.Execution;
using ActorPool.Protocol;
using Akka.Actor;
using Akka.TestKit;
using Xunit;

namespace ActorPool.Tests.Coordination;

/// <summary>
/// The coordinator's dispatch protocol, with test probes standing in for worker actors and a launcher that
/// starts no process: order, window, retry on worker loss, exactly-once results, retirement, registration.
/// </summary>
public class CoordinatorSpec : Akka.TestKit.Xunit2.TestKit
{
    private const string Secret = "s3cret";
    private static readonly SerializedFunction Fn = new([9], 0);
    private readonly FakeLauncher _launcher = new();

    private IActorRef StartCoordinator(int processes = 2, int retries = 1, int maxTasksPerChild = 0, int maxWindow = 32, string config = "")
    {
        var options = new PoolOptions { Processes = processes, MaxTaskRetries = retries, MaxTasksPerChild = maxTasksPerChild == 0 ? null : maxTasksPerChild };
        var hocon = PoolSettings.ParseUserConfig($"actorpool.dispatch.max-window = {maxWindow}\n{config}", "test").WithFallback(PoolSettings.Reference);
        var settings = PoolSettings.Create(hocon, options);
        return Sys.ActorOf(Coordinator.Props(settings, _launcher, Secret, []));
    }

    /// <summary>Registers a probe as worker <paramref name="id"/> (challenge, then proof): accepted, not yet ready.</summary>
    private TestProbe Register(IActorRef coordinator, string id, int pid)
    {
        var probe = CreateTestProbe();
        var nonce = Proof.NewNonce();
        coordinator.Tell(new RegisterWorker(id, pid, "127.0.0.1", probe.Ref, nonce), probe.Ref);
        var challenge = probe.ExpectLocal<RegisterChallenge>();
        Assert.True(Proof.Matches(Proof.Of(Secret, "coordinator", id, nonce, challenge.ChallengeNonce), challenge.Proof)); // the coordinator proves it first
        coordinator.Tell(new RegisterWorker(id, pid, "127.0.0.1", probe.Ref, nonce, challenge.ChallengeNonce,
            Proof.Of(Secret, "worker", id, challenge.ChallengeNonce, nonce)), probe.Ref);
        probe.ExpectLocal<WorkerAccepted>();
        return probe;
    }

    /// <summary>Registers a probe as worker <paramref name="id"/> and answers the warm-up round trip.</summary>
    private TestProbe Join(IActorRef coordinator, string id, int pid)
    {
        var probe = Register(coordinator, id, pid);
        coordinator.Tell(new WorkerReady(id), probe.Ref);
        var warm = probe.ExpectLocal<RunChunk>();
        coordinator.Tell(new ChunkDone(warm.Chunk, warm.Attempt, Blob.Of([]), 3, null, 0), probe.Ref);
        probe.ExpectLocal<ForgetCall>();
        return probe;
    }

    private static void Submit(IActorRef coordinator, long call, int chunks)
    {
        for (var i = 0; i < chunks; i++)
            coordinator.TellLocal(new SubmitChunk(new ChunkId(call, i), Blob.Of([(byte)i]), i, 1));
    }

    // execTicks: Stopwatch ticks the task ran; by default 1 s, a long task.
    private static void Done(IActorRef coordinator, TestProbe worker, RunChunk run, long? execTicks = null) =>
        coordinator.Tell(new ChunkDone(run.Chunk, run.Attempt, Blob.Of([1]), 1, null, execTicks ?? System.Diagnostics.Stopwatch.Frequency), worker.Ref);

    [Fact]
    public void Coordinator_must_launch_the_configured_number_of_workers()
    {
        StartCoordinator(processes: 3);
        AwaitAssert(() => Assert.Equal(3, _launcher.Launched.Count), TimeSpan.FromSeconds(3));
    }

    [Fact]
    public void Coordinator_must_dispatch_round_robin_and_hold_back_work_beyond_the_window()
    {
        var coordinator = StartCoordinator();
        var w1 = Join(coordinator, "w1", 101);
        var w2 = Join(coordinator, "w2", 102);
        var sink = new RecordingSink();
        coordinator.TellLocal(new StartCall(1, Fn, sink));
        Submit(coordinator, 1, 4);

        var first = w1.ExpectLocal<RunChunk>();
        var second = w2.ExpectLocal<RunChunk>();
        Assert.Equal(0, first.Chunk.Index);
        Assert.Equal(1, second.Chunk.Index);
        Assert.Equal([9], first.Function); // the function travels with a worker's first chunk of a call only

        // Window 1 (tasks are long: 1 s each): nothing more until a worker finishes.
        w1.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        w2.ExpectNoMsg(TimeSpan.FromMilliseconds(50));

        Done(coordinator, w2, second);
        var third = w2.ExpectLocal<RunChunk>();
        Assert.Equal(2, third.Chunk.Index);
        Assert.Empty(third.Function);
        w1.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        AwaitAssert(() => Assert.Contains(1, sink.Completed.Keys));
    }

    [Fact]
    public void A_group_must_start_only_when_all_its_chunks_are_in_and_as_many_workers_are_idle_each_on_its_own_worker()
    {
        var coordinator = StartCoordinator(processes: 3);
        var w1 = Join(coordinator, "w1", 101);
        var w2 = Join(coordinator, "w2", 102);
        var w3 = Join(coordinator, "w3", 103);
        var busy = new RecordingSink();
        coordinator.TellLocal(new StartCall(1, Fn, busy));
        Submit(coordinator, 1, 2);
        var r1 = w1.ExpectLocal<RunChunk>();
        w2.ExpectLocal<RunChunk>();

        // A group of 2 with one idle worker: nothing goes out, not even half of it.
        var group = new RecordingSink();
        coordinator.TellLocal(new StartCall(2, Fn, group, GangSize: 2));
        Submit(coordinator, 2, 2);
        w3.ExpectNoMsg(TimeSpan.FromMilliseconds(200));

        // A second worker idle: both chunks go out together, one each.
        Done(coordinator, w1, r1);
        var a = w1.ExpectLocal<RunChunk>();
        var b = w3.ExpectLocal<RunChunk>();
        Assert.Equal([2L, 2L], new[] { a.Chunk.CallId, b.Chunk.CallId });
        Assert.NotEqual(a.Chunk.Index, b.Chunk.Index);

        // A group member's worker dies: its chunk goes to an idle worker, never to one running the other member.
        coordinator.TellLocal(new WorkerExited("w1", 137, ""));
        w3.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        AwaitAssert(() => Assert.Equal(4, _launcher.Launched.Count));
        var w4 = Join(coordinator, "w4", 104);
        var retried = w4.ExpectLocal<RunChunk>();
        Assert.Equal(a.Chunk, retried.Chunk);
        Assert.Equal(2, retried.Attempt);
    }

    [Fact]
    public void Coordinator_must_mark_a_stateless_function_as_shareable_across_calls()
    {
        var coordinator = StartCoordinator(processes: 1);
        var w1 = Join(coordinator, "w1", 101);
        coordinator.TellLocal(new StartCall(1, new SerializedFunction([7], 42), new RecordingSink()));
        Submit(coordinator, 1, 1);
        var run = w1.ExpectLocal<RunChunk>();
        Assert.Equal(42, run.FunctionKey);
        Assert.Equal([7], run.Function);
    }

    [Fact]
    public void Coordinator_must_retry_the_chunks_of_a_worker_whose_process_exited()
    {
        var coordinator = StartCoordinator();
        var w1 = Join(coordinator, "w1", 101);
        var w2 = Join(coordinator, "w2", 102);
        var sink = new RecordingSink();
        coordinator.TellLocal(new StartCall(1, Fn, sink));
        Submit(coordinator, 1, 2);
        var lost = w1.ExpectLocal<RunChunk>();
        var other = w2.ExpectLocal<RunChunk>();

        coordinator.TellLocal(new WorkerExited("w1", 137, ""));
        Done(coordinator, w2, other);
        var retried = w2.ExpectLocal<RunChunk>();
        Assert.Equal(lost.Chunk, retried.Chunk);
        Assert.Equal(2, retried.Attempt);
        AwaitAssert(() => Assert.Equal(3, _launcher.Launched.Count)); // a replacement

        Done(coordinator, w2, retried);
        AwaitAssert(() => Assert.Equal(2, sink.Completed.Count));
        Assert.Empty(sink.Failed);
    }

    [Fact]
    public void Coordinator_must_fail_a_chunk_past_the_retry_limit_naming_the_worker_and_exit_code()
    {
        var coordinator = StartCoordinator(retries: 0);
        var w1 = Join(coordinator, "w1", 4242);
        var sink = new RecordingSink();
        coordinator.TellLocal(new StartCall(1, Fn, sink));
        coordinator.TellLocal(new SubmitChunk(new ChunkId(1, 0), Blob.Of([0]), 5, 1));
        w1.ExpectLocal<RunChunk>();

        coordinator.TellLocal(new WorkerExited("w1", 137, ""));

        AwaitAssert(() => Assert.Single(sink.Failed));
        var error = Assert.IsType<WorkerLostException>(sink.Failed[0]);
        Assert.Equal(5, error.TaskIndex);
        Assert.Equal(137, error.ExitCode);
        Assert.Contains("w1 (pid 4242)", error.Message);
        Assert.Contains("SIGKILL", error.Message);
    }

    [Fact]
    public void Coordinator_must_deliver_each_result_once()
    {
        var coordinator = StartCoordinator(processes: 1);
        var w1 = Join(coordinator, "w1", 101);
        var sink = new RecordingSink();
        coordinator.TellLocal(new StartCall(1, Fn, sink));
        Submit(coordinator, 1, 1);
        var run = w1.ExpectLocal<RunChunk>();

        Done(coordinator, w1, run);
        Done(coordinator, w1, run); // a duplicate, e.g. a message delivered twice

        AwaitAssert(() => Assert.Single(sink.Completed));
        w1.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        Assert.Equal(1, sink.CompletedCount);
    }

    [Fact]
    public void Coordinator_must_report_a_task_exception_with_its_remote_type_and_index()
    {
        var coordinator = StartCoordinator(processes: 1);
        var w1 = Join(coordinator, "w1", 101);
        var sink = new RecordingSink();
        coordinator.TellLocal(new StartCall(1, Fn, sink));
        coordinator.TellLocal(new SubmitChunk(new ChunkId(1, 0), Blob.Of([0]), 10, 4));
        var run = w1.ExpectLocal<RunChunk>();

        coordinator.Tell(new ChunkDone(run.Chunk, 1, Blob.Of([7]), 2, new TaskError("System.DivideByZeroException", "boom", "at X"), 10), w1.Ref);

        AwaitAssert(() => Assert.Single(sink.Failed));
        var error = Assert.IsType<TaskFailedException>(sink.Failed[0]);
        Assert.Equal(12, error.TaskIndex); // first index 10 + 2 completed
        Assert.Equal("System.DivideByZeroException", error.RemoteType);
        Assert.Equal("boom", error.RemoteMessage);
    }

    [Fact]
    public void Coordinator_must_retire_a_worker_after_max_tasks_per_child_and_start_a_replacement()
    {
        var coordinator = StartCoordinator(processes: 1, maxTasksPerChild: 2);
        var w1 = Join(coordinator, "w1", 101);
        var sink = new RecordingSink();
        coordinator.TellLocal(new StartCall(1, Fn, sink));
        Submit(coordinator, 1, 3);

        Done(coordinator, w1, w1.ExpectLocal<RunChunk>());
        Done(coordinator, w1, w1.ExpectLocal<RunChunk>());
        w1.FishForMessage(m => m is Local { Message: Retire });
        AwaitAssert(() => Assert.Equal(2, _launcher.Launched.Count));

        coordinator.TellLocal(new WorkerExited("w1", 0, "")); // retired: expected, nothing to retry
        var w2 = Join(coordinator, "w2", 102);
        var last = w2.ExpectLocal<RunChunk>();
        Assert.Equal(2, last.Chunk.Index);
        Assert.Equal(1, last.Attempt);
        // The retired worker's exit starts no second replacement: one worker per slot.
        Thread.Sleep(300);
        Assert.Equal(2, _launcher.Launched.Count);
    }

    [Fact]
    public void Coordinator_must_obey_a_call_or_a_command_only_when_it_was_made_in_this_process()
    {
        // Over plain remoting a stranger may claim any sender, this process's own actors included; a call it sends is
        // the real message type, only not wrapped by this process (and a Local that crossed a serializer is no longer
        // genuine: LocalSpec).
        var coordinator = StartCoordinator(processes: 1);
        var w1 = Join(coordinator, "w1", 101);
        var sink = new RecordingSink();
        coordinator.Tell(new StartCall(1, Fn, sink), w1.Ref);
        coordinator.Tell(new SubmitChunk(new ChunkId(1, 0), Blob.Of([0]), 0, 1), w1.Ref);
        coordinator.Tell(new WorkerExited("w1", 137, "forged"), w1.Ref);
        coordinator.Tell(TerminateWorkers.Instance, w1.Ref);
        w1.ExpectNoMsg(TimeSpan.FromMilliseconds(500));
        Assert.Empty(_launcher.Killed);

        coordinator.TellLocal(new StartCall(1, Fn, sink));
        Submit(coordinator, 1, 1);
        Done(coordinator, w1, w1.ExpectLocal<RunChunk>());
        AwaitAssert(() => Assert.Equal(1, sink.CompletedCount), TimeSpan.FromSeconds(3));
    }

    [Fact]
    public void Coordinator_must_kill_a_worker_that_is_not_ready_within_the_startup_timeout()
    {
        // The coordinator's own timers reach it (they are not wrapped as Local, and must not be refused).
        StartCoordinator(processes: 1, config: "actorpool.worker.startup-timeout = 1s");
        AwaitAssert(() => Assert.Contains("w1", _launcher.Killed), TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void Coordinator_must_refuse_a_registration_without_the_pool_secret()
    {
        var coordinator = StartCoordinator(processes: 1);
        var intruder = CreateTestProbe();
        coordinator.Tell(new RegisterWorker("w1", 999, "127.0.0.1", intruder.Ref, "n1"), intruder.Ref);
        var challenge = intruder.ExpectLocal<RegisterChallenge>();
        // An answer to no open challenge is ignored; an answer without the secret is refused.
        coordinator.Tell(new RegisterWorker("w1", 999, "127.0.0.1", intruder.Ref, "n1", "not-a-challenge", "guess"), intruder.Ref);
        intruder.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
        coordinator.Tell(new RegisterWorker("w1", 999, "127.0.0.1", intruder.Ref, "n1", challenge.ChallengeNonce,
            Proof.Of("guess", "worker", "w1", challenge.ChallengeNonce, "n1")), intruder.Ref);
        var rejected = intruder.ExpectLocal<WorkerRejected>();
        Assert.Contains("secret", rejected.Reason);
    }

    [Fact]
    public void Coordinator_must_drop_queued_chunks_of_an_ended_call()
    {
        var coordinator = StartCoordinator(processes: 1);
        var w1 = Join(coordinator, "w1", 101);
        var sink = new RecordingSink();
        coordinator.TellLocal(new StartCall(1, Fn, sink));
        Submit(coordinator, 1, 3);
        var running = w1.ExpectLocal<RunChunk>();

        coordinator.TellLocal(new EndCall(1));
        w1.ExpectLocal<ForgetCall>();
        Done(coordinator, w1, running);
        w1.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
        Assert.Empty(sink.Completed);
    }

    [Fact]
    public void Coordinator_must_break_the_pool_after_repeated_start_failures_instead_of_hanging()
    {
        var coordinator = StartCoordinator(processes: 1);
        var sink = new RecordingSink();
        coordinator.TellLocal(new StartCall(1, Fn, sink));
        Submit(coordinator, 1, 1);
        for (var i = 1; i <= 3; i++)
        {
            AwaitAssert(() => Assert.Equal(i, _launcher.Launched.Count));
            coordinator.TellLocal(new WorkerExited($"w{i}", 1, "Could not load file or assembly 'X'"));
        }
        AwaitAssert(() => Assert.NotNull(sink.CallError));
        var error = Assert.IsType<PoolBrokenException>(sink.CallError);
        Assert.Contains("failed to start", error.Message);
        Assert.Contains("Could not load file or assembly", error.Message);
    }

    [Fact]
    public void Workers_it_did_not_start_that_go_before_they_are_ready_must_not_break_the_pool()
    {
        // As node workers may on a busy machine: registered, then gone before ready, three times. Only the workers a
        // pool starts count as its start failures (it starts no replacement for the others, so cannot loop on them).
        var coordinator = StartCoordinator(processes: 1);
        var sink = new RecordingSink();
        coordinator.TellLocal(new StartCall(1, Fn, sink));
        Submit(coordinator, 1, 1);
        for (var i = 1; i <= 3; i++)
            Sys.Stop(Register(coordinator, $"x{i}", 500 + i).Ref);
        var w1 = Join(coordinator, "w1", 101); // refused, were the pool broken
        Done(coordinator, w1, w1.ExpectLocal<RunChunk>());
        AwaitAssert(() => Assert.Equal(1, sink.CompletedCount));
        Assert.Null(sink.CallError);
    }

    [Fact]
    public void Coordinator_must_widen_the_window_when_tasks_are_far_shorter_than_a_round_trip()
    {
        var coordinator = StartCoordinator(processes: 1);
        var w1 = Join(coordinator, "w1", 101);
        var sink = new RecordingSink();
        coordinator.TellLocal(new StartCall(1, Fn, sink));
        Submit(coordinator, 1, 40);
        var run = w1.ExpectLocal<RunChunk>();
        Thread.Sleep(20); // a 20 ms round trip for a task that ran 1 tick
        Done(coordinator, w1, run, execTicks: 1);
        var burst = w1.ReceiveWhile(TimeSpan.FromMilliseconds(500), m => ((Local)m).Message switch
        {
            RunChunk r => new[] { r },
            RunChunks b => b.Chunks,
            _ => null!,
        }).SelectMany(c => c).ToList();
        Assert.True(burst.Count > 1, $"expected several chunks in flight, got {burst.Count}");
    }

    private sealed class FakeLauncher : IWorkerLauncher
    {
        public ConcurrentQueue<string> Launched { get; } = new();
        public ConcurrentQueue<string> Killed { get; } = new();

        public int Launch(string workerId, IActorRef coordinator)
        {
            Launched.Enqueue(workerId);
            return 0;
        }

        public void Kill(string workerId) => Killed.Enqueue(workerId);

        public void Dispose()
        {
        }
    }

    private sealed class RecordingSink : ICallSink
    {
        private int _completed;
        public ConcurrentDictionary<int, Blob> Completed { get; } = new();
        public List<Exception> Failed { get; } = new();
        public Exception? CallError { get; private set; }
        public int CompletedCount => _completed;

        public void ChunkRetried(int index, int count)
        {
        }

        public void ChunkCompleted(int index, int count, Blob results)
        {
            Interlocked.Increment(ref _completed);
            Completed[index] = results;
        }

        public void ChunkFailed(int index, Blob partialResults, int completed, Exception error)
        {
            lock (Failed) Failed.Add(error);
        }

        public void CallFailed(Exception error) => CallError = error;
    }
}
