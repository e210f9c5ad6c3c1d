namespace ActorPool;

/// <summary>
/// Time limits of each task of a call (Python's Pool has none; billiard's <c>soft_time_limit</c> / <c>time_limit</c>
/// are the model). <see cref="Soft"/>: the task's <see cref="CancellationToken"/> (of a function that takes one) is
/// cancelled; a task that stops with <see cref="OperationCanceledException"/> ends with a
/// <see cref="TaskTimeoutException"/>. <see cref="Hard"/>: a task still running is abandoned and its worker stopped
/// (a worker process is killed and replaced): the call gets a <see cref="TaskTimeoutException"/> naming the task, the
/// worker and how long it ran. Either may be null (no limit); the hard limit should leave room after the soft one.
/// </summary>
/// <param name="Soft">Cancel the task's token after this long.</param>
/// <param name="Hard">Stop the task's worker after this long.</param>
public sealed record TaskTimeouts(TimeSpan? Soft = null, TimeSpan? Hard = null)
{
    /// <summary>No limits.</summary>
    public static TaskTimeouts None { get; } = new();

    /// <summary>The limits in whole milliseconds (0 = none), as they travel to workers; validates them.</summary>
    internal (int SoftMs, int HardMs) ToMilliseconds(string what)
    {
        return (Ms(Soft, nameof(Soft)), Ms(Hard, nameof(Hard)));

        int Ms(TimeSpan? limit, string name)
        {
            if (limit is not { } value)
                return 0;
            if (value < TimeSpan.FromMilliseconds(1) || value > TimeSpan.FromDays(24))
                throw new ArgumentOutOfRangeException(what, value, $"{what}.{name} = {value} is invalid: it must be between 1 ms and 24 days, or null for no limit.");
            return (int)Math.Ceiling(value.TotalMilliseconds);
        }
    }
}
