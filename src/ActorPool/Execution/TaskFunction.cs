namespace ActorPool.Execution;

/// <summary>
/// What a worker runs for a call: the user's delegate wrapped with its argument and result types, so the
/// worker can run a typed chunk without reflection. Serialized once per call (Hyperion carries the delegate
/// and, for a closure, its captured values).
/// </summary>
internal abstract class TaskFunction
{
    /// <summary>The user's delegate, for validation and error messages.</summary>
    public abstract Delegate UserDelegate { get; }

    /// <summary>
    /// Runs the items of a chunk in order and stops at the first exception: returns the results of the items
    /// that completed (a <c>TResult[]</c>) and that exception, if any. <paramref name="clock"/> times each task and
    /// gives it its token.
    /// </summary>
    public abstract ChunkOutcome Run(object items, Worker.TaskClock clock);
}

internal readonly record struct ChunkOutcome(Array Results, int Completed, Exception? Error);

/// <summary><c>map</c>, <c>imap</c>, <c>apply</c>: one argument per task.</summary>
internal sealed class MapFunction<T, TResult>(Func<T, TResult> fn) : TaskFunction
{
    private readonly Func<T, TResult> _fn = fn;

    public override Delegate UserDelegate => _fn;

    public override ChunkOutcome Run(object items, Worker.TaskClock clock) =>
        clock.TimesEachTask ? RunEach((T[])items, clock, (x, _) => _fn(x)) : RunPlain((T[])items, _fn);

    /// <summary>
    /// The chunk's tasks with nothing to time or trace (no time limit, no listener): a plain loop, as many tiny tasks
    /// cost less than their bookkeeping would. Stops at the first exception.
    /// </summary>
    internal static ChunkOutcome RunPlain(T[] input, Func<T, TResult> run)
    {
        var results = new TResult[input.Length];
        for (var i = 0; i < input.Length; i++)
        {
            try
            {
                results[i] = run(input[i]);
            }
            catch (Exception e)
            {
                return new ChunkOutcome(results[..i], i, e);
            }
        }
        return new ChunkOutcome(results, input.Length, null);
    }

    /// <summary>Runs <paramref name="run"/> on each input under the clock; stops at the first exception.</summary>
    internal static ChunkOutcome RunEach(T[] input, Worker.TaskClock clock, Func<T, CancellationToken, TResult> run)
    {
        var results = new TResult[input.Length];
        for (var i = 0; i < input.Length; i++)
        {
            var token = clock.BeginTask(i, results);
            try
            {
                results[i] = run(input[i], token);
            }
            catch (Exception e)
            {
                return new ChunkOutcome(results[..i], i, clock.Classify(e));
            }
            finally
            {
                clock.EndTask();
            }
        }
        return new ChunkOutcome(results, input.Length, null);
    }
}

/// <summary>
/// A task that returns nothing (Python's function returning <c>None</c>): each task's result is a placeholder, which
/// travels as one raw byte and is dropped by the caller.
/// </summary>
internal sealed class ActionFunction<T>(Action<T> fn) : TaskFunction
{
    private readonly Action<T> _fn = fn;

    public override Delegate UserDelegate => _fn;

    public override ChunkOutcome Run(object items, Worker.TaskClock clock) =>
        clock.TimesEachTask
            ? MapFunction<T, bool>.RunEach((T[])items, clock, (x, _) => Run(x))
            : MapFunction<T, bool>.RunPlain((T[])items, Run);

    private bool Run(T item)
    {
        _fn(item);
        return false;
    }
}

/// <summary>A task function that takes the task's <see cref="CancellationToken"/> (soft limit, call cancelled).</summary>
internal sealed class CancellableMapFunction<T, TResult>(Func<T, CancellationToken, TResult> fn) : TaskFunction
{
    private readonly Func<T, CancellationToken, TResult> _fn = fn;

    public override Delegate UserDelegate => _fn;

    public override ChunkOutcome Run(object items, Worker.TaskClock clock)
    {
        if (clock.TimesEachTask)
            return MapFunction<T, TResult>.RunEach((T[])items, clock, _fn);
        var token = clock.CallToken; // fires when the call ends, as each task's would
        return MapFunction<T, TResult>.RunPlain((T[])items, x => _fn(x, token));
    }
}

/// <summary>The pool's <c>initializer(*initargs)</c>, run once in every worker before its first task.</summary>
internal sealed class PoolInitializer(Delegate initializer, object?[] args)
{
    private readonly Delegate _initializer = initializer;
    private readonly object?[] _args = args;

    public Delegate UserDelegate => _initializer;

    public object?[] Args => _args;

    public void Run()
    {
        try
        {
            _initializer.DynamicInvoke(_args);
        }
        catch (System.Reflection.TargetInvocationException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw();
        }
    }
}
