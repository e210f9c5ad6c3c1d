namespace ActorPool;

/// <summary>
/// How far a call has got, as reported to the <see cref="IProgress{T}"/> given to <c>MapAsync</c>, <c>StarMapAsync</c>,
/// <c>ImapAsync</c> or <c>MapPairedAsync</c>. Reports are throttled (at most one per <c>actorpool.progress-interval</c>, 100 ms by default,
/// the latest state winning, plus a last one when the call ends), so a million-item map costs a few reports a second.
/// </summary>
/// <param name="Completed">Tasks (items) that returned a result.</param>
/// <param name="Total">Tasks in the call: known at once for map, starmap and paired batches, and for imap over a
/// collection; for a lazy imap input, <see langword="null"/> until the input has been read to its end.</param>
/// <param name="Failed">Tasks that raised, timed out, or were lost more often than the retry limit.</param>
/// <param name="Retried">Tasks queued again because their worker was lost (each retry counts).</param>
/// <param name="Elapsed">Time since the call started.</param>
/// <param name="IsFinal"><see langword="true"/> on the last report of a call (it has ended: done, failed or cancelled).</param>
public readonly record struct PoolProgress(long Completed, long? Total, long Failed, long Retried, TimeSpan Elapsed, bool IsFinal = false)
{
    /// <summary>Completed as a fraction of <see cref="Total"/> (0 to 1), or <see langword="null"/> while the total is unknown.</summary>
    public double? Fraction => Total is > 0 and var total ? Math.Min(1.0, (double)Completed / total) : Total == 0 ? 1.0 : null;

    /// <inheritdoc />
    public override string ToString() =>
        $"{Completed:N0}/{(Total is { } t ? t.ToString("N0") : "?")} done" +
        (Failed > 0 ? $", {Failed:N0} failed" : "") + (Retried > 0 ? $", {Retried:N0} retried" : "") +
        $" in {Elapsed.TotalSeconds:0.0} s";
}
