namespace ActorPool.Hosting;

/// <summary>How a queue's or lock's client waits for an answer that may come just as the wait ends.</summary>
internal static class Waiting
{
    /// <summary>A wait that must not wait (timeout zero) still waits for the owner's answer, bounded in case it is gone.</summary>
    private static readonly TimeSpan NoWaitBound = TimeSpan.FromSeconds(30);

    /// <summary>A caller's timeout: zero or positive, or <see cref="Timeout.InfiniteTimeSpan"/> (returned as null: no bound).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Any other negative value.</exception>
    public static TimeSpan? CheckTimeout(TimeSpan? timeout)
    {
        if (timeout == Timeout.InfiniteTimeSpan)
            return null;
        if (timeout is { } t && t < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(timeout), t, "timeout must be zero or positive (or Timeout.InfiniteTimeSpan).");
        return timeout;
    }

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
