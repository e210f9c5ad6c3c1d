using ActorPool.IntegrationTests.Support;
using Xunit;

namespace ActorPool.IntegrationTests.Conformance;

/// <summary>
/// CPython's <c>TestInitializers</c>. Its shared object is a Manager's Namespace; here it is a queue passed in the
/// initializer's arguments, where each run of the initializer leaves one mark.
/// </summary>
[Collection("processes")]
public sealed class CPythonInitializersSpec : IClassFixture<ForkServerSpares>
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    // CPython: TestInitializers.test_pool_initializer
    [Theory]
    [InlineData("spawn")]
    [InlineData("forkserver")]
    public async Task The_initializer_must_run_once_in_the_worker_of_a_pool_that_is_closed_and_joined(string method)
    {
        // Python: Pool(initializer=1) is a TypeError; C# takes a delegate, and refuses arguments that do not fit it.
        Assert.Throws<ArgumentException>(() => new Pool(new PoolOptions { Processes = 1, Initializer = ConformanceFunctions.Initializer, InitArgs = [] }));

        var ns = new ActorQueue<int>();
        var p = new Pool(new PoolOptions { Processes = 1, StartMethod = method, Initializer = ConformanceFunctions.Initializer, InitArgs = [ns] });
        using var terminating = new Terminating(p);
        p.Close();
        await p.JoinAsync().WaitAsync(Bound);
        Assert.Equal(1, ns.Get(Bound)); // ns.test == 1
        Assert.False(ns.TryGet(out _, TimeSpan.FromMilliseconds(200)));
    }
}
