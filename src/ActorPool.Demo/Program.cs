using System.CommandLine;
using System.Diagnostics;
using ActorPool;
using ActorPool.Demo;

// The seed program, ported from Python:
//
//   data = (['a', '2'], ['b', '4'], ['c', '6'], ['d', '8'], ['e', '1'], ['f', '3'], ['g', '5'], ['h', '7'])
//   def mp_worker(inputs, the_time): print(" Process %s\tWaiting %s seconds" % ...); time.sleep(...); print(" Process %s\tDONE" % ...)
//   p = multiprocessing.Pool(2); p.map(mp_worker, data)
//
// No `if __name__ == '__main__':` guard is needed: worker processes never run this Main.

var workers = new Option<int>("--workers", "-w")
{
    Description = "Number of worker processes.",
    DefaultValueFactory = _ => 2,
};
ActorPool.Shared.CommandLineErrors.Check(workers, n => n >= 1, "--workers must be at least 1.");
var unit = new Option<double>("--unit", "-u")
{
    Description = "Length of one of the seed's \"seconds\", in seconds (0.1 runs the example ten times faster).",
    DefaultValueFactory = _ => 1.0,
};
ActorPool.Shared.CommandLineErrors.Check(unit, v => v is >= 0 and <= 60, "--unit must be between 0 and 60 seconds.");

var startMethod = new Option<string>("--start-method", "-m")
{
    Description = "How workers start: spawn (a fresh process each), forkserver (pre-started spares) or thread (in this process). fork is refused, with the reason.",
    DefaultValueFactory = _ => "spawn",
};

var paired = new Option<bool>("--paired")
{
    Description = "Run the seed data in pairs, as the seed's second program: both items of a pair start together on two workers, and both finish before the next pair starts.",
};

var perItemProcess = new Option<bool>("--per-item-process")
{
    Description = "Run the seed's first program: one process per item (ActorProcess, Python's multiprocessing.Process), all started at once, then joined. --workers does not apply.",
};

var daemon = new Option<bool>("--daemon")
{
    Description = "With --per-item-process: make the processes daemons, which end with this program however it ends (Python's daemon=True).",
};

var withQueue = new Option<bool>("--with-queue")
{
    Description = "Workers send their results back through a queue (ActorQueue, Python's multiprocessing.Queue) instead of returning them; this program prints them as they arrive.",
};

var withLock = new Option<bool>("--with-lock")
{
    Description = "Workers print under one shared lock (ActorLock, Python's multiprocessing.Lock), so no two lines interleave.",
};

var configFile = new Option<FileInfo?>("--config", "-c")
{
    Description = "A HOCON file for the pool (actorpool.* and akka.* keys), e.g. hocon/three-node-local.conf: the pool becomes a cluster " +
                  "coordinator and standalone worker nodes serve it. The file's worker counts apply unless --workers is given.",
};

var noProgress = new Option<bool>("--no-progress")
{
    Description = "Do not show the map's progress (a live bar in a terminal; \"Progress: ...\" lines, at most one a second, when output is redirected).",
};

var root = new RootCommand("The seed example: 8 sleeping tasks mapped over a pool of worker processes.") { workers, unit, startMethod, paired, perItemProcess, daemon, withQueue, withLock, configFile, noProgress };
root.SetAction(async (parse, ct) =>
{
    var n = parse.GetValue(workers);
    var u = parse.GetValue(unit);
    var pairs = parse.GetValue(paired);
    if (pairs && n < 2)
    {
        Console.Error.WriteLine("--paired runs two items at a time on two distinct workers: use --workers 2 or more.");
        return 2;
    }

    if (parse.GetValue(perItemProcess))
    {
        if (pairs)
        {
            Console.Error.WriteLine("--per-item-process and --paired are two different programs of the seed: choose one.");
            return 2;
        }
        return RunProcessPerItem(u, parse.GetValue(startMethod)!, parse.GetValue(daemon));
    }

    var clock = Stopwatch.StartNew();
    string? hocon = null;
    if (parse.GetValue(configFile) is { } file)
    {
        try
        {
            hocon = File.ReadAllText(file.FullName);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"--config: cannot read '{file.FullName}': {e.Message}");
            return 2;
        }
    }
    // As in Python, the workers get the queue and the lock through the pool's initializer (Pool(initializer=...,
    // initargs=(lock,))), which keeps them for the tasks; the pool's workers connect to them while they start.
    var results = parse.GetValue(withQueue) ? new ActorQueue<string>() : null;
    var printLock = parse.GetValue(withLock) ? new ActorLock("seed-print") : null;
    Pool created;
    try
    {
        var workerCount = hocon is not null && parse.GetResult(workers) is null or { Implicit: true } ? (int?)null : n;
        created = new Pool(new PoolOptions
        {
            Processes = workerCount, StartMethod = parse.GetValue(startMethod), Config = hocon,
            Initializer = results is null && printLock is null ? null : SeedExample.Share, InitArgs = results is null && printLock is null ? null : [results, printLock],
        });
    }
    catch (ArgumentException e)
    {
        Console.Error.WriteLine(e.Message);
        return 2;
    }
    await using var pool = created;
    n = pool.Processes;
    var ready = pool.WaitForWorkersAsync(ct);
    if (hocon is not null && await Task.WhenAny(ready, Task.Delay(TimeSpan.FromSeconds(2), ct)) != ready)
        Console.WriteLine($"Waiting for {n} workers (with actorpool.cluster on, worker nodes: start them with build.ps1 node, see the README)...");
    await ready;
    var startup = clock.Elapsed;

    if (printLock is not null)
        using (printLock.Lock()) { } // the lock manager is up before the timing starts
    clock.Restart();
    IReadOnlyList<string> done;
    // The map's progress: a bar below the workers' lines in a terminal, plain lines when redirected.
    var display = parse.GetValue(noProgress) ? null : ActorPool.Shared.ConsoleProgress.Start();
    var progress = display?.For("Progress");
    await using (display)
    if (results is not null)
    {
        // The tasks put their results into a queue this program reads as they come.
        var tasks = pairs
            ? pool.MapPairedAsync(item => SeedExample.WorkIntoQueue(item, u), SeedExample.Data, batchSize: 2, progress: progress, cancellationToken: ct)
            : pool.MapAsync(item => SeedExample.WorkIntoQueue(item, u), SeedExample.Data, progress: progress, cancellationToken: ct);
        var received = new List<string>();
        while (received.Count < SeedExample.Data.Length)
        {
            var name = await results.GetAsync(ct);
            Console.WriteLine($" Received {name} through the queue");
            received.Add(name);
        }
        await tasks;
        done = received;
    }
    else
    {
        done = pairs
            ? await pool.MapPairedAsync(item => SeedExample.Work(item, u), SeedExample.Data, batchSize: 2, progress: progress, cancellationToken: ct)
            : await pool.MapAsync(item => SeedExample.Work(item, u), SeedExample.Data, progress: progress, cancellationToken: ct);
    }
    var elapsed = clock.Elapsed;

    Console.WriteLine($"Completed {done.Count} tasks: {string.Join(" ", done)}");
    Console.WriteLine($"Pool start-up ({n} workers ready): {startup.TotalSeconds:F3} s");
    Console.WriteLine(pairs
        ? $"Elapsed: {elapsed.TotalSeconds:F3} s ({SeedExample.Data.Length / 2} pairs, one after another, on one pool of {n} workers, unit {u} s)"
        : $"Elapsed: {elapsed.TotalSeconds:F3} s (map of {SeedExample.Data.Length} tasks on {n} workers, unit {u} s)");
    return 0;
});

// The seed's first program:
//   processes = [multiprocessing.Process(target=mp_worker, args=(d,)) for d in data]
//   for p in processes: p.start()
//   for p in processes: p.join()
static int RunProcessPerItem(double unit, string startMethod, bool daemon)
{
    List<ActorProcess> processes;
    try
    {
        var context = StartMethods.GetContext(startMethod);
        processes = SeedExample.Data.Select(item => context.Process(SeedExample.Work, item, unit)).ToList();
        processes.ForEach(p => p.Daemon = daemon);
    }
    catch (ArgumentException e)
    {
        Console.Error.WriteLine(e.Message);
        return 2;
    }
    var clock = Stopwatch.StartNew();
    foreach (var p in processes)
        p.Start();
    foreach (var p in processes)
        p.Join();
    var elapsed = clock.Elapsed;
    var failed = processes.Where(p => p.ExitCode != 0).ToList();
    Console.WriteLine($"Completed {processes.Count - failed.Count} of {processes.Count} processes{(failed.Count > 0 ? $"; failed: {string.Join(", ", failed.Select(p => $"{p.Name} (exit code {p.ExitCode})"))}" : "")}");
    Console.WriteLine($"Elapsed: {elapsed.TotalSeconds:F3} s (one {startMethod} process per item, {processes.Count} at once, unit {unit} s: the longest item plus start-up)");
    return failed.Count == 0 ? 0 : 1;
}

var config = new InvocationConfiguration();
var result = root.Parse(args);
if (ActorPool.Shared.CommandLineErrors.Report(result))
    return ActorPool.Shared.CommandLineErrors.ExitUsage;
return await result.InvokeAsync(config);
