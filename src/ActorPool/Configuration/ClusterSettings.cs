using Akka.Configuration;

namespace ActorPool.Configuration;

/// <summary>
/// A cluster pool's settings (<c>actorpool.cluster</c>), and the Akka.Cluster settings every member of an ActorPool
/// cluster shares: the coordinator's and the worker nodes'.
/// </summary>
internal sealed record ClusterSettings(string SystemName, string CoordinatorRole, string WorkerRole, string Secret, int MinWorkers, int LocalWorkers)
{
    /// <summary>The environment variable that carries the cluster's shared secret (it wins over <c>actorpool.cluster.secret</c>).</summary>
    public const string SecretVariable = "ACTORPOOL_SECRET";

    /// <summary>Reads <c>actorpool.cluster</c> from the <c>actorpool</c> section; null when <c>enabled = off</c>.</summary>
    public static ClusterSettings? Create(Config actorpool)
    {
        if (!PoolSettings.Read(() => actorpool.GetBoolean("cluster.enabled"), "actorpool.cluster.enabled"))
            return null;
        var (name, coordinatorRole, workerRole, secret) = ReadShared(actorpool);
        var min = PoolSettings.Read(() => actorpool.GetInt("cluster.min-workers"), "actorpool.cluster.min-workers");
        PoolSettings.Require(min >= 0, "actorpool.cluster.min-workers", min, "must be 0 or positive");
        var local = PoolSettings.Read(() => actorpool.GetInt("cluster.local-workers"), "actorpool.cluster.local-workers");
        PoolSettings.Require(local >= 0, "actorpool.cluster.local-workers", local, "must be 0 or positive");
        return new ClusterSettings(name, coordinatorRole, workerRole, secret, min, local);
    }

    /// <summary>What the coordinator and the nodes both read: names, roles and the secret (required).</summary>
    public static (string SystemName, string CoordinatorRole, string WorkerRole, string Secret) ReadShared(Config actorpool)
    {
        string Name(string key)
        {
            var value = PoolSettings.Read(() => actorpool.GetString(key) ?? "", "actorpool." + key);
            PoolSettings.Require(value.Length > 0 && value.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_'), "actorpool." + key, $"\"{value}\"",
                "must be a non-empty name of ASCII letters, digits, '-' and '_'");
            return value;
        }
        var secret = Environment.GetEnvironmentVariable(SecretVariable) is { Length: > 0 } fromEnvironment
            ? fromEnvironment
            : PoolSettings.Read(() => actorpool.GetString("cluster.secret") ?? "", "actorpool.cluster.secret");
        if (secret.Length == 0)
            throw new ArgumentException(
                $"A cluster pool and its nodes need a shared secret: set the environment variable {SecretVariable}, or actorpool.cluster.secret in the configuration " +
                "(the same on the coordinator and every node).", "actorpool.cluster.secret");
        return (Name("cluster.system-name"), Name("cluster.coordinator-role"), Name("cluster.worker-role"), secret);
    }

    /// <summary>
    /// The Akka settings of a member of an ActorPool cluster with <paramref name="role"/>; a user's own akka.* keys win
    /// over these. The split-brain resolver keeps the side with the coordinator (keep-oldest by the coordinator
    /// role): a worker node cut off from it downs itself, the coordinator never does. Members are downed only by it,
    /// after an unreachability has lasted stable-after: an unreachable node is not written off, a downed one is.
    /// </summary>
    public static Config MemberConfig(string role, string coordinatorRole) => ConfigurationFactory.ParseString($$"""
        akka.actor.provider = cluster
        # A node started before its coordinator tries again a second later, not five.
        akka.remote.retry-gate-closed-for = 1s
        akka.cluster {
          roles = ["{{role}}"]
          log-info = off
          # Small clusters: members are up, and nodes join a coordinator that starts after them, within a second or two.
          periodic-tasks-initial-delay = 200ms
          gossip-interval = 300ms
          leader-actions-interval = 300ms
          seed-node-timeout = 2s
          retry-unsuccessful-join-after = 1s
          downing-provider-class = "Akka.Cluster.SBR.SplitBrainResolverProvider, Akka.Cluster"
          split-brain-resolver {
            active-strategy = keep-oldest
            stable-after = 7s
            keep-oldest {
              down-if-alone = off
              role = "{{coordinatorRole}}"
            }
          }
          run-coordinated-shutdown-when-down = on
        }
        """);
}
