using System.Diagnostics;
using ActorPool.IntegrationTests.Support;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Xunit;

namespace ActorPool.IntegrationTests;

/// <summary>The README's OpenTelemetry example, with the SDK itself: the caller's traces and metrics, the workers' spans.</summary>
[Collection("alone")]
public sealed class OpenTelemetrySpec
{
    [Fact]
    public async Task The_OpenTelemetry_sdk_must_export_the_pools_traces_and_metrics_from_caller_and_workers()
    {
        var spans = new List<Activity>();
        var metrics = new List<Metric>();
        var workerSpans = Directory.CreateTempSubdirectory("actorpool-otel-").FullName;
        try
        {
            using (var tracing = Sdk.CreateTracerProviderBuilder().AddSource("ActorPool").AddInMemoryExporter(spans).Build())
            using (var meter = Sdk.CreateMeterProviderBuilder().AddMeter("ActorPool").AddInMemoryExporter(metrics).Build())
            {
                await using var pool = new Pool(new PoolOptions { Processes = 2, Initializer = WorkerTelemetry.Start, InitArgs = [workerSpans] });
                using var terminating = new Terminating(pool);
                await pool.WaitForWorkersAsync().WaitAsync(TimeSpan.FromSeconds(60));
                var squares = await pool.MapAsync(TestFunctions.Square, Enumerable.Range(0, 10), chunkSize: 1).WaitAsync(TimeSpan.FromSeconds(60));
                Assert.Equal(81, squares[9]);
                meter.ForceFlush();
            }

            var map = Assert.Single(spans, s => s.DisplayName == "ActorPool map");
            Assert.Equal(10L, map.GetTagItem("actorpool.tasks"));
            var completed = metrics.Last(m => m.Name == "actorpool.tasks.completed"); // cumulative: the last export holds the total
            long sum = 0;
            foreach (ref readonly var point in completed.GetMetricPoints())
                sum += point.GetSumLong();
            Assert.True(sum >= 10, $"actorpool.tasks.completed {sum}");
            Assert.Contains(metrics, m => m.Name == "actorpool.workers.alive");

            // The workers' exporters wrote their task spans: children of the caller's span, in two other processes.
            string[][] lines = [];
            Assert.True(await Processes.WaitUntil(() =>
            {
                lines = Directory.GetFiles(workerSpans, "*.spans").SelectMany(File.ReadAllLines).Select(l => l.Split(' ')).ToArray();
                return lines.Count(f => f[0] == map.TraceId.ToString()) == 10;
            }, TimeSpan.FromSeconds(20)), string.Join("\n", lines.Select(f => string.Join(' ', f))));
            var tasks = lines.Where(f => f[0] == map.TraceId.ToString()).ToList();
            Assert.All(tasks, f => Assert.Equal(("ActorPool_task", map.SpanId.ToString()), (f[2], f[1])));
            Assert.Equal(2, tasks.Select(f => f[3]).Distinct().Count(pid => pid != Environment.ProcessId.ToString()));
        }
        finally
        {
            Directory.Delete(workerSpans, recursive: true);
        }
    }
}
