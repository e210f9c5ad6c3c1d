using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace ActorPool.Benchmarks;

/// <summary>The task functions, the same as bench_mp.py's.</summary>
public static class Functions
{
    public static long Square(int x) => (long)x * x;

    public static int Answer() => 42;

    public static int Length(byte[] bytes) => bytes.Length;

    public static int ProcessId(int _) => Environment.ProcessId;

    public static int ProcessIdAfter50Ms(int _)
    {
        Thread.Sleep(50);
        return Environment.ProcessId;
    }

    public static int ProcessIdAfter20Ms(int _)
    {
        Thread.Sleep(20);
        return Environment.ProcessId;
    }

    /// <summary>Primes below <paramref name="n"/> by trial division (the same algorithm as the Python side).</summary>
    /// <remarks>Always fully optimized, so the sequential run here and the runs in workers execute the same code.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int CountPrimes(int n)
    {
        var count = 0;
        for (var k = 2; k < n; k++)
        {
            var prime = true;
            for (var d = 2; d * d <= k; d++)
            {
                if (k % d == 0)
                {
                    prime = false;
                    break;
                }
            }
            if (prime)
                count++;
        }
        return count;
    }

    public static readonly (string Name, int Seconds)[] Seed =
        [("a", 2), ("b", 4), ("c", 6), ("d", 8), ("e", 1), ("f", 3), ("g", 5), ("h", 7)];

    public static string SeedWork((string Name, int Seconds) item)
    {
        Console.WriteLine($" Process {item.Name}\tWaiting {item.Seconds} seconds");
        Thread.Sleep(TimeSpan.FromSeconds(item.Seconds * 0.1));
        Console.WriteLine($" Process {item.Name}\tDONE");
        return item.Name;
    }

    /// <summary>Task 3 ends its own worker process, as Python's os._exit(1).</summary>
    /// <summary>Puts 0..count-1 into the queue and waits until they have all reached it.</summary>
    public static int Produce(ActorQueue<int> queue, int count)
    {
        for (var i = 0; i < count; i++)
            queue.Put(i);
        queue.FlushAsync().Wait();
        return Environment.ProcessId;
    }

    /// <summary>Acquires and releases the lock <paramref name="count"/> times; returns cycles per second.</summary>
    public static double LockCycles(ActorLock lk, int count)
    {
        lk.Acquire();
        lk.Release();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < count; i++)
        {
            lk.Acquire();
            lk.Release();
        }
        return count / clock.Elapsed.TotalSeconds;
    }

    /// <summary>From the UTC time <paramref name="startTicks"/> on, acquires and releases the lock for one second; returns the cycles.</summary>
    public static int LockCyclesFor(ActorLock lk, long startTicks)
    {
        while (DateTime.UtcNow.Ticks < startTicks)
            Thread.Sleep(1);
        var end = DateTime.UtcNow.AddSeconds(1);
        var n = 0;
        while (DateTime.UtcNow < end)
        {
            lk.Acquire();
            lk.Release();
            n++;
        }
        return n;
    }

    public static int Die(int x)
    {
        if (x == 3)
            Process.GetCurrentProcess().Kill();
        return x;
    }
}
