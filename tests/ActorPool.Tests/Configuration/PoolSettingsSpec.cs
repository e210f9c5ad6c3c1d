using ActorPool.Configuration;
using Xunit;

namespace ActorPool.Tests.Configuration;

public class PoolSettingsSpec
{
    private static PoolSettings Create(PoolOptions options, string hocon = "") =>
        PoolSettings.Create(PoolSettings.ParseUserConfig(hocon, "test").WithFallback(PoolSettings.Reference), options);

    [Fact]
    public void Settings_must_take_every_default_from_reference_conf()
    {
        var s = Create(new PoolOptions());
        Assert.Equal(Environment.ProcessorCount, s.Processes);
        Assert.Equal("spawn", s.StartMethod);
        Assert.Equal(1, s.MaxTaskRetries);
        Assert.Equal(0, s.MaxTasksPerChild);
        Assert.Equal(256, s.MaxWindow);
        Assert.Equal(Math.Max(64, 2 * s.Processes * 256), s.MaxChunksInFlightPerCall);
        Assert.Equal(1 << 20, s.MaxBytesInFlightPerCall);
        Assert.True(s.DataLink);
        Assert.Equal(TimeSpan.FromSeconds(60), s.WorkerStartupTimeout);
        Assert.Equal(3, s.MaxConsecutiveStartFailures);
        Assert.Equal(TimeSpan.FromSeconds(5), s.WorkerShutdownTimeout);
        Assert.True(s.ForwardWorkerOutput);
    }

    [Fact]
    public void Options_must_override_hocon()
    {
        var s = Create(new PoolOptions { Processes = 3, MaxTasksPerChild = 7, MaxTaskRetries = 0 }, "actorpool.processes = 5");
        Assert.Equal(3, s.Processes);
        Assert.Equal(7, s.MaxTasksPerChild);
        Assert.Equal(0, s.MaxTaskRetries);
    }

    [Theory]
    [InlineData(0, "Processes = 0 is invalid")]
    [InlineData(-2, "Processes = -2 is invalid")]
    public void Invalid_process_counts_must_be_named(int processes, string message)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Create(new PoolOptions { Processes = processes }));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Invalid_max_tasks_per_child_must_say_what_is_allowed()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Create(new PoolOptions { MaxTasksPerChild = 0 }));
        Assert.Contains("positive number, or null", e.Message);
    }

    [Fact]
    public void Invalid_hocon_values_must_name_the_key()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Create(new PoolOptions(), "actorpool.dispatch.max-window = 0"));
        Assert.Contains("actorpool.dispatch.max-window", e.Message);
        var e2 = Assert.Throws<ArgumentException>(() => Create(new PoolOptions(), "actorpool.max-task-retries = lots"));
        Assert.Contains("actorpool.max-task-retries", e2.Message);
        var e3 = Assert.Throws<ArgumentOutOfRangeException>(() => Create(new PoolOptions(), "actorpool.dispatch.max-bytes-in-flight-per-call = 1KiB"));
        Assert.Contains("actorpool.dispatch.max-bytes-in-flight-per-call", e3.Message);
        Assert.Contains("at least 64KiB", e3.Message);
        Assert.Equal(8L << 20, Create(new PoolOptions(), "actorpool.dispatch.max-bytes-in-flight-per-call = 8MiB").MaxBytesInFlightPerCall);
    }

    [Fact]
    public void Malformed_hocon_must_be_reported_as_such()
    {
        var e = Assert.Throws<ArgumentException>(() => PoolSettings.ParseUserConfig("actorpool { a { } , b = 1 }", "PoolOptions.Config"));
        Assert.Contains("PoolOptions.Config is not valid HOCON", e.Message);
    }

    [Theory]
    [InlineData("actorpool { node { workers = [1, 2 }", "does not close the '[' opened on line 1")] // Akka's parser would loop on it
    [InlineData("actorpool {\n  processes = 2\n", "the '{' opened on line 1 is not closed")]
    [InlineData("actorpool.processes = 2 }", "'}' on line 1 closes nothing")]
    [InlineData("akka.cluster.roles = [\"a\n", "not closed on that line")]
    public void Unbalanced_hocon_must_be_reported_with_the_line_instead_of_parsed(string hocon, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => PoolSettings.ParseUserConfig(hocon, "PoolOptions.Config"));
        Assert.Contains("PoolOptions.Config is not valid HOCON", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Brackets_inside_strings_and_comments_must_not_count()
    {
        var config = PoolSettings.ParseUserConfig(""""
            # a comment with { and [
            actorpool.forkserver.preload = ["a]b", "c{"] // and ]
            akka.x = """{ [ """
            """", "PoolOptions.Config");
        Assert.Equal(["a]b", "c{"], config.GetStringList("actorpool.forkserver.preload"));
    }

    [Fact]
    public void Fork_must_be_refused_with_the_reason_and_the_alternative()
    {
        var e = Assert.Throws<ArgumentException>(() => Create(new PoolOptions { StartMethod = "fork" }));
        Assert.Contains("cannot be forked safely", e.Message);
        Assert.Contains("spawn", e.Message);
        Assert.Contains("forkserver", e.Message);
    }

    [Fact]
    public void Unknown_start_methods_must_list_the_valid_ones()
    {
        var e = Assert.Throws<ArgumentException>(() => Create(new PoolOptions { StartMethod = "teleport" }));
        Assert.Contains("Unknown start method 'teleport'", e.Message);
        Assert.Contains("Valid start methods: spawn, forkserver, thread", e.Message);
    }

    [Fact]
    public void Forkserver_must_take_its_preload_list_from_HOCON_and_refuse_what_is_not_an_assembly_name()
    {
        var s = Create(new PoolOptions { StartMethod = "forkserver" }, "actorpool.forkserver.preload = [\"System.Text.Json\"]");
        Assert.Equal("forkserver", s.StartMethod);
        Assert.Equal(["System.Text.Json"], s.Preload);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Create(new PoolOptions(), "actorpool.forkserver.preload = [\"--evil\"]"));
        Assert.Contains("actorpool.forkserver.preload", e.Message);
    }
}
