using ActorPool.Configuration;

namespace ActorPool;

/// <summary>
/// How workers and processes start, chosen for the whole program (Python's <c>set_start_method</c>,
/// <c>get_start_method</c>, <c>get_all_start_methods</c>) or per object through a <see cref="PoolContext"/>
/// (Python's <c>get_context</c>).
/// </summary>
/// <remarks>
/// <para><c>spawn</c> (the default): a fresh OS process per worker. <c>forkserver</c>: pre-started, pre-loaded spare
/// processes, taken in milliseconds and refilled in the background. <c>thread</c>: workers are threads of this
/// process (Python's <c>multiprocessing.dummy</c>). <c>fork</c> is refused: a running .NET runtime cannot be forked safely.</para>
/// <para>Which method an object uses, first match wins: its own option (<see cref="PoolOptions.StartMethod"/>,
/// <see cref="ActorProcess.StartMethod"/>, or its context), <c>actorpool.start-method</c> in the pool's own HOCON,
/// <see cref="Set"/>, then <c>actorpool.start-method</c> in reference.conf.</para>
/// </remarks>
public static class StartMethods
{
    private static readonly Lock Gate = new();
    private static string? _set;

    /// <summary>The valid names, the default first (Python's <c>get_all_start_methods()</c>).</summary>
    public static IReadOnlyList<string> All { get; } = PoolSettings.StartMethods;

    /// <summary>
    /// Sets the program's start method, once (Python's <c>set_start_method</c>): a second call throws unless
    /// <paramref name="force"/> is true.
    /// </summary>
    /// <exception cref="ArgumentException">The name is unknown (the message lists the valid ones) or is <c>fork</c> (the message says why).</exception>
    /// <exception cref="InvalidOperationException">It was set already and <paramref name="force"/> is false.</exception>
    public static void Set(string method, bool force = false)
    {
        ArgumentNullException.ThrowIfNull(method);
        PoolSettings.ValidateStartMethod(method);
        lock (Gate)
        {
            if (_set is not null && !force)
                throw new InvalidOperationException(
                    $"The start method has already been set (to '{_set}'); it is set once per program, as in Python. " +
                    "Pass force: true to change it, or use StartMethods.GetContext(name) for objects with another method.");
            _set = method;
        }
    }

    /// <summary>
    /// The program's start method: the one <see cref="Set"/> chose, else <c>actorpool.start-method</c> of
    /// reference.conf (Python's <c>get_start_method()</c>).
    /// </summary>
    public static string Current
    {
        get
        {
            lock (Gate)
                return _set ?? PoolSettings.DefaultStartMethod;
        }
    }

    /// <summary>A child's start method: the one that started it (Python's child sets its parent's with force).</summary>
    internal static void Inherit(string method)
    {
        if (!PoolSettings.StartMethods.Contains(method))
            return; // a newer parent's method this version does not know: keep the default
        lock (Gate)
            _set = method;
    }

    /// <summary>The method <see cref="Set"/> chose, or null (Python's <c>get_start_method(allow_none=True)</c>).</summary>
    internal static string? Explicit
    {
        get
        {
            lock (Gate)
                return _set;
        }
    }

    /// <summary>For tests: forget what <see cref="Set"/> chose.</summary>
    internal static void Reset()
    {
        lock (Gate)
            _set = null;
    }

    /// <summary>
    /// A context whose pools and processes use <paramref name="method"/> (Python's <c>get_context(method)</c>); null
    /// gives the program's <see cref="Current"/> method.
    /// </summary>
    /// <exception cref="ArgumentException">The name is unknown or is <c>fork</c>.</exception>
    public static PoolContext GetContext(string? method = null)
    {
        method ??= Current;
        PoolSettings.ValidateStartMethod(method);
        return new PoolContext(method);
    }
}

/// <summary>
/// Pools and processes that start with one start method (Python's <c>multiprocessing.get_context(method)</c>):
/// <c>StartMethods.GetContext("forkserver").Pool(4)</c>.
/// </summary>
public sealed class PoolContext
{
    internal PoolContext(string startMethod) => StartMethod = startMethod;

    /// <summary>The start method of this context's pools and processes.</summary>
    public string StartMethod { get; }

    /// <summary>A pool of <paramref name="processes"/> workers started with this context's method.</summary>
    public Pool Pool(int processes) => new(new PoolOptions { Processes = processes, StartMethod = StartMethod });

    /// <summary>A pool with these options, started with this context's method (it overrides <see cref="PoolOptions.StartMethod"/>).</summary>
    public Pool Pool(PoolOptions? options = null) => new((options ?? new PoolOptions()) with { StartMethod = StartMethod });

    /// <summary>A process object (not yet started) that will start with this context's method (Python's <c>ctx.Process(target, args)</c>).</summary>
    public ActorProcess Process(Delegate target, params object?[] args) => new(target, args) { StartMethod = StartMethod };

    /// <inheritdoc/>
    public override string ToString() => $"PoolContext({StartMethod})";
}
