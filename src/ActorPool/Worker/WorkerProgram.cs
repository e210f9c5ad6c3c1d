
namespace ActorPool.Worker;

/// <summary>
/// What a spawned worker reads from its standard input before anything else (one line, <see cref="HandshakeCodec"/>). <see cref="SpillFolder"/>
/// is where large results go as files (absent: everything travels inline); <see cref="DataSocket"/> is the pool's data
/// link (absent, or not reachable: work and results travel through Akka.Remote). <see cref="EntryAssembly"/> is the
/// calling program's, which the worker loads while idle: the user's functions are most likely there. With
/// <see cref="Target"/> the process is an <see cref="ActorProcess"/>: it runs that one target (named
/// <see cref="WorkerId"/>) and exits, ending with its parent only when <see cref="Daemon"/>. <see cref="Tls"/> is the TLS
/// identity its ActorSystem speaks (that of the pool's ActorSystem; absent: plain TCP, for a pool in an application's
/// own ActorSystem); <see cref="Trust"/> is this program's process-tree identity, which the worker's queue and lock
/// clients speak when its work is on the data link (absent: <see cref="Tls"/>); <see cref="Warm"/> names the queues and locks
/// the pool's tasks use, which it connects to as it starts; those of <see cref="RelayHost"/> (the pool's process's host)
/// it reaches over its data link. <see cref="StartMethod"/> is the method that started it: the child's own
/// <see cref="StartMethods.Current"/>, so the pools and processes it starts use it too (as Python's children do).
/// </summary>
internal sealed record WorkerHandshake(string Coordinator, string WorkerId, string Secret, int ParentPid, int MaxFrameSize,
    string? SpillFolder = null, string? DataSocket = null, string? EntryAssembly = null, byte[]? Target = null, bool Daemon = false,
    Hosting.TlsIdentity? Tls = null, string? StartMethod = null, Hosting.TlsIdentity? Trust = null, string[]? Warm = null, string? RelayHost = null)
{
    /// <summary>The calling program's entry assembly, as a handshake names it.</summary>
    public static string? CallerEntryAssembly { get; } = System.Reflection.Assembly.GetEntryAssembly()?.GetName().Name;

    public string ToLine() => HandshakeCodec.Write(this);

    public static WorkerHandshake FromLine(string line) => HandshakeCodec.ReadHandshake(line);
}

/// <summary>
/// Entry point of a spawned worker process. Runs with the calling application's dependency list, so the user's
/// assemblies resolve; never runs the user's <c>Main</c>.
/// </summary>
internal static class WorkerProgram
{
    public const string WorkerFlag = "--actorpool-worker";

    /// <summary>A forkserver spare: pre-load first, then wait (maybe long) for the settings.</summary>
    public const string SpareFlag = "--spare";

    /// <summary>An assembly a spare loads ahead (repeated), as Python's <c>set_forkserver_preload</c>.</summary>
    public const string PreloadFlag = "--preload";

    /// <summary>The frame size of the pools a spare serves (its ActorSystem is started with it).</summary>
    public const string FrameSizeFlag = "--frame-size";

    private static int FrameSizeOf(string[] args)
    {
        var at = Array.IndexOf(args, FrameSizeFlag);
        return at >= 0 && at + 1 < args.Length && int.TryParse(args[at + 1], out var frame) ? frame : -1;
    }

    /// <summary>What a spare prints (to its pool, never shown) once it has pre-loaded.</summary>
    public const string SpareReadyLine = "\u0001actorpool-spare-ready";

    /// <summary>A spare's line once it has read an <see cref="ActorProcess"/>'s handshake: it runs the target (not dead while it waited).</summary>
    public const string TargetTakenLine = "\u0001actorpool-target-taken";

    /// <summary>
    /// Exit codes of a worker process. <see cref="ExitRetryLater"/>: the pool would not take it for now (shutting down,
    /// broken); <see cref="ExitRejected"/>: it never will (wrong secret, wrong role); <see cref="ExitHardLimit"/>: a task ran
    /// past its hard time limit.
    /// </summary>
    public const int ExitOk = 0, ExitUsage = 2, ExitHandshake = 3, ExitRejected = 4, ExitRetryLater = 5, ExitHardLimit = 6;

    private static System.Runtime.InteropServices.PosixSignalRegistration? _interrupt;

    /// <summary>Runs a spawned worker: <c>--actorpool-worker ID</c>, settings on standard input.</summary>
    public static int Main(string[] args)
    {
        if (args.Length < 1 || args[0] != WorkerFlag)
        {
            Console.Error.WriteLine(
                "This is the ActorPool worker host. A pool starts it itself (spawn start method) and hands it its " +
                "settings on standard input; it is not meant to be run by hand. To run a standalone worker node, use ActorPool.Node.");
            return ExitUsage;
        }

        // Ctrl-C in a terminal reaches the whole process group: the pool, not each worker, decides what happens.
        // (A signal registration, not Console.CancelKeyPress: System.Console's set-up took about 20 ms of a worker's start.)
        _interrupt = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, static c => c.Cancel = true);
        Akka.Actor.ActorSystem? system = null;
        Hosting.TlsIdentity? spareTls = null;
        if (args.Contains(SpareFlag))
        {
            // The forkserver's first line: the TLS identity of the program that started it (a spare's ActorSystem
            // speaks TLS from the start, so it needs it before it can start).
            try
            {
                var first = StandardInput.Reader.ReadLine();
                if (first is null)
                    return ExitOk; // the program ended before it needed this spare
                spareTls = HandshakeCodec.ReadTls(first);
            }
            catch (FormatException e)
            {
                Console.Error.WriteLine($"ActorPool worker: unreadable identity on standard input: {e.Message}");
                return ExitHandshake;
            }
            Hosting.ProcessTrust.Adopt(spareTls);
            Preload(args);
            // A spare starts its ActorSystem while it waits too (for the frame size of the pools it serves), so a
            // pool that takes it does not pay for that after its workers are ready.
            if (FrameSizeOf(args) is var frame and > 0)
                system = WorkerNode.CreateSystem(frame, spareTls);
            Console.Out.WriteLine(SpareReadyLine);
            Console.Out.Flush();
        }

        WorkerHandshake? handshake;
        try
        {
            var line = StandardInput.Reader.ReadLine();
            handshake = line is null ? null : WorkerHandshake.FromLine(line);
        }
        catch (FormatException e)
        {
            Console.Error.WriteLine($"ActorPool worker: unreadable settings on standard input: {e.Message}");
            return ExitHandshake;
        }
        if (handshake?.StartMethod is { } method)
            StartMethods.Inherit(method);
        if (handshake?.Target is { Length: > 0 })
        {
            // A child needs no spare's ActorSystem (its queues and locks use a client system of its own, on demand).
            // It ends as a .NET program does: Main returns, and the runtime waits for the foreground threads the target
            // started (Python waits for non-daemon threads), then runs the exit hooks (which deliver its puts).
            system?.Terminate();
            if (args.Contains(SpareFlag))
            {
                Console.Out.WriteLine(TargetTakenLine);
                Console.Out.Flush();
            }
            return ProcessTargetRunner.Run(handshake);
        }
        if (handshake is null || string.IsNullOrEmpty(handshake.Coordinator) || string.IsNullOrEmpty(handshake.WorkerId))
        {
            // A spare whose program ended before taking it: leave at once, whatever its ActorSystem's threads do.
            if (system is not null)
                Environment.Exit(ExitOk);
            Console.Error.WriteLine("ActorPool worker: no settings on standard input; it is started by a pool.");
            return ExitHandshake;
        }
        if (system is not null && (handshake.MaxFrameSize != FrameSizeOf(args) || !SameTls(handshake.Tls, spareTls)))
        {
            system.Terminate().Wait(TimeSpan.FromSeconds(5));
            system = null;
        }
        return WorkerNode.Run(handshake, system);
    }

    private static bool SameTls(Hosting.TlsIdentity? a, Hosting.TlsIdentity? b) =>
        a is null ? b is null : b is not null && a.CertificatePem == b.CertificatePem && a.Pins.SequenceEqual(b.Pins);

    /// <summary>
    /// What a spawned worker does once it has answered its first chunk, while its ActorSystem starts: load the
    /// caller's entry assembly and warm the serializer's common paths, so the first real call does not pay for them.
    /// </summary>
    public static void WarmUpInBackground(WorkerHandshake handshake) => ThreadPool.UnsafeQueueUserWorkItem(static h =>
    {
        try
        {
            if (h.EntryAssembly is { Length: > 0 } entry)
                System.Reflection.Assembly.Load(entry);
            Execution.Payload.WarmUp();
        }
        catch (Exception)
        {
            // Only a speed-up.
        }
    }, handshake, preferLocal: false);

    /// <summary>What a spare does while it waits: load the preload list, warm the serializer and the data link codec.</summary>
    private static void Preload(string[] args)
    {
        for (var i = 0; i < args.Length - 1; i++)
        {
            if (args[i] != PreloadFlag)
                continue;
            try
            {
                System.Reflection.Assembly.Load(args[i + 1]);
            }
            catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException or ArgumentException)
            {
                Console.Error.WriteLine($"ActorPool worker: cannot preload assembly '{args[i + 1]}': {e.Message}");
            }
        }
        try
        {
            Execution.Payload.WarmUp();
            Protocol.ProtocolSerializer.WarmUp();
            // What runs between reading the settings and the first result: the settings' line, the worker's
            // configuration (parsed once, statically), a Unix domain socket.
            WorkerHandshake.FromLine(new WorkerHandshake("akka.tcp://a@127.0.0.1:1/user/c", "w", "s", 1, 1 << 20, "/tmp", "/tmp/s").ToLine());
            System.Runtime.CompilerServices.RuntimeHelpers.RunClassConstructor(typeof(WorkerNode).TypeHandle);
            _ = Configuration.PoolSettings.Reference;
            using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
            _ = new System.Net.Sockets.UnixDomainSocketEndPoint(Path.Combine(Path.GetTempPath(), "actorpool-warm-up.sock"));
        }
        catch (Exception)
        {
            // Only a speed-up.
        }
    }
}

/// <summary>
/// A worker's standard input, read without <see cref="Console.In"/> (System.Console's set-up took about 20 ms of a
/// worker's start, measured): its settings, then nothing until it ends (the pool's process closed it, or died).
/// </summary>
internal static class StandardInput
{
    public static readonly TextReader Reader = OperatingSystem.IsWindows() ? Console.In : new StreamReader(
        new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(0, ownsHandle: false), FileAccess.Read, bufferSize: 0),
        System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: false, bufferSize: 4096);
}
