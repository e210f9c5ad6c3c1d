using System.CommandLine;
using ActorPool.Node;
using ActorPool.Worker;

// The ActorPool node executable: a standalone worker node that joins an ActorPool cluster and serves its
// coordinator with worker actors. (Run by a pool with --actorpool-worker, it is one of that pool's spawned workers.)

if (args.Length > 0 && args[0] == WorkerProgram.WorkerFlag)
    return WorkerProgram.Main(args);

var config = new Option<FileInfo?>("--config", "-c")
{
    Description = "A HOCON file (akka.* and actorpool.* keys; see hocon/worker-node.conf). Command-line options override it.",
};
var seedNodes = new Option<string[]>("--seed-nodes", "-s")
{
    Description = "Addresses of the cluster's seed nodes (the coordinator's first), e.g. akka.tcp://actorpool@127.0.0.1:4053; " +
                  "repeat the option or separate by commas. Default: akka.cluster.seed-nodes.",
    AllowMultipleArgumentsPerToken = true,
};
var hostname = new Option<string?>("--hostname")
{
    Description = "The address other members reach this node at (akka.remote.dot-netty.tcp.hostname). Default: the file's, else 127.0.0.1.",
};
var port = new Option<int?>("--port", "-p")
{
    Description = "This node's port; 0 picks a free one. Default: actorpool.node.port (0).",
};
var workers = new Option<int?>("--workers", "-w")
{
    Description = "Worker actors on this node, each with its own task thread. Default: actorpool.node.workers (0 = one per CPU).",
};
var role = new Option<string?>("--role", "-r")
{
    Description = "This node's cluster role; a coordinator accepts workers from members with its actorpool.cluster.worker-role. " +
                  "Default: actorpool.cluster.worker-role (actorpool-worker).",
};
var assembly = new Option<FileInfo[]>("--assembly", "-a")
{
    Description = "An assembly with the code the pool's tasks call (the coordinator program's, or a library of it), loaded with the " +
                  "assemblies beside it; repeat for several.",
};

var root = new RootCommand(
    "ActorPool node: joins an ActorPool cluster and serves every coordinator in it with worker actors.\n" +
    "The shared secret comes from the environment variable ACTORPOOL_SECRET or actorpool.cluster.secret; a node " +
    "without the coordinator's is refused and exits with code 4. Bad options or configuration exit with code 2. " +
    "SIGTERM or Ctrl-C makes the node leave the cluster: what it still runs is handed back to the pool.")
{
    config, seedNodes, hostname, port, workers, role, assembly,
};
var statusConfig = new Option<FileInfo?>("--config", "-c")
{
    Description = "The cluster's HOCON file (the secret, TLS, and the coordinator as the first of akka.cluster.seed-nodes).",
};
var coordinator = new Option<string?>("--coordinator")
{
    Description = "The coordinator's member address, e.g. akka.tcp://actorpool@127.0.0.1:4053. Default: the first of akka.cluster.seed-nodes in --config.",
};
var watch = new Option<bool>("--watch")
{
    Description = "Follow the pool: a live progress bar per call in a terminal (plain lines when output is redirected), until Ctrl-C.",
};
var interval = new Option<double>("--interval")
{
    Description = "Seconds between two looks with --watch.",
    DefaultValueFactory = _ => 1.0,
};
var timeout = new Option<double>("--timeout")
{
    Description = "Seconds to wait for the coordinator's answer.",
    DefaultValueFactory = _ => 10.0,
};
var status = new Command("status",
    "Shows what a running cluster pool is doing: per worker its process, host, state, the task it runs and for how long, tasks done and " +
    "restarts; per call its progress. The secret comes from ACTORPOOL_SECRET or actorpool.cluster.secret. Exit codes: 0 shown, " +
    "1 no answer, 2 bad options or configuration, 4 refused (wrong secret), 130 a watch ended by Ctrl-C.")
{
    statusConfig, coordinator, watch, interval, timeout,
};
status.SetAction((parse, ct) => StatusCommand.RunAsync(new StatusOptions(parse.GetValue(statusConfig), parse.GetValue(coordinator), parse.GetValue(watch),
    SecondsOption(parse.GetValue(interval)), SecondsOption(parse.GetValue(timeout))), ct));
root.Subcommands.Add(status);

var certOut = new Option<FileInfo>("--out", "-o")
{
    Description = "The PKCS#12 file to write (mode 0600). Its password, if any, comes from ACTORPOOL_CERT_PASSWORD.",
    Required = true,
};
var certSubject = new Option<string>("--subject")
{
    Description = "The certificate's common name.",
    DefaultValueFactory = _ => "ActorPool cluster",
};
var certDays = new Option<int>("--days")
{
    Description = "How many days the certificate is valid.",
    DefaultValueFactory = _ => 3650,
};
var certForce = new Option<bool>("--force")
{
    Description = "Replace the file if it exists.",
};
var certCreate = new Command("create",
    "Makes a cluster certificate: a self-signed ECDSA P-256 certificate and its key in a PKCS#12 file, for " +
    "actorpool.cluster.tls.certificate on every member (instead of the key derived from the secret). Prints its thumbprint.")
{
    certOut, certSubject, certDays, certForce,
};
certCreate.SetAction(parse => CertCommand.Create(parse.GetValue(certOut)!, parse.GetValue(certSubject)!, parse.GetValue(certDays), parse.GetValue(certForce)));
var cert = new Command("cert", "The cluster's TLS certificate.") { certCreate };
root.Subcommands.Add(cert);

static TimeSpan SecondsOption(double seconds) => double.IsFinite(seconds) && seconds is > 0 and < 1e6 ? TimeSpan.FromSeconds(seconds) : TimeSpan.Zero;

root.SetAction(parse => NodeProgram.Run(new NodeOptions(
    parse.GetValue(config), parse.GetValue(seedNodes) ?? [], parse.GetValue(hostname), parse.GetValue(port), parse.GetValue(workers),
    parse.GetValue(role), parse.GetValue(assembly) ?? [])));

var result = root.Parse(args);
if (ActorPool.Shared.CommandLineErrors.Report(result))
    return ActorPool.Shared.CommandLineErrors.ExitUsage;
return result.Invoke();
