using ActorPool.IntegrationTests.Support;
using Xunit;

namespace ActorPool.IntegrationTests;

/// <summary>What a task does to its worker process (run there).</summary>
public static class HostileFunctions
{
    public static int ExitProcess(int code)
    {
        Environment.Exit(code);
        return code;
    }

    public static int Recurse(int depth) => depth == int.MinValue ? 0 : Recurse(depth + 1) + 1;

    /// <summary>A result the pool cannot send back: a live thread.</summary>
    public static Thread LiveThread(int _) => Thread.CurrentThread;

    public static int ThrowUnsendable(int _) => throw new UnsendableException(new FileStream(Path.GetTempFileName(), FileMode.Open));

    public sealed class UnsendableException(Stream stream) : Exception("carries a stream")
    {
        public Stream Stream { get; } = stream;
    }
}

/// <summary>
/// Bad input, one test each: the exception type, a message that names the culprit and what to do, and the same pool
/// then maps correctly.
/// </summary>
[Collection("alone")]
public sealed class BadInputSpec(SpawnPoolFixture fixture) : IClassFixture<SpawnPoolFixture>
{
    private readonly Pool _pool = fixture.Pool;

    /// <summary>The pool still works, on every worker.</summary>
    private async Task AssertPoolUsable(Pool? pool = null)
    {
        var squares = await (pool ?? _pool).MapAsync(TestFunctions.Square, Enumerable.Range(0, 50), chunkSize: 1).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(Enumerable.Range(0, 50).Select(x => x * x), squares);
    }

    [Fact]
    public async Task An_argument_that_cannot_be_serialized()
    {
        using var stream = new MemoryStream();
        var e = await Assert.ThrowsAsync<NotSendableException>(() => _pool.MapAsync((Stream s) => s.Length, [stream]));
        Assert.Contains("argument type is a System.IO.Stream", e.Message);
        Assert.Contains("Create it inside the task", e.Message);
        await AssertPoolUsable();
    }

    [Fact]
    public async Task A_port_already_in_use_is_one_line_naming_the_address_and_what_to_set()
    {
        // It was a 59-line nested AggregateException.
        using var holder = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        holder.Start();
        var port = ((System.Net.IPEndPoint)holder.LocalEndpoint).Port;
        var e = Assert.Throws<ActorPoolException>(() => new Pool(new PoolOptions
        {
            Processes = 1,
            Config = $"akka.remote.dot-netty.tcp {{ hostname = \"127.0.0.1\", port = {port} }}",
        }));
        Assert.Contains($"127.0.0.1:{port}", e.Message);
        Assert.Contains("already in use", e.Message);
        Assert.Contains("akka.remote.dot-netty.tcp.port", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        await AssertPoolUsable();
    }

    [Fact]
    public async Task A_result_that_cannot_be_serialized()
    {
        var e = await Assert.ThrowsAsync<TaskFailedException>(() => _pool.MapAsync(HostileFunctions.LiveThread, [1, 2]));
        Assert.Contains("System.Threading.Thread", e.Message);
        Assert.Contains("cannot be sent back", e.Message);
        Assert.Equal(0, e.TaskIndex);
        await AssertPoolUsable();
    }

    [Fact]
    public async Task An_exception_that_cannot_be_serialized()
    {
        var e = await Assert.ThrowsAsync<TaskFailedException>(() => _pool.MapAsync(HostileFunctions.ThrowUnsendable, [1]));
        Assert.Contains(nameof(HostileFunctions.UnsendableException), e.RemoteType);
        Assert.Contains("carries a stream", e.Message);
        await AssertPoolUsable();
    }

    [Fact]
    public async Task A_function_the_worker_cannot_resolve()
    {
        var generated = System.Linq.Expressions.Expression.Lambda<Func<int, int>>(
            System.Linq.Expressions.Expression.Constant(1), System.Linq.Expressions.Expression.Parameter(typeof(int))).Compile();
        var e = await Assert.ThrowsAsync<NotSendableException>(() => _pool.MapAsync(generated, [1]));
        Assert.Contains("generated at run time", e.Message);
        await AssertPoolUsable();
    }

    [Fact]
    public async Task A_closure_over_a_value_that_cannot_be_serialized()
    {
        using var file = new FileStream(Path.GetTempFileName(), FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 4096, FileOptions.DeleteOnClose);
        var e = await Assert.ThrowsAsync<NotSendableException>(() => _pool.MapAsync(AddLengthOf(file), [1L]));
        Assert.Contains("Captured values.file is a System.IO.FileStream", e.Message);
        await AssertPoolUsable();
    }

    private static Func<long, long> AddLengthOf(FileStream file) => x => x + file.Length;

    [Fact]
    public async Task A_known_dangerous_type_as_an_argument()
    {
        var e = await Assert.ThrowsAsync<NotSendableException>(() => _pool.MapAsync((DirectoryInfo d) => d.Name, [new DirectoryInfo(Path.GetTempPath())]));
        Assert.Contains("DirectoryInfo", e.Message);
        await AssertPoolUsable();
    }

    [Fact]
    public async Task An_initializer_that_throws_fails_the_pool_fast_with_its_error()
    {
        await using var broken = new Pool(new PoolOptions { Processes = 2, Initializer = new Action(() => throw new InvalidDataException("no config file")) });
        using var terminating = new Terminating(broken);
        var e = await Assert.ThrowsAsync<PoolBrokenException>(() => broken.MapAsync(TestFunctions.Square, [1]).WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains("initializer", e.Message);
        Assert.Contains("no config file", e.Message);
        await AssertPoolUsable();
    }

    [Fact]
    public async Task A_worker_that_cannot_start_must_fail_the_pool_at_start_with_its_error_output()
    {
        // A dependency the runtime cannot find, as a worker host would meet it: every worker process fails at start.
        var previous = Environment.GetEnvironmentVariable("DOTNET_STARTUP_HOOKS");
        Environment.SetEnvironmentVariable("DOTNET_STARTUP_HOOKS", "/nonexistent/MissingDependency.dll");
        try
        {
            await using var broken = new Pool(new PoolOptions { Processes = 1 });
            using var terminating = new Terminating(broken);
            var e = await Assert.ThrowsAsync<PoolBrokenException>(() => broken.WaitForWorkersAsync().WaitAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains("worker processes in a row failed to start", e.Message);
            Assert.Contains("MissingDependency", e.Message); // the worker's own error output
            await Assert.ThrowsAsync<PoolBrokenException>(() => broken.MapAsync(TestFunctions.Square, [1]).WaitAsync(TimeSpan.FromSeconds(10)));
        }
        finally
        {
            Environment.SetEnvironmentVariable("DOTNET_STARTUP_HOOKS", previous);
        }
        await AssertPoolUsable();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public async Task Processes_zero_or_negative(int processes)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new Pool(processes));
        Assert.Contains("Processes", e.Message);
        Assert.Contains("at least 1", e.Message);
        await AssertPoolUsable();
    }

    [Fact]
    public async Task A_chunk_size_of_zero()
    {
        var e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => _pool.MapAsync(TestFunctions.Square, [1, 2], chunkSize: 0));
        Assert.Contains("chunkSize", e.Message);
        await AssertPoolUsable();
    }

    [Fact]
    public async Task Max_tasks_per_child_of_zero()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new Pool(new PoolOptions { MaxTasksPerChild = 0 }));
        Assert.Contains("MaxTasksPerChild", e.Message);
        Assert.Contains("null for no limit", e.Message);
        await AssertPoolUsable();
    }

    [Fact]
    public async Task A_call_after_close_and_after_terminate()
    {
        var closed = new Pool(new PoolOptions { Processes = 1, StartMethod = "thread" });
        closed.Close();
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => closed.MapAsync(TestFunctions.Square, [1]));
        Assert.Contains("Closed", e.Message);
        Assert.Contains("create a new Pool", e.Message);
        closed.Terminate();
        var e2 = await Assert.ThrowsAsync<InvalidOperationException>(() => closed.MapAsync(TestFunctions.Square, [1]));
        Assert.Contains("Terminated", e2.Message);
        await AssertPoolUsable();
    }

    [Fact]
    public async Task An_unknown_start_method()
    {
        var e = Assert.Throws<ArgumentException>(() => new Pool(new PoolOptions { StartMethod = "spwan" }));
        Assert.Contains("'spwan'", e.Message);
        Assert.Contains("spawn, forkserver, thread", e.Message);
        await AssertPoolUsable();
    }

    [Fact]
    public async Task An_invalid_hocon_value()
    {
        var e = Assert.Throws<ArgumentException>(() => new Pool(new PoolOptions { Config = "actorpool.worker.startup-timeout = soon" }));
        Assert.Contains("actorpool.worker.startup-timeout", e.Message);
        await AssertPoolUsable();
    }

    [Fact]
    public async Task An_unknown_hocon_key_in_the_actorpool_section()
    {
        var e = Assert.Throws<ArgumentException>(() => new Pool(new PoolOptions { Config = "actorpool.procesess = 2" }));
        Assert.Contains("actorpool.procesess", e.Message);
        Assert.Contains("actorpool.processes", e.Message); // the key it probably means
        await AssertPoolUsable();
    }

    [Fact]
    public async Task A_payload_beyond_the_frame_size_works()
    {
        var big = new byte[80 * 1024 * 1024]; // above the 64 MiB frame
        big[^1] = 7;
        var sums = await _pool.MapAsync((byte[] b) => b.Length + b[^1], [big]).WaitAsync(TimeSpan.FromSeconds(120));
        Assert.Equal(big.Length + 7, sums[0]);
        await AssertPoolUsable();
    }

    [Fact]
    public async Task A_payload_beyond_the_frame_size_without_the_spill_folder_names_the_setting()
    {
        await using var small = new Pool(new PoolOptions
        {
            Processes = 1,
            Config = "akka.remote.dot-netty.tcp.maximum-frame-size = 1MiB\nactorpool.cluster { enabled = on, secret = s, local-workers = 1, min-workers = 0 }\n" +
                     "akka.remote.dot-netty.tcp.port = 0\nakka.cluster.seed-nodes = []",
        });
        using var terminating = new Terminating(small);
        var e = await Assert.ThrowsAsync<NotSendableException>(() => small.MapAsync((byte[] b) => b.Length, [new byte[2 * 1024 * 1024]]));
        Assert.Contains("maximum-frame-size", e.Message);
        await AssertPoolUsable(small);
    }

    [Fact]
    public async Task A_task_that_calls_Environment_Exit_is_a_worker_loss_retried_then_a_clear_error()
    {
        var e = await Assert.ThrowsAsync<WorkerLostException>(() => _pool.MapAsync(HostileFunctions.ExitProcess, [3]).WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains("exit", e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("3", e.Message);
        Assert.Equal(2, e.Attempts);
        await _pool.WaitForWorkersAsync().WaitAsync(TimeSpan.FromSeconds(60));
        await AssertPoolUsable();
    }

    [Fact]
    public async Task A_task_that_overflows_the_stack_is_a_worker_loss_retried_then_a_clear_error()
    {
        var e = await Assert.ThrowsAsync<WorkerLostException>(() => _pool.MapAsync(HostileFunctions.Recurse, [0]).WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(2, e.Attempts);
        Assert.Contains("signal", e.Message);
        await _pool.WaitForWorkersAsync().WaitAsync(TimeSpan.FromSeconds(60));
        await AssertPoolUsable();
    }
}
