using System.Globalization;
using System.Text;

namespace ActorPool.Hosting;

/// <summary>
/// The options of the pool <see cref="AkkaHostingExtensions.WithActorPool(Akka.Hosting.AkkaConfigurationBuilder, ActorPoolOptions)"/>
/// starts, in the manner of Akka.Hosting's options: a property left <c>null</c> emits nothing, so the ActorSystem's
/// HOCON (<c>actorpool.*</c>) and then ActorPool's reference.conf decide it.
/// </summary>
public sealed class ActorPoolOptions
{
    /// <summary>Worker processes (<c>actorpool.processes</c>).</summary>
    public int? Processes { get; set; }

    /// <summary>spawn, forkserver or thread (<c>actorpool.start-method</c>).</summary>
    public string? StartMethod { get; set; }

    /// <summary>Tasks a worker runs before it is replaced; 0 = never (<c>actorpool.max-tasks-per-child</c>).</summary>
    public int? MaxTasksPerChild { get; set; }

    /// <summary>Extra attempts of a task whose worker died (<c>actorpool.max-task-retries</c>).</summary>
    public int? MaxTaskRetries { get; set; }

    /// <summary>Run once in every worker before its first task (see <see cref="PoolOptions.Initializer"/>); not HOCON.</summary>
    public Delegate? Initializer { get; set; }

    /// <summary>Arguments of <see cref="Initializer"/>.</summary>
    public object?[]? InitArgs { get; set; }

    /// <summary>Copy workers' console output to this process's (see <see cref="PoolOptions.ForwardWorkerOutput"/>); not HOCON.</summary>
    public bool? ForwardWorkerOutput { get; set; }

    /// <summary>How long stopping the host waits for running calls to finish before the pool is terminated. Default 30 s.</summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The HOCON of the properties that are set, and only those (empty when none is).</summary>
    public string ToHocon()
    {
        var hocon = new StringBuilder();
        void Emit(string key, object? value)
        {
            if (value is not null)
                hocon.Append("actorpool.").Append(key).Append(" = ").AppendLine(Convert.ToString(value, CultureInfo.InvariantCulture));
        }
        Emit("processes", Processes);
        Emit("start-method", StartMethod is null ? null : $"\"{StartMethod.Replace("\\", "\\\\").Replace("\"", "\\\"")}\"");
        Emit("max-tasks-per-child", MaxTasksPerChild);
        Emit("max-task-retries", MaxTaskRetries);
        return hocon.ToString();
    }
}
