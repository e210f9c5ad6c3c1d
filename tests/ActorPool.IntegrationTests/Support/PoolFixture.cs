using Xunit;

namespace ActorPool.IntegrationTests.Support;

/// <summary>One warm 2-worker pool of a start method, shared by the tests that leave it as they found it.</summary>
public abstract class PoolFixture(string startMethod) : IAsyncLifetime
{
    public string StartMethod { get; } = startMethod;

    public Pool Pool { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Pool = new Pool(new PoolOptions { Processes = 2, StartMethod = StartMethod });
        await Pool.WaitForWorkersAsync().WaitAsync(TimeSpan.FromSeconds(60));
    }

    public Task DisposeAsync()
    {
        Pool.Terminate();
        Launching.ForkServer.ShutdownAll(); // the spares a forkserver pool left waiting
        return Task.CompletedTask;
    }
}

public sealed class SpawnPoolFixture() : PoolFixture("spawn");

public sealed class ForkServerPoolFixture() : PoolFixture("forkserver");

public sealed class ThreadPoolFixture() : PoolFixture("thread");

/// <summary>Terminates a test's own pool however the test ends, so no worker outlives it.</summary>
internal sealed class Terminating(Pool pool) : IDisposable
{
    public void Dispose() => pool.Terminate();
}

// The collections say what may run beside what: xunit.runner.json runs two of them at a time (the tests mostly wait
// for processes, and on two cores two collections keep both busy), then "alone". Three at once beside two CPU hogs
// was slower than one at a time, and the tests that must sample a run while it goes (the soak, dotnet-counters) run alone.

/// <summary>
/// Tests with pools, queues, locks and processes of this test process: one at a time, as they share its forkserver
/// (whose spares a test's end stops), its queue and lock host and its children. They run beside the "cluster" and
/// "programs" collections, whose tests touch none of that.
/// </summary>
[CollectionDefinition("processes")]
public sealed class ProcessCollection;

/// <summary>
/// Clusters of worker-node processes and the hostile runs against this process's transports: mostly waiting (gossip,
/// joins, answers that must not come), one at a time, beside the other collections. They use no forkserver, queue or
/// lock, no start method but the one they name, and look at no child they did not start.
/// </summary>
[CollectionDefinition("cluster")]
public sealed class ClusterCollection;

/// <summary>
/// Programs started as users start them (the demo, the packages in a new application): their workers are their own
/// children, so these run one at a time beside the other collections.
/// </summary>
[CollectionDefinition("programs")]
public sealed class ProgramCollection;

/// <summary>
/// Tests that read or change what is one per process (the ActorPool meter and trace source, the program-wide start
/// method, Console.Out and Error, environment variables), or whose check another pool starting meanwhile would do
/// for them (a dead pool's spill folder): run alone, after every other collection.
/// </summary>
[CollectionDefinition("alone", DisableParallelization = true)]
public sealed class AloneCollection;
