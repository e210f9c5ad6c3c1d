using ActorPool.Configuration;
using ActorPool.Execution;
using ActorPool.Launching;
using ActorPool.Worker;

namespace ActorPool;

/// <summary>
/// One target run in a process of its own: Python's <c>multiprocessing.Process</c>, on the pool's machinery (the
/// same worker host, start methods and serializer). <c>new ActorProcess(Work, item, 0.5)</c> then
/// <see cref="Start"/> and <see cref="Join"/>.
/// </summary>
/// <remarks>
/// <para>The target is a static method, a lambda or a closure whose captured values serialize, and its arguments
/// must serialize too: what cannot be sent fails in the constructor with <see cref="NotSendableException"/>.</para>
/// <para>The child's output appears in this console. A target that raises prints <c>Process Name:</c> and the
/// exception to standard error and ends with exit code 1, as in Python; <c>Environment.Exit(n)</c> in the target
/// ends it with <c>n</c>. A process ended by a signal has the negative signal number as <see cref="ExitCode"/>.</para>
/// <para>At this program's normal exit, daemon processes are terminated and the others are waited for (Python's
/// rules); a daemon also ends when this program dies, even by kill -9.</para>
/// <para>With the <c>thread</c> start method the target runs on a thread of this process (Python's
/// <c>multiprocessing.dummy.Process</c>): <see cref="Pid"/> is this process's, and it cannot be terminated.</para>
/// </remarks>
public sealed class ActorProcess
{
    private static int _counter;
    private static readonly List<ActorProcess> Live = [];
    private static int _exitHookInstalled;

    // The target as bytes only: the process object does not keep the target or its arguments alive (Python's
    // Process drops them once started).
    private readonly byte[] _serialized;
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _gate = new();
    private WorkerProcess? _process;
    private Thread? _thread;
    private bool _daemon;
    private int? _exitCode;

    /// <summary>A process object for <paramref name="target"/> called with <paramref name="args"/>; not started yet.</summary>
    /// <exception cref="ArgumentException">The arguments do not match the target's parameters.</exception>
    /// <exception cref="NotSendableException">The target, a captured value or an argument cannot be sent to another process.</exception>
    public ActorProcess(Delegate target, params object?[] args)
    {
        ArgumentNullException.ThrowIfNull(target);
        args = Payload.BindArguments(target, args ?? [], "target");
        Payload.SerializeItems(args, 0);
        _serialized = Payload.SerializeFunction(target, new PoolInitializer(target, args), "process target");
        Name = $"Process-{Interlocked.Increment(ref _counter)}";
    }

    /// <summary>The process's name (Python's <c>name</c>): <c>Process-N</c> unless set. It heads the report of an error.</summary>
    public string Name { get; init; }

    /// <summary>
    /// A daemon ends with this program (Python's <c>daemon</c>): terminated at its normal exit, and ended when it dies
    /// however it dies. Set before <see cref="Start"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">Set after <see cref="Start"/>.</exception>
    public bool Daemon
    {
        get => _daemon;
        set
        {
            lock (_gate)
            {
                if (Started)
                    throw new InvalidOperationException($"{Name} has started: set Daemon before Start(), as in Python.");
                _daemon = value;
            }
        }
    }

    /// <summary>
    /// The start method: <c>spawn</c>, <c>forkserver</c> or <c>thread</c>; null takes <see cref="StartMethods.Current"/>.
    /// Checked by <see cref="Start"/>.
    /// </summary>
    public string? StartMethod { get; init; }

    /// <summary>The OS process id once started (this program's own with the thread start method), else null.</summary>
    public int? Pid { get; private set; }

    /// <summary>Null until the process has ended; then 0, 1 when the target raised, the code it exited with, or -N after signal N.</summary>
    public int? ExitCode
    {
        get
        {
            lock (_gate)
                return _exitCode;
        }
    }

    /// <summary>Started and not yet ended (Python's <c>is_alive()</c>).</summary>
    public bool IsAlive => Started && !_exited.Task.IsCompleted;

    private bool Started => _process is not null || _thread is not null;

    /// <summary>Starts the target in a new process (or thread, for the thread start method). Once only.</summary>
    /// <exception cref="InvalidOperationException">It was started already.</exception>
    /// <exception cref="ArgumentException">The start method is unknown, or <c>fork</c>.</exception>
    public void Start()
    {
        var method = PoolSettings.ParseStartMethod(StartMethod ?? StartMethods.Current);
        lock (_gate)
        {
            if (Started)
                throw new InvalidOperationException($"{Name} was started already: a process can be started only once, as in Python.");
            if (method == StartMethodKind.Thread)
                StartThread();
            else
                StartProcess(method);
        }
        InstallExitHook();
        lock (Live)
            Live.Add(this);
        _exited.Task.ContinueWith(_ =>
        {
            lock (Live)
                Live.Remove(this);
        }, TaskScheduler.Default);
    }

    private void StartProcess(StartMethodKind method)
    {
        var forkserver = method == StartMethodKind.Forkserver;
        for (var attempt = 0; ; attempt++)
        {
            var spare = forkserver && attempt == 0;
            var process = spare ? ForkServer.For(PoolSettings.DefaultPreload, 1).Take() : WorkerProcess.Start(Name, spare: false, []);
            _process = process;
            Pid = process.Pid;
            // A spare's exit is its target's only once it has said it runs it; a spawned process's at once. (A flag of
            // this attempt's: a spare found dead is replaced, and its exit, reported a moment later, is nobody's.)
            var confirmed = !spare;
            process.Adopt(forwardOutput: true, (code, _) =>
            {
                if (Volatile.Read(ref confirmed))
                    Ended(ExitCodeOf(code));
            });
            process.SendHandshake(new WorkerHandshake("", Name, "", Environment.ProcessId, 0, Target: _serialized, Daemon: _daemon,
                Tls: Hosting.ProcessTrust.Identity, StartMethod: forkserver ? "forkserver" : "spawn"));
            if (!spare)
                return;
            // A spare killed while it waited can still take the handshake for a moment: it says when it runs the
            // target. One that died first is replaced by a new process, as Python's forkserver is.
            var taken = Task.WaitAny([process.TargetTaken, process.Exited], TimeSpan.FromSeconds(60)) != 1 || process.TargetTaken.IsCompleted;
            if (taken)
            {
                Volatile.Write(ref confirmed, true);
                if (process.Exited.IsCompleted)
                    Ended(ExitCodeOf(process.Exited.Result)); // it ran the target and ended while this waited
                return;
            }
        }
    }

    /// <summary>A process's exit code as Python reports it: a signal's number negated.</summary>
    private static int ExitCodeOf(int code) => code is > 128 and <= 128 + 64 ? -(code - 128) : code;

    private void StartThread()
    {
        // Rebuilt from its bytes, as in a process: the target gets its own copy of the arguments.
        var target = (PoolInitializer)Payload.Deserialize(_serialized)!;
        _thread = new Thread(() =>
        {
            try
            {
                target.Run();
                Ended(0);
            }
            catch (Exception e)
            {
                ProcessTargetRunner.Report(Name, e);
                Ended(1);
            }
        })
        { IsBackground = _daemon, Name = Name };
        Pid = Environment.ProcessId;
        _thread.Start();
    }

    private void Ended(int code)
    {
        lock (_gate)
            _exitCode ??= code;
        _exited.TrySetResult();
    }

    /// <summary>
    /// Waits for the process to end (Python's <c>join(timeout)</c>); true if it ended within <paramref name="timeout"/>. A
    /// negative timeout (but <see cref="Timeout.InfiniteTimeSpan"/>) waits not at all, as Python's does.
    /// </summary>
    /// <exception cref="InvalidOperationException">It was not started.</exception>
    public bool Join(TimeSpan? timeout = null)
    {
        if (!Started)
            throw new InvalidOperationException($"{Name} was not started: call Start() before Join(), as in Python.");
        if (timeout is not { } t || t == Timeout.InfiniteTimeSpan)
            return _exited.Task.Wait(Timeout.Infinite);
        return _exited.Task.Wait(t < TimeSpan.Zero ? TimeSpan.Zero : t);
    }

    /// <summary>Completes when the process has ended.</summary>
    /// <exception cref="InvalidOperationException">It was not started.</exception>
    public Task JoinAsync(CancellationToken cancellationToken = default)
    {
        if (!Started)
            throw new InvalidOperationException($"{Name} was not started: call Start() before JoinAsync().");
        return _exited.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Asks the process to end with SIGTERM (Python's <c>terminate()</c>); its exit code becomes -15. No-op once it has ended.</summary>
    /// <exception cref="NotSupportedException">The thread start method: a thread cannot be stopped from outside.</exception>
    public void Terminate() => Stop(kill: false);

    /// <summary>Ends the process with SIGKILL (Python's <c>kill()</c>); its exit code becomes -9. No-op once it has ended.</summary>
    /// <exception cref="NotSupportedException">The thread start method: a thread cannot be stopped from outside.</exception>
    public void Kill() => Stop(kill: true);

    private void Stop(bool kill)
    {
        if (_thread is not null)
            throw new NotSupportedException($"{Name} runs on a thread (start method 'thread'), which cannot be stopped from outside. Use 'spawn' or 'forkserver' for a process that can.");
        if (_process is not { } process || _exited.Task.IsCompleted)
            return;
        if (kill)
            process.Kill();
        else
            process.Terminate();
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"<ActorProcess name='{Name}' {(_exited.Task.IsCompleted ? $"exitcode={ExitCode}" : Started ? $"pid={Pid} started" : "initial")}{(_daemon ? " daemon" : "")}>";

    /// <summary>Python's exit rules: daemons are terminated, then the others are waited for.</summary>
    private static void InstallExitHook()
    {
        if (Interlocked.Exchange(ref _exitHookInstalled, 1) != 0)
            return;
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            List<ActorProcess> live;
            lock (Live)
                live = Live.ToList();
            foreach (var p in live.Where(p => p._daemon && p._process is not null))
                p.Terminate();
            foreach (var p in live.Where(p => !p._daemon))
                p._exited.Task.Wait();
        };
    }
}
