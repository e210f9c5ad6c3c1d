using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using ActorPool.IntegrationTests.Support;
using Xunit;

namespace ActorPool.IntegrationTests;

/// <summary>The ActorPool meter, read the way dotnet-counters and OpenTelemetry read it (a MeterListener), during real calls.</summary>
[Collection("alone")]
public sealed class MetricsSpec : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, double> _totals = new();
    private readonly ConcurrentDictionary<string, double> _last = new();

    public MetricsSpec()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == "ActorPool")
                listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            _totals.AddOrUpdate(instrument.Name, value, (_, total) => total + value);
            _last[instrument.Name] = value;
        });
        _listener.SetMeasurementEventCallback<double>((instrument, value, _, _) =>
            _totals.AddOrUpdate(instrument.Name, 1, (_, count) => count + 1)); // histograms: count the recordings
        _listener.Start();
    }

    public void Dispose() => _listener.Dispose();

    private double Total(string name) => _totals.GetValueOrDefault(name);

    [Fact]
    public async Task Task_and_worker_counters_must_move_during_a_map_and_a_worker_loss()
    {
        await using var pool = new Pool(new PoolOptions { Processes = 2 });
        using var terminating = new Terminating(pool);
        await pool.WaitForWorkersAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(Total("actorpool.worker.starts") >= 2);

        // While a map runs, the gauges show its chunks and the workers.
        var running = pool.MapAsync(TestFunctions.SlowPid, Enumerable.Repeat(300, 6), chunkSize: 1);
        await Task.Delay(400);
        _listener.RecordObservableInstruments();
        Assert.Equal(2, _last.GetValueOrDefault("actorpool.workers.alive"));
        Assert.Equal(2, _last.GetValueOrDefault("actorpool.tasks.in_flight"));
        Assert.True(_last.TryGetValue("actorpool.tasks.queued", out var queued) && queued is >= 0 and <= 4, $"queued {queued}");
        await running.WaitAsync(TimeSpan.FromSeconds(60));

        var before = (Submitted: Total("actorpool.tasks.submitted"), Completed: Total("actorpool.tasks.completed"), Chunks: Total("actorpool.chunk.duration"));
        await pool.MapAsync(TestFunctions.Square, Enumerable.Range(0, 100), chunkSize: 10).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(100, Total("actorpool.tasks.submitted") - before.Submitted);
        Assert.Equal(100, Total("actorpool.tasks.completed") - before.Completed);
        Assert.Equal(10, Total("actorpool.chunk.duration") - before.Chunks);
        Assert.True(Total("actorpool.bytes.sent") > 0);

        var failed = Total("actorpool.tasks.failed");
        await Assert.ThrowsAsync<TaskFailedException>(() => pool.MapAsync(TestFunctions.Divide, [1, 0, 2], chunkSize: 1));
        Assert.Equal(1, Total("actorpool.tasks.failed") - failed);

        // A worker killed mid-task: a loss, a retry, a replacement start.
        var (losses, retried, starts) = (Total("actorpool.worker.losses"), Total("actorpool.tasks.retried"), Total("actorpool.worker.starts"));
        var slow = pool.MapAsync(TestFunctions.SlowPid, Enumerable.Repeat(1500, 2), chunkSize: 1);
        await Task.Delay(500);
        var victim = (await pool.GetStatusAsync()).Workers.First(w => w.Task is not null).Pid!.Value; // this pool's own, running a task
        Processes.Kill9(victim);
        await slow.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(1, Total("actorpool.worker.losses") - losses);
        Assert.Equal(1, Total("actorpool.tasks.retried") - retried);
        Assert.Equal(1, Total("actorpool.worker.starts") - starts);
    }

    [Fact]
    public async Task Task_durations_must_be_recorded_where_the_tasks_run()
    {
        // The thread start method runs tasks in this process, so this listener sees their durations; a spawned
        // worker records them in its own process (the same code), for an exporter there.
        await using var pool = new Pool(new PoolOptions { Processes = 2, StartMethod = "thread" });
        using var terminating = new Terminating(pool);
        await pool.WaitForWorkersAsync().WaitAsync(TimeSpan.FromSeconds(60));
        var before = Total("actorpool.task.duration");
        await pool.MapAsync(TestFunctions.SlowPid, [50, 50, 50, 50, 50], chunkSize: 5).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(5, Total("actorpool.task.duration") - before); // one per task, though they ran as one chunk
    }
}

/// <summary>
/// The ActorPool meter read from outside by dotnet-counters, in a program of its own. Alone, like
/// <see cref="MetricsSpec"/>: dotnet-counters must start and sample while the demo's tasks run, and beside another
/// collection on a busy machine the demo could end first.
/// </summary>
[Collection("alone")]
public sealed class DotnetCountersSpec
{
    /// <summary>
    /// The README's way: <c>dotnet dotnet-counters</c> (a local tool of the repository) reads the meter of a running
    /// program with a pool (the demo) from outside, over the runtime's diagnostics channel.
    /// </summary>
    [Fact]
    public async Task Dotnet_counters_must_read_the_meter_of_a_running_pool_program()
    {
        var root = System.Reflection.CustomAttributeExtensions.GetCustomAttributes<System.Reflection.AssemblyMetadataAttribute>(typeof(DotnetCountersSpec).Assembly)
            .Single(a => a.Key == "ActorPool.RepositoryRoot").Value!;
        var csv = Path.Combine(Path.GetTempPath(), $"actorpool-counters-{Guid.NewGuid():N}.csv");
        using var demo = new StartedProgram(Path.Combine(AppContext.BaseDirectory, "ActorPool.Demo.dll"), "--unit", "0.5", "--no-progress");
        try
        {
            Assert.True(await Processes.WaitUntil(() => demo.Stdout.Contains("Waiting"), TimeSpan.FromSeconds(60)), demo.Stdout + demo.Stderr);
            using var counters = StartedProgram.Start("dotnet", ["dotnet-counters", "collect", "-p", demo.Pid.ToString(), "--counters", "ActorPool",
                "--format", "csv", "-o", csv, "--refresh-interval", "1", "--duration", "00:00:03"], workingDirectory: root);
            var exit = await counters.WaitForExitAsync(TimeSpan.FromSeconds(60));
            Assert.True(exit == 0, $"dotnet-counters exit {exit}: {counters.Stdout}{counters.Stderr}");
            var rows = File.ReadAllLines(csv).Skip(1).Select(l => l.Split(',')).Where(f => f.Length == 5 && f[1] == "ActorPool").ToList();
            Assert.Contains(rows, f => f[2].StartsWith("actorpool.workers.alive") && f[4] == "2");
            Assert.Contains(rows, f => f[2].StartsWith("actorpool.tasks.in_flight") && f[4] == "2");
            Assert.Contains(rows, f => f[2].StartsWith("actorpool.tasks.completed"));
            Assert.Equal(0, await demo.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }
        finally
        {
            File.Delete(csv);
        }
    }
}
