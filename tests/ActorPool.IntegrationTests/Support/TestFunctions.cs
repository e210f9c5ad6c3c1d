using OpenTelemetry.Trace;
namespace ActorPool.IntegrationTests.Support;

/// <summary>Functions the tests send to worker processes (static methods, as a user's own code would be).</summary>
public static class TestFunctions
{
    public static int Square(int x) => x * x;

    public static int SlowPid(int millis)
    {
        Thread.Sleep(millis);
        return Environment.ProcessId;
    }

    public static int Divide(int x) => 100 / x;

    /// <summary>
    /// Runs until the file <paramref name="gate"/> exists (a test opens it when it has seen what it waits for; at most
    /// 2 minutes), or 100 ms for an empty name: a long task whose length does not depend on how busy the machine is.
    /// </summary>
    public static int PidWhenOpen(string gate)
    {
        if (gate.Length == 0)
            Thread.Sleep(100);
        for (var waited = 0; gate.Length > 0 && !File.Exists(gate) && waited < 120_000; waited += 50)
            Thread.Sleep(50);
        return Environment.ProcessId;
    }

    public static (int Pid, int Thread) SlowPidAndThread(int millis)
    {
        Thread.Sleep(millis);
        return (Environment.ProcessId, Environment.CurrentManagedThreadId);
    }

    /// <summary>
    /// Sleeps, and says when (UTC ticks, one clock for every process of this host) and where (pid:thread) it ran:
    /// the tests judge overlap and barriers from these, not from their own timing.
    /// </summary>
    public static (int Item, string Worker, long Start, long End) Stamp((int Item, int Millis) x)
    {
        var start = DateTime.UtcNow.Ticks;
        Thread.Sleep(x.Millis);
        return (x.Item, $"{Environment.ProcessId}:{Environment.CurrentManagedThreadId}", start, DateTime.UtcNow.Ticks);
    }

    /// <summary>
    /// <see cref="Stamp"/>, except that the first time <paramref name="x"/>.Item equals <c>KillItem</c> on this host its
    /// process kills itself half-way (a marker file remembers it): the item is retried elsewhere.
    /// </summary>
    public static (int Item, string Worker, long Start, long End) StampOrDieOnce((int Item, int Millis, int KillItem, string Marker) x)
    {
        var start = DateTime.UtcNow.Ticks;
        Thread.Sleep(x.Millis / 2);
        if (x.Item == x.KillItem)
        {
            try
            {
                File.Open(x.Marker, FileMode.CreateNew).Dispose();
                System.Diagnostics.Process.GetCurrentProcess().Kill();
            }
            catch (IOException)
            {
                // Second attempt: the marker exists.
            }
        }
        Thread.Sleep(x.Millis - x.Millis / 2);
        return (x.Item, $"{Environment.ProcessId}:{Environment.CurrentManagedThreadId}", start, DateTime.UtcNow.Ticks);
    }

    public static void Nap(int millis) => Thread.Sleep(millis);

    /// <summary>Puts <paramref name="first"/> .. first + count - 1 and returns at once: nothing waits for them to arrive.</summary>
    public static int PutMany(ActorQueue<int> queue, int first, int count)
    {
        for (var i = first; i < first + count; i++)
            queue.Put(i);
        return Environment.ProcessId;
    }

    /// <summary>A target that starts a foreground thread and returns; the thread writes <paramref name="path"/> a second later.</summary>
    public static void StartForegroundThread(string path) =>
        new Thread(() =>
        {
            Thread.Sleep(1000);
            File.WriteAllText(path, "done");
        }) { IsBackground = false }.Start();

    /// <summary><see cref="PutMany"/> as an <see cref="ActorProcess"/> target.</summary>
    public static void PutAndReturn(ActorQueue<int> queue, int count) => PutMany(queue, 0, count);

    /// <summary>A task that returns nothing (Python's None): its effect is a file naming the worker's pid.</summary>
    public static void Touch(string path) => File.WriteAllText(path, Environment.ProcessId.ToString());

    public static void NapTimes(int millis, int times = 2)
    {
        for (var i = 0; i < times; i++)
            Thread.Sleep(millis);
    }

    public static void Fail(string why) => throw new InvalidOperationException(why);

    public static byte[] Reverse(byte[] bytes) => bytes.Reverse().ToArray();

    /// <summary>Set by the pool's initializer in each worker.</summary>
    public static string? Greeting;

    public static void Init(string greeting, int times) => Greeting = string.Concat(Enumerable.Repeat(greeting, times));

    /// <summary>An initializer whose every run leaves a line (the worker's pid) in <paramref name="path"/>.</summary>
    public static void InitMarker(string path) => File.AppendAllText(path, $"{Environment.ProcessId}\n");

    public static void FailingInit() => throw new InvalidOperationException("no database here");

    private static System.Diagnostics.ActivityListener? _traceListener;
    private static readonly object TraceGate = new();

    /// <summary>
    /// A pool initializer that does in a worker what an OpenTelemetry exporter would: listens to the ActorPool source and
    /// writes each ended span (trace id, span id, parent span id, name, pid, status) as a line of a file of its own in
    /// <paramref name="folder"/> (processes appending to one file would trip over each other's write locks).
    /// </summary>
    public static void TraceToFile(string folder)
    {
        var path = Path.Combine(folder, $"{Environment.ProcessId}.spans");
        _traceListener = new System.Diagnostics.ActivityListener
        {
            ShouldListenTo = s => s.Name == "ActorPool",
            Sample = (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a =>
            {
                lock (TraceGate)
                    File.AppendAllText(path, $"{a.TraceId} {a.SpanId} {a.ParentSpanId} {a.DisplayName.Replace(' ', '_')} {Environment.ProcessId} {a.Status} {a.GetTagItem("actorpool.task.index")}\n");
            },
        };
        System.Diagnostics.ActivitySource.AddActivityListener(_traceListener);
    }
}

/// <summary>
/// The README's OpenTelemetry set-up for workers, as a pool initializer: the worker's task spans go to an exporter (here
/// one that appends each span to a file, as a stand-in for OTLP), exported as each span ends.
/// </summary>
public static class WorkerTelemetry
{
    private static OpenTelemetry.Trace.TracerProvider? _tracing;

    /// <summary>Exports to a file of this process's own in <paramref name="folder"/>.</summary>
    public static void Start(string folder) =>
        _tracing = OpenTelemetry.Sdk.CreateTracerProviderBuilder()
            .AddSource("ActorPool")
            .AddProcessor(new OpenTelemetry.SimpleActivityExportProcessor(new FileExporter(Path.Combine(folder, $"{Environment.ProcessId}.spans"))))
            .Build();

    private sealed class FileExporter(string path) : OpenTelemetry.BaseExporter<System.Diagnostics.Activity>
    {
        public override OpenTelemetry.ExportResult Export(in OpenTelemetry.Batch<System.Diagnostics.Activity> batch)
        {
            foreach (var a in batch)
                File.AppendAllText(path, $"{a.TraceId} {a.ParentSpanId} {a.DisplayName.Replace(' ', '_')} {Environment.ProcessId}\n");
            return OpenTelemetry.ExportResult.Success;
        }
    }
}
