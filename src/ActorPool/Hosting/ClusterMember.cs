using ActorPool.Configuration;
using Akka.Actor;
using Akka.Configuration;

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
        return rolesConfig.WithFallback(user).WithFallback(ClusterSettings.MemberConfig(role, coordinatorRole)).WithFallback(PoolSettings.Reference);
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

    /// <summary>Joins the configured seed nodes (Akka does that by itself), or, with none, forms a cluster of one.</summary>
    public static void JoinSeeds(ActorSystem system)
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        if (cluster.Settings.SeedNodes.Count == 0)
            cluster.Join(cluster.SelfAddress);
    }
}
