using System.Diagnostics.Metrics;

namespace ActorPool.Diagnostics;

/// <summary>
/// The <c>ActorPool</c> meter (System.Diagnostics.Metrics), read by <c>dotnet-counters monitor --counters ActorPool</c> or the
/// OpenTelemetry SDK (<c>AddMeter("ActorPool")</c>). Every pool of the process reports to it; instruments are cheap when
/// nobody listens. <see cref="TaskDuration"/> is recorded where tasks run (a worker process, or the caller's process for
/// the thread start method); the rest where the pool's coordinator runs, whose gauges appear once a pool has started.
/// </summary>
internal static class PoolMetrics
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "ActorPool";

    private static readonly Meter Meter = new(MeterName, typeof(PoolMetrics).Assembly.GetName().Version?.ToString());

    public static readonly Counter<long> TasksSubmitted = Meter.CreateCounter<long>("actorpool.tasks.submitted", "{task}", "Tasks handed to a pool.");
    public static readonly Counter<long> TasksCompleted = Meter.CreateCounter<long>("actorpool.tasks.completed", "{task}", "Tasks that returned a result.");
    public static readonly Counter<long> TasksFailed = Meter.CreateCounter<long>("actorpool.tasks.failed", "{task}", "Tasks that raised, timed out, or were lost past the retry limit.");
    public static readonly Counter<long> TasksRetried = Meter.CreateCounter<long>("actorpool.tasks.retried", "{task}", "Tasks queued again because their worker was lost.");
    public static readonly Histogram<double> ChunkDuration = Meter.CreateHistogram<double>("actorpool.chunk.duration", "s", "Run time of a chunk of tasks in a worker.");
    public static readonly Counter<long> WorkerStarts = Meter.CreateCounter<long>("actorpool.worker.starts", "{worker}", "Worker processes a pool started.");
    public static readonly Counter<long> WorkerLosses = Meter.CreateCounter<long>("actorpool.worker.losses", "{worker}", "Workers lost while working (crash, kill, node down).");
    public static readonly Counter<long> BytesSent = Meter.CreateCounter<long>("actorpool.bytes.sent", "By", "Serialized arguments sent to workers.");
    /// <summary>
    /// Recorded where tasks run: a meter of its own (of the same name), made on first use, so a worker process does not
    /// make the caller's instruments (about 15 ms of a spawned worker's start, measured).
    /// </summary>
    public static Histogram<double> TaskDuration => WhereTasksRun.TaskDuration;

    private static class WhereTasksRun
    {
        private static readonly Meter Meter = new(MeterName, typeof(PoolMetrics).Assembly.GetName().Version?.ToString());

        public static readonly Histogram<double> TaskDuration = Meter.CreateHistogram<double>("actorpool.task.duration", "s", "Run time of one task, in the process that ran it.");
    }

    private static long _queued, _inFlight, _workers;
    private static int _gauges;

    /// <summary>The gauges, made the first time a coordinator reports: a worker process, which has none to report, shows none.</summary>
    private static void EnsureGauges()
    {
        if (Volatile.Read(ref _gauges) != 0 || Interlocked.Exchange(ref _gauges, 1) != 0)
            return;
        Meter.CreateObservableUpDownCounter("actorpool.tasks.queued", () => Volatile.Read(ref _queued), "{chunk}", "Chunks waiting for a worker.");
        Meter.CreateObservableUpDownCounter("actorpool.tasks.in_flight", () => Volatile.Read(ref _inFlight), "{chunk}", "Chunks running in workers.");
        Meter.CreateObservableUpDownCounter("actorpool.workers.alive", () => Volatile.Read(ref _workers), "{worker}", "Workers ready to take work.");
    }

    /// <summary>A pool's change to the process-wide gauges (each pool adds its own deltas).</summary>
    public static void Adjust(long queued, long inFlight, long workers)
    {
        EnsureGauges();
        if (queued != 0) Interlocked.Add(ref _queued, queued);
        if (inFlight != 0) Interlocked.Add(ref _inFlight, inFlight);
        if (workers != 0) Interlocked.Add(ref _workers, workers);
    }
}
