using Microsoft.Extensions.Logging;

namespace ActorPool;

/// <summary>
/// Options of a <see cref="Pool"/>, the keyword arguments of Python's <c>Pool(processes, initializer, initargs,
/// maxtasksperchild)</c>. Every option left <c>null</c> takes its value from HOCON (<c>actorpool.*</c> in
/// <see cref="Config"/>, then the embedded reference.conf); invalid values fail the pool's constructor with a
/// message naming the option.
/// </summary>
public sealed record PoolOptions
{
    /// <summary>Number of worker processes; default <c>actorpool.processes</c> (0 = <see cref="Environment.ProcessorCount"/>). At least 1.</summary>
    public int? Processes { get; init; }

    /// <summary>
    /// Run once in every worker process before its first task, with <see cref="InitArgs"/> as arguments (Python's
    /// <c>initializer</c>). A static method or a lambda; an exception in it breaks the pool (calls fail with
    /// <see cref="PoolBrokenException"/>) instead of restarting workers forever.
    /// </summary>
    public Delegate? Initializer { get; init; }

    /// <summary>Arguments for <see cref="Initializer"/> (Python's <c>initargs</c>); default none.</summary>
    public object?[]? InitArgs { get; init; }

    /// <summary>
    /// A worker retires and is replaced after this many tasks (chunks), as Python's <c>maxtasksperchild</c>;
    /// default <c>actorpool.max-tasks-per-child</c> (0 = never). No task is lost by a retirement.
    /// </summary>
    public int? MaxTasksPerChild { get; init; }

    /// <summary>
    /// How many times a task whose worker process died is run again elsewhere; default
    /// <c>actorpool.max-task-retries</c> (1). 0..100.
    /// </summary>
    public int? MaxTaskRetries { get; init; }

    /// <summary>
    /// Time limits of every task unless a call gives its own; default <c>actorpool.task.soft-timeout</c> and
    /// <c>hard-timeout</c> (none). See <see cref="ActorPool.TaskTimeouts"/>.
    /// </summary>
    public TaskTimeouts? TaskTimeouts { get; init; }

    /// <summary>How workers start; default <c>actorpool.start-method</c> ("spawn").</summary>
    public string? StartMethod { get; init; }

    /// <summary>HOCON that overrides reference.conf for this pool (for example <c>actorpool.dispatch.max-window = 1</c>).</summary>
    public string? Config { get; init; }

    /// <summary>
    /// Where the pool and its ActorSystem log. Default: warnings and errors to the console. Expected events
    /// (a worker retired or replaced) are logged at debug level, real faults once at warning level.
    /// </summary>
    public ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>
    /// Run the pool's coordinator in this ActorSystem (an Akka application's own) instead of one of the pool's; the pool
    /// never terminates it, and its messages' serializers are registered in it. Spawned and forkserver workers need it
    /// to have remoting (<c>akka.actor.provider = remote</c> or <c>cluster</c>). Its Akka settings are its own:
    /// <see cref="Config"/> then only sets <c>actorpool.*</c> keys.
    /// </summary>
    public Akka.Actor.ActorSystem? ActorSystem { get; init; }

    /// <summary>Copy each worker's standard output and error to this process's console, line by line; default true.</summary>
    public bool? ForwardWorkerOutput { get; init; }
}
