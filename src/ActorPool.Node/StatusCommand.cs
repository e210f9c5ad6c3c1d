using System.Globalization;
using ActorPool.Configuration;
using ActorPool.Hosting;
using ActorPool.Logging;
using ActorPool.Protocol;
using ActorPool.Shared;
using Akka.Actor;
using Akka.Configuration;

namespace ActorPool.Node;

/// <summary>The status command's command line, as parsed.</summary>
internal sealed record StatusOptions(FileInfo? Config, string? Coordinator, bool Watch, TimeSpan Interval, TimeSpan Timeout);

/// <summary>
/// <c>actorpool-node status</c>: asks a running cluster pool's coordinator what it is doing (<see cref="PoolStatus"/>) and
/// prints it as a table; with <c>--watch</c>, follows its calls: a progress bar per call in a terminal, plain lines when
/// output is redirected, until Ctrl-C or the coordinator is gone.
/// </summary>
internal static class StatusCommand
{
    /// <summary>Exit codes: 0 shown; 1 no answer (or the coordinator went away while watched); 2 bad options or configuration; 4 refused. Ctrl-C: 130.</summary>
    public const int ExitOk = 0, ExitNoAnswer = 1, ExitUsage = CommandLineErrors.ExitUsage, ExitRefused = 4;

    public static async Task<int> RunAsync(StatusOptions options, CancellationToken cancellationToken)
    {
        Config config;
        string secret, address;
        (Config Config, Akka.Actor.Setup.Setup Setup)? tls;
        try
        {
            (config, secret, address, tls) = Configure(options);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"actorpool-node status: {e.Message}");
            Console.Error.WriteLine("Run with --help for usage.");
            return ExitUsage;
        }

        ActorSystem system;
        try
        {
            var logging = Microsoft.Extensions.Logging.LoggerFactory.Create(_ => { });
            system = tls is { } on
                ? PoolActorSystem.Create("actorpool-status", on.Config.WithFallback(config), logging, on.Setup)
                : PoolActorSystem.Create("actorpool-status", config, logging);
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"actorpool-node status: cannot start a client ActorSystem: {e.GetBaseException().Message}");
            return ExitNoAnswer;
        }
        try
        {
            var refused = ClusterMember.WhenTlsRefused(system);
            var coordinator = system.ActorSelection($"{address}/user/{Coordination.Coordinator.Name}");
            var first = await AskAsync(coordinator, secret, options.Timeout, address, refused, cancellationToken);
            if (first.Exit is { } failed)
                return failed;
            if (!options.Watch)
            {
                Console.Out.Write(first.Status!.ToString());
                return ExitOk;
            }
            return await WatchAsync(coordinator, secret, options, address, first.Status!, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return 130; // Ctrl-C ends a watch, with the shell's code for it
        }
        finally
        {
            // A client has nothing to flush: after Ctrl-C it waits a moment for its ActorSystem, not the usual 5 s.
            var bound = cancellationToken.IsCancellationRequested ? TimeSpan.FromSeconds(1) : TimeSpan.FromSeconds(5);
            await system.Terminate().WaitAsync(bound).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    private static async Task<(PoolStatus? Status, int? Exit)> AskAsync(ActorSelection coordinator, string secret, TimeSpan timeout, string address,
        Task? tlsRefused, CancellationToken cancellationToken)
    {
        StatusReply reply;
        try
        {
            // Challenge-response: the coordinator proves the secret first, then this client does; the secret is never sent.
            var nonce = Proof.NewNonce();
            var ask = coordinator.Ask<object>(new StatusRequest(nonce), timeout, cancellationToken);
            // A client the coordinator does not let in learns it from the TLS handshake, at once: no need to wait out the timeout.
            if (tlsRefused is not null && await Task.WhenAny(ask, tlsRefused) == tlsRefused && !ask.IsCompleted)
                throw new AskTimeoutException("refused");
            var first = await ask;
            if (first is not StatusChallenge challenge)
                throw new InvalidOperationException($"the answer was a {first.GetType().Name}, not a challenge (another ActorPool version?)");
            if (!Proof.Matches(Proof.Of(secret, "coordinator", "status", nonce, challenge.ChallengeNonce), challenge.Proof))
            {
                Console.Error.WriteLine($"actorpool-node status: the coordinator at {address} does not hold the cluster's secret: this client's secret " +
                                        $"({ClusterSettings.SecretVariable} or actorpool.cluster.secret in --config) is not the cluster's, or that is another cluster's coordinator.");
                return (null, ExitRefused);
            }
            reply = await coordinator.Ask<StatusReply>(new StatusRequest(nonce, challenge.ChallengeNonce,
                Proof.Of(secret, "client", "status", challenge.ChallengeNonce, nonce)), timeout, cancellationToken);
        }
        catch (AskTimeoutException) when (tlsRefused is { IsCompleted: true })
        {
            Console.Error.WriteLine($"actorpool-node status: the coordinator at {address} refused this client's TLS handshake: its secret " +
                                    $"({ClusterSettings.SecretVariable} or actorpool.cluster.secret in --config) or its actorpool.cluster.tls certificate is not the cluster's.");
            return (null, ExitRefused);
        }
        catch (AskTimeoutException)
        {
            Console.Error.WriteLine($"actorpool-node status: no coordinator answered at {address} within {timeout.TotalSeconds:0.#} s. " +
                                    "Is the pool running with actorpool.cluster on, and is the address its member address (akka.tcp://actorpool@HOST:PORT)?");
            return (null, ExitNoAnswer);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // An answer of another kind (another ActorPool version at that address, say), or remoting failing.
            Console.Error.WriteLine($"actorpool-node status: no status from {address}: {e.GetBaseException().Message}");
            return (null, ExitNoAnswer);
        }
        if (reply.Status is null)
        {
            Console.Error.WriteLine($"actorpool-node status: the coordinator at {address} refused: {reply.Refused}. " +
                                    "Give the cluster's secret (ACTORPOOL_SECRET, or actorpool.cluster.secret in --config).");
            return (null, ExitRefused);
        }
        return (reply.Status, null);
    }

    private static async Task<int> WatchAsync(ActorSelection coordinator, string secret, StatusOptions options, string address, PoolStatus status,
        CancellationToken cancellationToken)
    {
        await using var display = ConsoleProgress.Start();
        var shown = new HashSet<long>();
        while (true)
        {
            var workers = $"{status.Workers.Count(w => w.State == WorkerState.Busy)} busy, {status.Workers.Count(w => w.State == WorkerState.Idle)} idle" +
                          (status.Workers.Count(w => w.State == WorkerState.Starting) is > 0 and var starting ? $", {starting} starting" : "");
            display.Update("workers", "workers", status.Workers.Count(w => w.State == WorkerState.Busy), Math.Max(1, status.Workers.Count), workers, done: false);
            var running = status.Calls.Select(c => c.CallId).ToHashSet();
            foreach (var call in status.Calls)
            {
                shown.Add(call.CallId);
                var progress = new PoolProgress(call.Completed, call.Total, call.Failed, call.Retried, call.Elapsed);
                var slowest = status.Workers.Where(w => w.Task?.CallId == call.CallId).MaxBy(w => w.Task!.RunningFor);
                // A bar has room for the counts only (its own columns show the fraction and the time); a line says more.
                var detail = display.Live ? ConsoleProgress.Describe(progress, withTime: false)
                    : ConsoleProgress.Describe(progress) +
                      (slowest is null ? "" : $"; longest running: {slowest.Task} on {slowest.Id} (pid {slowest.Pid}) for {slowest.Task!.RunningFor.TotalSeconds:0.0} s");
                display.Update(Key(call.CallId), $"call {call.CallId}", call.Completed, call.Total, detail, done: false);
            }
            foreach (var ended in shown.Where(id => !running.Contains(id)).ToList())
            {
                display.Update(Key(ended), $"call {ended}", 1, 1, "ended", done: true);
                shown.Remove(ended);
            }
            await Task.Delay(options.Interval, cancellationToken);
            var next = await AskAsync(coordinator, secret, options.Timeout, address, null, cancellationToken);
            if (next.Exit is { } failed)
                return failed;
            status = next.Status!;
        }

        static string Key(long callId) => "call " + callId.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// The client's configuration, the secret, the coordinator's address, and the members' TLS when they use it;
    /// <see cref="ArgumentException"/> names what is wrong.
    /// </summary>
    internal static (Config Config, string Secret, string Address, (Config Config, Akka.Actor.Setup.Setup Setup)? Tls) Configure(StatusOptions options)
    {
        if (options.Interval < TimeSpan.FromMilliseconds(100) || options.Interval > TimeSpan.FromHours(1))
            throw new ArgumentException($"--interval {options.Interval.TotalSeconds.ToString(CultureInfo.InvariantCulture)} must be between 0.1 and 3600 seconds.");
        if (options.Timeout < TimeSpan.FromMilliseconds(100) || options.Timeout > TimeSpan.FromMinutes(10))
            throw new ArgumentException($"--timeout {options.Timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} must be between 0.1 and 600 seconds.");
        var file = NodeProgram.ReadConfigFile(options.Config);
        var merged = file.WithFallback(PoolSettings.Reference);
        var (systemName, _, _, secret) = ClusterSettings.ReadShared(merged.GetConfig("actorpool"));

        var given = options.Coordinator;
        if (given is null)
        {
            var seeds = PoolSettings.Read(() => merged.GetStringList("akka.cluster.seed-nodes")?.ToList() ?? [], "akka.cluster.seed-nodes");
            given = seeds.FirstOrDefault() ?? throw new ArgumentException(
                "No coordinator: give --coordinator akka.tcp://actorpool@HOST:PORT (the pool's member address), or akka.cluster.seed-nodes in the --config file.");
        }
        var parsed = NodeProgram.ParseMemberAddress(given, options.Coordinator is null ? "akka.cluster.seed-nodes" : "--coordinator", systemName);
        // A client of the cluster, not a member: plain remoting (with the members' TLS when they use it) on a free port.
        var client = ConfigurationFactory.ParseString(
            "akka.actor.provider = remote\nakka.remote.dot-netty.tcp.port = 0\n" +
            (file.HasPath("akka.remote.dot-netty.tcp.hostname") ? "" : "akka.remote.dot-netty.tcp.hostname = \"127.0.0.1\"\n"));
        var config = client.WithFallback(file).WithFallback(PoolSettings.Reference);
        var tls = ClusterTls.Configure(config.GetConfig("actorpool"));
        var address = new Address(tls is null ? "akka.tcp" : "akka.ssl.tcp", parsed.System, parsed.Host, parsed.Port).ToString();
        return (config, secret, address, tls);
    }
}
