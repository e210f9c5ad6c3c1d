using Xunit;

namespace ActorPool.IntegrationTests.Conformance;

/// <summary>
/// CPython's <c>_TestLock</c> on ActorLock and ActorRLock. CPython runs it with process, thread and manager locks; an
/// ActorLock is one kind of lock for all three (held by the lock manager, used here from this process).
/// </summary>
[Collection("processes")]
public sealed class CPythonLockSpec
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    // CPython: _TestLock.test_lock
    [Fact]
    public void A_lock_must_be_acquired_once_refuse_a_second_no_wait_acquire_and_refuse_a_release_it_does_not_hold()
    {
        var lk = new ActorLock();
        Assert.True(lk.Acquire());
        Assert.False(lk.Acquire(blocking: false)); // held (by this very thread: a Lock is not reentrant)
        lk.Release();
        Assert.Throws<InvalidOperationException>(lk.Release); // Python: ValueError
    }

    // CPython: _TestLock.test_rlock
    [Fact]
    public void A_reentrant_lock_must_be_acquired_as_often_as_released_and_refuse_one_release_more()
    {
        var lk = new ActorRLock();
        Assert.True(lk.Acquire());
        Assert.True(lk.Acquire());
        Assert.True(lk.Acquire());
        lk.Release();
        lk.Release();
        lk.Release();
        Assert.Throws<InvalidOperationException>(lk.Release); // Python: AssertionError or RuntimeError
    }

    // CPython: _TestLock.test_lock_context
    [Fact]
    public async Task A_lock_must_work_as_a_context_and_be_released_after_it()
    {
        var lk = new ActorLock();
        using (lk.Lock(Bound))
            Assert.False(lk.Acquire(blocking: false));
        await using (await lk.AcquireAsync(Bound))
            Assert.False(lk.Acquire(blocking: false));
        Assert.True(lk.Acquire(blocking: false)); // released by the end of each block
        lk.Release();
    }
}
