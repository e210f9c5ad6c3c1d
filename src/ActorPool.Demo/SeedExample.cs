namespace ActorPool.Demo;

/// <summary>The seed program's data and worker function.</summary>
public static class SeedExample
{
    /// <summary>(name, seconds) pairs, as in the seed.</summary>
    public static readonly (string Name, int Seconds)[] Data =
        [("a", 2), ("b", 4), ("c", 6), ("d", 8), ("e", 1), ("f", 3), ("g", 5), ("h", 7)];

    /// <summary>The queue the tasks put their results into, and the lock they print under (set by <see cref="Share"/>).</summary>
    private static ActorQueue<string>? _results;
    private static ActorLock? _printLock;

    /// <summary>The pool's initializer: keeps the queue and the lock for this worker's tasks (Python's global set in an initializer).</summary>
    public static void Share(ActorQueue<string>? results, ActorLock? printLock)
    {
        _results = results;
        _printLock = printLock;
    }

    /// <summary>
    /// Prints the seed's two lines around a sleep of <c>seconds × unit</c>; returns the name. With a print lock
    /// (<see cref="Share"/>), each line is printed while holding it.
    /// </summary>
    public static string Work((string Name, int Seconds) item, double unit) => Work(item, unit, _printLock);

    private static string Work((string Name, int Seconds) item, double unit, ActorLock? printLock)
    {
        Print($" Process {item.Name}\tWaiting {item.Seconds} seconds", printLock);
        Thread.Sleep(TimeSpan.FromSeconds(item.Seconds * unit));
        Print($" Process {item.Name}\tDONE", printLock);
        return item.Name;
    }

    private static void Print(string line, ActorLock? printLock)
    {
        if (printLock is null)
        {
            Console.WriteLine(line);
            return;
        }
        using (printLock.Lock())
        {
            Console.WriteLine(line);
            Console.Out.Flush();
        }
    }

    /// <summary><see cref="Work"/>, then the name into the shared queue (sent before the task returns).</summary>
    public static int WorkIntoQueue((string Name, int Seconds) item, double unit)
    {
        var results = _results ?? throw new InvalidOperationException("No queue: the pool's initializer shares it.");
        results.Put(Work(item, unit, _printLock));
        results.FlushAsync().Wait();
        return item.Seconds;
    }
}
