using ActorPool.IntegrationTests.Support;
using Xunit;

namespace ActorPool.IntegrationTests.Conformance;

/// <summary>CPython's <c>_TestPoolWorkerErrors</c> (processes only): errors raised by tasks and results that cannot come back.</summary>
[Collection("processes")]
public sealed class CPythonPoolWorkerErrorsSpec(SpawnPoolFixture fixture) : IClassFixture<SpawnPoolFixture>
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private Pool Pool => fixture.Pool;

    // CPython: _TestPoolWorkerErrors.test_async_error_callback
    [Fact]
    public async Task An_error_continuation_must_get_the_tasks_error()
    {
        // Python's error_callback is a continuation of the call's task.
        Exception? scratchpad = null;
        var res = Pool.ApplyAsync(ConformanceFunctions.RaiseKeyError);
        var errback = res.ContinueWith(t => scratchpad = t.Exception?.InnerException, TaskContinuationOptions.OnlyOnFaulted);
        var error = await Assert.ThrowsAsync<TaskFailedException>(() => res.WaitAsync(Bound));
        Assert.Equal("System.Collections.Generic.KeyNotFoundException", error.RemoteType); // Python: KeyError
        await errback.WaitAsync(Bound);
        Assert.Same(error, scratchpad);
    }

    // CPython: _TestPoolWorkerErrors.test_unpickleable_result
    [Fact]
    public async Task A_result_that_cannot_come_back_must_fail_its_task_and_lose_no_worker()
    {
        await Pool.WaitForWorkersAsync().WaitAsync(Bound);
        var before = (await Pool.GetStatusAsync().WaitAsync(Bound)).Workers.Select(w => w.Pid).Order().ToList();
        for (var iteration = 0; iteration < 20; iteration++)
        {
            // Python: MaybeEncodingError, with the error (.exc) and the value (.value) it could not send.
            var error = await Assert.ThrowsAsync<TaskFailedException>(() => Pool.ApplyAsync(ConformanceFunctions.UnpickleableResult).WaitAsync(Bound));
            Assert.Contains("Thread", error.Message);
        }
        var after = (await Pool.GetStatusAsync().WaitAsync(Bound)).Workers.Select(w => w.Pid).Order().ToList();
        Assert.Equal(before, after); // the same workers: none was lost to the encoding errors
        Assert.Equal(4, await Pool.ApplyAsync(() => 2 + 2).WaitAsync(Bound));
    }
}
