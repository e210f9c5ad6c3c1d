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
    /// Starts a member's ActorSystem: with TLS when <c>actorpool.cluster.tls.certificate</c> is set in
    /// <paramref name="config"/>. <see cref="ArgumentException"/> when the certificate cannot be used.
    /// </summary>
    public static ActorSystem Start(string name, Config config, Microsoft.Extensions.Logging.ILoggerFactory logging)
    {
        var tls = ClusterTls.Configure(config.GetConfig("actorpool"));
        // Seed addresses may be written akka.tcp:// either way: TLS members speak akka.ssl.tcp.
        var protocol = tls is null ? "akka.tcp" : "akka.ssl.tcp";
        var seeds = config.GetStringList("akka.cluster.seed-nodes") ?? [];
        var rewritten = seeds.Select(s => Address.Parse(s) is var a ? new Address(protocol, a.System, a.Host, a.Port).ToString() : s);
        config = ConfigurationFactory.ParseString($"akka.cluster.seed-nodes = [{string.Join(", ", rewritten.Select(s => $"\"{s}\""))}]").WithFallback(config);
        if (tls is { } on)
            return Logging.PoolActorSystem.Create(name, on.Config.WithFallback(config), logging, on.Setup);
        return Logging.PoolActorSystem.Create(name, config, logging);
    }

    /// <summary>Joins the configured seed nodes (Akka does that by itself), or, with none, forms a cluster of one.</summary>
    public static void JoinSeeds(ActorSystem system)
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        if (cluster.Settings.SeedNodes.Count == 0)
            cluster.Join(cluster.SelfAddress);
    }
}
