using ActorPool.Configuration;
using Akka.Actor;
using Akka.Configuration;
using Akka.Event;

namespace ActorPool.Hosting;

/// <summary>Starting an ActorSystem as a member of an ActorPool cluster: the cluster pool's and a worker node's.</summary>
internal static class ClusterMember
{
    /// <summary>
    /// The member's configuration: <paramref name="user"/>'s keys win, then the cluster defaults
    /// (<see cref="ClusterSettings.MemberConfig"/>), then reference.conf; <paramref name="role"/> is added to whatever
    /// roles the user gave.
    /// </summary>
    public static Config Configure(Config user, string role, string coordinatorRole)
    {
        var roles = (user.HasPath("akka.cluster.roles") ? user.GetStringList("akka.cluster.roles") ?? [] : []).Append(role).Distinct();
        var rolesConfig = ConfigurationFactory.ParseString($"akka.cluster.roles = [{string.Join(", ", roles.Select(r => $"\"{r}\""))}]");
        return CheckDiscovery(rolesConfig.WithFallback(user).WithFallback(ClusterSettings.MemberConfig(role, coordinatorRole)).WithFallback(PoolSettings.Reference));
    }

    /// <summary>
    /// Starts a member's ActorSystem, with TLS unless <c>actorpool.cluster.tls.enabled = off</c> (see
    /// <see cref="ClusterTls"/>). <see cref="ArgumentException"/> when the certificate cannot be used, or when TLS is off
    /// on an address beyond loopback without the explicit opt-out.
    /// </summary>
    public static ActorSystem Start(string name, Config config, Microsoft.Extensions.Logging.ILoggerFactory logging)
    {
        var actorpool = config.GetConfig("actorpool");
        // Akka's own TLS, configured by the user (certificates from their CA, say), is theirs: ActorPool adds none.
        var ownTls = config.HasPath("akka.remote.dot-netty.tcp.enable-ssl") && config.GetBoolean("akka.remote.dot-netty.tcp.enable-ssl");
        if (!ownTls)
            ClusterTls.CheckPlainText(actorpool, HostnamesOf(config));
        var tls = ownTls ? null : ClusterTls.Configure(actorpool);
        // Seed addresses may be written akka.tcp:// either way: TLS members speak akka.ssl.tcp.
        var protocol = tls is null && !ownTls ? "akka.tcp" : "akka.ssl.tcp";
        var seeds = config.GetStringList("akka.cluster.seed-nodes") ?? [];
        var rewritten = seeds.Select(s => Address.Parse(s) is var a ? new Address(protocol, a.System, a.Host, a.Port).ToString() : s);
        config = ConfigurationFactory.ParseString($"akka.cluster.seed-nodes = [{string.Join(", ", rewritten.Select(s => $"\"{s}\""))}]").WithFallback(config);
        if (tls is { } on)
            return Logging.PoolActorSystem.Create(name, on.Config.WithFallback(config), logging, on.Setup);
        return Logging.PoolActorSystem.Create(name, config, logging);
    }

    /// <summary>The names this member listens on and is reached by (Akka's bind and public host names).</summary>
    public static IEnumerable<string> HostnamesOf(Config config)
    {
        var tcp = config.GetConfig("akka.remote.dot-netty.tcp");
        if (tcp is null)
            yield break;
        yield return tcp.GetString("hostname") ?? "";
        if (tcp.GetString("public-hostname") is { Length: > 0 } reached)
            yield return reached;
    }

    /// <summary>
    /// Completes when this system, connecting to a peer (a seed node, a coordinator), fails the TLS handshake: the peer
    /// did not accept this member's key, or this member did not accept the peer's. For a member that has not joined
    /// yet, that means its secret (or certificate) is not the cluster's: waiting longer will not help.
    /// </summary>
    public static Task WhenTlsRefused(ActorSystem system)
    {
        var refused = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var watcher = system.ActorOf(Props.Create(() => new TlsRefusalWatcher(refused)), "actorpool-tls-watch");
        system.EventStream.Subscribe(watcher, typeof(Akka.Event.Error));
        return refused.Task;
    }

    private sealed class TlsRefusalWatcher : ReceiveActor
    {
        public TlsRefusalWatcher(TaskCompletionSource refused) =>
            Receive<Akka.Event.Error>(e =>
            {
                var text = e.ToString();
                if (text.Contains("TLS handshake failed", StringComparison.Ordinal) && text.Contains("(Client side)", StringComparison.Ordinal))
                    refused.TrySetResult();
            });
    }

    /// <summary>The Akka.Discovery method that finds the members (<c>actorpool.cluster.discovery.method</c>); null when off.</summary>
    public static string? DiscoveryMethod(Config config) =>
        PoolSettings.Read(() => config.GetString("actorpool.cluster.discovery.method") ?? "", "actorpool.cluster.discovery.method") is { Length: > 0 } method ? method : null;

    /// <summary>
    /// Checks a member's configuration before it starts: with discovery on, the service to look up is named and no seed
    /// nodes are given too. <see cref="ArgumentException"/> names what is wrong.
    /// </summary>
    public static Config CheckDiscovery(Config config)
    {
        if (DiscoveryMethod(config) is null)
            return config;
        var service = PoolSettings.Read(() => config.GetString("actorpool.cluster.discovery.service-name") ?? "", "actorpool.cluster.discovery.service-name");
        PoolSettings.Require(service.Length > 0, "actorpool.cluster.discovery.service-name", "\"\"", "must name the service Akka.Discovery looks the members up by");
        var timeout = PoolSettings.Read(() => config.GetTimeSpan("actorpool.cluster.discovery.resolve-timeout"), "actorpool.cluster.discovery.resolve-timeout");
        PoolSettings.Require(timeout >= TimeSpan.FromMilliseconds(100) && timeout <= TimeSpan.FromMinutes(5), "actorpool.cluster.discovery.resolve-timeout", timeout, "must be between 100ms and 5m");
        if ((config.GetStringList("akka.cluster.seed-nodes") ?? []).Count > 0)
            throw new ArgumentException(
                "actorpool.cluster.discovery.method is set, and akka.cluster.seed-nodes is set too: members find each other one way. Remove the seed " +
                "nodes (discovery finds them), or set actorpool.cluster.discovery.method = \"\".");
        return config;
    }

    /// <summary>
    /// Joins the cluster: with <c>actorpool.cluster.discovery.method</c> set, the members Akka.Discovery names become the
    /// seed nodes (looked up again every second until one is found; the same sorted list on every member, so the
    /// first of them forms the cluster and the others join it); else the configured seed nodes (Akka joins them by
    /// itself) or, with none, a cluster of one.
    /// </summary>
    public static void Join(ActorSystem system)
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        if (DiscoveryMethod(system.Settings.Config) is { } method)
        {
            _ = JoinDiscoveredAsync(system, cluster, method);
            return;
        }
        if (cluster.Settings.SeedNodes.Count == 0)
            cluster.Join(cluster.SelfAddress);
    }

    private static async Task JoinDiscoveredAsync(ActorSystem system, Akka.Cluster.Cluster cluster, string method)
    {
        var config = system.Settings.Config;
        var service = config.GetString("actorpool.cluster.discovery.service-name");
        var portName = config.GetString("actorpool.cluster.discovery.port-name") is { Length: > 0 } p ? p : null;
        var timeout = config.GetTimeSpan("actorpool.cluster.discovery.resolve-timeout");
        var log = Akka.Event.Logging.GetLogger(system, "ActorPool.Discovery");
        Akka.Discovery.ServiceDiscovery discovery;
        try
        {
            discovery = Akka.Discovery.Discovery.Get(system).LoadServiceDiscovery(method);
        }
        catch (Exception e)
        {
            log.Error($"actorpool.cluster.discovery.method = {method}: Akka.Discovery has no such method ({e.GetBaseException().Message}). " +
                      "Use config (akka.discovery.config.services), or kubernetes-api with the Akka.Discovery.KubernetesApi package. This member joins nothing.");
            return;
        }
        var self = cluster.SelfAddress;
        for (var attempt = 0; !system.WhenTerminated.IsCompleted; attempt++)
        {
            try
            {
                var resolved = await discovery.Lookup(new Akka.Discovery.Lookup(service, portName, "tcp"), timeout).ConfigureAwait(false);
                // A target without a port listens where this member does (Kubernetes pods of one deployment, say).
                var seeds = resolved.Addresses.Take(64)
                    .Select(t => new Address(self.Protocol, self.System, t.Address?.ToString() ?? t.Host, t.Port ?? self.Port))
                    .Distinct().OrderBy(a => a.ToString(), StringComparer.Ordinal).ToList();
                if (seeds.Count > 0)
                {
                    log.Info("Joining the members {0} found ({1}): {2}", method, service, string.Join(", ", seeds));
                    cluster.JoinSeedNodes(seeds);
                    return;
                }
                if (attempt % 10 == 0)
                    log.Info("Akka.Discovery ({0}) found no member of '{1}' yet; looking again every second.", method, service);
            }
            catch (Exception e) when (e is not OperationCanceledException || !system.WhenTerminated.IsCompleted)
            {
                if (attempt % 10 == 0)
                    log.Warning("Akka.Discovery ({0}) could not look up '{1}': {2}. Looking again every second.", method, service, e.GetBaseException().Message);
            }
            await Task.Delay(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
        }
    }
}
