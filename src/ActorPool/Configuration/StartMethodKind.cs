namespace ActorPool.Configuration;

/// <summary>
/// The start methods, parsed once from their Python names at the edge (options, HOCON, <see cref="StartMethods"/>);
/// everything past the edge compares these, never strings.
/// </summary>
internal enum StartMethodKind
{
    /// <summary>A fresh worker process each (Python's <c>spawn</c>).</summary>
    Spawn,

    /// <summary>A pre-started, pre-loaded spare process each (Python's <c>forkserver</c>).</summary>
    Forkserver,

    /// <summary>A worker actor with its own thread in the pool's process (Python's <c>multiprocessing.dummy</c>).</summary>
    Thread,
}

internal static class StartMethodNames
{
    /// <summary>The Python name: <c>spawn</c>, <c>forkserver</c>, <c>thread</c>.</summary>
    public static string Name(this StartMethodKind kind) => kind switch
    {
        StartMethodKind.Spawn => "spawn",
        StartMethodKind.Forkserver => "forkserver",
        _ => "thread",
    };
}
