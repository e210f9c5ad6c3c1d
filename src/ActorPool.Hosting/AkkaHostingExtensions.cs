using Akka.Actor;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ActorPool.Hosting;

/// <summary>The key under which the hosted pool's coordinator is in Akka.Hosting's <see cref="ActorRegistry"/>.</summary>
public sealed class ActorPoolKey;

/// <summary>
/// ActorPool in an Akka.Hosting application:
/// <code>
/// services.AddAkka("app", akka => akka.WithActorPool(o => o.Processes = 4));
/// services.AddActorPool();   // then inject Pool
/// </code>
/// </summary>
public static class AkkaHostingExtensions
{
    /// <summary>Runs a pool with the ActorSystem's own <c>actorpool.*</c> settings (and reference.conf's).</summary>
    public static AkkaConfigurationBuilder WithActorPool(this AkkaConfigurationBuilder builder) =>
        builder.WithActorPool(new ActorPoolOptions());

    /// <summary>Runs a pool configured by <paramref name="configure"/>.</summary>
    public static AkkaConfigurationBuilder WithActorPool(this AkkaConfigurationBuilder builder, Action<ActorPoolOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        var options = new ActorPoolOptions();
        configure(options);
        return builder.WithActorPool(options);
    }

    /// <summary>
    /// Runs a pool in the host's ActorSystem once it starts (its coordinator there, its workers spawned): the
    /// properties of <paramref name="options"/> that are set become <c>actorpool.*</c> HOCON of the system, the pool
    /// logs through the host's <see cref="ILoggerFactory"/>, its coordinator is registered under
    /// <see cref="ActorPoolKey"/>, and stopping the host drains it (running calls finish, within
    /// <see cref="ActorPoolOptions.DrainTimeout"/>). Resolve it with <see cref="AddActorPool"/>, or from the system:
    /// <c>system.ActorPool().Hosted</c>. The system needs remoting for process workers (<c>akka.actor.provider = remote</c>
    /// or <c>cluster</c>).
    /// </summary>
    public static AkkaConfigurationBuilder WithActorPool(this AkkaConfigurationBuilder builder, ActorPoolOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        builder.AddSetup(new HostedPoolSetup(options)); // for a pool resolved before the host starts its actors
        var hocon = options.ToHocon();
        if (hocon.Length > 0)
            builder.AddHocon(hocon, HoconAddMode.Prepend);
        // Where remoting listens unless the application says: loopback and a free port (Akka's own default is every
        // interface and 2552, which a second copy of the application cannot have).
        builder.AddHocon("akka.remote.dot-netty.tcp { hostname = \"127.0.0.1\", port = 0 }", HoconAddMode.Append);
        return builder.StartActors((system, registry, resolver) =>
        {
            var pool = Hosted(system, options, resolver.GetService<ILoggerFactory>());
            registry.Register<ActorPoolKey>(pool.CoordinatorRef);
            CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseServiceStop, "actorpool-drain", async () =>
            {
                var drained = pool.DisposeAsync().AsTask();
                if (await Task.WhenAny(drained, Task.Delay(options.DrainTimeout)).ConfigureAwait(false) != drained)
                    pool.Terminate();
                return Akka.Done.Instance;
            });
        });
    }

    /// <summary>The options <c>WithActorPool</c> was given, carried in the ActorSystem's setup: a pool resolved early is made with them.</summary>
    private sealed class HostedPoolSetup(ActorPoolOptions options) : Akka.Actor.Setup.Setup
    {
        public ActorPoolOptions Options { get; } = options;
    }

    private static Pool Hosted(ActorSystem system, ActorPoolOptions options, ILoggerFactory? logging) =>
        system.ActorPool().GetOrCreateHostedPool(() => new PoolOptions
        {
            Initializer = options.Initializer,
            InitArgs = options.InitArgs,
            ForwardWorkerOutput = options.ForwardWorkerOutput,
            LoggerFactory = logging,
        });

    /// <summary>
    /// Registers <see cref="Pool"/> for dependency injection: the pool <c>WithActorPool(...)</c> runs in the
    /// ActorSystem of <c>AddAkka</c> (which starts the system if it has not). Resolving it without
    /// <c>WithActorPool</c> on that builder throws <see cref="InvalidOperationException"/> saying so.
    /// </summary>
    public static IServiceCollection AddActorPool(this IServiceCollection services)
    {
        services.AddSingleton(sp =>
        {
            var system = sp.GetRequiredService<ActorSystem>();
            if (system.ActorPool().Hosted is { } hosted)
                return hosted;
            // Resolved before the host started its actors (a hosted service's constructor): made now, with the options
            // WithActorPool was given; the host's start then registers this same pool.
            var setup = system.Settings.Setup.Get<HostedPoolSetup>();
            if (!setup.HasValue)
                throw new InvalidOperationException(
                    "No hosted pool in the ActorSystem: call WithActorPool(...) on the AddAkka builder of the ActorSystem the services use.");
            return Hosted(system, setup.Value.Options, sp.GetService<ILoggerFactory>());
        });
        return services;
    }
}
