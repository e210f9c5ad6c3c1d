using System.Reflection;
using Xunit;

namespace ActorPool.IntegrationTests.Conformance;

/// <summary>CPython's <c>MiscTestCase</c>.</summary>
public sealed class CPythonMiscSpec
{
    // CPython: MiscTestCase.test__all__
    [Fact]
    public void The_library_must_export_the_multiprocessing_names_and_nothing_of_its_machinery()
    {
        // Python's check__all__: what the module exports is its public API. Here: the public types of the assembly.
        var exported = typeof(Pool).Assembly.GetExportedTypes().Select(t => t.FullName!).ToHashSet();
        string[] api =
        [
            "ActorPool.Pool", "ActorPool.PoolOptions", "ActorPool.PoolState", "ActorPool.ActorProcess", "ActorPool.StartMethods",
            "ActorPool.PoolContext", "ActorPool.ActorQueue`1", "ActorPool.JoinableActorQueue`1", "ActorPool.ActorLock",
            "ActorPool.ActorRLock", "ActorPool.ActorSemaphore", "ActorPool.ActorBoundedSemaphore", "ActorPool.LockHolder",
            "ActorPool.TaskFailedException", "ActorPool.WorkerLostException", "ActorPool.PoolBrokenException",
            "ActorPool.NotSendableException", "ActorPool.QueueFullException", "ActorPool.QueueEmptyException",
            "ActorPool.QueueCompletedException", "ActorPool.TaskTimeoutException", "ActorPool.TaskTimeouts",
        ];
        Assert.All(api, name => Assert.Contains(name, exported));
        Assert.All(exported, name => Assert.False(
            name.StartsWith("ActorPool.Coordination.") || name.StartsWith("ActorPool.Launching.") || name.StartsWith("ActorPool.Worker.")
            || name.StartsWith("ActorPool.Protocol.") || name.StartsWith("ActorPool.Queues.") || name.StartsWith("ActorPool.Locks."),
            $"{name} is machinery, yet public"));
        Assert.All(api.Select(n => typeof(Pool).Assembly.GetType(n)!), t => Assert.True(t.IsPublic, $"{t} is not public"));
        Assert.NotEmpty(typeof(Pool).Assembly.GetCustomAttributes<AssemblyInformationalVersionAttribute>());
    }
}
