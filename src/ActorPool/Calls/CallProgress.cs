using System.Diagnostics;

namespace ActorPool.Calls;

/// <summary>
/// Counts one call's tasks as their outcomes arrive and reports them to the caller's <see cref="IProgress{T}"/>, throttled:
/// a first report when the call starts (the caller's thread), then at most one per interval (the latest state, on a
/// thread-pool thread, never on the coordinator's), and <see cref="Complete"/> reports the final state on the caller's thread.
/// </summary>
internal sealed class CallProgress : IDisposable
{
    private readonly IProgress<PoolProgress> _target;
    private readonly TimeSpan _interval;
    private readonly long _started = Stopwatch.GetTimestamp();
    private readonly object _gate = new();   // the counters' schedule; held briefly (the coordinator's thread takes it)
    private readonly object _reports = new(); // one report at a time, the final one last
    private readonly Timer _timer;
    private long _completed, _failed, _retried, _total;
    private long _lastReport = long.MinValue;
    private bool _scheduled, _done;

    public CallProgress(IProgress<PoolProgress> target, long? total, TimeSpan interval)
    {
        _target = target;
        _interval = interval;
        _total = total ?? -1;
        _timer = new Timer(static s => ((CallProgress)s!).OnTimer(), this, Timeout.Infinite, Timeout.Infinite);
        // A first report now, on the caller's thread, before any task is sent: a progress bar can show 0 of N (or of ?).
        lock (_reports)
        {
            _lastReport = Stopwatch.GetTimestamp();
            Report(Snapshot(final: false));
        }
    }

    /// <summary>A <see cref="CallProgress"/> for <paramref name="target"/>, or <see langword="null"/> when nobody listens.</summary>
    public static CallProgress? For(IProgress<PoolProgress>? target, long? total, TimeSpan interval) =>
        target is null ? null : new CallProgress(target, total, interval);

    public void AddCompleted(long n) { Interlocked.Add(ref _completed, n); Changed(); }

    public void AddFailed(long completedBefore) { Interlocked.Add(ref _completed, completedBefore); Interlocked.Increment(ref _failed); Changed(); }

    public void AddRetried(long n) { Interlocked.Add(ref _retried, n); Changed(); }

    /// <summary>The input has been read to its end: now the total is known.</summary>
    public void SetTotal(long total) { Interlocked.CompareExchange(ref _total, total, -1); Changed(); }

    private PoolProgress Snapshot(bool final)
    {
        var total = Interlocked.Read(ref _total);
        return new PoolProgress(Interlocked.Read(ref _completed), total < 0 ? null : total, Interlocked.Read(ref _failed),
            Interlocked.Read(ref _retried), Stopwatch.GetElapsedTime(_started), final);
    }

    private void Changed()
    {
        lock (_gate)
        {
            if (_done || _scheduled)
                return;
            var due = _lastReport == long.MinValue ? TimeSpan.Zero : _interval - Stopwatch.GetElapsedTime(_lastReport);
            _scheduled = true;
            _timer.Change(due <= TimeSpan.Zero ? TimeSpan.Zero : due, Timeout.InfiniteTimeSpan);
        }
    }

    private void OnTimer()
    {
        lock (_reports)
        {
            lock (_gate)
            {
                _scheduled = false;
                if (_done)
                    return;
                _lastReport = Stopwatch.GetTimestamp();
            }
            Report(Snapshot(final: false));
        }
    }

    /// <summary>The call has ended: the last report, and no other after it.</summary>
    public void Complete()
    {
        lock (_gate)
        {
            if (_done)
                return;
            _done = true;
            _timer.Dispose();
        }
        lock (_reports)
            Report(Snapshot(final: true));
    }

    private void Report(PoolProgress p)
    {
        try
        {
            _target.Report(p);
        }
        catch (Exception)
        {
            // A progress handler that throws must not break the call (nor a timer thread).
        }
    }

    public void Dispose() => Complete();
}
