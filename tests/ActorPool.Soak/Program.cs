using System.CommandLine;
using ActorPool.Soak;

// The chaos run: a checkable function mapped over an endless stream of inputs while worker processes are killed
// with SIGKILL at random. Ends with one line (see SoakRun.Summary) and exit code 0 only if nothing was wrong, lost,
// duplicated or left running.

var minutes = new Option<double>("--minutes")
{
    Description = "How long to run, in minutes.",
    DefaultValueFactory = _ => 2,
};
minutes.Validators.Add(r =>
{
    var v = r.GetValueOrDefault<double>();
    if (v is <= 0 or > 24 * 60 || double.IsNaN(v))
        r.AddError("--minutes must be above 0 and at most 1440.");
});
var killEvery = new Option<double>("--kill-every")
{
    Description = "Seconds between two kills (SIGKILL) of a random worker process; 0: no kills.",
    DefaultValueFactory = _ => 1,
};
killEvery.Validators.Add(r =>
{
    var v = r.GetValueOrDefault<double>();
    if (v is < 0 or > 3600 || double.IsNaN(v) || (v > 0 && v < 0.05))
        r.AddError("--kill-every must be 0 (no kills) or between 0.05 and 3600 seconds.");
});
var workers = new Option<int>("--workers")
{
    Description = "Worker processes.",
    DefaultValueFactory = _ => 4,
};
workers.Validators.Add(r =>
{
    if (r.GetValueOrDefault<int>() is < 1 or > 256)
        r.AddError("--workers must be between 1 and 256.");
});

var root = new RootCommand("ActorPool soak: map a checkable function over endless inputs while workers are killed; check every result.")
{
    minutes, killEvery, workers,
};
root.SetAction(async (parse, ct) => await new SoakRun(
    TimeSpan.FromMinutes(parse.GetValue(minutes)), TimeSpan.FromSeconds(parse.GetValue(killEvery)), parse.GetValue(workers)).RunAsync(ct));

var result = root.Parse(args);
if (ActorPool.Shared.CommandLineErrors.Report(result))
    return ActorPool.Shared.CommandLineErrors.ExitUsage;
return await result.InvokeAsync();
