using ActorPool.Hosting;
using ActorPool.IntegrationTests.Support;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xunit;

namespace ActorPool.IntegrationTests;

/// <summary>ActorPool.Hosting: a generic host with Akka.Hosting runs the pool; dependency injection hands it out.</summary>
[Collection("processes")]
public sealed class HostingSpec
{
    private const string Remoting = """
        akka.actor.provider = remote
        akka.remote.dot-netty.tcp { hostname = "127.0.0.1", port = 0 }
        """;

    private static IHost BuildHost(Action<AkkaConfigurationBuilder> configure, bool registerPool = true)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddAkka("app", akka =>
        {
            akka.AddHocon(Remoting, HoconAddMode.Prepend);
            configure(akka);
        });
        if (registerPool)
            builder.Services.AddActorPool();
        return builder.Build();
    }

    [Fact]
    public async Task Generic_host_must_resolve_the_pool_from_DI_map_across_spawned_workers_and_drain_it_on_stop()
    {
        using var host = BuildHost(akka => akka.WithActorPool(o => o.Processes = 2));
        await host.StartAsync().WaitAsync(TimeSpan.FromSeconds(60));
        var pool = host.Services.GetRequiredService<Pool>();
        try
        {
            Assert.Same(pool, host.Services.GetRequiredService<Pool>());
            Assert.Equal(2, pool.Processes);
            await pool.WaitForWorkersAsync().WaitAsync(TimeSpan.FromSeconds(60));

            var pids = await pool.MapAsync(TestFunctions.SlowPid, Enumerable.Repeat(100, 8), chunkSize: 1).WaitAsync(TimeSpan.FromSeconds(60));
            var workers = pids.Distinct().ToList();
            Assert.Equal(2, workers.Count);
            Assert.DoesNotContain(Environment.ProcessId, workers);
            Assert.All(workers, pid => Assert.Contains(pid, Processes.ChildrenOf(Environment.ProcessId)));

            // The pool's coordinator is in the host's ActorSystem, and in its actor registry.
            var registry = host.Services.GetRequiredService<ActorRegistry>();
            Assert.True(registry.TryGet<ActorPoolKey>(out var coordinator));
            Assert.Equal("app", coordinator.Path.Address.System);

            await host.StopAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(PoolState.Terminated, pool.State);
            Assert.True(await Processes.WaitUntil(() => workers.All(pid => !Processes.IsAlive(pid)), TimeSpan.FromSeconds(15)));
        }
        finally
        {
            pool.Terminate();
        }
    }

    /// <summary>A service that takes the pool in its constructor, as the README says any service may.</summary>
    private sealed class Squarer(Pool pool) : BackgroundService
    {
        public TaskCompletionSource<IReadOnlyList<int>> Results { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        protected override async Task ExecuteAsync(CancellationToken stoppingToken)
        {
            try
            {
                Results.TrySetResult(await pool.MapAsync(TestFunctions.Square, [1, 2, 3], cancellationToken: stoppingToken));
            }
            catch (Exception e)
            {
                Results.TrySetException(e);
            }
        }
    }

    [Fact]
    public async Task A_hosted_service_must_get_the_pool_by_constructor_injection()
    {
        // Hosted services are made before the host starts its actors: the pool they ask for is made then (it stopped
        // the host: "No hosted pool in the ActorSystem", exit 134).
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        // Remoting on, and nothing said of where: loopback and a free port, not Akka's 0.0.0.0:2552.
        builder.Services.AddAkka("app", akka => akka.AddHocon("akka.actor.provider = remote", HoconAddMode.Prepend).WithActorPool(o => o.Processes = 1));
        builder.Services.AddActorPool();
        builder.Services.AddSingleton<Squarer>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Squarer>());
        using var host = builder.Build();
        await host.StartAsync().WaitAsync(TimeSpan.FromSeconds(60));
        var pool = host.Services.GetRequiredService<Pool>();
        try
        {
            Assert.Equal([1, 4, 9], await host.Services.GetRequiredService<Squarer>().Results.Task.WaitAsync(TimeSpan.FromSeconds(60)));
            var registry = host.Services.GetRequiredService<ActorRegistry>();
            Assert.True(registry.TryGet<ActorPoolKey>(out var coordinator));
            Assert.Equal(pool.CoordinatorRef, coordinator); // the host registered the same pool
            Assert.Contains("@127.0.0.1:", pool.CoordinatorPath);
            Assert.DoesNotContain(":2552/", pool.CoordinatorPath);
            await host.StopAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(PoolState.Terminated, pool.State);
        }
        finally
        {
            pool.Terminate();
        }
    }

    [Fact]
    public async Task WithActorPool_without_options_must_take_the_systems_actorpool_hocon()
    {
        using var host = BuildHost(akka => akka.AddHocon("actorpool.processes = 1", HoconAddMode.Prepend).WithActorPool());
        await host.StartAsync().WaitAsync(TimeSpan.FromSeconds(60));
        var pool = host.Services.GetRequiredService<Pool>();
        try
        {
            Assert.Equal(1, pool.Processes);
            Assert.Equal(42, await pool.ApplyAsync(() => 6 * 7).WaitAsync(TimeSpan.FromSeconds(60)));
        }
        finally
        {
            pool.Terminate();
            await host.StopAsync().WaitAsync(TimeSpan.FromSeconds(60));
        }
    }

    [Fact]
    public async Task Resolving_the_pool_without_WithActorPool_must_say_what_is_missing()
    {
        using var host = BuildHost(_ => { });
        await host.StartAsync().WaitAsync(TimeSpan.FromSeconds(60));
        try
        {
            var e = Assert.Throws<InvalidOperationException>(() => host.Services.GetRequiredService<Pool>());
            Assert.Contains("WithActorPool", e.Message);
        }
        finally
        {
            await host.StopAsync().WaitAsync(TimeSpan.FromSeconds(60));
        }
    }

    [Fact]
    public void Options_must_emit_only_what_was_set()
    {
        Assert.Equal("", new ActorPoolOptions().ToHocon());
        Assert.Equal("actorpool.processes = 3" + Environment.NewLine, new ActorPoolOptions { Processes = 3 }.ToHocon());
        var all = new ActorPoolOptions { StartMethod = "forkserver", MaxTasksPerChild = 5, MaxTaskRetries = 0 }.ToHocon();
        Assert.Equal(["actorpool.start-method = \"forkserver\"", "actorpool.max-tasks-per-child = 5", "actorpool.max-task-retries = 0"],
            all.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries));
    }
}
