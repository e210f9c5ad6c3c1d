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

[CollectionDefinition("processes", DisableParallelization = true)]
public sealed class ProcessCollection;
