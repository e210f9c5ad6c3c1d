namespace ActorPool.Demo;

/// <summary>The seed program's data and worker function.</summary>
public static class SeedExample
{
    /// <summary>(name, seconds) pairs, as in the seed.</summary>
    public static readonly (string Name, int Seconds)[] Data =
        [("a", 2), ("b", 4), ("c", 6), ("d", 8), ("e", 1), ("f", 3), ("g", 5), ("h", 7)];

    /// <summary>Prints the seed's two lines around a sleep of <c>seconds × unit</c>; returns the name.</summary>
    public static string Work((string Name, int Seconds) item, double unit)
    {
        Console.WriteLine($" Process {item.Name}\tWaiting {item.Seconds} seconds");
        Thread.Sleep(TimeSpan.FromSeconds(item.Seconds * unit));
        Console.WriteLine($" Process {item.Name}\tDONE");
        return item.Name;
    }

    /// <summary><see cref="Work"/>, then the name into <paramref name="results"/> (sent before the task returns).</summary>
    public static int WorkIntoQueue((string Name, int Seconds) item, double unit, ActorQueue<string> results)
    {
        results.Put(Work(item, unit));
        results.FlushAsync().Wait();
        return item.Seconds;
    }
}
