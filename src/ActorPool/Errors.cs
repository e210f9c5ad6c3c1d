namespace ActorPool;

/// <summary>Base type of the errors ActorPool raises itself.</summary>
public class ActorPoolException : Exception
{
    /// <summary>Creates the exception with its message and optional cause.</summary>
    public ActorPoolException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>
/// A function, a captured value or an argument cannot be sent to a worker process. Raised by the call itself,
/// before anything is dispatched; the pool stays usable.
/// </summary>
public sealed class NotSendableException : ActorPoolException
{
    /// <summary>Creates the exception; the message names the culprit and what to do instead.</summary>
    public NotSendableException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>
/// A task raised an exception in a worker process. Carries the remote exception's type, message and stack
/// trace (Python attaches the remote traceback the same way); results of other tasks are unaffected.
/// </summary>
public sealed class TaskFailedException : ActorPoolException
{
    /// <summary>Creates the exception for the task at <paramref name="taskIndex"/>.</summary>
    public TaskFailedException(long taskIndex, string remoteType, string remoteMessage, string remoteStackTrace, string worker)
        : base($"Task {taskIndex} raised {remoteType} in worker {worker}: {remoteMessage}")
    {
        TaskIndex = taskIndex;
        RemoteType = remoteType;
        RemoteMessage = remoteMessage;
        RemoteStackTrace = remoteStackTrace;
        Worker = worker;
    }

    /// <summary>Position of the failed task's input in the call (0-based).</summary>
    public long TaskIndex { get; }

    /// <summary>Full name of the exception type raised in the worker.</summary>
    public string RemoteType { get; }

    /// <summary>Message of the exception raised in the worker.</summary>
    public string RemoteMessage { get; }

    /// <summary>The remote exception as the worker printed it, with its stack trace.</summary>
    public string RemoteStackTrace { get; }

    /// <summary>The worker that ran the task: its id and process id.</summary>
    public string Worker { get; }

    /// <inheritdoc />
    public override string ToString() => $"{base.ToString()}{Environment.NewLine}--- remote exception ---{Environment.NewLine}{RemoteStackTrace}";
}

/// <summary>
/// A task was running on a worker whose process died (crash, kill, out of memory) more times than the pool's
/// retry limit allows. Python's Pool hangs in this case; ActorPool fails the call and keeps the pool running.
/// </summary>
public sealed class WorkerLostException : ActorPoolException
{
    /// <summary>Creates the exception for the task at <paramref name="taskIndex"/>.</summary>
    public WorkerLostException(long taskIndex, string worker, int? exitCode, int attempts)
        : base($"Task {taskIndex} was lost: worker {worker} {ExitText(exitCode)} while running it, " +
               $"after {attempts} attempt{(attempts == 1 ? "" : "s")} (actorpool.max-task-retries = {attempts - 1}).")
    {
        TaskIndex = taskIndex;
        Worker = worker;
        ExitCode = exitCode;
        Attempts = attempts;
    }

    /// <summary>Position of the lost task's input in the call (0-based).</summary>
    public long TaskIndex { get; }

    /// <summary>The worker that was lost last: its id and process id.</summary>
    public string Worker { get; }

    /// <summary>The exit code of that worker's process, when known.</summary>
    public int? ExitCode { get; }

    /// <summary>How many times the task was started.</summary>
    public int Attempts { get; }

    internal static string ExitText(int? exitCode) => exitCode switch
    {
        null => "was disconnected",
        6 => "was stopped after a task ran past its hard time limit",
        > 128 and < 160 => $"exited with code {exitCode} (signal {exitCode - 128}{(exitCode == 137 ? ", SIGKILL" : exitCode == 139 ? ", SIGSEGV" : "")})",
        _ => $"exited with code {exitCode}",
    };
}

/// <summary>
/// The pool cannot run tasks: its workers fail to start, or the initializer raises. Every waiting call fails
/// with this error instead of hanging; the message carries the cause.
/// </summary>
public sealed class PoolBrokenException : ActorPoolException
{
    /// <summary>Creates the exception.</summary>
    public PoolBrokenException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>A put found a bounded queue full: at once (no wait) or when its timeout passed (Python's <c>queue.Full</c>). Nothing was put.</summary>
public sealed class QueueFullException : ActorPoolException
{
    /// <summary>Creates the exception.</summary>
    public QueueFullException(string message) : base(message) { }
}

/// <summary>A get found no item: at once (no wait) or when its timeout passed (Python's <c>queue.Empty</c>).</summary>
public sealed class QueueEmptyException : ActorPoolException
{
    /// <summary>Creates the exception.</summary>
    public QueueEmptyException(string message) : base(message) { }
}

/// <summary>
/// The queue was completed (<see cref="ActorQueue{T}.Complete"/>): a put is refused, and a get finds every item
/// taken. <see cref="ActorQueue{T}.ReadAllAsync"/> simply ends.
/// </summary>
public sealed class QueueCompletedException : ActorPoolException
{
    /// <summary>Creates the exception.</summary>
    public QueueCompletedException(string message) : base(message) { }
}

/// <summary>
/// A task ran past its time limit (<see cref="TaskTimeouts"/>). Soft limit: the task's <see cref="CancellationToken"/>
/// was cancelled and the task stopped. Hard limit: the task did not stop, so its worker was stopped (a worker process
/// is killed and replaced). Other tasks of the call are unaffected; <c>map</c> raises this for the first such input.
/// </summary>
public sealed class TaskTimeoutException : ActorPoolException
{
    /// <summary>Creates the exception for the task at <paramref name="taskIndex"/>.</summary>
    public TaskTimeoutException(long taskIndex, string message, string worker, TimeSpan limit, bool hard) : base(message)
    {
        TaskIndex = taskIndex;
        Worker = worker;
        Limit = limit;
        Hard = hard;
    }

    /// <summary>Position of the task's input in the call (0-based).</summary>
    public long TaskIndex { get; }

    /// <summary>The worker that ran the task: its id and process id.</summary>
    public string Worker { get; }

    /// <summary>The limit the task ran past.</summary>
    public TimeSpan Limit { get; }

    /// <summary>True for the hard limit (the worker was stopped), false for the soft one (the task stopped itself).</summary>
    public bool Hard { get; }
}
