namespace ActorPool.Hosting;

/// <summary>How a queue's or lock's client waits for an answer that may come just as the wait ends.</summary>
internal static class Waiting
{
    /// <summary>A wait that must not wait (timeout zero) still waits for the owner's answer, bounded in case it is gone.</summary>
    private static readonly TimeSpan NoWaitBound = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Waits for <paramref name="done"/>. On timeout or cancellation <paramref name="giveUp"/> (taking the client's
    /// lock) withdraws the waiter and says whether it was still waiting: if it was served meanwhile, that answer is
    /// the result; otherwise the <see cref="TimeoutException"/> or <see cref="OperationCanceledException"/> goes on.
    /// </summary>
    public static async Task<T> ForAsync<T>(Task<T> done, bool noWait, TimeSpan? timeout, CancellationToken ct, Func<bool> giveUp)
    {
        try
        {
            return await done.WaitAsync(noWait ? NoWaitBound : timeout ?? Timeout.InfiniteTimeSpan, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            if (!giveUp())
                return await done.ConfigureAwait(false); // served as the wait ended
            throw;
        }
    }
}
