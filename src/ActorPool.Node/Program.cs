using System.CommandLine;
using ActorPool.Worker;

// The ActorPool node executable. Today it hosts one spawned worker (the same host the library starts with
// the spawn start method, here with this program's own dependencies); standalone cluster nodes that join a
// coordinator by seed nodes and role build on the same registration protocol.

if (args.Length > 0 && args[0] == WorkerProgram.WorkerFlag)
    return WorkerProgram.Main(args);

var root = new RootCommand(
    "ActorPool node: hosts ActorPool worker actors in this process.\n" +
    $"  {WorkerProgram.WorkerFlag} ID   run as a pool's spawned worker; the pool writes its settings (coordinator " +
    "address, worker id, secret) as one JSON line on standard input and keeps the pipe open; the worker exits " +
    "when the pool retires it, when the coordinator goes away, or when standard input ends.");
var result = root.Parse(args);
if (result.Errors.Count > 0)
{
    foreach (var e in result.Errors)
        Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine("Run with --help for usage.");
    return 2;
}
return result.Invoke();
