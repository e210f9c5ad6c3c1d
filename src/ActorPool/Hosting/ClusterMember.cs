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

    /// <summary>Joins the configured seed nodes (Akka does that by itself), or, with none, forms a cluster of one.</summary>
    public static void JoinSeeds(ActorSystem system)
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        if (cluster.Settings.SeedNodes.Count == 0)
            cluster.Join(cluster.SelfAddress);
    }
}
