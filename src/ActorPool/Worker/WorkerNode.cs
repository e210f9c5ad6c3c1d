using ActorPool.Configuration;
using Akka.Actor;
using Akka.Configuration;
using ActorPool.Protocol;

namespace ActorPool.Worker;

/// <summary>
/// The ActorSystem of a spawned worker process: one <see cref="WorkerActor"/>, which registers with the
/// coordinator. The process exits when the pool retires it, when the coordinator goes away, when its standard
/// input ends (the pool's process exited, even by kill -9), or when its parent process is no longer its parent.
/// </summary>
internal static class WorkerNode
{
    // Parsed when an ActorSystem is first wanted: most spawned workers never start one (about 10 ms of HOCON otherwise).
    private static readonly Lazy<Config> WorkerConfig = new(() => ConfigurationFactory.ParseString("""
        akka {
          loglevel = ERROR
          stdout-loglevel = ERROR
          # To standard error, and a peer kept out by TLS in one line now and then, not a screen per attempt.
          stdout-logger-class = "ActorPool.Logging.QuietStdoutLogger, ActorPool"

          remote.dot-netty.tcp.hostname = "127.0.0.1"
          remote.dot-netty.tcp.port = 0
        }
        """));

    /// <summary>
    /// The worker's ActorSystem (remoting on 127.0.0.1, an ephemeral port): mutual TLS with <paramref name="tls"/>, the
    /// pool's identity, so only the pool's own processes can connect to it (plain TCP without one).
    /// </summary>
    public static ActorSystem CreateSystem(int maxFrameSize, Hosting.TlsIdentity? tls)
    {
        var frame = maxFrameSize > 0 ? maxFrameSize : 128000;
        var config = ConfigurationFactory.ParseString($"akka.remote.dot-netty.tcp.maximum-frame-size = {frame}b")
            .WithFallback(WorkerConfig.Value).WithFallback(PoolSettings.Reference);
        if (tls is null)
            return ActorSystem.Create("actorpool-worker", config);
        var (tlsConfig, setup) = Hosting.ProcessTrust.Transport(tls);
        return ActorSystem.Create("actorpool-worker", Akka.Actor.BootstrapSetup.Create().WithConfig(tlsConfig.WithFallback(config)).And(setup));
    }

    /// <param name="handshake">The settings the pool sent.</param>
    /// <param name="preStarted">The ActorSystem a forkserver spare started while it waited (for the same frame size).</param>
    public static int Run(WorkerHandshake handshake, ActorSystem? preStarted = null)
    {
        var exit = new ExitCode();
        // What the first chunk needs besides the function (the task meter, the trace context's parser), made while this
        // thread connects and waits for work: about 15 ms of a new worker's CPU, off its path to the first result.
        ThreadPool.UnsafeQueueUserWorkItem(static _ =>
        {
            _ = Diagnostics.PoolMetrics.TaskDuration.Enabled;
            System.Diagnostics.ActivityContext.TryParse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", null, isRemote: true, out System.Diagnostics.ActivityContext _);
        }, null);
        // Queues and locks are this program's: their clients speak its process-tree identity.
        Hosting.ProcessTrust.Adopt(handshake.Trust ?? handshake.Tls);
        var started = new TaskCompletionSource<ActorSystem>(TaskCreationOptions.RunContinuationsAsynchronously);
        var wanted = new ManualResetEventSlim();
        // The main thread below flushes the tasks' puts and stops the ActorSystem, if one was started.
        void Stop(int code) => exit.Set(code);
        // Queue and lock handles used by tasks need an ActorSystem: they ask for it, and wait while it starts.
        Hosting.Runtime.UseWorkerSystem(started.Task, wanted.Set);
        var link = TaskRunner.Connect(handshake);
        if (link is not null)
            Hosting.LinkRelayClient.Current = new Hosting.LinkRelayClient(link);
        var linked = link is not null
            ? new TaskRunner(handshake, link, () => Stop(WorkerProgram.ExitOk), reason =>
            {
                Console.Error.WriteLine($"ActorPool worker {handshake.WorkerId}: the pool refused it: {reason}");
                Stop(WorkerProgram.ExitRejected);
            })
            { HardStopped = () => Stop(WorkerProgram.ExitHardLimit), Warm = hosts => Warm(hosts, wanted, started.Task) }
            : null;

        var stdinClosed = new ManualResetEventSlim();
        var swept = new ManualResetEventSlim();
        WatchParent(handshake, exit, stdinClosed, swept, () => started.Task.ContinueWith(static t => t.Result.Terminate(), TaskScheduler.Default));

        LinkLineWriter? stdout = null;
        if (linked is not null)
        {
            // What tasks print travels on the link, in order with their puts (a line printed before a put shows first).
            Console.SetOut(stdout = new LinkLineWriter(link!));
            if (handshake.RelayHost is { Length: > 0 } relayHost)
                Hosting.LinkRelayClient.Current!.RelayTo(relayHost);
            if (handshake.Warm is { Length: > 0 } owners)
                Warm(owners, wanted, started.Task);
            // All of this worker's traffic with the pool is on its data link (work, results, readiness, pings: the
            // pool sees it gone when its process exits or it stops answering), the pool's process's queues and locks
            // included. It listens on no port: there is no ActorSystem until a task asks for one, for a queue or a lock
            // of another process, and that one has no worker actor.
            if (preStarted is not null)
                started.SetResult(preStarted);
            linked.FirstChunkDone.ContinueWith(_ => WorkerProgram.WarmUpInBackground(handshake), TaskScheduler.Default);
            while (!exit.IsSet)
            {
                if (WaitHandle.WaitAny([exit.Signaled.WaitHandle, wanted.WaitHandle]) == 1 && !started.Task.IsCompleted)
                    started.SetResult(CreateSystem(handshake.MaxFrameSize, handshake.Trust ?? handshake.Tls));
                if (started.Task.IsCompleted)
                    break;
            }
            exit.Signaled.Wait();
            stdout?.FlushPartial();
            FlushPuts(handshake); // over the link or the ActorSystem
            if (started.Task.IsCompleted)
                started.Task.Result.Terminate().Wait(TimeSpan.FromSeconds(2));
        }
        else
        {
            // No data link (a spawned worker that cannot reach it): work and results through Akka.Remote, after a
            // registration with the coordinator's challenge-response.
            var system = preStarted ?? CreateSystem(handshake.MaxFrameSize, handshake.Tls);
            started.SetResult(system);
            system.ActorOf(Props.Create(() => new WorkerActor(handshake, exit)), "worker");
            system.WhenTerminated.Wait();
        }
        // The pool's process died: its standard input closes too, often a moment after the data link. Give that a
        // moment, and let the clean-up it starts finish before the process ends. (A worker that retires has its
        // input open: it waits the moment and goes.)
        if (stdinClosed.Wait(TimeSpan.FromMilliseconds(200)))
            swept.Wait(TimeSpan.FromSeconds(2));
        return exit.Value;
    }

    /// <summary>
    /// The pool's tasks use the queues and locks at <paramref name="hosts"/> (their owners' paths): for those not reached
    /// over the data link, start this worker's ActorSystem now (on the main thread, as on first use) and resolve each
    /// owner in the background, so that the TLS association is up before a task needs it. Only a speed-up: failures
    /// are the first use's to report.
    /// </summary>
    private static void Warm(string[] hosts, ManualResetEventSlim wanted, Task<ActorSystem> started)
    {
        // Owners in the pool's process are reached over the data link: no ActorSystem for them.
        var owners = hosts.Take(LinkWarm.MaxHosts).Where(h => Hosting.LinkRelayClient.Current?.Relays(h) != true)
            .Select(h => h.Length <= 512 && ActorPath.TryParse(h, out var path) && path.Address.Host is not null ? path : null).OfType<ActorPath>().ToList();
        if (owners.Count == 0)
            return;
        wanted.Set();
        started.ContinueWith(t =>
        {
            foreach (var owner in owners)
                t.Result.ActorSelection(owner).ResolveOne(TimeSpan.FromSeconds(30));
        }, CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
    }

    /// <summary>
    /// Retired, drained, or its pool closing: what its tasks put reaches their queues before its ActorSystem goes
    /// (bounded). When the pool's process has died instead, nothing can arrive: it is only said what is lost.
    /// </summary>
    internal static void FlushPuts(WorkerHandshake handshake)
    {
        if (handshake.ParentPid > 0 && (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()) && getppid() != handshake.ParentPid)
            Queues.PendingPuts.Abandon("the pool's process ended");
        Queues.PendingPuts.FlushAll(Queues.PendingPuts.Bound);
    }

    /// <summary>
    /// Ends the worker when its pool's process is gone: its standard input closes (even on kill -9), or, as a second
    /// guard (a grandchild may hold the pipe), its parent is no longer its parent.
    /// </summary>
    private static void WatchParent(WorkerHandshake handshake, ExitCode exit, ManualResetEventSlim stdinClosed, ManualResetEventSlim swept, Action terminate)
    {
        new Thread(() =>
        {
            try
            {
                while (StandardInput.Reader.ReadLine() is not null)
                {
                }
            }
            catch (IOException)
            {
            }
            // Nobody will read a result; leave within half a second.
            stdinClosed.Set();
            Queues.PendingPuts.Abandon("the pool's process ended");
            exit.Set(WorkerProgram.ExitOk);
            SweepIfOrphaned(handshake);
            swept.Set();
            terminate();
            Thread.Sleep(500);
            Environment.Exit(exit.Value);
        })
        { IsBackground = true, Name = "actorpool-parent-watch" }.Start();

        if ((OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()) && handshake.ParentPid > 0)
        {
            new Thread(() =>
            {
                while (!exit.Signaled.Wait(TimeSpan.FromSeconds(1)))
                {
                    if (getppid() != handshake.ParentPid)
                    {
                        exit.Set(WorkerProgram.ExitOk);
                        SweepIfOrphaned(handshake);
                        terminate();
                        return;
                    }
                }
            })
            { IsBackground = true, Name = "actorpool-parent-pid-watch" }.Start();
        }
    }

    /// <summary>
    /// The pool's process died without cleaning up (kill -9): its spill folder (in memory, under /dev/shm) would stay
    /// until the next pool of this user started. A worker that outlives its parent removes it on the way out.
    /// </summary>
    private static void SweepIfOrphaned(WorkerHandshake handshake)
    {
        if (handshake.SpillFolder is not { } folder || handshake.ParentPid <= 0)
            return;
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
            return;
        // Standard input closes while the parent is still exiting: it is reparented a moment later. (The pool itself
        // ends its workers by killing them, so this wait is only ever spent by an orphan.)
        for (var waited = 0; getppid() == handshake.ParentPid; waited += 50)
        {
            if (waited >= 1000)
                return; // the parent lives: it only closed the pipe
            Thread.Sleep(50);
        }
        Execution.Spill.DeleteFolder(folder);
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = false)]
    private static extern int getppid();

    /// <summary>The first reason to exit wins.</summary>
    internal sealed class ExitCode
    {
        private int _value = -1;

        public int Value => _value < 0 ? WorkerProgram.ExitOk : _value;

        /// <summary>Whether a reason to exit has been given.</summary>
        public bool IsSet => Volatile.Read(ref _value) >= 0;

        /// <summary>Set once a reason to exit has been given.</summary>
        public ManualResetEventSlim Signaled { get; } = new();

        public void Set(int code)
        {
            Interlocked.CompareExchange(ref _value, code, -1);
            Signaled.Set();
        }
    }
}
