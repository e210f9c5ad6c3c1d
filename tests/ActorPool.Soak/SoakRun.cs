using Microsoft.Extensions.Logging;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace ActorPool.Soak;

/// <summary>What each task computes: its input, a hash of it (checkable in this process) and where it ran.</summary>
public readonly record struct Checked(long Input, ulong Hash, int Pid);

/// <summary>The function the soak maps (a static method: what a user's code would send).</summary>
public static class SoakFunctions
{
    /// <summary>SHA-256 of the input, iterated a few times (some tens of microseconds of work), as a number.</summary>
    public static ulong Hash(long input)
    {
        Span<byte> buffer = stackalloc byte[32];
        BitConverter.TryWriteBytes(buffer, input);
        for (var i = 0; i < 16; i++)
            SHA256.HashData(buffer, buffer);
        return BitConverter.ToUInt64(buffer);
    }

    public static Checked Task(long input) => new(input, Hash(input), Environment.ProcessId);
}

/// <summary>One soak run: the map, the killer, the checks, the memory samples, the summary line.</summary>
public sealed class SoakRun(TimeSpan duration, TimeSpan killEvery, int workers)
{
    private long _produced;
    private long _results;
    private long _wrong;
    private long _duplicates;
    private long _killed;
    private readonly ConcurrentDictionary<int, bool> _workerPids = new();

    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        Console.WriteLine($"soak: {duration.TotalMinutes:0.##} min, {workers} workers, " +
                          (killEvery > TimeSpan.Zero ? $"a worker killed every {killEvery.TotalSeconds:0.##} s" : "no kills"));
        var clock = Stopwatch.StartNew();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        stop.CancelAfter(duration);

        using var logging = LoggerFactory.Create(b => b
            .SetMinimumLevel(LogLevel.Error)
            .AddSimpleConsole(o => o.SingleLine = true));
        var pool = new Pool(new PoolOptions
        {
            Processes = workers,
            MaxTaskRetries = 100, // a task is lost only if its worker is killed 101 times in a row
            ForwardWorkerOutput = false,
            // Each kill is a worker loss the pool reports as a warning: the soak counts them instead.
            LoggerFactory = logging,
        });
        var killer = killEvery > TimeSpan.Zero ? Task.Run(() => KillLoop(stop.Token)) : Task.CompletedTask;
        var sampler = Task.Run(() => SampleMemory(clock, stop.Token));
        try
        {
            await pool.WaitForWorkersAsync(cancellationToken);
            long expected = 0;
            await foreach (var r in pool.ImapAsync(SoakFunctions.Task, Inputs(stop.Token), chunkSize: 16, cancellationToken: cancellationToken))
            {
                _results++;
                _workerPids.TryAdd(r.Pid, true);
                if (r.Input < expected)
                    _duplicates++;
                else if (r.Input != expected || r.Hash != SoakFunctions.Hash(r.Input))
                    _wrong++;
                expected = Math.Max(expected, r.Input + 1);
            }
        }
        finally
        {
            await stop.CancelAsync();
            await killer;
            await sampler;
            await pool.DisposeAsync();
        }

        Console.WriteLine($"soak: end ({clock.Elapsed.TotalMinutes:0.##} min): caller RSS {RssMegabytes("VmRSS")} MB");
        var orphans = await CountOrphansAsync();
        var lost = _produced - (_results - _duplicates);
        Console.WriteLine(
            $"soak: tasks {_produced}, results {_results}, wrong {_wrong}, lost {lost}, duplicates {_duplicates}, " +
            $"workers killed {_killed}, orphans {orphans}, caller peak RSS {PeakRssMegabytes()} MB");
        return _wrong == 0 && lost == 0 && _duplicates == 0 && orphans == 0 ? 0 : 1;
    }

    /// <summary>An endless stream of inputs, ended when the time is up.</summary>
    private IEnumerable<long> Inputs(CancellationToken stop)
    {
        for (long i = 0; !stop.IsCancellationRequested; i++)
        {
            _produced = i + 1;
            yield return i;
        }
    }

    /// <summary>Kills (SIGKILL) a random worker that has returned results and is this process's child, every interval.</summary>
    private async Task KillLoop(CancellationToken stop)
    {
        var random = new Random(7);
        using var timer = new PeriodicTimer(killEvery);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                var children = Children(Environment.ProcessId).ToHashSet();
                var candidates = _workerPids.Keys.Where(children.Contains).ToList();
                if (candidates.Count == 0)
                    continue;
                var victim = candidates[random.Next(candidates.Count)];
                if (kill(victim, 9) == 0)
                {
                    Interlocked.Increment(ref _killed);
                    _workerPids.TryRemove(victim, out _);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task SampleMemory(Stopwatch clock, CancellationToken stop)
    {
        try
        {
            for (var minute = 1; ; minute++)
            {
                var next = TimeSpan.FromMinutes(minute) - clock.Elapsed;
                if (next > TimeSpan.Zero)
                    await Task.Delay(next, stop);
                Console.WriteLine($"soak: minute {minute}: tasks {Volatile.Read(ref _produced)}, results {Volatile.Read(ref _results)}, " +
                                  $"workers killed {Volatile.Read(ref _killed)}, caller RSS {RssMegabytes("VmRSS")} MB");
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Worker processes still running once the pool is disposed (given 5 s to exit): this process's children.</summary>
    private static async Task<int> CountOrphansAsync()
    {
        var deadline = Stopwatch.StartNew();
        while (Children(Environment.ProcessId).Count > 0 && deadline.Elapsed < TimeSpan.FromSeconds(5))
            await Task.Delay(100);
        var left = Children(Environment.ProcessId);
        foreach (var pid in left)
            kill(pid, 9); // ours: do not leave them behind even when the run fails
        return left.Count;
    }

    private static List<int> Children(int parent)
    {
        var children = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
                continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (int.Parse(fields[1]) == parent && fields[0] != "Z")
                    children.Add(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
        return children;
    }

    private static long PeakRssMegabytes() => RssMegabytes("VmHWM");

    private static long RssMegabytes(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024;
        return -1;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);
}
