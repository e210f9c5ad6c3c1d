using ActorPool.Protocol;
using Akka.TestKit;
using Xunit;

namespace ActorPool.Tests;

internal static class LocalExpectations
{
    /// <summary>The next message, which an actor of this process sent wrapped as <see cref="Local"/>, unwrapped.</summary>
    public static T ExpectLocal<T>(this TestProbe probe)
    {
        var local = probe.ExpectMsg<Local>();
        Assert.True(local.IsGenuine);
        return Assert.IsType<T>(local.Message);
    }
}
