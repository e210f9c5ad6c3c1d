using System.Globalization;

namespace ActorPool.Benchmarks;

/// <summary>CPU time and context switches of a process and all its descendants, from Linux's /proc.</summary>
public static class ProcessCpu
{
    private static readonly double TicksPerSecond = 100; // USER_HZ, 100 on every Linux the runtime supports

    /// <summary>User + system time and voluntary + involuntary context switches of <paramref name="root"/> and every live descendant.</summary>
    public static (TimeSpan Cpu, long Switches) OfTree(int root)
    {
        var parents = new Dictionary<int, int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
                continue;
            if (Stat(pid) is { } s)
                parents[pid] = s.Parent;
        }
        var tree = new HashSet<int> { root };
        for (var grew = true; grew;)
        {
            grew = false;
            foreach (var (pid, parent) in parents)
                if (tree.Contains(parent) && tree.Add(pid))
                    grew = true;
        }
        double ticks = 0;
        long switches = 0;
        foreach (var pid in tree)
        {
            if (Stat(pid) is { } s)
                ticks += s.Ticks;
            switches += Switches(pid);
        }
        return (TimeSpan.FromSeconds(ticks / TicksPerSecond), switches);
    }

    private static (int Parent, long Ticks)? Stat(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/stat");
            // "pid (comm) state ppid ... utime stime ...": comm may hold spaces and parentheses.
            var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
            return (int.Parse(fields[1], CultureInfo.InvariantCulture),
                long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null; // gone meanwhile
        }
    }

    private static long Switches(int pid)
    {
        // /proc/<pid>/status counts the main thread only; every thread has its own.
        long n = 0;
        try
        {
            foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
            foreach (var line in File.ReadLines(Path.Combine(task, "status")))
                if (line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal) || line.StartsWith("nonvoluntary_ctxt_switches:", StringComparison.Ordinal))
                    n += long.Parse(line[(line.IndexOf(':') + 1)..].Trim(), CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // gone meanwhile
        }
        return n;
    }
}
