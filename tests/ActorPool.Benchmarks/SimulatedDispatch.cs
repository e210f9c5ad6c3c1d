using System.Diagnostics;
using ActorPool.Configuration;
using ActorPool.Coordination;
using ActorPool.Execution;
using ActorPool.Protocol;
using Akka.Actor;

namespace ActorPool.Benchmarks;

/// <summary>
/// The coordinator's own cost per task as the pool grows: the real coordinator actor, its ledger and its round-robin
/// dispatch, with simulated workers (actors that register through the real challenge and answer every task at once)
/// instead of processes, so that neither process start nor a thousand OS threads on two cores is in the figure.
/// </summary>
internal static class SimulatedDispatch
{
    private const string Secret = "simulated";

    /// <summary>Microseconds per task for <paramref name="tasks"/> single-task chunks over <paramref name="workers"/> simulated workers.</summary>
    public static async Task<double> MeasureAsync(int workers, int tasks, CancellationToken ct)
    {
        var system = ActorSystem.Create("dispatch-bench",
            Akka.Configuration.ConfigurationFactory.ParseString("akka.actor.provider = local\nakka.loglevel = ERROR").WithFallback(PoolSettings.Reference));
        try
        {
            var settings = PoolSettings.Create(PoolSettings.Reference, new PoolOptions { Processes = workers, StartMethod = "thread" });
            var launcher = new Launcher(system);
            var coordinator = system.ActorOf(Coordinator.Props(settings, launcher, Secret, []), "coordinator");
            var ready = await coordinator.AskLocal<PoolCounts>(WaitForWorkers.Instance, TimeSpan.FromMinutes(2), ct);
            Check(ready.ReadyWorkers >= workers, "simulated workers ready");

            await RunCall(coordinator, 1, Math.Min(tasks, 10_000), ct); // warm: windows open, code jitted
            var clock = Stopwatch.StartNew();
            await RunCall(coordinator, 2, tasks, ct);
            return clock.Elapsed.TotalMicroseconds / tasks;
        }
        finally
        {
            await system.Terminate().WaitAsync(TimeSpan.FromSeconds(30), CancellationToken.None);
        }
    }

    private static async Task RunCall(IActorRef coordinator, long call, int tasks, CancellationToken ct)
    {
        var sink = new CountingSink(tasks);
        coordinator.TellLocal(new StartCall(call, new SerializedFunction([1], 0), sink));
        for (var i = 0; i < tasks; i++)
            coordinator.TellLocal(new SubmitChunk(new ChunkId(call, i), Blob.Of([(byte)i]), i, 1));
        await sink.Done.Task.WaitAsync(TimeSpan.FromMinutes(5), ct);
    }

    private sealed class CountingSink(int expected) : ICallSink
    {
        private int _completed;
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void ChunkRetried(int index, int count) { }

        public void ChunkCompleted(int index, int count, Blob results)
        {
            if (Interlocked.Increment(ref _completed) == expected)
                Done.TrySetResult();
        }

        public void ChunkFailed(int index, Blob partialResults, int completed, Exception error) =>
            Done.TrySetException(new InvalidOperationException($"A simulated task failed: {error.Message}", error));

        public void CallFailed(Exception error) => Done.TrySetException(error);
    }

    private sealed class Launcher(ActorSystem system) : IWorkerLauncher
    {
        private int _next;

        public int Launch(string workerId, IActorRef coordinator)
        {
            system.ActorOf(Props.Create(() => new Worker(workerId, coordinator)));
            return 1_000_000 + Interlocked.Increment(ref _next);
        }

        public void Kill(string workerId) { }

        public void Dispose() { }
    }

    /// <summary>Registers as the real worker does (challenge, proof), then answers each task at once.</summary>
    private sealed class Worker : ReceiveActor
    {
        private static readonly Blob Result = Blob.Of([1]);

        public Worker(string id, IActorRef coordinator)
        {
            var nonce = Proof.NewNonce();
            coordinator.Tell(new RegisterWorker(id, 0, "127.0.0.1", Self, nonce));
            Receive<RegisterChallenge>(c => coordinator.Tell(new RegisterWorker(id, 0, "127.0.0.1", Self, nonce, c.ChallengeNonce,
                Proof.Of(Secret, "worker", id, c.ChallengeNonce, nonce))));
            Receive<WorkerAccepted>(_ => coordinator.Tell(new WorkerReady(id)));
            Receive<RunChunk>(r => Sender.Tell(new ChunkDone(r.Chunk, r.Attempt, Result, 1, null, 100)));
            Receive<RunChunks>(rs =>
            {
                foreach (var r in rs.Chunks)
                    Sender.Tell(new ChunkDone(r.Chunk, r.Attempt, Result, 1, null, 100));
            });
            // The coordinator wraps what it sends to actors of its own process.
            Receive<Local>(l => Self.Forward(l.Message));
            ReceiveAny(_ => { }); // forget-call and the like
        }
    }

    private static void Check(bool ok, string what)
    {
        if (!ok)
            throw new InvalidOperationException($"Wrong {what}: the benchmark measured a broken run.");
    }
}
