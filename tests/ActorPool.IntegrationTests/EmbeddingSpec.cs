using ActorPool.IntegrationTests.Support;
using Akka.Actor;
using Akka.Configuration;
using Xunit;

namespace ActorPool.IntegrationTests;

/// <summary>A pool inside an application's own ActorSystem (PoolOptions.ActorSystem, and the Akka extension).</summary>
[Collection("processes")]
public sealed class EmbeddingSpec
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private static ActorSystem AppSystem(string provider) => ActorSystem.Create("app", ConfigurationFactory.ParseString($"""
        akka.actor.provider = {provider}
        akka.remote.dot-netty.tcp.hostname = "127.0.0.1"
        akka.remote.dot-netty.tcp.port = 0
        akka.loglevel = WARNING
        """));

    private sealed class Echo : ReceiveActor
    {
        public Echo() => ReceiveAny(m => Sender.Tell(m));
    }

    [Fact]
    public async Task A_pool_must_run_its_coordinator_in_the_applications_own_ActorSystem_and_leave_it_running()
    {
        var app = AppSystem("remote");
        try
        {
            var echo = app.ActorOf(Props.Create(() => new Echo()), "echo");
            var pool = app.ActorPool().CreatePool(2);
            using (new Terminating(pool))
            {
                // Both workers ready first: on a busy machine one may start long before the other and run every task.
                await pool.WaitForWorkersAsync().WaitAsync(Bound);
                var pids = await pool.MapAsync(TestFunctions.SlowPid, [100, 100, 100, 100], chunkSize: 1).WaitAsync(Bound);
                Assert.DoesNotContain(Environment.ProcessId, pids);
                Assert.Equal(2, pids.Distinct().Count());
                // Each is watched: over its data link (spawned workers start no remoting of their own).
                Assert.True(await Processes.WaitUntil(() => pool.CountsAsync().GetAwaiter().GetResult().RegisteredWorkers == 2, TimeSpan.FromSeconds(20)),
                    "the workers did not register through the application's ActorSystem");
                await pool.DisposeAsync();
            }
            Assert.False(app.WhenTerminated.IsCompleted);
            Assert.Equal("still here", await echo.Ask<string>("still here", Bound));

            // A second pool in the same system, with its own options.
            var second = new Pool(new PoolOptions { ActorSystem = app, Processes = 1 });
            using (new Terminating(second))
            {
                Assert.Equal([1, 4, 9], await second.MapAsync(TestFunctions.Square, [1, 2, 3]).WaitAsync(Bound));
                // Its tasks use this program's queues and locks, which speak the program's TLS, not the application's
                // plain TCP (the worker's clients failed: no transport for akka.ssl.tcp).
                var q = new ActorQueue<int>();
                var gate = new ActorLock();
                Assert.Equal([2, 3], await second.MapAsync(x => { using (gate.Lock()) q.Put(x); return x; }, [2, 3]).WaitAsync(Bound));
                Assert.Equal([2, 3], new[] { q.Get(Bound), q.Get(Bound) }.Order());
            }
        }
        finally
        {
            await app.Terminate();
        }
    }

    [Fact]
    public async Task A_system_without_remoting_must_be_refused_for_process_workers_and_serve_thread_workers()
    {
        var local = AppSystem("local");
        try
        {
            var error = Assert.Throws<ArgumentException>(() => new Pool(new PoolOptions { ActorSystem = local, Processes = 1 }));
            Assert.Contains("akka.actor.provider = remote", error.Message);
            var threads = local.ActorPool().CreatePool(new PoolOptions { Processes = 2, StartMethod = "thread" });
            Assert.Equal(Environment.ProcessId, await threads.ApplyAsync(() => Environment.ProcessId).WaitAsync(Bound));
        }
        finally
        {
            await local.Terminate();
        }
    }
}
