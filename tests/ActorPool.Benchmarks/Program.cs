using System.CommandLine;
using System.Globalization;
using ActorPool.Benchmarks;

// ActorPool against Python's multiprocessing (spawn context), workload by workload, in one run on one machine.
// The ActorPool side runs in this process; the Python side is bench_mp.py, one interpreter per repetition.

if (args is [Workloads.ImapMemoryChildFlag, var count])
    return await Workloads.ImapMemoryChild(int.Parse(count, CultureInfo.InvariantCulture));

var quick = new Option<bool>("--quick") { Description = "3 runs per side instead of 5 (a run of under 3 minutes)." };
var runs = new Option<int?>("--runs") { Description = "Runs per side and workload (default 5, or 3 with --quick)." };
runs.Validators.Add(r =>
{
    if (r.GetValueOrDefault<int?>() is < 1 or > 100)
        r.AddError("--runs must be between 1 and 100.");
});
var filter = new Option<string[]>("--filter", "-f")
{
    Description = "Workloads to run: names or name prefixes, comma-separated or repeated (e.g. --filter tiny,startup).",
    AllowMultipleArgumentsPerToken = true,
};
var output = new Option<string>("--out", "-o")
{
    Description = "Folder for results.json and results.md.",
    DefaultValueFactory = _ => Path.Combine("artifacts", "bench"),
};
var python = new Option<string>("--python")
{
    Description = "The Python interpreter for the other side.",
    DefaultValueFactory = _ => "python3",
};
var workers = new Option<int>("--workers", "-w")
{
    Description = "Worker processes per pool.",
    DefaultValueFactory = _ => 2,
};
workers.Validators.Add(r =>
{
    if (r.GetValueOrDefault<int>() is < 1 or > 64)
        r.AddError("--workers must be between 1 and 64.");
});

var root = new RootCommand("ActorPool against Python multiprocessing, side by side: throughput, latency, speedup, start-up, payload, crash handling.")
{
    quick, runs, filter, output, python, workers,
};

root.SetAction(async (parse, ct) =>
{
    var all = Workloads.All(parse.GetValue(workers));
    var terms = (parse.GetValue(filter) ?? []).SelectMany(f => f.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToArray();
    var unknown = terms.Where(t => !all.Any(w => w.Name.StartsWith(t, StringComparison.OrdinalIgnoreCase))).ToArray();
    if (unknown.Length > 0)
    {
        Console.Error.WriteLine($"Unknown workload '{string.Join("', '", unknown)}'. Workloads: {string.Join(", ", all.Select(w => w.Name))}.");
        return 2;
    }
    var selected = terms.Length == 0 ? all : all.Where(w => terms.Any(t => w.Name.StartsWith(t, StringComparison.OrdinalIgnoreCase))).ToArray();
    var repetitions = parse.GetValue(runs) ?? (parse.GetValue(quick) ? 3 : 5);

    var py = new PythonSide(parse.GetValue(python)!, Path.Combine(AppContext.BaseDirectory, "bench_mp.py"));
    var hasPython = py.Probe();
    if (!hasPython)
        Console.Error.WriteLine($"Python is not available ({py.Version}); the Python column stays empty.");
    // Where Python users go next: loky (joblib's executor) and Dask distributed, when installed.
    var engines = new List<string>();
    var engineVersions = new List<string>();
    foreach (var (engine, module, package) in new[] { ("loky", "joblib.externals.loky", "python3-joblib (or pip install joblib)"), ("dask", "distributed", "python3-distributed (or pip install distributed)") })
    {
        if (hasPython && py.VersionOf(module) is { } version)
        {
            engines.Add(engine);
            engineVersions.Add($"{(engine == "dask" ? "Dask distributed" : engine)} {version}");
        }
        else
            Console.Error.WriteLine($"{engine} is not installed for {parse.GetValue(python)}: its column stays empty. Install {package}.");
    }

    var rows = new List<Row>();
    await using (var ctx = new BenchContext(parse.GetValue(workers)))
    {
        foreach (var w in selected)
        {
            var n = Math.Min(repetitions, w.Repetitions ?? repetitions);
            Console.WriteLine($"{w.Name}: {w.Description}");
            var ours = new List<Sample>();
            var theirs = new List<Sample>();
            var peers = (w.Peers ? engines : []).ToDictionary(e => e, _ => new List<Sample>());
            var count = parse.GetValue(workers);
            for (var i = 0; i < n; i++)
            {
                // Alternate which side goes first, so drift in the machine's load falls on both.
                if (i % 2 == 0)
                {
                    ours.Add(await w.ActorPool(ctx, ct));
                    if (hasPython && w.PythonArgs.Length > 0) theirs.Add(py.Measure(w.PythonArgs, count, "mp", ct));
                }
                else
                {
                    if (hasPython && w.PythonArgs.Length > 0) theirs.Add(py.Measure(w.PythonArgs, count, "mp", ct));
                    ours.Add(await w.ActorPool(ctx, ct));
                }
                foreach (var (engine, samples) in peers)
                    samples.Add(py.Measure(w.PythonArgs, count, engine, ct));
                Console.WriteLine($"  run {i + 1}/{n}: ActorPool {Show(ours[^1])}   Python {(theirs.Count > i ? Show(theirs[^1]) : "n/a")}" +
                                  string.Concat(peers.Select(kv => $"   {kv.Key} {Show(kv.Value[^1])}")));
            }
            rows.AddRange(w.Metrics.Select(m => Row.From(w, m, ours, theirs, peers)));
        }
    }

    var machine = Report.Machine(hasPython ? string.Join(", ", [py.Version!, .. engineVersions]) : "no Python", repetitions);
    var markdown = Report.Markdown(rows, machine);
    var folder = Path.GetFullPath(parse.GetValue(output)!);
    Report.Write(folder, rows, markdown);
    Console.WriteLine();
    Console.WriteLine(markdown);
    Console.WriteLine($"Written: {Path.Combine(folder, "results.json")} and results.md");
    return 0;
});

var result = root.Parse(args);
if (ActorPool.Shared.CommandLineErrors.Report(result))
    return ActorPool.Shared.CommandLineErrors.ExitUsage;
return await result.InvokeAsync(new InvocationConfiguration());

static string Show(Sample s) =>
    string.Join(", ", s.Values.Select(kv => $"{kv.Key}={(kv.Value is { } v ? v.ToString("G4", CultureInfo.InvariantCulture) : "–")}")) +
    (s.Outcome is null ? "" : $" [{s.Outcome}]");
