namespace ActorPool.Demo;

/// <summary>The seed program's data and worker function.</summary>
public static class SeedExample
{
    /// <summary>(name, seconds) pairs, as in the seed.</summary>
    public static readonly (string Name, int Seconds)[] Data =
        [("a", 2), ("b", 4), ("c", 6), ("d", 8), ("e", 1), ("f", 3), ("g", 5), ("h", 7)];

    /// <summary>
    /// Prints the seed's two lines around a sleep of <c>seconds × unit</c>; returns the name. With
    /// <paramref name="printLock"/>, each line is printed while holding it.
    /// </summary>
    public static string Work((string Name, int Seconds) item, double unit, ActorLock? printLock = null)
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

    /// <summary><see cref="Work"/>, then the name into <paramref name="results"/> (sent before the task returns).</summary>
    public static int WorkIntoQueue((string Name, int Seconds) item, double unit, ActorQueue<string> results, ActorLock? printLock = null)
    {
        results.Put(Work(item, unit, printLock));
        results.FlushAsync().Wait();
        return item.Seconds;
    }
}
