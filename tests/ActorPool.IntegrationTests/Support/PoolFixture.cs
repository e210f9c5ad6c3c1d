using Xunit;

namespace ActorPool.IntegrationTests.Support;

/// <summary>One warm 2-worker pool shared by the tests that leave it as they found it.</summary>
public sealed class PoolFixture : IAsyncLifetime
{
    public Pool Pool { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Pool = new Pool(2);
        await Pool.WaitForWorkersAsync().WaitAsync(TimeSpan.FromSeconds(60));
    }

    public Task DisposeAsync()
    {
        Pool.Terminate();
        return Task.CompletedTask;
    }
}

/// <summary>Terminates a test's own pool however the test ends, so no worker outlives it.</summary>
internal sealed class Terminating(Pool pool) : IDisposable
{
    public void Dispose() => pool.Terminate();
}

[CollectionDefinition("processes", DisableParallelization = true)]
public sealed class ProcessCollection;
